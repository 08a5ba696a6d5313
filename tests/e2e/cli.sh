#!/usr/bin/env bash
# The commands and options the README documents, run as a user runs them, with their output
# parsed and checked (jq for JSON): --help of every command; bench in md, json and csv; gen-model;
# catalog; run's sampling flags and --seed, -f, --system, non-interactive --chat, the automatic
# backend choice and its reason on the stats line, --device; pull --quiet (from a real nginx on
# 127.0.0.1); tokenize --pieces --special. Small models and few tokens, so it stays quick.
# Fails with the reason and the output concerned.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M="$FIX/models/stories260K.gguf"
QWEN="$FIX/vocab/ggml-vocab-qwen2.gguf"
e2e_tmp cli
fail() { echo "FAIL: $1"; e2e_show_outputs 20 40; exit 1; }
# runs sizeup with stdout in $T/out and stderr in $T/err; fails unless it exits 0
su() { "$BIN" "$@" >"$T/out" 2>"$T/err" || fail "sizeup $* exited with $?"; }
# jq -e on $T/out: fails with the expression when it is not true
# jq -e exits 0 on empty input, so an empty output must fail on its own
want_json() {
    [ -s "$T/out" ] || fail "${2:-sizeup output}: empty, expected JSON where $1"
    jq -e "$1" "$T/out" >/dev/null || fail "${2:-sizeup output}: not true: $1"
}
stats() { grep '^\[sizeup\] prompt' "$T/err" | tail -1; }
for tool in jq nginx; do
    command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] ||
        { echo "FAIL: $tool is not installed (make deps installs it)"; exit 1; }
done
[ -f "$M" ] || { echo "FAIL: fixtures not found at $FIX (set SIZEUP_FIXTURES)"; exit 1; }

