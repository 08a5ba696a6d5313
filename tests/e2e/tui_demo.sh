#!/usr/bin/env bash
# Issue 14's acceptance test: `sizeup` with NO arguments, an empty store (SIZEUP_MODELS in a
# temporary folder, HOME and the XDG folders there too) and no network (HF_ENDPOINT on a closed
# loopback port) opens the built-in demo in a real terminal (tmux): three panes, stories260K |
# BabyLlama F32 | BabyLlama Q4_0, and the banner. A prompt typed once streams in all three with
# non-zero tokens/s and a memory figure; a resize keeps the conversation; Esc stops a long
# answer (n_predict -1 with /set); /save writes a transcript with every pane's answer; /quit
# exits 0 with `stty -a` unchanged and the cursor visible. And `sizeup --plain` on the demo,
# piped to a file, writes no escape byte. Every wait is for text that was not on screen before
# the step (fresh markers). Fails with the screen shown.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
e2e_tmp tuidemo
e2e_tmux demo
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }

# Nothing of the user's: an empty store, a fresh home, no network, no backend forced.
mkdir -p "$T/home" "$T/store"
ENV="env -u SIZEUP_BACKEND -u SIZEUP_BUILTIN -u SIZEUP_DEVICE HOME=$T/home SIZEUP_MODELS=$T/store \
XDG_STATE_HOME=$T/home/state XDG_CONFIG_HOME=$T/home/config XDG_CACHE_HOME=$T/home/cache \
XDG_DATA_HOME=$T/home/data HF_ENDPOINT=http://127.0.0.1:9 HF_TOKEN= SIZEUP_CATALOG= \
http_proxy= https_proxy="
cd "$T" || exit 1   # nothing found through the working directory either

tmux new-session -d -s "$S" -x 160 -y 40 \
    "stty -a > $T/stty.before; $ENV $BIN; echo EXIT-STATUS:\$?; stty -a > $T/stty.after; sleep 60"

# the demo: three panes in completion mode, the banner, the three models in that order
wait_count "completion mode" 3 30 || fail "the demo's three panes did not load"
wait_count "^all>" 1 5 || fail "no input prompt"
wait_count "Built-in demo" 1 1 || fail "no demo banner"
wait_count "Get a real model with" 1 1 || fail "the banner does not say how to get a real model"
head=$(screen | grep -m1 -E '^.?1 ')
echo "$head" | grep -qE '1 [^│]*│ ?2 BabyLlama[^│]*│ ?3 BabyLlama' ||
    fail "the headers are not stories260K | BabyLlama | BabyLlama: $head"
[ "$(count '\| F32 32\.0 bpw')" -ge 2 ] || fail "no two F32 panes (stories260K, BabyLlama F32)"
[ "$(count '\| Q4_0 4\.[0-9] bpw')" -eq 1 ] || fail "no Q4_0 pane"
screen | head -1 | grep -q '| cpu: ' && ! screen | head -1 | grep -q vulkan ||
    fail "the demo does not run on the CPU (the fast backend for models this small)"
# the global bar: where the models run and its memory used of its total, where input goes
screen | head -1 | grep -qE '\| to all panes \|.*\| cpu: RSS [0-9.]+ [KMG]iB of [0-9.]+ [KMG]iB RAM' ||
    fail "the global bar does not show the device memory used of its total"
[ -s "$T/store/builtin/babyllama-930K-Q4_0.gguf" ] || fail "the Q4_0 was not made into the store"

# one prompt, three answers, each with non-zero tokens/s and a memory figure
tmux send-keys -t "$S" "/set n_predict 40" Enter
wait_count "set n_predict 40" 3 10 || fail "/set did not reach the three panes"
tmux send-keys -t "$S" "Once upon a time" Enter
wait_count " 40 tok" 3 60 || fail "the three panes did not stream a 40-token answer"
wait_count "(^|│)stop: " 3 10 || fail "the three panes did not finish their answers"
[ "$(count "Once upon a time")" -ge 3 ] || fail "the prompt is not in the three panes"
[ "$(count "avg [1-9][0-9]*(\.[0-9])? t/s")" -ge 3 ] || fail "no non-zero tokens/s in the three panes"
[ "$(count "mem [0-9.]+[KMG]\+")" -ge 3 ] || fail "no memory figure in the three panes"

