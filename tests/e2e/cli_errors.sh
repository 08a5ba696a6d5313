#!/usr/bin/env bash
# What the command line does with bad inputs and a failing stdout (issue 18, points 7 to 9):
# every command that prints exits non-zero with a message naming stdout when stdout is
# /dev/full; the stats line of run has its own load figure and the first token's time does not
# include Vulkan start-up; -f refuses directories, endless input and NUL bytes; unknown chat
# templates, out-of-range integers (printed as integers) and device indices past the last
# device are errors; -n 0 generates nothing. Each step prints what it checks; the first failure
# ends the script with the command's output.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
ROOT=$E2E_ROOT
M="$FIX/models/stories260K.gguf"
e2e_tmp cli
[ -f "$M" ] || { echo "FAIL: fixture not found: $M (set SIZEUP_FIXTURES)"; exit 1; }
# list and catalog read the store and the catalog: an empty store of our own, the source catalog
export SIZEUP_MODELS="$T/store" SIZEUP_CATALOG="$ROOT/downloads/catalog.json"
unset SIZEUP_DEVICE
mkdir -p "$T/store"

fail() {
    echo "FAIL: $1"
    [ -s "$T/err" ] && sed 's/^/  err| /' "$T/err"
    [ -s "$T/out" ] && head -c 2000 "$T/out" | sed 's/^/  out| /'
    exit 1
}
step() { echo "--- $1"; }
ok() { passed=$((passed + 1)); }
# run CMD...: stdout to $T/out, stderr to $T/err, status in $rc; 120 s at most
run() {
    timeout 120 "$BIN" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -ne 124 ] || fail "timed out: sizeup $*"
}
# refused 'TEXT' CMD...: exits non-zero with TEXT on stderr
refused() {
    local want=$1
    shift
    run "$@"
    [ $rc -ne 0 ] || fail "sizeup $* exited 0; expected an error with: $want"
    grep -qF -- "$want" "$T/err" || fail "sizeup $*: stderr lacks: $want"
    ok
}

# ---- 7: a failed write to stdout is an error ----
full() { # CMD...: with stdout on /dev/full
    step "stdout on /dev/full: sizeup $* exits non-zero, naming stdout and ENOSPC"
    timeout 120 "$BIN" "$@" >/dev/full 2>"$T/err"
    rc=$?
    : >"$T/out"
    [ $rc -ne 0 ] || fail "sizeup $* > /dev/full exited 0"
    [ $rc -ne 124 ] || fail "sizeup $* > /dev/full timed out"
    grep -qF "cannot write to stdout: No space left on device" "$T/err" ||
        fail "sizeup $* > /dev/full: no message naming stdout and the error"
    ok
}
full run -m "$M" -p "Once upon a time" -n 400 --temp 0 --backend cpu
step "run stops generating once stdout fails (stop: cancelled, not the token limit)"
grep -qF "stop: cancelled" "$T/err" || fail "run went on generating into a failing stdout"
ok
full run -m "$M" -p "Once upon a time" -n 8 --temp 0 --backend cpu --ids
full logits -m "$M" --tokens 1,403,407 --backend cpu
full tokenize -m "$M" --ids "Hello world"
full list
full catalog
full bench -m "$M" -p 8 -n 4 -r 1 --backend cpu
full inspect "$M"
full inspect --json "$M"
full devices
full --help
# quantize prints its per-tensor lines itself (and flushes each): the error must still be named
full quantize "$M" "$T/q.gguf" Q8_0

step "a closed pipe (| head) stays quiet"
"$BIN" run -m "$M" -p "Once upon a time" -n 200 --temp 0 --backend cpu 2>"$T/err" | head -c 1 >/dev/null
grep -qF "cannot write" "$T/err" && fail "a closed pipe printed an error"
ok

# ---- 8: load is its own figure ----
stat_field() { # NAME: the number after NAME in the stats line of $T/err
    sed -n "s/.*\[sizeup\] .*$1 \([0-9.]*\).*/\1/p" "$T/err" | head -n1
}
step "run --backend cpu: the stats line has a load figure"
run run -m "$M" -p "Once upon a time" -n 4 --temp 0 --backend cpu
[ $rc -eq 0 ] || fail "run --backend cpu failed"
grep -qE '^\[sizeup\] prompt .* \| stop: [a-z ]+ \| load [0-9]+ ms \| memory: ' "$T/err" ||
    fail "no 'load N ms' figure of its own in the stats line"
ok
step "run --backend vulkan: load counts pipeline creation, the first token does not"
run run -m "$M" -p "Once upon a time" -n 4 --temp 0 --backend vulkan
[ $rc -eq 0 ] || fail "run --backend vulkan failed"
load=$(stat_field load)
ttft=$(stat_field "first token")
echo "    load $load ms, first token $ttft ms"
[ -n "$load" ] && [ -n "$ttft" ] || fail "could not read load and first token from the stats line"
# lavapipe takes seconds to build the pipelines; the first token of 5 prompt tokens on this
# 260K-parameter model takes milliseconds once they are built
awk -v l="$load" -v t="$ttft" 'BEGIN { exit !(l > 0 && t * 10 < l) }' ||
    fail "first token ($ttft ms) is not small against load ($load ms)"
