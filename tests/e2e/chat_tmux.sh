#!/usr/bin/env bash
# Interactive `sizeup run --chat` in a real terminal (tmux): a turn is answered, Ctrl-C during
# the prompt ends the chat with exit status 0, and /bye works too. Fails with the screen shown.
set -u
BIN=${SIZEUP_BIN:-build/sizeup}
FIX=${SIZEUP_FIXTURES:-../shared/fixtures}
MODEL="$FIX/models/stories260K.gguf"
S=sizeup-e2e-$$
fail() { echo "FAIL: $1"; tmux capture-pane -p -t "$S" 2>/dev/null | sed 's/^/  | /'; tmux kill-session -t "$S" 2>/dev/null; exit 1; }
wait_for() { # text, seconds
    for _ in $(seq 1 $(( $2 * 10 ))); do
        tmux capture-pane -p -t "$S" | grep -qF -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }

for ending in ctrl-c bye; do
    tmux new-session -d -s "$S" -x 100 -y 30 \
        "$BIN run -m $MODEL --chat --temp 0 -n 24 --backend cpu; echo EXIT-STATUS:\$?; sleep 30"
    wait_for ">>>" 10 || fail "no chat prompt ($ending)"
    tmux send-keys -t "$S" "Tell me a story" Enter
    wait_for "[sizeup] prompt" 20 || fail "no answer and stats line after a turn ($ending)"
    wait_for ">>>" 10 || fail "no prompt after the answer ($ending)"
    if [ $ending = ctrl-c ]; then
        tmux send-keys -t "$S" C-c
    else
        tmux send-keys -t "$S" "/bye" Enter
    fi
    wait_for "EXIT-STATUS:0" 10 || fail "chat did not end with status 0 after $ending"
    tmux kill-session -t "$S"
done
echo "chat_tmux: 2 passed, 0 failed"