# /regen replaces the last answer on screen: a new (30-token) answer where the old one was
tmux send-keys -t "$S" "/set n_predict 30" Enter
wait_count "set n_predict 30" 3 10 || fail "/set did not reach the three panes"
tmux send-keys -t "$S" "/regen" Enter
wait_count " 30 tok" 3 30 || fail "/regen did not answer again in the three panes"
wait_count "(^|│)stop: " 3 10 || fail "the three panes did not finish their new answers"
[ "$(count "Once upon a time")" -eq 3 ] || fail "/regen: the prompt is not once in each pane"
[ "$(count "regenerat")" -eq 0 ] || fail "/regen left a note instead of replacing the answer"

# a resize keeps the conversation and lays it out again
tmux resize-window -t "$S" -x 100 -y 30
sleep 1
[ "$(screen | wc -l)" -eq 30 ] || fail "the screen did not follow the resize"
[ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 100 ] || fail "lines wider than 100 columns after the resize"
[ "$(count "Once upon a time")" -ge 3 ] || fail "the conversation was lost in the resize"
tmux resize-window -t "$S" -x 160 -y 40
sleep 0.5

# Esc stops a long answer in every pane, keeping what was written
tmux send-keys -t "$S" "/set n_ctx 16384" Enter   # BabyLlama's own 256 would end it at once
wait_count "set n_ctx 16384" 3 10 || fail "/set n_ctx did not reach the three panes"
tmux send-keys -t "$S" "/set n_predict -1" Enter
wait_count "set n_predict -1" 3 10 || fail "/set n_predict did not reach the three panes"
tmux send-keys -t "$S" "The little dog" Enter
wait_count "generating" 3 20 || fail "the long answers did not start"
sleep 0.5
tmux send-keys -t "$S" Escape
wait_count "stop: cancelled" 3 5 || fail "Esc did not stop the three answers"

# /save: every pane's answers
tmux send-keys -t "$S" "/save $T/demo.md" Enter
wait_count "saved the transcript" 1 5 || fail "/save did not say it saved"
[ "$(grep -c '^## Pane' "$T/demo.md")" -eq 3 ] || fail "/save: not three panes in demo.md"
[ "$(grep -c '^\*\*llama:\*\* .' "$T/demo.md")" -eq 2 ] &&
    [ "$(grep -c '^\*\*BabyLlama 930K TinyStories:\*\* .' "$T/demo.md")" -eq 4 ] ||
    fail "/save: not two answers per pane in demo.md (the regenerated one replaced)"
[ "$(grep -c 'Q4_0' "$T/demo.md")" -ge 1 ] || fail "/save: the Q4_0 pane is not named"

# /quit: status 0, the terminal as it was, the cursor shown
tmux send-keys -t "$S" "/quit" Enter
wait_count "EXIT-STATUS:0" 1 10 || fail "/quit did not exit with status 0"
for _ in $(seq 1 20); do [ -s "$T/stty.after" ] && break; sleep 0.1; done
diff "$T/stty.before" "$T/stty.after" >/dev/null || fail "stty -a changed: $(diff "$T/stty.before" "$T/stty.after")"
[ "$(tmux display-message -p -t "$S" '#{cursor_flag}')" = 1 ] || fail "the cursor is hidden after exit"
tmux kill-session -t "$S"

# the line mode on the demo, piped to a file: labelled answers, no escape byte
printf 'Once upon a time\n' | $ENV "$BIN" --plain > "$T/plain.out" 2> "$T/plain.err" ||
    { cat "$T/plain.err"; fail "sizeup --plain on the demo failed"; }
[ "$(grep -c 'stop: ' "$T/plain.out")" -eq 3 ] || { cat "$T/plain.out"; fail "--plain: not three answers"; }
grep -q $'\033' "$T/plain.out" && fail "--plain on the demo wrote an escape byte"
echo "tui_demo: passed"
