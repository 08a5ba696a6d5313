#!/usr/bin/env bash
# Served models from the command line against tests/oaisrv.py on 127.0.0.1 (and 127.0.0.2, the
# "other host" of a redirect): `run -m URL#MODEL` as a completion, a chat answer with reasoning
# and an interactive chat; the stats line (remote, network-inclusive, "~" when counted); a cut
# stream keeps its partial answer; Ctrl-C stops within the answer and keeps it; `list --remote`
# for a URL and an @NAME of endpoints.conf; and the key: never in sizeup's arguments
# (/proc/PID/cmdline), outputs or any file it writes, never sent after a cross-host redirect.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
e2e_tmp remote
KEY="sk-e2e-5b0c1d9e8f7a6b5c4d3e-secret"
fail() { echo "FAIL: $1"; e2e_show_outputs; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed (make deps)"; exit 1; }

# Everything sizeup may write goes under $T: home, config, cache, working folder.
e2e_home
mkdir -p "$T/cfg/sizeup" "$T/work"
unset SIZEUP_MODELS CURL_CA_BUNDLE
export E2E_KEY="$KEY"
e2e_oaisrv --record "$T/record.jsonl" --key E2E_KEY
U="http://127.0.0.1:$P"
cd "$T/work" || exit 1
run() { "$BIN" "$@" >"$T/out" 2>"$T/err"; }

# (a) a completion: the answer alone on stdout, the stats line on stderr
run run -m "$U/v1#test-model" -p "Once" || fail "(a) exit $?"
[ "$(cat "$T/out")" = "Hello from the test server." ] || fail "(a) stdout"
grep -q '^\[sizeup\] prompt 11 tokens, - tokens/s | first token [0-9.]* ms | generated 7 tokens' "$T/err" &&
    grep -q 'memory: remote (KV cache 25% in use) | remote: vLLM at 127.0.0.1:'"$P"', times include the network' "$T/err" ||
    fail "(a) stats line"
ok

# (b) a chat answer from a reasoning model on llama-server: reasoning apart (stderr), the
# server's own timings in the line
run run -m "$U/llamacpp/v1#reasoner" --chat --system "be brief" -p "Hi" --temp 0.2 --seed 5 ||
    fail "(b) exit $?"
[ "$(cat "$T/out")" = "Hello from the test server." ] || fail "(b) stdout holds more than the answer"
grep -q '^\[thinking\] Let me think. The user greets.$' "$T/err" || fail "(b) reasoning"
grep -q "llama-server at .*server's own: prompt 11 tokens, 2000.0 tokens/s" "$T/err" ||
    fail "(b) server timings"
# its prompt speed is the server's figure, never in the field of those measured here
grep -q '^\[sizeup\] prompt 11 tokens, - tokens/s | first token' "$T/err" ||
    fail "(b) the server's prompt speed is shown as measured here"
python3 - "$T/record.jsonl" <<'EOF' || fail "(b) request body"
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1]) if '"POST"' in l]
b = posts[-1]["body"]
assert b["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}], b
assert b["stream"] is True and b["stream_options"] == {"include_usage": True}, b
assert abs(b["temperature"] - 0.2) < 1e-6 and b["seed"] == 5 and b["max_tokens"] == 256, b
EOF
ok

# (c) Ollama: no usage, no /metrics: a counted "~" figure, and no KV figure rather than a guess
run run -m "$U/ollama/v1#test-model" --chat -p "Hi" || fail "(c) exit $?"
grep -q 'generated ~6 tokens' "$T/err" && grep -q 'memory: remote | remote: Ollama' "$T/err" ||
    fail "(c) counted figures"
ok

# (d) interactive chat: two turns, the history sent back
printf 'Hi\nagain\n/bye\n' | "$BIN" run -m "$U/v1#test-model" --chat >"$T/out" 2>"$T/err" ||
    fail "(d) exit $?"
[ "$(grep -c 'Hello from the test server.' "$T/out")" = 2 ] || fail "(d) two answers"
python3 - "$T/record.jsonl" <<'EOF' || fail "(d) history not sent"
import json, sys
b = [json.loads(l) for l in open(sys.argv[1]) if '"POST"' in l][-1]["body"]
assert [m["role"] for m in b["messages"]] == ["user", "assistant", "user"], b
EOF
ok

# (e) a stream cut mid-answer: the partial answer stays, the line says so, exit 1
run run -m "$U/v1#cut" --chat -p "Hi" && fail "(e) exit 0"
[ "$(cat "$T/out")" = "Hello from the" ] || fail "(e) partial answer"
grep -q 'stop: failed (incomplete)' "$T/err" &&
    grep -q "^sizeup run: the stream from 127.0.0.1:$P ended before the answer was complete" "$T/err" ||
    fail "(e) message"
ok

# (f) the faults a user meets first, one line each
run run -m "$U/v1#nope" -p x && fail "(f) 404 exit 0"
grep -q "model 'nope' is not served by 127.0.0.1:$P; it serves: test-model, reasoner" "$T/err" ||
    fail "(f) 404 message"
FREE=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run run -m "http://127.0.0.1:$FREE/v1#m" -p x && fail "(f) refused exit 0"
grep -q "cannot connect to 127.0.0.1:$FREE" "$T/err" || fail "(f) refused message"
run run -m "$U/v1#test-model" && fail "(f) no prompt exit 0"
run inspect "$U/v1#test-model" && fail "(f) inspect of a served model exit 0"
ok

# (g) Ctrl-C stops the answer, which stays, and the stats say cancelled
"$BIN" run -m "$U/v1#slow" -p x -n -1 >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 1 50); do grep -q 'w3' "$T/out" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid || fail "(g) exit $?"
grep -q '^w0 w1 w2 w3' "$T/out" || fail "(g) partial answer"
grep -q 'stop: cancelled (incomplete)' "$T/err" || fail "(g) stats"
ok

