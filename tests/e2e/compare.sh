#!/usr/bin/env bash
# `sizeup compare` and `sizeup perplexity` from the command line: greedy answers equal
# `sizeup run`'s with the same prompt and flags, in fair and in concurrent mode; --ppl adds
# perplexity and bits per byte and says when the vocabularies differ; perplexity refuses KL
# across vocabularies and names the problem; --help everywhere. CPU backend, fixture models.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M="$FIX/models"
TEXT="$FIX/reference/ppl/story-flat.txt"
e2e_tmp compare
fail() { echo "FAIL: $1"; e2e_show_outputs 20 40; exit 1; }
check() { # name, command... ($rc: the exit status of the command before)
    local name=$1; shift
    if "$@" >/dev/null; then passed=$((passed + 1)); echo "PASS: $name"; else fail "$name"; fi
}
command -v jq >/dev/null || { echo "FAIL: jq is not installed"; exit 1; }
[ -d "$M" ] || { echo "FAIL: fixtures not found at $FIX (set SIZEUP_FIXTURES)"; exit 1; }
A="$M/stories260K.gguf" B="$M/babyllama-930K-F32.gguf" Q4="$M/babyllama-930K-Q4_0.gguf"
P="Once upon a time there was a little dog"

# ---- 1. greedy answers: compare (both modes) == run ----
for m in "$A" "$Q4"; do
    timeout 120 "$BIN" run -m "$m" -p "$P" -n 48 --temp 0 --backend cpu >"$T/run.$(basename "$m")" 2>"$T/err" ||
        fail "1 sizeup run -m $(basename "$m") exits 0"
done
for mode in fair concurrent; do
    timeout 300 "$BIN" compare "$A" "$Q4" -p "$P" -n 48 -r 2 --mode $mode --backend cpu -o json \
        >"$T/$mode.json" 2>"$T/err"
    check "1 compare --mode $mode exits 0 with JSON" jqe ".mode == \"$mode\"" "$T/$mode.json"
    for j in 0 1; do
        m=$A; [ $j = 1 ] && m=$Q4
        jq -j ".results[] | select(.model == $j) | .answer" "$T/$mode.json" >"$T/cmp.$j"
        check "1 $mode: $(basename "$m")'s answer equals sizeup run's" cmp -s "$T/cmp.$j" "$T/run.$(basename "$m")"
    done
    check "1 $mode: every speed is labelled $mode" \
        jqe "[.results[].mode] | all(. == \"$mode\")" "$T/$mode.json"
done

# ---- 2. --ppl: perplexity and bits per byte per model, the vocabulary note ----
timeout 300 "$BIN" compare "$A" "$B" -p "$P" -n 8 -r 1 --backend cpu --ppl "$TEXT" --ppl-ctx 128 \
    -o md >"$T/out" 2>"$T/err"
rc=$?
check "2 compare --ppl exits 0" [ $rc = 0 ]
check "2 the report has perplexity (c128) 4.80 and 2.28" \
    grep -Eq '^\| perplexity \(c128\) \| 4\.80[0-9]* ± [0-9.]+ \| 2\.28[0-9]* ± ' "$T/out"
check "2 and bits per byte" grep -q '^| bits per byte | 1.0774 | 1.1923 |' "$T/out"
check "2 it says the vocabularies differ" grep -q "The vocabularies differ" "$T/out"

# ---- 3. perplexity: numbers, refusals ----
timeout 120 "$BIN" perplexity -m "$Q4" -f "$TEXT" -c 64 --kl-base "$B" --backend cpu --json \
    >"$T/out" 2>"$T/err"
check "3 perplexity --json of Q4_0 c64: 2.4031 within 1%, KL > 0, agreement < 1" \
    jqe '(.ppl - 2.4031 | fabs) < 0.024 and .kl_mean > 0 and .top_agree < 1 and .n_scored == 1271' \
    "$T/out" >/dev/null
timeout 60 "$BIN" perplexity -m "$B" -f "$TEXT" --kl-base "$A" --backend cpu >"$T/out" 2>"$T/err"; rc=$?
check "3 --kl-base with another vocabulary is refused, saying so" \
    eval '[ $rc = 1 ] && grep -q "different vocabularies" "$T/err"'
