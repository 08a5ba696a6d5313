#!/usr/bin/env bash
# The chat TUI's figures and boxes, in a real terminal (tmux), a local fixture model beside
# served ones of tests/oaisrv.py (vLLM, llama-server, Ollama): nothing unmeasured is shown as a
# 0 (a pane before its answer, a served prompt speed), llama-server's own prompt speed is marked
# as the server's, /stats' columns line up; a pane swapped in while in fair mode claims no mode;
# the key that closes a box is not typed (a space would turn "/save" into a prompt for every
# model), a command with blanks before it is still one; /set for all panes holds for panes
# added or swapped in later, and they say so; the help box has no stray line break. Every check
# runs and reports (so one run shows each that fails); fails with the screens shown.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M1="$FIX/models/stories260K.gguf"
F16="$FIX/models/babyllama-930K-F16.gguf"
Q8="$FIX/models/babyllama-930K-Q8_0.gguf"
e2e_tmp figures
e2e_tmux figures
FAILED=0
# every check reports and the script goes on: fail counts rather than exits
fail() { echo "FAIL: $1"; screen | sed 's/^/  | /'; FAILED=$((FAILED + 1)); }
screen() { tmux capture-pane -p -t "$S" 2>/dev/null; }
keys() { tmux send-keys -t "$S" "$@"; }
close_box() { keys Escape; sleep 0.3; }  # an Esc with a key right behind it reads as Alt-key
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (make deps installs it)"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed (make deps)"; exit 1; }
for f in "$M1" "$F16" "$Q8"; do
    [ -f "$f" ] || { echo "FAIL: fixture missing: $f (set SIZEUP_FIXTURES)"; exit 1; }
done

e2e_home
e2e_oaisrv
U="http://127.0.0.1:$P"

tmux new-session -d -s "$S" -x 200 -y 40 \
    "$BIN chat $M1 '$U/v1#test-model' '$U/llamacpp/v1#test-model' '$U/ollama/v1#test-model' --backend cpu -n 30; echo EXIT-STATUS:\$?; sleep 60"
wait_count "Served by" 3 20 || fail "the served panes did not open"
wait_count "completion mode" 1 20 || fail "the local pane did not load"

# ---- before any answer: nothing measured, so no 0 figures and no mode ----
[ "$(count "avg 0\.0|0 tok|ttft 0 ms|prompt 0 t/s")" -eq 0 ] || fail "unmeasured figures shown as 0"
[ "$(count "\[conc\]")" -eq 0 ] || fail "a pane claims a mode before it measured anything"
keys "/stats" Enter
wait_count "measured in" 1 5 || fail "/stats did not open"
[ "$(screen | grep -cE "^ *[1-4] +idle +- +- +- +- +- ")" -eq 4 ] || fail "/stats: unmeasured figures are not -"
close_box

# ---- one answer each; /stats: a prompt speed nobody measured is -, the server's is marked ----
keys "Hi" Enter
wait_count "stop: " 4 30 || fail "not every pane answered"
keys "/stats" Enter
wait_count "measured in" 1 5 || fail "/stats did not open"
screen > "$T/stats"
grep -qE "^ *2 +idle +concurrent\+net +[0-9.]+ +- " "$T/stats" || fail "/stats: vLLM's prompt speed is not -"
grep -qE "^ *3 +idle +concurrent\+net +[0-9.]+ +2000\.0 srv " "$T/stats" ||
    fail "/stats: llama-server's prompt speed is not marked as the server's"
grep -qE "^ *4 +idle +concurrent\+net +~[0-9.]+ +- " "$T/stats" || fail "/stats: Ollama's prompt speed is not -"
grep -qE "^ *2 .*remote, KV 25% +test-model" "$T/stats" || fail "/stats: no KV cache use for remote memory"
# every row's model name starts in the header's "model" column
col=$(grep -m1 "measured in" "$T/stats" | awk '{print index($0, " model")}')
for name in llama test-model; do
    grep -E "^ *[1-4] +idle " "$T/stats" | grep -F " $name" | awk -v c="$col" -v n=" $name" \
        '{ if (index($0, n) != c) bad = 1 } END { exit bad }' ||
        fail "/stats: the model column is not aligned"
done

# ---- the key that closes a box is not typed; blanks before a command ----
keys " "
sleep 0.3
keys "/save $T/a.md"
sleep 0.2
keys Enter
wait_count "saved the transcript" 1 5 || fail "the key that closed /stats went into the line: /save was no command"
[ -f "$T/a.md" ] || fail "/save after closing /stats with a space wrote nothing"
[ "$(count "/save ")" -eq 0 ] || fail "the /save line was sent to the models as a prompt"
keys "   /save $T/b.md" Enter
sleep 1
[ -f "$T/b.md" ] || fail "a command with blanks before it was not run"

