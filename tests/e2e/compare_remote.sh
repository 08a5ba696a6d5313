#!/usr/bin/env bash
# `sizeup compare` with a served model next to a local fixture, against tests/oaisrv.py on
# 127.0.0.1: the remote answer is in the report; fair mode serialises the remote requests with
# the local model's (no two generation intervals overlap) while concurrent mode overlaps them
# (the slow model streams for 5 s); every report marks the remote figures network-inclusive and
# its memory "remote" (Markdown, JSON, CSV).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
A="$FIX/models/stories260K.gguf"
e2e_tmp cmpremote
fail() { echo "FAIL: $1"; e2e_show_outputs 20 60; exit 1; }
ok() { passed=$((passed + 1)); echo "PASS: $1"; }
command -v jq >/dev/null || { echo "FAIL: jq is not installed"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed (make deps)"; exit 1; }
[ -f "$A" ] || { echo "FAIL: fixture missing: $A (set SIZEUP_FIXTURES)"; exit 1; }
e2e_home
e2e_oaisrv
U="http://127.0.0.1:$P/v1"
cmp() { timeout 120 "$BIN" compare "$@" --backend cpu >"$T/out" 2>"$T/err"; }

# fair: the remote model is one more job, its requests never overlap the local model's
cmp "$A" "$U#test-model" -p "Once upon a time" -n 16 -r 3 --mode fair -o json || fail "fair exit $?"
jqe '.models[1].remote and .models[1].network_inclusive and .models[1].memory == "remote"' \
    "$T/out" >/dev/null || fail "fair: the remote model is not marked in the JSON"
jqe '.results[1].answer == "Hello from the test server." and .results[1].network_inclusive
       and (.results[0].network_inclusive | not)' "$T/out" >/dev/null ||
    fail "fair: the remote answer or its network-inclusive mark is missing"
jqe '[.spans[] | {s: .start_ms, e: .end_ms}] | sort_by(.s) as $v |
       [range(1; $v | length) | select($v[.].s < $v[. - 1].e)] | length == 0' "$T/out" >/dev/null ||
    fail "fair: two generations overlap"
ok "fair serialises the remote requests with the local model's"

# concurrent: the slow stream (5 s) overlaps the local model's answer (300 tokens, so that it
# still runs when a loaded machine starts the other thread late)
cmp "$A" "$U#slow" -p "Once upon a time" -n 300 -r 1 --mode concurrent -o json ||
    fail "concurrent exit $?"
jqe '[.spans[] | select(.model == 0)][0] as $a | [.spans[] | select(.model == 1)][0] as $b |
       $a.start_ms < $b.end_ms and $b.start_ms < $a.end_ms' "$T/out" >/dev/null ||
    fail "concurrent: the local and remote generations do not overlap"
ok "concurrent overlaps them"

# the Markdown and CSV reports mark the remote figures
cmp "$A" "$U#nousage" -p "Once upon a time" -n 16 -r 1 -o md || fail "md exit $?"
grep -q '^| memory: weights | [0-9.]* [KM]iB | remote |$' "$T/out" || fail "md: memory not remote"
grep -q '^| generation tokens/s (fair) | [0-9.]* ± [0-9.]* | [0-9.]* ± [0-9.]* (net) |$' "$T/out" ||
    fail "md: the remote speed is not marked (net)"
grep -q '^| tokens: prompt / generated | 5 / 16 | - / ~6 |$' "$T/out" ||
    fail "md: a counted token number is not marked ~, or the unknown prompt count is not -"
grep -q '^| prompt tokens/s (fair) | [0-9.]* ± [0-9.]* | - |$' "$T/out" ||
    fail "md: the remote prompt speed (not measurable here) is not -"
grep -q 'include the network' "$T/out" || fail "md: no sentence on remote figures"
ok "Markdown marks remote figures"
cmp "$A" "$U#test-model" -p "Once upon a time" -n 16 -r 1 -o csv || fail "csv exit $?"
[ "$(head -1 "$T/out" | tr ',' '\n' | tail -1)" = network_inclusive ] || fail "csv: no network_inclusive column"
[ "$(tail -1 "$T/out" | tr ',' '\n' | tail -1)" = true ] || fail "csv: the remote row is not network-inclusive"
ok "CSV marks remote rows"

# figures an Ollama-like server does not send are unknown, not 0: "-", an empty CSV field, null
V="http://127.0.0.1:$(cat "$T/port")"
cmp "$A" "$V/ollama/v1#test-model" -p "Once upon a time" -n 16 -r 1 -o csv || fail "ollama csv exit $?"
col() { head -1 "$T/out" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
row=$(tail -1 "$T/out")
for k in n_prompt prompt_tps_median prompt_tps_stddev server_prompt_tps_median; do
    [ -z "$(echo "$row" | cut -d, -f"$(col $k)")" ] || fail "csv: unknown $k is not empty: $row"
done
cmp "$A" "$V/ollama/v1#test-model" -p "Once upon a time" -n 16 -r 1 -o json || fail "ollama json exit $?"
jqe '.results[1] | .n_prompt == null and .prompt_tps == null and .server_prompt_tps == null
       and .gen_tps.median > 0' "$T/out" >/dev/null || fail "json: unknown figures are not null"
jqe '.results[0] | .n_prompt == 5 and .prompt_tps.median > 0' "$T/out" >/dev/null ||
    fail "json: the local model's figures are missing"
ok "unknown figures are -, empty or null, never 0"

# llama-server's own prompt speed is its figure, labelled so, never one measured here
cmp "$A" "$V/llamacpp/v1#test-model" -p "Once upon a time" -n 16 -r 1 -o md || fail "llamacpp md exit $?"
grep -q "^| prompt tokens/s (fair) | [0-9.]* ± [0-9.]* | - (server's own: 2000.0) |\$" "$T/out" ||
    fail "md: the server's prompt speed is not apart from ours"
grep -q '2000.0 ± ' "$T/out" && fail "md: the server's prompt speed is shown as a measurement"
cmp "$A" "$V/llamacpp/v1#test-model" -p "Once upon a time" -n 16 -r 1 -o json || fail "llamacpp json exit $?"
jqe '.results[1] | .prompt_tps == null and .server_prompt_tps.median == 2000' "$T/out" >/dev/null ||
    fail "json: the server's prompt speed is not in server_prompt_tps alone"
jqe '.results[1].stop == "end of answer"' "$T/out" >/dev/null ||
    fail "json: a served model's natural stop is not 'end of answer', as run says"
ok "the server's own prompt speed is kept apart; its stop reads as run's"
echo "compare_remote: $passed passed"