# ---- --help of every command: exit 0, a usage line naming the command ----
su --help
cmds=$(awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' "$T/out")
[ "$(echo "$cmds" | wc -w)" -ge 12 ] || fail "sizeup --help lists only: $cmds"
for c in $cmds; do
    su "$c" --help
    grep -q "^usage: sizeup $c" "$T/out" || fail "sizeup $c --help: no 'usage: sizeup $c' line"
done
ok

# ---- bench: -o json, md and csv describe the same run, with the model's real facts (its size
# is the bytes of its tensors, as llama-bench counts it) ----
su inspect --json "$M"
params=$(jq .n_params "$T/out")
size=$(jq .tensor_bytes "$T/out")
su bench -m "$M" -p 16 -n 8 -r 2 --backend cpu -o json -t 1
want_json 'length == 2' "bench -o json"
want_json ".[0].n_prompt == 16 and .[0].n_gen == 0 and .[1].n_prompt == 0 and .[1].n_gen == 8"
want_json '.[0].test == "pp16" and .[1].test == "tg8" and all(.[]; .n_threads == 1 and .device == "cpu")'
# model_type as llama-bench writes it, "ARCH SIZE FTYPE" (stories260K has no general.file_type:
# guessed from its weights, as llama.cpp guesses it); general.name goes in model_name
want_json "all(.[]; .model_size == $size and .model_n_params == $params and .backends == \"CPU\" and .model_type == \"llama 293K all F32\" and .model_name == \"llama\")"
want_json 'all(.[]; .avg_ns > 0 and .stddev_ns >= 0 and .stddev_ts >= 0 and (.avg_ns - (.samples_ns | add) / 2 | fabs) <= 1)'
want_json 'all(.[]; .model_filename | endswith(".gguf"))'
want_json 'all(.[]; (.samples_ts | length) == 2 and ((.samples_ts | add) / 2 - .avg_ts | fabs) < 1e-6 * .avg_ts)'
want_json 'all(.[]; (((.samples_ts[0] - .samples_ts[1]) | fabs) / (2 | sqrt) - .stddev_ts | fabs) <= 1e-6 * .avg_ts)'
want_json 'all(.[]; (.samples_ts | length) == 2 and (.samples_ns | length) == 2 and all(.samples_ts[]; . > 0))'
want_json 'all(.[]; .median_ts >= (.samples_ts | min) and .median_ts <= (.samples_ts | max))'
want_json 'all(.[]; .avg_ts == ((.samples_ts | add) / 2))'
want_json '.[1].weight_gbps > 0 and .[1].device_read_gbps > 0 and .[1].bandwidth_share > 0'
want_json '.[1].weight_bytes_per_token > 0 and .[1].weight_bytes_per_token <= .[1].model_size'
# llama-bench's conventions: -p 0 / -n 0 leave that test out; -r is the repeats
su bench -m "$M" -p 0 -n 4 -r 3 --backend cpu -o json
want_json 'length == 1 and .[0].n_prompt == 0 and .[0].n_gen == 4 and .[0].test == "tg4" and (.[0].samples_ts | length) == 3' "bench -p 0"
su bench -m "$M" -p 8,16 -n 0 -r 1 --backend cpu -o json -t 2
want_json 'length == 2 and all(.[]; .n_gen == 0) and .[0].n_prompt == 8 and .[1].n_prompt == 16 and (.[0].samples_ts | length) == 1' "bench -n 0"
"$BIN" bench -m "$M" -p 0 -n 0 >"$T/out" 2>"$T/err" && fail "bench -p 0 -n 0 ran"
grep -q 'no test left' "$T/err" || fail "bench -p 0 -n 0: no reason given"
su bench -m "$M" -p 16 -n 8 -r 2 --backend cpu -o md
grep -qx '| model | size | params | backend | test | t/s | weights GB/s | share of device read |' "$T/out" ||
    fail "bench -o md: no table header"
grep -Eq '^\| llama \| 1\.12 MiB \| 0\.29M \| cpu \| pp16 \| [0-9.]+ ± [0-9.]+ \|' "$T/out" ||
    fail "bench -o md: no pp16 row with the model's size and parameters"
grep -Eq '^\| llama \| 1\.12 MiB \| 0\.29M \| cpu \| tg8 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ \| [0-9]+% of [0-9.]+ \|' "$T/out" ||
    fail "bench -o md: no tg8 row with bandwidth and share"
su bench -m "$M" -p 16 -n 8 -r 2 --backend cpu -o csv
[ "$(head -1 "$T/out")" = "model_filename,model_type,model_size,backends,n_prompt,n_gen,avg_ts,stddev_ts,median_ts,weight_gbps,device_read_gbps" ] ||
    fail "bench -o csv: header"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "bench -o csv: want a header and 2 rows"
awk -F, -v size="$size" -v m="\"$M\"" 'NR > 1 && ($1 != m || $2 != "\"llama 293K all F32\"" || $3 != size || $4 != "\"CPU\"" || $7 <= 0) { bad = 1 }
    NR == 2 && ($5 != 16 || $6 != 0) { bad = 1 } NR == 3 && ($5 != 0 || $6 != 8 || $10 <= 0) { bad = 1 }
    END { exit bad }' "$T/out" || fail "bench -o csv: rows do not match the run"
ok

# ---- gen-model: the named shape and type, readable by inspect ----
su gen-model --shape smollm2-135m --type Q8_0 -o "$T/gen.gguf"
cat "$T/out" "$T/err" | grep -q "wrote $T/gen.gguf" || fail "gen-model: no 'wrote' line"
su inspect --json "$T/gen.gguf"
want_json '.architecture == "llama" and .n_layer == 30 and .n_embd == 576 and .n_head == 9 and .n_head_kv == 3 and .n_ff == 1536 and .vocab_size == 49152' "gen-model smollm2-135m"
want_json '.n_params > 130000000 and .n_params < 140000000 and .file_type_name == "MOSTLY_Q8_0"' "gen-model smollm2-135m"
rm -f "$T/gen.gguf"
ok

# ---- catalog: the table and --json list the same entries, with sizes and a fit verdict ----
su catalog --json
want_json '(.models | length) >= 5 and all(.models[]; (.name | length) > 0 and .default_quant != null)' "catalog --json"
want_json '.default_pair.small != null and .default_pair.large != null' "catalog --json"
jq -r '.models[].name' "$T/out" >"$T/names"
su catalog
head -1 "$T/out" | grep -q 'NAME.*FAMILY.*PARAMS.*QUANT.*SIZE.*LICENCE.*DOWNLOADED.*FITS' ||
    fail "catalog: no table header"
while read -r n; do
    grep -Eq "^$n +.* (yes|no|\?)\$" "$T/out" || fail "catalog: no row for '$n' ending in a fit verdict"
done <"$T/names"
# the fit is judged against the backend auto would pick: the host's memory when that is the CPU
"$BIN" devices --json >"$T/dev.json" 2>/dev/null
auto=$(jq -r '.auto_backend.backend // "cpu"' "$T/dev.json")
su catalog --json
want_json ".device.backend == \"$auto\"" "catalog --json: the fit's backend"
if [ "$auto" = cpu ]; then
    want_json '.device.name == "host memory" and .device.capacity > 0 and .device.total >= .device.capacity' "catalog --json (cpu)"
    jq -e --argjson cap "$(jq .device.capacity "$T/out")" 'all(.models[]; .fits == (.need_bytes <= $cap))' "$T/out" >/dev/null ||
        fail "catalog --json: a verdict disagrees with the host's available memory"
    su catalog
    grep -q '^fit: the CPU backend (.*), host memory .* available of .*; a model needs' "$T/out" ||
        fail "catalog: the fit line does not name the CPU backend and the host's memory"
    if jq -e '.devices | length > 0' "$T/dev.json" >/dev/null; then
        su catalog --json --device 0 # a device the user names is the one judged
        want_json '.device.backend == "vulkan" and .device.index == 0' "catalog --json --device 0"
    fi
fi
ok

# ---- run: -p and -f give the same text; sampling flags and --seed do what they say ----
run() { "$BIN" run -m "$M" --backend cpu "$@" 2>"$T/err" || fail "sizeup run $* exited with $?"; }
greedy=$(run -p 'Once upon a time' -n 24 --temp 0)
[ -n "$greedy" ] || fail "run: no text"
printf 'Once upon a time' >"$T/prompt.txt"
[ "$(run -f "$T/prompt.txt" -n 24 --temp 0)" = "$greedy" ] || fail "run -f FILE differs from -p"
[ "$(printf 'Once upon a time' | run -f - -n 24 --temp 0)" = "$greedy" ] || fail "run -f - differs from -p"
a=$(run -p 'Once upon a time' -n 32 --temp 1 --seed 7)
b=$(run -p 'Once upon a time' -n 32 --temp 1 --seed 7)
c=$(run -p 'Once upon a time' -n 32 --temp 1 --seed 8)
[ "$a" = "$b" ] || fail "run --seed 7 twice gave different texts"
[ "$a" != "$c" ] || fail "run --seed 7 and --seed 8 gave the same text at temp 1"
[ "$a" != "$(run -p 'Once upon a time' -n 32 --temp 0)" ] || fail "temp 1 gave the greedy text"
# each filter narrowed to one token makes sampling greedy, whatever the seed
[ "$(run -p 'Once upon a time' -n 24 --temp 1 --seed 8 --top-k 1)" = "$greedy" ] || fail "--top-k 1 is not greedy"
[ "$(run -p 'Once upon a time' -n 24 --temp 1 --seed 8 --top-k 0 --top-p 0.000001)" = "$greedy" ] ||
    fail "--top-p 0.000001 is not greedy"
[ "$(run -p 'Once upon a time' -n 24 --temp 1 --seed 8 --top-k 0 --top-p 1 --min-p 1)" = "$greedy" ] ||
    fail "--min-p 1 is not greedy"
long=$(run -p 'Once upon a time' -n 64 --temp 0)
[ "$(run -p 'Once upon a time' -n 64 --temp 0 --repeat-penalty 1.5)" != "$long" ] ||
    fail "--repeat-penalty 1.5 left the greedy text unchanged"
ok

# ---- non-interactive --chat and --system: the prompt is the chatml rendering (stories260K has
# no template of its own, which stderr says), token for token ----
count() { printf "$1" | "$BIN" tokenize -m "$M" --count -; }
run -p Hello --chat -n 4 --temp 0 >"$T/out"
grep -q 'using chatml' "$T/err" || fail "--chat: stderr does not say chatml is used"
n=$(count '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n')
stats | grep -q "prompt $n tokens" || fail "--chat: want a prompt of $n tokens: $(stats)"
run -p Hello --chat --system 'Be terse.' -n 4 --temp 0 >"$T/out"
n=$(count '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n')
stats | grep -q "prompt $n tokens" || fail "--chat --system: want a prompt of $n tokens: $(stats)"
ok

# ---- backend: the automatic choice is the faster one (the CPU engine when the device is a CPU
# driver such as lavapipe, else that device), says why, and a device the user names is used ----
su devices --json
ndev=$(jq '.devices | length' "$T/out")
chosen=$(jq -r '.devices[.chosen].name' "$T/out")
cpu_dev=$(jq -r '.devices[.chosen] | (.lavapipe or .cpu_device)' "$T/out")
dev0=$(jq -r '.devices[0].name' "$T/out")
if [ "$cpu_dev" = true ]; then
    want_json '.auto_backend.backend == "cpu" and (.auto_backend.reason | test("a CPU Vulkan driver; --backend vulkan to use it$"))'
else
    want_json '.auto_backend.backend == "vulkan"'
fi
"$BIN" run -m "$M" -p 'Once upon a time' -n 4 --temp 0 >"$T/out" 2>"$T/err" || fail "run (automatic backend) failed"
[ "$(cat "$T/out")" = "$(echo "$greedy" | head -c "$(wc -c <"$T/out")")" ] ||
    fail "run (automatic backend): text differs from the CPU's greedy text"
if [ "$cpu_dev" = true ]; then
    stats | grep -Eq '\| cpu \(faster than .*, a CPU Vulkan driver; --backend vulkan to use it\)$' ||
        fail "automatic backend on a CPU driver: stats line does not say the CPU runs it and why: $(stats)"
else
    stats | grep -qF "| vulkan: $chosen" || fail "automatic backend: stats line does not name '$chosen': $(stats)"
fi
[ "$ndev" -ge 1 ] || fail "no Vulkan device listed"
"$BIN" run -m "$M" -p 'Once' -n 4 --temp 0 --device 0 >/dev/null 2>"$T/err" || fail "run --device 0 failed"
stats | grep -qF "| vulkan: $dev0" || fail "run --device 0: stats line does not name '$dev0': $(stats)"
SIZEUP_DEVICE=0 "$BIN" run -m "$M" -p 'Once' -n 4 --temp 0 >/dev/null 2>"$T/err" || fail "run SIZEUP_DEVICE=0 failed"
stats | grep -qF "| vulkan: $dev0" || fail "run SIZEUP_DEVICE=0: stats line does not name '$dev0': $(stats)"
"$BIN" run -m "$M" -p 'Once' -n 4 --temp 0 --backend vulkan >/dev/null 2>"$T/err" || fail "run --backend vulkan failed"
stats | grep -qF "| vulkan: $chosen" || fail "run --backend vulkan: stats line does not name '$chosen': $(stats)"
"$BIN" run -m "$M" -p 'Once' -n 4 --temp 0 --backend cpu >/dev/null 2>"$T/err" || fail "run --backend cpu failed"
stats | grep -q '| cpu$' || fail "run --backend cpu: stats line does not end in '| cpu': $(stats)"
VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json \
    "$BIN" run -m "$M" -p 'Once' -n 4 --temp 0 >/dev/null 2>"$T/err" || fail "run without a Vulkan driver failed"
stats | grep -Eq '\| cpu \(Vulkan unavailable: .+\)$' ||
    fail "run without a Vulkan driver: stats line does not say why it runs on the CPU: $(stats)"
ok

# ---- tokenize --pieces, with and without --special ----
su tokenize -m "$QWEN" --pieces --special '<|im_start|>user hi'
[ "$(cat "$T/out")" = '["<|im_start|>","user"," hi"]' ] || fail "tokenize --pieces --special"
su tokenize -m "$QWEN" --pieces '<|im_start|>user hi'
[ "$(cat "$T/out")" = '["<","|","im","_start","|",">","user"," hi"]' ] || fail "tokenize --pieces (no --special)"
su tokenize -m "$QWEN" --ids --special '<|im_start|>'
[ "$(cat "$T/out")" = '[151644]' ] || fail "tokenize --ids --special"
ok

# ---- pull --quiet: one line on stdout, nothing on stderr, the file in the store ----
mkdir -p "$T/www/m" "$T/store" "$T/logs"
cp "$M" "$T/www/m/stories260K.gguf"
for _ in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 40000))
    cat >"$T/nginx.conf" <<EOF