# ---- fair mode: a pane swapped in claims no mode until it answers ----
keys F3
wait_count "fair: one pane at a time" 1 5 || fail "F3 did not switch to fair mode"
keys "/model 4 $M1" Enter
wait_count "completion mode" 2 20 || fail "/model 4 did not open"
sleep 1
[ "$(count "\[conc\]")" -eq 3 ] || fail "the swapped-in pane shows a mode it did not measure in"

# ---- /set for all panes holds for panes added and swapped in later ----
keys "/close 4" Enter
sleep 0.5
keys "/set temp 0" Enter
keys "/set n_predict 7" Enter
wait_count "set n_predict 7" 3 10 || fail "/set did not reach the panes"
keys "/model 1 $F16" Enter
keys "/add $Q8" Enter
wait_count "completion mode" 2 20 || fail "the new local panes did not load"
[ "$(count "/set for all panes applies here too: temp 0,")" -ge 2 ] ||
    fail "a new pane does not say that /set applies to it"
keys "Once upon a time" Enter
wait_count "stop: " 4 30 || fail "not every pane answered"
for _ in $(seq 1 100); do [ "$(count "generating|waiting|prefill")" -eq 0 ] && break; sleep 0.1; done
keys "/stats" Enter
wait_count "measured in" 1 5 || fail "/stats did not open"
[ "$(screen | grep -cE "^ *[14] +idle +fair +[0-9.]+ +[0-9.]+ +[0-9]+ +7 ")" -eq 2 ] ||
    fail "panes opened after /set n_predict 7 did not make 7 tokens"
close_box

# ---- the help box: no stray line break ----
keys F1
wait_count "Any other key closes this box" 1 5 || fail "F1 did not open the help"
[ "$(count "A remote pane's times include the network")" -eq 1 ] || fail "the help has a stray line break"
close_box

# ---- 80x24, the most common terminal: /stats and the help fit or scroll, nothing is cut ----
keys "/stats" Enter
wait_count "measured in" 1 5 || fail "/stats did not open"
col=$(screen | grep -m1 "measured in" | awk '{print index($0, " model") + 1}')
screen | grep -E "^ *[1-4] +idle " | cut -c"$col"- | sed 's/ *$//' > "$T/names"
[ "$(wc -l < "$T/names")" -eq 4 ] || fail "/stats at 200 columns: not four rows"
close_box
tmux resize-window -t "$S" -x 80 -y 24
sleep 0.5
keys "/stats" Enter
wait_count "pane 1" 1 5 || fail "80x24: /stats did not open"
[ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 80 ] || fail "80x24: /stats wider than the terminal"
i=0
while IFS= read -r name; do
    i=$((i + 1))
    screen | grep -qF "pane $i: $name" || fail "80x24: /stats does not show pane $i's model ($name)"
done < "$T/names"
[ "$(count "memory: ([0-9.]+ [KMG]iB\+|remote)")" -eq 4 ] ||
    fail "80x24: /stats does not show every pane's memory"
close_box
keys F1
wait_count "Enter send \(to every pane" 1 5 || fail "80x24: the help's first line is not shown"
[ "$(count "more below")" -eq 1 ] || fail "80x24: the help does not say there is more below"
[ "$(count "Any other key closes this box")" -eq 0 ] || fail "80x24: the help's end fits? (the check is stale)"
keys End
wait_count "Any other key closes this box" 1 5 || fail "80x24: End did not show the help's last line"
[ "$(count "more above")" -eq 1 ] || fail "80x24: the help's end does not say there is more above"
keys Home
wait_count "Enter send \(to every pane" 1 5 || fail "80x24: Home did not go back to the first line"
keys PPage NPage NPage NPage
wait_count "Any other key closes this box" 1 5 || fail "80x24: PgDn did not reach the help's last line"
keys Up Up
sleep 0.3
[ "$(screen | grep -c "^all> *$")" -eq 1 ] || fail "80x24: a scrolling key went into the input line"
close_box
[ "$(count "more below|more above")" -eq 0 ] || fail "80x24: Esc did not close the help"
keys "/quit" Enter
wait_count "EXIT-STATUS:0" 1 10 || fail "/quit did not exit with status 0"
[ "$FAILED" -eq 0 ] || { echo "tui_figures: $FAILED checks failed"; exit 1; }
echo "tui_figures: passed"