ok

# ---- 9: inputs ----
step "-f DIR is refused"
refused "-f $T: is a directory" run -m "$M" -f "$T" -n 1 --backend cpu
step "-f /dev/zero is refused at 64 MiB instead of growing without bound"
refused "-f /dev/zero: larger than 64 MiB" run -m "$M" -f /dev/zero -n 1 --backend cpu
step "tokenize - on endless input is refused the same way"
timeout 120 "$BIN" tokenize -m "$M" --count - </dev/zero >"$T/out" 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "tokenize - </dev/zero: status $rc"
grep -qF "standard input -: larger than 64 MiB" "$T/err" || fail "tokenize - </dev/zero: no size message"
ok
step "a NUL byte in -f is refused with its offset"
printf 'Once upon\0 a time' >"$T/nul.txt"
refused "-f $T/nul.txt: NUL byte at offset 9" run -m "$M" -f "$T/nul.txt" -n 1 --backend cpu
step "--template nonsense is refused, listing the families"
refused "--template 'nonsense': unknown chat template; expected one of chatml, llama3," \
    run -m "$M" -p hi --chat --template nonsense -n 1 --backend cpu
step "--template llama3 is accepted"
run run -m "$M" -p hi --chat --template llama3 -n 1 --backend cpu
[ $rc -eq 0 ] || fail "--template llama3 refused"
ok
step "-n 0 generates nothing (the prompt is processed; stop: token limit)"
run run -m "$M" -p "Once upon a time" -n 0 --temp 0 --backend cpu
[ $rc -eq 0 ] || fail "-n 0 failed"
[ ! -s "$T/out" ] || fail "-n 0 printed generated text"
grep -qF "prompt 5 tokens" "$T/err" && grep -qF "generated 0 tokens" "$T/err" &&
    grep -qF "stop: token limit" "$T/err" || fail "-n 0: stats line does not say 5 prompt tokens, 0 generated"
grep -qF "first token - ms | generated 0 tokens, - tokens/s" "$T/err" ||
    fail "-n 0: the figures not measured (first token, generation speed) are not -"
ok
step "-n 0 --ids prints an empty array"
run run -m "$M" -p "Once upon a time" -n 0 --ids --backend cpu
[ "$(cat "$T/out")" = "[]" ] || fail "-n 0 --ids: expected []"
ok
step "-n -1 runs until a stop (end of turn or a full context), not a token limit"
run run -m "$M" -p "Once upon a time" -n -1 -c 64 --temp 0 --backend cpu
[ $rc -eq 0 ] || fail "-n -1 failed"
grep -qE "stop: (end of turn|context full)" "$T/err" || fail "-n -1 stopped for another reason"
ok
step "integer ranges are printed as integers"
refused "-c '99999999': expected an integer from 8 to 16777216" run -m "$M" -p hi -c 99999999
grep -q 'e+' "$T/err" && fail "a range printed in exponent form"
refused "-n '1.5': expected an integer from -1 to 1000000000" run -m "$M" -p hi -n 1.5
refused "--seed '-1': expected an integer from 0 to 18446744073709551615" run -m "$M" -p hi --seed -1
refused "-t 'four': expected an integer from 1 to 256" bench -m "$M" -t four
step "chat, compare and perplexity check their options the way run does (one shared parser)"
refused "-n '1.5': expected an integer from -1 to 1000000000" chat --plain "$M" -n 1.5
refused "--seed '-1': expected an integer from 0 to 18446744073709551615" chat --plain "$M" --seed -1
refused "--top-k '2.5': expected an integer from 0 to 2147483647" chat --plain "$M" --top-k 2.5
refused "-n '1.5': expected an integer from 1 to 1000000" compare "$M" "$M" -p hi -n 1.5
refused "--seed '18446744073709551616': expected an integer from 0 to" compare "$M" "$M" -p hi --seed 18446744073709551616
refused "--temp 'inf': expected a number from 0 to 100" compare "$M" "$M" -p hi --temp inf
refused "-t '0': expected an integer from 1 to 256" perplexity -m "$M" -f "$M" -t 0
step "logits -c is validated: a number in range, and room for the tokens"
refused "-c 'abc': expected an integer from 8 to 16777216" logits -m "$M" --tokens 1,2 -c abc
refused "-c '2': expected an integer from 8 to 16777216" logits -m "$M" --tokens 1,2 -c 2
refused "-c 9: the 10 tokens do not fit" logits -m "$M" --tokens 1,2,3,4,5,6,7,8,9,10 -c 9 --backend cpu
step "logits -c 16 with 3 tokens works"
run logits -m "$M" --tokens 1,403,407 -c 16 --backend cpu
[ $rc -eq 0 ] && grep -qF '"tokens": [1, 403, 407]' "$T/out" || fail "logits -c 16 failed"
ok
step "--device past the last device is an error naming the index and the count"
for cmd in run logits bench; do
    case $cmd in
    run) args=(-m "$M" -p hi -n 1) ;;
    logits) args=(-m "$M" --tokens 1) ;;
    bench) args=(-m "$M" -p 8 -n 1 -r 1) ;;
    esac
    refused "--device 99: device index 99 is out of range:" $cmd "${args[@]}" --device 99
    grep -qE "out of range: [0-9]+ devices? found" "$T/err" || fail "$cmd --device 99: no device count"