timeout 60 "$BIN" perplexity -m "$A" -f "$T/nonexistent.txt" >"$T/out" 2>"$T/err"; rc=$?
check "3 a missing text file is named" eval '[ $rc = 1 ] && grep -q "nonexistent.txt" "$T/err"'
printf 'Once upon a time' >"$T/short.txt"
timeout 60 "$BIN" perplexity -m "$A" -f "$T/short.txt" -c 64 >"$T/out" 2>"$T/err"; rc=$?
check "3 a text shorter than one window is refused" eval '[ $rc = 1 ] && grep -q "fewer than one window" "$T/err"'

# ---- 5. the model's trained context: BabyLlama learnt 256 tokens, stories260K 2048 ----
timeout 120 "$BIN" perplexity -m "$B" -f "$TEXT" --backend cpu --json >"$T/out" 2>"$T/err"
check "5 perplexity's default window is capped at the trained 256, and says so" \
    eval 'jqe ".n_ctx == 256 and .n_ctx_train == 256 and .ctx_over_train == false and .ppl < 3" "$T/out" &&
          grep -q "windows of 256 tokens" "$T/err"'
timeout 120 "$BIN" perplexity -m "$B" -f "$TEXT" -c 512 --backend cpu --json >"$T/out" 2>"$T/err"
check "5 an explicit -c 512 past it is measured, with a warning and a field" \
    eval 'jqe ".n_ctx == 512 and .ctx_over_train == true" "$T/out" &&
          grep -q "warning: -c 512 is longer than the 256 tokens" "$T/err"'
timeout 300 "$BIN" compare "$B" "$Q4" "$A" -p hi -n 4 -r 1 --backend cpu --ppl "$TEXT" -o json \
    >"$T/out" 2>"$T/err"
check "5 compare --ppl: one window for all, the smallest trained context (256), said" \
    eval 'jqe ".ppl_ctx == 256 and .ppl_ctx_capped and ([.models[].perplexity.n_ctx] | all(. == 256))" "$T/out" &&
          grep -q "windows of 256 tokens for every model" "$T/err"'
check "5 and F32 ranks better than Q4_0" jqe '.models[0].perplexity.ppl < .models[1].perplexity.ppl' "$T/out"
timeout 300 "$BIN" compare "$B" "$Q4" -p hi -n 4 -r 1 --backend cpu --ppl "$TEXT" --ppl-ctx 512 -o md \
    >"$T/out" 2>"$T/err"
check "5 compare --ppl-ctx 512 past it: warning, and the report marks it" \
    eval 'grep -q "warning: --ppl-ctx 512 is longer" "$T/err" && grep -q "past its trained context" "$T/out"'
timeout 60 "$BIN" run -m "$B" -p hi -n 2 -c 1024 --backend cpu >"$T/out" 2>"$T/err"; rc=$?
check "5 run -c 1024 on a 256-token model runs, with a warning" \
    eval '[ $rc = 0 ] && grep -q "warning: -c 1024 is longer than the 256 tokens" "$T/err"'
timeout 60 "$BIN" run -m "$B" -p hi -n 2 --backend cpu >"$T/out" 2>"$T/err"
check "5 run without -c: no warning" eval '! grep -q warning "$T/err"'

# ---- 4. help and argument errors ----
for c in compare perplexity; do
    "$BIN" $c --help >"$T/out" 2>"$T/err"; rc=$?
    check "4 $c --help" eval '[ $rc = 0 ] && grep -q "usage: sizeup $c" "$T/out"'
done
"$BIN" compare "$A" -p x --mode both >"$T/out" 2>"$T/err"; rc=$?
check "4 --mode both is refused, naming the value" eval '[ $rc = 2 ] && grep -q "both" "$T/err"'
"$BIN" compare "$A" >"$T/out" 2>"$T/err"; rc=$?
check "4 compare without a prompt is refused" eval '[ $rc = 2 ] && grep -q "prompt" "$T/err"'

echo "compare: $passed passed, 0 failed"
