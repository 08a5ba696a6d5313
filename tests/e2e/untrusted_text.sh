#!/usr/bin/env bash
# Text from a model file or a server never reaches the terminal as control sequences. A hostile
# GGUF (tests/evil_gguf.py: general.name, the <s> piece and a tensor name holding ESC[2J, an
# OSC 52 clipboard write, a BEL-terminated OSC title, a C1 CSI (U+009B), a right-to-left
# override and an invalid byte) and tests/oaisrv.py's hostile models ("escapes", "nul",
# "err500c1", the /evil/v1 listing) go through every command that prints them: run with a
# served model (answer and [thinking], one-shot and interactive; on a terminal, through
# script(1)), its error messages and list --remote, compare's terminal table, tokenize,
# inspect --tensors and --json, and chat --plain's labels. Every output is checked for a raw
# ESC, BEL, C1 CSI (0xc2 0x9b) or U+202E.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
EVIL="$E2E_ROOT/tests/evil_gguf.py"
M="$FIX/models/stories260K.gguf"
QWEN="$FIX/vocab/ggml-vocab-qwen2.gguf"
e2e_tmp untrusted
fail() {
    echo "FAIL: $1"
    [ -s "$T/out" ] && od -c "$T/out" | head -30 | sed 's/^/  out| /'
    exit 1
}
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed (make deps)"; exit 1; }
command -v script >/dev/null || { echo "FAIL: script(1) is not installed (util-linux)"; exit 1; }
[ -f "$M" ] && [ -f "$QWEN" ] || { echo "FAIL: fixtures not found at $FIX (set SIZEUP_FIXTURES)"; exit 1; }

e2e_home
mkdir -p "$T/work"
export SIZEUP_BACKEND=cpu
unset SIZEUP_MODELS CURL_CA_BUNDLE OPENAI_API_KEY
e2e_oaisrv
U="http://127.0.0.1:$P"
cd "$T/work" || exit 1

hex() { printf "$1" | od -An -tx1 | tr -d ' \n'; }
HOSTILE='\033[2J\033]52;c;cHduZWQ=\007\302\23331m\342\200\256'
python3 "$EVIL" "$M" evil.gguf --name "$(hex "evil$HOSTILE\377")" \
    --piece 1="$(hex "\033]0;pwned\007<s>")" || fail "tests/evil_gguf.py (name, piece)"
python3 "$EVIL" "$M" evilt.gguf --tensor output_norm.weight="$(hex "output_norm$HOSTILE.weight")" ||
    fail "tests/evil_gguf.py (tensor)"

# $T/out has no raw ESC, BEL, C1 CSI or right-to-left override
clean() {
    LC_ALL=C grep -q $'\033\|\007\|\302\233\|\342\200\256' "$T/out" &&
        fail "$1: a control sequence reached the output raw"
    return 0
}
# run $@ on a terminal (script(1)); stdout and stderr both in $T/out
tty() { script -qec "$(printf '%q ' "$@")" /dev/null </dev/null >"$T/out" 2>&1; }

# (a) run with a served model on a terminal: the answer and [thinking] shown, not obeyed
tty "$BIN" run -m "$U/v1#escapes" --chat -p hi || fail "(a) exit $?"
clean "(a)"
grep -q 'Clear^\[\[2J copy ^\[\]52;c;cHduZWQ=^G' "$T/out" && grep -q 'c1 ^\[\[31m done.' "$T/out" &&
    grep -q '^\[thinking\] think ^\[\[31mred' "$T/out" || fail "(a) the text, made visible"
tty "$BIN" run -m "$U/v1#escapes" -p hi || fail "(a) completion exit $?"
clean "(a) completion"
ok

# (b) interactive --chat on a terminal: the same
printf 'hi\n/bye\n' >"$T/in"
script -qec "$(printf '%q ' "$BIN" run -m "$U/v1#escapes" --chat)" /dev/null <"$T/in" >"$T/out" 2>&1 ||
    fail "(b) exit $?"
grep -q 'c1 ^\[\[31m done.' "$T/out" || fail "(b) no answer"
# readline's own bracketed-paste switch around the prompt is the one sequence allowed
LC_ALL=C sed -i 's/\x1b\[?2004[hl]//g' "$T/out"
clean "(b)"
ok