done
step "SIZEUP_DEVICE past the last device is an error too"
SIZEUP_DEVICE=99 timeout 120 "$BIN" run -m "$M" -p hi -n 1 >"$T/out" 2>"$T/err"
[ $? -ne 0 ] && grep -qF "SIZEUP_DEVICE=99: device index 99 is out of range" "$T/err" ||
    fail "SIZEUP_DEVICE=99 was not refused"
ok

step "gen-model: a wrong --shape or --type is named, with the valid values"
refused "--shape 'foo': not a known shape (smollm2-135m, qwen2.5-0.5b, llama3.2-1b)" \
    gen-model --shape foo --type Q4_0 -o "$T/g.gguf"
refused "--type 'Q4_1': gen-model writes Q8_0, Q4_0 or Q4_K_M" \
    gen-model --shape smollm2-135m --type Q4_1 -o "$T/g.gguf"
[ ! -e "$T/g.gguf" ] || fail "gen-model wrote a file after a bad option"
step "SIZEUP_BACKEND: a value --backend refuses is refused, not silently ignored"
SIZEUP_BACKEND=gpu refused "SIZEUP_BACKEND 'gpu': expected cpu or vulkan" chat --plain "$M" </dev/null

step "a bare word that is not a file nor a catalog name suggests the catalog names that start with it"
want="qwen2.5 is not a file or a catalog name; did you mean qwen2.5:0.5b, qwen2.5:1.5b"
refused "$want" pull qwen2.5
refused "$want" run -m qwen2.5 -p hi
refused "$want" inspect qwen2.5
refused "$want" chat --plain qwen2.5 </dev/null
refused "(sizeup catalog lists them)" pull qwen2.5
refused "qwen2.5:9b is not a file or a catalog name; did you mean qwen2.5:0.5b" pull qwen2.5:9b
refused "nothing-like-it: no such file" pull nothing-like-it

step "pull refuses served models (they run where they are served) and URL schemes other than http(s)"
refused "@nope is a model served over HTTP (URL#MODEL or @NAME): it cannot be pulled, it runs where it is served (sizeup run -m @nope)" pull @nope
refused "http://host/v1#model is a model served over HTTP" pull 'http://user:secret@host/v1#model'
! grep -qF secret "$T/err" || fail "pull of a served model showed the URL's password"
[ -z "$(ls -A "$T/store")" ] || fail "pull of a served model left something in the store"
refused "ftp://x/y.gguf: unsupported URL scheme ftp (sizeup downloads over http and https)" pull ftp://x/y.gguf
refused "unsupported URL scheme ftp" run -m ftp://x/y.gguf -p hi

step "SIZEUP_MODELS naming a device or a regular file: not a folder, rc 1 (not 'no models in')"
echo keep >"$T/plainfile"
for store in /dev/null "$T/plainfile"; do
    for cmd in list "pull qwen2.5:0.5b" "rm qwen2.5:0.5b"; do
        # shellcheck disable=SC2086
        SIZEUP_MODELS=$store refused "SIZEUP_MODELS=$store is not a folder" $cmd
    done
    SIZEUP_MODELS=$store refused "SIZEUP_MODELS=$store is not a folder" chat </dev/null
done
[ "$(cat "$T/plainfile")" = keep ] || fail "a store that is a file was changed"

step "SIZEUP_CATALOG naming a FIFO, /dev/zero or a folder: says what it is, without blocking or reading"
mkfifo "$T/fifo"
SIZEUP_CATALOG="$T/fifo" refused "catalog $T/fifo (SIZEUP_CATALOG) is not a regular file (it is a FIFO)" catalog
SIZEUP_CATALOG="$T/fifo" refused "is not a regular file (it is a FIFO)" pull qwen2.5:0.5b
SIZEUP_CATALOG=/dev/zero refused "catalog /dev/zero (SIZEUP_CATALOG) is not a regular file (it is a character device)" catalog
SIZEUP_CATALOG="$T" refused "is not a regular file (it is a folder)" catalog

step "chat's line mode: a model that cannot be opened exits 1 when it is the only one; others go on"
echo hi | timeout 120 "$BIN" chat /dev/zero >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -qF "not a regular file" "$T/out" || fail "chat /dev/zero (line mode) exited $rc"
ok
echo hi | timeout 120 "$BIN" chat --backend cpu -n 4 /dev/zero "$M" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && grep -qF "[2 " "$T/out" || fail "chat /dev/zero MODEL did not go on with MODEL ($rc)"
ok

echo "cli_errors: $passed checks passed"
