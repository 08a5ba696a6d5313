#!/usr/bin/env bash
# A model file truncated while sizeup has it mapped (its weights are read from the mapping, as
# llama.cpp does): the next read of a lost page raises SIGBUS. sizeup must die clearly, naming
# the file, with exit status 1 instead of a bare signal (135), and in the TUI with the terminal
# restored (stty -a, cursor, alternate screen, mouse reporting as before). Fails with the
# output or the screen shown.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M="$FIX/models/stories260K.gguf"
e2e_tmp trunc
e2e_tmux trunc
screen() { tmux capture-pane -p -J -t "$S"; }   # -J: wrapped lines joined
wait_for() { # regex, seconds
    for _ in $(seq 1 $(( $2 * 10 ))); do screen | grep -qE -- "$1" && return 0; sleep 0.1; done
    return 1
}
[ -f "$M" ] || { echo "FAIL: fixture missing: $M (set SIZEUP_FIXTURES)"; exit 1; }
want="sizeup: the model file $T/victim.gguf was truncated or changed while in use; stopping"

# ---- run --chat: the file is cut between two answers ----
cp "$M" "$T/victim.gguf"
(sleep 1; truncate -s 20000 "$T/victim.gguf"; echo "Once upon"; sleep 2; echo /bye) |
    "$BIN" run -m "$T/victim.gguf" --chat -n 8 --backend cpu > "$T/out" 2> "$T/err"
rc=$?
[ "$rc" -eq 1 ] || fail "run: exit status $rc, not 1: $(cat "$T/err")"
grep -qxF "$want" "$T/err" || fail "run: no clear message: $(cat "$T/err")"

# ---- the TUI: the terminal is restored, the message is on it ----
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }
cp "$M" "$T/victim.gguf"
tmux new-session -d -s "$S" -x 100 -y 30 \
    "stty -a > $T/stty.before; env XDG_STATE_HOME=$T/state $BIN chat $T/victim.gguf $M --backend cpu -n 8; echo EXIT-STATUS:\$?; stty -a > $T/stty.after; sleep 60"
wait_for "completion mode.*completion mode" 20 || fail "TUI: the panes did not load"
truncate -s 20000 "$T/victim.gguf"
tmux send-keys -t "$S" "Once upon a time" Enter
wait_for "EXIT-STATUS:1" 10 || fail "TUI: sizeup did not end with status 1"
screen | grep -qF "$want" || fail "TUI: the message is not on the terminal"
for _ in $(seq 1 30); do [ -s "$T/stty.after" ] && break; sleep 0.1; done
diff "$T/stty.before" "$T/stty.after" >/dev/null ||
    fail "TUI: stty -a changed: $(diff "$T/stty.before" "$T/stty.after")"
[ "$(tmux display-message -p -t "$S" '#{cursor_flag}')" = 1 ] || fail "TUI: the cursor is hidden"
[ "$(tmux display-message -p -t "$S" '#{alternate_on}')" = 0 ] || fail "TUI: still on the alternate screen"
[ "$(tmux display-message -p -t "$S" '#{mouse_any_flag}')" = 0 ] || fail "TUI: mouse reporting left on"
echo "truncated: passed"
