#!/usr/bin/env bash
# Interactive `sizeup run --chat` in a real terminal (tmux): a turn is answered and a new prompt
# follows the answer; Ctrl-C during an answer stops that answer early (the stats line says
# "cancelled") and the chat goes on; Ctrl-C at the prompt, Ctrl-D at the prompt and /bye each
# end the chat with exit status 0.
# Every wait looks only at what the screen shows after a marker of its own step (the user's text
# of that turn, or the stats line that ended its answer), so a prompt or line left on screen by
# an earlier step never satisfies a later wait. Fails with the screen shown.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
MODEL="$FIX/models/stories260K.gguf"
e2e_tmux e2e
fail() { echo "FAIL: $1"; tmux capture-pane -p -S - -t "$S" 2>/dev/null | sed 's/^/  | /'; tmux kill-session -t "$S" 2>/dev/null; exit 1; }
# The screen (with its scrollback) after the last line that contains $1, that line excluded.
after() {
    tmux capture-pane -p -S - -t "$S" | awk -v m="$1" 'index($0, m) { out = ""; next } { out = out $0 "\n" } END { printf "%s", out }'
}
# Until the screen after the last line containing $1 shows $2 (a fixed string): $3 seconds.
wait_after() {
    for _ in $(seq 1 $(( $3 * 10 ))); do
        tmux capture-pane -p -S - -t "$S" | grep -qF -- "$1" && after "$1" | grep -qF -- "$2" && return 0
        sleep 0.1
    done
    return 1
}
# Starts the chat with extra run options and waits for its first prompt.
start() {
    tmux new-session -d -s "$S" -x 100 -y 30 \
        "$BIN run -m $MODEL --chat --temp 0 --backend cpu $*; echo EXIT-STATUS:\$?; sleep 30"
    wait_after "[sizeup] chatting with" ">>>" 10 || fail "no chat prompt ($*)"
}
# One turn: the user's text (unique per step), the answer's stats line, then a fresh prompt.
turn() {
    tmux send-keys -t "$S" "$1" Enter
    wait_after "$1" "[sizeup] prompt" 20 || fail "no answer and stats line after '$1'"
    wait_after "[sizeup] prompt" ">>>" 10 || fail "no new prompt after the answer to '$1'"
}
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }
# a session that outlives the others, so the server does not exit between two of them
tmux new-session -d -s keep "sleep 600"

# two turns, then each way of leaving at the prompt
for ending in ctrl-c ctrl-d bye; do
    start -n 24
    turn "Tell me a story ($ending, turn 1)"
    turn "Tell me another ($ending, turn 2)"
    case $ending in
    ctrl-c) tmux send-keys -t "$S" C-c ;;
    ctrl-d) tmux send-keys -t "$S" C-d ;;
    bye) tmux send-keys -t "$S" "/bye" Enter ;;
    esac
    wait_after "[sizeup] prompt" "EXIT-STATUS:0" 10 || fail "chat did not end with status 0 after $ending"
    tmux kill-session -t "$S"
    passed=$((passed + 1))
done

# Ctrl-C during an answer: a long one (up to 4000 tokens on one thread, about half a minute),
# stopped once its first words are on screen; the chat goes on to another turn, stopped the same
# way, then Ctrl-D leaves.
interrupted_turn() {
    tmux send-keys -t "$S" "$1" Enter
    for _ in $(seq 1 100); do
        after "$1" | grep -q '[a-z]' && break
        sleep 0.1
    done
    after "$1" | grep -q '[a-z]' || fail "no answer text after '$1'"
    after "$1" | grep -qF "[sizeup] prompt" && fail "the answer to '$1' ended before Ctrl-C could stop it"
    tmux send-keys -t "$S" C-c
    wait_after "$1" "stop: cancelled" 5 || fail "Ctrl-C did not stop the answer to '$1'"
    n=$(after "$1" | grep -o 'generated [0-9]* tokens' | grep -o '[0-9]*')
    [ -n "$n" ] && [ "$n" -lt 4000 ] || fail "the stopped answer was not cut short (generated '$n' tokens)"
    wait_after "stop: cancelled" ">>>" 5 || fail "no prompt after the stopped answer to '$1'"
}
start -n 4000 -c 4096 -t 1
interrupted_turn "Tell me a long story (to be interrupted)"
interrupted_turn "And another one (after Ctrl-C)"
tmux send-keys -t "$S" C-d
wait_after "stop: cancelled" "EXIT-STATUS:0" 10 || fail "chat did not end with status 0 after Ctrl-D"
tmux kill-session -t "$S"
passed=$((passed + 1))
echo "chat_tmux: $passed passed, 0 failed"
