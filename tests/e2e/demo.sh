#!/usr/bin/env bash
# The built-in demo, offline: an empty temporary store (SIZEUP_MODELS) and HF_ENDPOINT on a
# closed loopback port, so any attempt to use the network fails. `run -m demo:babyllama` gives
# the same greedy text as the fixture file itself; demo:babyllama-q4 is made once into the store
# (a second run neither rewrites it nor replaces it: same inode and mtime), and a damaged one is
# made again; `catalog` lists the demo entries as built-in; `make install` puts the built-in
# files under share/sizeup/builtin, and the installed binary, copied away from the source tree,
# finds them. Fails with the reason.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
SRC=$(pwd)
e2e_tmp demo
fail() { echo "FAIL: $1"; e2e_show_outputs; exit 1; }
[ -f "$FIX/models/babyllama-930K-F32.gguf" ] ||
    { echo "FAIL: fixtures not found at $FIX (set SIZEUP_FIXTURES)"; exit 1; }
[ -f Makefile ] && [ -d downloads/builtin ] ||
    { echo "FAIL: run from the source tree (downloads/builtin not found in $SRC)"; exit 1; }

# Port 9 (discard) on loopback: nothing listens, so a connection is refused at once.
export SIZEUP_MODELS="$T/store" HF_ENDPOINT=http://127.0.0.1:9 HF_TOKEN= SIZEUP_CATALOG=
unset SIZEUP_BUILTIN
RUN=(run -p "Once upon a time" -n 32 --temp 0 --backend cpu)

# ---- run -m demo:babyllama == run -m the fixture ----
"$BIN" "${RUN[@]}" -m "$FIX/models/babyllama-930K-F32.gguf" >"$T/want" 2>"$T/err" ||
    fail "run on the fixture file failed"
"$BIN" "${RUN[@]}" -m demo:babyllama >"$T/out" 2>"$T/err" || fail "run -m demo:babyllama failed"
[ -s "$T/want" ] && cmp -s "$T/want" "$T/out" ||
    fail "demo:babyllama does not give the fixture's greedy text ($(cat "$T/want"))"
[ ! -e "$T/store/builtin" ] || fail "demo:babyllama wrote into the store"
"$BIN" "${RUN[@]}" -m demo:stories260k >"$T/out" 2>"$T/err" && [ -s "$T/out" ] ||
    fail "run -m demo:stories260k failed"
ok

# ---- demo:babyllama-q4: made once, then reused; a damaged one is made again ----
Q4="$T/store/builtin/babyllama-930K-Q4_0.gguf"
"$BIN" "${RUN[@]}" -m demo:babyllama-q4 >"$T/out" 2>"$T/err" || fail "run -m demo:babyllama-q4"
[ -s "$Q4" ] && [ -s "$Q4.json" ] || fail "no $Q4 with its record after the first run"
grep -q "^making demo:babyllama-q4" "$T/err" || fail "the first run did not say it made the file"
"$BIN" inspect "$Q4" >"$T/out" 2>"$T/err" || fail "inspect of the made Q4_0 failed"
grep -q "Q4_0" "$T/out" || fail "the made file is not Q4_0"
ls "$T/store/builtin" | grep -qv '^babyllama-930K-Q4_0\.gguf\(\.json\)\?$' &&
    fail "temporary files left in the store: $(ls -a "$T/store/builtin")"
before=$(stat -c '%i %Y %s' "$Q4")
sleep 1.1   # so that a rewrite would show in the mtime
"$BIN" "${RUN[@]}" -m demo:babyllama-q4 >"$T/out" 2>"$T/err" || fail "second run of the q4"
[ "$(stat -c '%i %Y %s' "$Q4")" = "$before" ] || fail "the second run rewrote $Q4"
grep -q "^making" "$T/err" && fail "the second run made the file again"
truncate -s 1000 "$Q4"
"$BIN" "${RUN[@]}" -m demo:babyllama-q4 >"$T/out" 2>"$T/err" || fail "run on a damaged q4"
grep -q "^making" "$T/err" || fail "a damaged Q4_0 was not made again"
[ "$(stat -c %s "$Q4")" -gt 100000 ] || fail "the damaged Q4_0 is still damaged"
ok

# ---- catalog and list ----
"$BIN" catalog >"$T/out" 2>"$T/err" || fail "catalog failed"
for n in demo:stories260k demo:babyllama demo:babyllama-q4; do
    grep -E "^$n .* built-in +(yes|no|\?)$" "$T/out" >/dev/null || fail "catalog does not list $n as built-in"
done
"$BIN" list >"$T/out" 2>"$T/err" || fail "list failed"
grep -q "babyllama-930K-Q4_0.gguf" "$T/out" || fail "list does not show the made Q4_0"
ok

# ---- make install, then the installed tree copied away from the source tree ----
nice make --no-print-directory -s install DESTDIR="$T/dest" PREFIX=/usr BUILD="$(dirname "$BIN")" \
    >"$T/out" 2>"$T/err" || fail "make install failed"
for f in stories260K.gguf babyllama-930K-F32.gguf README.md; do
    cmp -s "$T/dest/usr/share/sizeup/builtin/$f" "downloads/builtin/$f" ||
        fail "make install did not put builtin/$f under share/sizeup"
done
cp -a "$T/dest/usr" "$T/elsewhere"
rm -rf "$T/store"
(cd "$T" && "$T/elsewhere/bin/sizeup" "${RUN[@]}" -m demo:babyllama-q4 >"$T/out" 2>"$T/err") ||
    fail "the installed binary (copied to $T/elsewhere) cannot run demo:babyllama-q4"
grep -q "from the built-in $T/elsewhere/bin/../share/sizeup/builtin/" "$T/err" ||
    fail "the installed binary did not use its own share/sizeup/builtin"
(cd "$T" && "$T/elsewhere/bin/sizeup" "${RUN[@]}" -m demo:babyllama >"$T/out" 2>"$T/err") &&
    cmp -s "$T/want" "$T/out" || fail "the installed binary's demo:babyllama differs"
ok

echo "demo: $passed checks passed"
