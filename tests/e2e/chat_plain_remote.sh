#!/usr/bin/env bash
# The chat line mode (--plain, and TERM=dumb with a pipe) with served models against
# tests/oaisrv.py on 127.0.0.1, beside a local fixture model in one session: each line goes to
# every model, each answer with its label and figures lines (memory: remote for a served one);
# the history and the sampling options sent; a cut stream keeps its partial answer, marked
# incomplete, and the session goes on; a refused connection, a 401 and a model not served are
# one line each for that model; escape sequences from the server never reach stdout raw; Ctrl-C
# stops a served answer at once and the next model still answers.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M="$FIX/models/stories260K.gguf"
e2e_tmp plainremote
fail() { echo "FAIL: $1"; e2e_show_outputs 20 40; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed (make deps)"; exit 1; }
[ -f "$M" ] || { echo "FAIL: fixtures not found at $FIX (set SIZEUP_FIXTURES)"; exit 1; }

e2e_home
mkdir -p "$T/work"
export SIZEUP_BACKEND=cpu
unset SIZEUP_MODELS CURL_CA_BUNDLE OPENAI_API_KEY
e2e_oaisrv --record "$T/record.jsonl"
U="http://127.0.0.1:$P/v1"
FREE=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cd "$T/work" || exit 1
# chat with the lines of $1 on stdin, the rest as arguments; stdout in $T/out, stderr in $T/err
chat() { local in=$1; shift; printf "$in" | "$BIN" chat "$@" >"$T/out" 2>"$T/err"; }
# the line after the first line that is exactly $1 (a label line: the answer under it)
after() { awk -v l="$1" 'f { print; exit } $0 == l { f = 1 }' "$T/out"; }
no_escapes() {
    LC_ALL=C grep -q $'\033\|\302\233' "$T/out" && fail "$1: an escape sequence reached stdout raw"
    return 0
}
REMOTE_FIGS='tokens, decode [0-9.]* tokens/s, prompt - tokens/s, first token [0-9]* ms, prompt 11 tokens, memory: remote (KV cache 25% in use), vLLM at 127.0.0.1:'"$P"', times include the network'

# (a) a served and a local model in one session, piped: two lines, each to both
chat 'Hi\nagain\n/quit\n' --plain "$U#test-model" "$M" -n 8 --temp 0.2 --seed 5 --top-k 7 \
    --system "be brief" || fail "(a) exit $?"
grep -qx "\[1 test-model, chat: loaded: remote, vLLM at 127.0.0.1:$P, times include the network\]" "$T/out" &&
    grep -qx '\[2 llama, completion: loaded\]' "$T/out" || fail "(a) loaded lines"
[ "$(grep -cx '\[1 test-model, chat\]' "$T/out")" = 2 ] &&
    [ "$(grep -cx 'Hello from the test server.' "$T/out")" = 2 ] &&
    [ "$(after '[1 test-model, chat]')" = "Hello from the test server." ] || fail "(a) remote answers"
[ "$(grep -cx "\[1 test-model, chat: 7 $REMOTE_FIGS, stop: end of answer\]" "$T/out")" = 2 ] ||
    fail "(a) remote figures lines"
[ "$(grep -cx '\[2 llama, completion\]' "$T/out")" = 2 ] &&
    [ "$(grep -c '^\[2 llama, completion: 8 tokens, decode .*, context [0-9]* of [0-9]*, memory weights .* + KV .* + scratch .*, cpu, stop: token limit\]$' "$T/out")" = 2 ] ||
    fail "(a) local label and figures lines"
local_a=$(after '[2 llama, completion]')
[ -n "$local_a" ] || fail "(a) no local answer"
no_escapes "(a)"
python3 - "$T/record.jsonl" <<'EOF' || fail "(a) requests"
import json, sys
posts = [json.loads(l)["body"] for l in open(sys.argv[1]) if '"POST"' in l]
assert len(posts) == 2, posts
b = posts[-1]
assert b["model"] == "test-model" and b["stream"] is True, b
assert b["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello from the test server."},
                         {"role": "user", "content": "again"}], b
assert abs(b["temperature"] - 0.2) < 1e-6 and b["seed"] == 5 and b["top_k"] == 7, b
assert b["max_tokens"] == 8 and "top_p" not in b and "min_p" not in b, b
EOF
# the local model answers as it does alone: the served one beside it changes nothing
chat 'Hi\n' --plain "$M" -n 8 --temp 0.2 --seed 5 --top-k 7 --system "be brief" || fail "(a) alone exit $?"
[ "$(after '[1 llama, completion]')" = "$local_a" ] || fail "(a) the local answer differs from the local model's alone: '$local_a'"
ok

# (b) TERM=dumb without --plain: the line mode by itself, the same lines
: >"$T/record.jsonl"
printf 'Hi\n/quit\n' | TERM=dumb "$BIN" chat "$M" "$U#test-model" -n 4 >"$T/out" 2>"$T/err" ||
    fail "(b) exit $?"