daemon off;
master_process off;
pid $T/nginx.pid;
error_log stderr warn;
events { worker_connections 16; }
http {
  access_log off;
  client_body_temp_path $T/tmp_body; proxy_temp_path $T/tmp_proxy;
  fastcgi_temp_path $T/tmp_fcgi; uwsgi_temp_path $T/tmp_uwsgi; scgi_temp_path $T/tmp_scgi;
  server { listen 127.0.0.1:$PORT; root $T/www; }
}
EOF
    e2e_nginx "$PORT" && break
done
[ -n "$NGINX_PID" ] || { cat "$T/logs/nginx.log"; fail "nginx did not start"; }
URL="http://127.0.0.1:$PORT/m/stories260K.gguf"
SIZEUP_MODELS="$T/store" su pull --quiet "$URL"
[ ! -s "$T/err" ] || fail "pull --quiet wrote to stderr"
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "pull --quiet: want one line on stdout"
got=$(find "$T/store" -name stories260K.gguf)
[ -n "$got" ] && cmp -s "$got" "$M" || fail "pull --quiet: the stored file differs from the source"
grep -qF "$got" "$T/out" || fail "pull --quiet: the line does not name the stored file"
rm -rf "$T/store"/*
SIZEUP_MODELS="$T/store" su pull "$URL"
[ -s "$T/err" ] || fail "pull without --quiet wrote no progress to stderr (so --quiet is not shown to matter)"
ok

echo "cli: $passed passed, 0 failed"