# (c) into a pipe the text is written as sent, as run does for a local model
"$BIN" run -m "$U/v1#escapes" -p hi >"$T/out" 2>/dev/null || fail "(c) exit $?"
LC_ALL=C grep -q $'\033\[2J' "$T/out" || fail "(c) a pipe gets the answer as sent"
ok

# (d) messages quoting the server: the listing of a 404, a 500 body with C1, list --remote
"$BIN" run -m "$U/evil/v1#nonexist" -p hi >"$T/out" 2>&1 && fail "(d) a missing model succeeded"
clean "(d) model not served"
grep -q "it serves: good, evil?\[2J?31m?\]0;pwned?" "$T/out" || fail "(d) the listing"
"$BIN" run -m "$U/v1#err500c1" -p hi >"$T/out" 2>&1 && fail "(d) a 500 succeeded"
clean "(d) HTTP 500"
grep -q 'bad ?\[2J ?31m ?\]0;pwned? end' "$T/out" || fail "(d) the 500's words"
"$BIN" list --remote "$U/evil/v1" >"$T/out" 2>&1 || fail "(d) list exit $?"
clean "(d) list --remote"
grep -q '^evil?\[2J?31m?\]0;pwned?  ' "$T/out" || fail "(d) list --remote ids"
"$BIN" list --remote "$U/evil/v1" --json >"$T/out" 2>&1 || fail "(d) list --json exit $?"
clean "(d) list --remote --json"
ok

# (e) "\u0000" in the stream is valid JSON: the answer goes on without it
"$BIN" run -m "$U/v1#nul" --chat -p hi >"$T/out" 2>"$T/err" || fail "(e) exit $?: $(cat "$T/err")"
[ "$(cat "$T/out")" = "Hello world." ] || fail "(e) the answer"
ok

# (f) compare's terminal table: the model's name as the column header
tty "$BIN" compare evil.gguf "$M" -p hi -n 2 -r 1 || fail "(f) exit $?"
clean "(f)"
grep -q 'evil\[2J\]52;c;cHduZWQ=31m' "$T/out" || fail "(f) the cleaned name"
ok

# (g) tokenize: the vocabulary's <s> piece and the user's bytes (SPM and BPE) escaped
"$BIN" tokenize -m evil.gguf "$(printf 'a\033]0;X\007\302\233')" >"$T/out" 2>&1 || fail "(g) exit $?"
clean "(g) SPM"
grep -qx "      1 -> '\\\\x1b\]0;pwned\\\\x07<s>'" "$T/out" && grep -qx "     30 -> '\\\\x1b'" "$T/out" &&
    grep -qx "     10 -> '\\\\x07'" "$T/out" || fail "(g) SPM pieces escaped"
"$BIN" tokenize -m "$QWEN" "$(printf 'a\033]0;X\007 \342\200\256')" >"$T/out" 2>&1 || fail "(g) BPE exit $?"
clean "(g) BPE"
grep -qx "    215 -> '\\\\x1b'" "$T/out" && grep -qx "    195 -> '\\\\x07'" "$T/out" || fail "(g) BPE pieces escaped"
ok

# (h) inspect: tensor names escaped like the metadata; --json names lossy-decoded, not null
"$BIN" inspect evilt.gguf --tensors >"$T/out" 2>&1 || fail "(h) exit $?"
clean "(h) --tensors"
grep -q '^output_norm\\x1b\[2J\\x1b\]52;c;cHduZWQ=\\x07\\u009b31m\\u202e\.weight  F32' "$T/out" ||
    fail "(h) the escaped tensor name"
"$BIN" inspect evil.gguf >"$T/out" 2>&1 || fail "(h) card exit $?"
clean "(h) card"
"$BIN" inspect evil.gguf --json >"$T/out" 2>&1 || fail "(h) --json exit $?"
python3 - "$T/out" <<'EOF' || fail "(h) --json name"
import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
want = "evil\x1b[2J\x1b]52;c;cHduZWQ=\x07\x9b31m\u202e\ufffd"
assert j["name"] == want, repr(j["name"])
EOF
ok

# (i) chat --plain: the label carries the model's name, sanitized
printf 'hi\n' | "$BIN" chat --plain evil.gguf -n 2 >"$T/out" 2>&1 || fail "(i) exit $?"
clean "(i)"
grep -qF '[1 evil^[[2J^[]52;c;cHduZWQ=^G^[[31m<U+202E>'$'\xef\xbf\xbd'', completion: loaded]' "$T/out" ||
    fail "(i) the label"
ok

echo "untrusted_text.sh: $passed checks passed"
