#!/usr/bin/env bash
# `sizeup chat` in a real terminal (tmux) with two fixture models on the CPU: a prompt typed once
# reaches both panes, both stream text with non-zero tokens/s and a memory figure, a resize keeps
# the conversation, Esc stops a long answer in every pane, /save writes a transcript with both
# answers, /quit exits 0 with `stty -a` unchanged and the cursor visible; and the line mode
# (--plain, and a pipe) writes no escape byte. Every wait is for text that was not on screen
# before the step. Fails with the screen shown.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M1="$FIX/models/stories260K.gguf"
M2="$FIX/models/babyllama-930K-F32.gguf"
e2e_tmp tui
e2e_tmux tui
export XDG_STATE_HOME="$T/state"  # history and log of this run only
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }
for f in "$M1" "$M2"; do [ -f "$f" ] || { echo "FAIL: fixture missing: $f (set SIZEUP_FIXTURES)"; exit 1; }; done

tmux new-session -d -s "$S" -x 160 -y 40 \
    "stty -a > $T/stty.before; XDG_STATE_HOME=$T/state $BIN chat $M1 $M2 --backend cpu --temp 0 -n 40 -c 8192; echo EXIT-STATUS:\$?; stty -a > $T/stty.after; sleep 60"

# both models load (each pane says completion mode: neither has a chat template)
wait_count "completion mode" 2 20 || fail "the two panes did not load"
wait_count "^all>" 1 5 || fail "no input prompt"

# one prompt, two answers, each with non-zero tokens/s and a memory figure
tmux send-keys -t "$S" "Once upon a time" Enter
wait_count "stop: token limit" 2 30 || fail "both panes did not finish an answer"
[ "$(count "Once upon a time")" -ge 2 ] || fail "the prompt is not in both panes"
[ "$(count "avg [1-9][0-9]*(\.[0-9])? t/s")" -ge 2 ] || fail "no non-zero tokens/s in both panes"
[ "$(count "mem [0-9.]+[KMG]\+")" -ge 2 ] || fail "no memory figure in both panes"
[ "$(count "named Lily")" -ge 2 ] || fail "the answers are not both on screen"

# a resize keeps the conversation and lays it out again
tmux resize-window -t "$S" -x 90 -y 30
sleep 1
[ "$(screen | wc -l)" -eq 30 ] || fail "the screen did not follow the resize"
[ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 90 ] || fail "lines wider than 90 columns after the resize"
[ "$(count "Once upon a time")" -ge 2 ] || fail "the conversation was lost in the resize"
tmux resize-window -t "$S" -x 160 -y 40
sleep 0.5

# Esc stops a long answer in every pane, keeping what was written
tmux send-keys -t "$S" "/set n_predict -1" Enter
wait_count "set n_predict -1" 2 10 || fail "/set did not reach both panes"
tmux send-keys -t "$S" "The little dog" Enter
wait_count "generating" 2 20 || fail "the long answers did not start"
sleep 0.5
tmux send-keys -t "$S" Escape
wait_count "stop: cancelled" 2 5 || fail "Esc did not stop both answers"

# /save: Markdown with every pane's answers and their figures; JSON too
tmux send-keys -t "$S" "/save $T/chat.md" Enter
wait_count "saved the transcript" 1 5 || fail "/save did not say it saved"
[ "$(grep -c '^## Pane' "$T/chat.md")" -eq 2 ] || fail "/save: not two panes in $T/chat.md"
[ "$(grep -c 'named Lily' "$T/chat.md")" -ge 2 ] || fail "/save: the answers are missing"
[ "$(grep -c '^_Figures: .*tokens/s' "$T/chat.md")" -ge 4 ] || fail "/save: figures missing"
tmux send-keys -t "$S" "/save $T/chat.json" Enter
sleep 1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['panes'])==2" "$T/chat.json" \
    || fail "/save FILE.json is not the JSON transcript"

# /quit: status 0, the terminal as it was, the cursor shown
tmux send-keys -t "$S" "/quit" Enter
wait_count "EXIT-STATUS:0" 1 10 || fail "/quit did not exit with status 0"
for _ in $(seq 1 20); do [ -s "$T/stty.after" ] && break; sleep 0.1; done
diff "$T/stty.before" "$T/stty.after" >/dev/null || fail "stty -a changed: $(diff "$T/stty.before" "$T/stty.after")"
[ "$(tmux display-message -p -t "$S" '#{cursor_flag}')" = 1 ] || fail "the cursor is hidden after exit"
tmux kill-session -t "$S"

# the line mode: typed at a terminal with --plain, output piped; and everything piped
tmux new-session -d -s "$S" -x 120 -y 30 \
    "$BIN chat --plain $M1 $M2 --backend cpu --temp 0 -n 20 | tee $T/plain.out; echo EXIT-STATUS:\$?; sleep 60"
wait_count "2 BabyLlama.*loaded" 1 20 || fail "--plain: the models did not load"
tmux send-keys -t "$S" "Once upon a time" Enter
wait_count "stop: token limit" 2 20 || fail "--plain: no answer with figures from both models"
tmux send-keys -t "$S" "/quit" Enter
wait_count "EXIT-STATUS:0" 1 10 || fail "--plain: /quit did not exit with status 0"
grep -q $'\033' "$T/plain.out" && fail "--plain wrote an escape byte"
printf 'Once upon a time\n' | "$BIN" chat "$M1" "$M2" --backend cpu --temp 0 -n 20 > "$T/pipe.out" \
    || fail "piped chat failed"
[ "$(grep -c 'stop: token limit' "$T/pipe.out")" -eq 2 ] || fail "piped chat: not two answers"
grep -q $'\033' "$T/pipe.out" && fail "piped chat wrote an escape byte"
echo "tui_tmux: passed"