[ "$(after '[2 test-model, chat]')" = "Hello from the test server." ] &&
    grep -qx "\[2 test-model, chat: 7 $REMOTE_FIGS, stop: end of answer\]" "$T/out" &&
    grep -q '^\[1 llama, completion: 4 tokens, .*stop: token limit\]$' "$T/out" || fail "(b) answers"
no_escapes "(b)"
ok

# (c) a stream cut mid-answer: the partial answer printed and marked, an error line, and the
# next line still answered by both (the partial answer is in the history sent)
: >"$T/record.jsonl"
chat 'Hi\nagain\n/quit\n' --plain "$U#cut" "$U#test-model" || fail "(c) exit $?"
[ "$(grep -cx '\[1 cut, chat\]' "$T/out")" = 2 ] && [ "$(after '[1 cut, chat]')" = "Hello from the" ] ||
    fail "(c) partial answer"
[ "$(grep -c '^\[1 cut, chat: ~3 tokens, .*, stop: failed (incomplete)\]$' "$T/out")" = 2 ] ||
    fail "(c) figures not marked incomplete"
[ "$(grep -c "^\[1 cut, chat: error: the stream from 127.0.0.1:$P ended before the answer was complete.*\]$" "$T/out")" = 2 ] ||
    fail "(c) error line"
[ "$(grep -cx 'Hello from the test server.' "$T/out")" = 2 ] || fail "(c) the other model stopped"
python3 - "$T/record.jsonl" <<'EOF' || fail "(c) history after a cut"
import json, sys
posts = [json.loads(l)["body"] for l in open(sys.argv[1]) if '"POST"' in l]
cut = [b for b in posts if b["model"] == "cut"][-1]
assert [(m["role"], m["content"]) for m in cut["messages"]] == [
    ("user", "Hi"), ("assistant", "Hello from the"), ("user", "again")], cut
EOF
ok

# (d) failures, one line each for that model, the session going on: a refused connection (said
# when it opens and at each line), a 401, a model the endpoint does not serve
chat 'Hi\nagain\n/quit\n' --plain "http://127.0.0.1:$FREE/v1#m" "$U#err401" "$U#nope" "$U#test-model" ||
    fail "(d) exit $?"
[ "$(grep -c "^\[1 m, chat: error: cannot connect to 127.0.0.1:$FREE: .*\]$" "$T/out")" = 3 ] ||
    fail "(d) refused: not one line at the start and one per message"
grep -q "^\[1 m, chat: error: cannot connect to 127.0.0.1:$FREE: .*(each message tries again)\]$" "$T/out" ||
    fail "(d) refused at the start"
[ "$(grep -c "^\[2 err401, chat: error: HTTP 401 from 127.0.0.1:$P.*\]$" "$T/out")" = 2 ] || fail "(d) 401"
[ "$(grep -c "^\[3 nope, chat: error: model 'nope' is not served by 127.0.0.1:$P; it serves: test-model, reasoner, other/model-70B\]$" "$T/out")" = 2 ] ||
    fail "(d) 404"
grep -q '^\[[123] ' "$T/out" && [ "$(grep -c '^\[[123] [a-z0-9]*, chat\]$' "$T/out")" = 0 ] ||
    fail "(d) a failed model printed an answer"
[ "$(grep -cx 'Hello from the test server.' "$T/out")" = 2 ] || fail "(d) the served model stopped"
ok

# (e) server text with escape sequences (clear screen, OSC 52, a title, a C1 CSI) and reasoning:
# shown in caret notation, never raw; reasoning apart, as [thinking]
chat 'Hi\n/quit\n' --plain "$U#escapes" || fail "(e) exit $?"
no_escapes "(e)"
grep -qxF 'Clear^[[2J copy ^[]52;c;cHduZWQ=^G title ^[]0;pwned^[\ c1 ^[[31m done.' "$T/out" ||
    fail "(e) the answer, sanitized"
grep -qxF '[thinking] think ^[[31mred' "$T/out" || fail "(e) the reasoning, sanitized and apart"
ok

# (f) Ctrl-C stops a served answer within moments, keeps it, and the next model answers
printf 'Hi\n/quit\n' >"$T/in"
start=$(date +%s%N)
"$BIN" chat --plain "$U#slow" "$U#test-model" -n -1 <"$T/in" >"$T/out" 2>"$T/err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid || fail "(f) exit $?"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $ms -lt 3500 ] || fail "(f) took $ms ms: the slow answer (5 s) was not stopped"
after '[1 slow, chat]' | grep -q '^w0 w1 w2 w3' || fail "(f) partial answer"
grep -q '^\[1 slow, chat: .*stop: cancelled (incomplete)\]$' "$T/out" || fail "(f) figures"
grep -qx 'Hello from the test server.' "$T/out" || fail "(f) the next model did not answer"
ok

echo "chat_plain_remote e2e: $passed checks passed"