# (h) list --remote: a URL, an @NAME of endpoints.conf, --json
run list --remote "$U/v1" || fail "(h) exit $?"
grep -q "3 models served by 127.0.0.1:$P (vLLM)" "$T/out" &&
    grep -q "^other/model-70B .*sizeup run -m $U/v1#other/model-70B$" "$T/out" || fail "(h) URL listing"
cat >"$T/cfg/sizeup/endpoints.conf" <<EOF
# test endpoints
[box]
url = $U/auth/v1
key_env = E2E_KEY
model = test-model

[lcpp]
url = $U/llamacpp/v1
EOF
run list --remote @box || fail "(h) @box exit $?"
grep -q "^reasoner .*sizeup run -m @box/reasoner$" "$T/out" || fail "(h) @NAME listing"
run list --remote @lcpp --json || fail "(h) json exit $?"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["server"]=="llama-server" and d["models"][0]["ref"]=="@lcpp/test-model", d' "$T/out" ||
    fail "(h) json"
run list --remote @nobox && fail "(h) unknown endpoint exit 0"
grep -q "no endpoint \[nobox\] in $T/cfg/sizeup/endpoints.conf (it has: @box, @lcpp)" "$T/err" ||
    fail "(h) unknown endpoint message"
ok

# (i) the key: the named endpoint works with it; a wrong one is refused by name, not shown
run run -m @box --chat -p "Hi" || fail "(i) exit $?"
[ "$(cat "$T/out")" = "Hello from the test server." ] || fail "(i) answer"
E2E_KEY=sk-wrong-key-0000000000 "$BIN" run -m @box -p x >"$T/out" 2>"$T/err" && fail "(i) wrong key exit 0"
grep -q 'HTTP 401 from 127.0.0.1:'"$P"': the key in \$E2E_KEY was refused' "$T/err" || fail "(i) 401 message"
grep -q 'sk-wrong-key' "$T/err" && fail "(i) the refused key is in the message"
# a cross-host redirect: followed without the key
: >"$T/record.jsonl"
run run -m @box/redirect --chat -p "Hi" && fail "(i) redirect exit 0"
grep -q 'HTTP 401 from 127.0.0.2:'"$P"', where 127.0.0.1:'"$P"' redirected: the key is not sent to another host' "$T/err" ||
    fail "(i) redirect message"
python3 - "$T/record.jsonl" "$KEY" <<'EOF' || fail "(i) the key went to 127.0.0.2"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert any(r["host"] == "127.0.0.2" for r in recs), recs
for r in recs:
    assert r["auth"] == ("Bearer " + sys.argv[2] if r["host"] == "127.0.0.1" else None), r
EOF
# while an answer streams: not in the arguments
"$BIN" run -m @box/slow -p x -n -1 >"$T/out.slow" 2>"$T/err.slow" &
pid=$!
sleep 0.5
tr '\0' ' ' </proc/$pid/cmdline >"$T/cmdline" || fail "(i) no /proc/$pid/cmdline"
grep -q 'run -m @box/slow' "$T/cmdline" || fail "(i) cmdline not read"
grep -qF "$KEY" "$T/cmdline" && fail "(i) the key is in /proc/PID/cmdline"
kill -INT $pid
wait $pid
# nowhere in what sizeup wrote: its outputs and every file under home, config, cache, work
mv "$T/record.jsonl" "$T/../sizeup-remote-record.$$" # the server's own record holds it by design
grep -rlF "$KEY" "$T" --exclude=port >"$T/leaks" 2>/dev/null
mv "$T/../sizeup-remote-record.$$" "$T/record.jsonl"
[ -s "$T/leaks" ] && fail "(i) the key is in: $(cat "$T/leaks")"
ok

echo "remote e2e: $passed checks passed"
