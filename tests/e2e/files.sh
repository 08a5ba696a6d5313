#!/usr/bin/env bash
# What `quantize` and `gen-model` do to the files around their output: a symlink or a file of
# the user's at OUT.tmp is left alone (the write goes through a fresh O_EXCL temp file), two
# runs to one OUT give a valid file, OUT that is IN (by name, symlink or hard link) is refused,
# an existing OUT needs --force, a device / FIFO / folder, a missing or read-only folder is
# refused before any work, a 255-byte OUT name is written, a K-type
# quantization of rows that are not whole 256-value blocks falls back per tensor and labels the
# file with the type it really holds, and gen-model --seed changes the weights (and only the
# seed does). Every step prints PASS or FAIL; the script exits 1 when any step failed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
SRC="$FIX/models/babyllama-930K-F32.gguf" # rows of 128 and 352 values: not whole Q4_K blocks
[ -f "$SRC" ] || { echo "FAIL: fixture $SRC not found (set SIZEUP_FIXTURES)"; exit 1; }
e2e_tmp files
cd "$T"
failed=0
pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL: $1"
    failed=$((failed + 1))
    [ -s err ] && sed 's/^/  err| /' err | tail -n 5
    [ -s out ] && sed 's/^/  out| /' out | tail -n 5
    return 0
}
check() { # name, then a command that must succeed
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# sizeup with a time limit; never fails the script itself (the status is in $rc)
run() { rc=0; timeout 300 "$BIN" "$@" >out 2>err || rc=$?; }
valid_gguf() { timeout 60 "$BIN" inspect "$1" >/dev/null 2>&1; }
no_temp_left() { [ -z "$(find "$T" -name '*.gguf.??????.tmp')" ]; }
no_work_done() { ! grep -q '^\[ *1/' out; }

cp "$SRC" in.gguf
sha() { sha256sum "$1" | cut -d' ' -f1; }
IN_SHA=$(sha in.gguf)

# ---- 1. the temp file: never through a name someone else prepared ----
echo "precious, not ours" >victim
cp victim victim.orig
ln -s "$T/victim" out1.gguf.tmp
run quantize in.gguf out1.gguf Q8_0
check "1a quantize exits 0 with a symlink at OUT.tmp" [ "$rc" = 0 ]
check "1b the file the OUT.tmp symlink points at is unchanged" cmp -s victim victim.orig
check "1c OUT is a regular file, not a link" eval '[ -f out1.gguf ] && [ ! -L out1.gguf ]'
check "1d OUT is a valid GGUF" valid_gguf out1.gguf
check "1e the OUT.tmp symlink is still there" eval '[ -L out1.gguf.tmp ]'
echo "the user's own notes" >out2.gguf.tmp
cp out2.gguf.tmp notes.orig
run quantize in.gguf out2.gguf Q8_0
check "1f a user's file at OUT.tmp is kept intact" \
    eval '[ "$rc" = 0 ] && cmp -s out2.gguf.tmp notes.orig && valid_gguf out2.gguf'
check "1g no temp file is left behind" no_temp_left
# Two runs writing one OUT at once, three times over: each has its own temp file, so the
# survivor is a whole file, byte-identical to a lone run's (quantizing is deterministic).
cp out1.gguf lone.gguf
race_ok=1
for round in 1 2 3; do
    rm -f race.gguf
    timeout 300 "$BIN" quantize --force in.gguf race.gguf Q8_0 >race.a 2>&1 & a=$!
    timeout 300 "$BIN" quantize --force in.gguf race.gguf Q8_0 >race.b 2>&1 & b=$!
    ra=0; rb=0
    wait $a || ra=$?
    wait $b || rb=$?
    if [ $ra != 0 ] || [ $rb != 0 ] || ! cmp -s race.gguf lone.gguf; then
        race_ok=0
        echo "  round $round: exits $ra $rb"; tail -n 2 race.a race.b | sed 's/^/  | /'
    fi
done
check "1h two concurrent quantize --force to one OUT give a whole, valid file" [ $race_ok = 1 ]
check "1i no temp file is left after the concurrent runs" no_temp_left

# ---- 2. OUT must not be IN, must be a regular file, and is replaced only with --force ----
run quantize in.gguf in.gguf Q8_0
check "2a quantize IN IN is refused" eval '[ "$rc" != 0 ] && grep -q "is the input file" err'
check "2b ... and IN is unchanged" eval '[ "$(sha in.gguf)" = "$IN_SHA" ]'
restore_in() { cmp -s in.gguf "$SRC" || cp "$SRC" in.gguf; } # so one failure does not mask others
restore_in
ln -s "$T/in.gguf" link.gguf
run quantize --force in.gguf link.gguf Q8_0
check "2c OUT a symlink to IN is refused, even with --force" \
    eval '[ "$rc" != 0 ] && [ -L link.gguf ] && [ "$(sha in.gguf)" = "$IN_SHA" ]'
ln in.gguf hard.gguf
run quantize --force in.gguf hard.gguf Q8_0
check "2d OUT a hard link of IN is refused, even with --force" \
    eval '[ "$rc" != 0 ] && grep -q "is the input file" err && [ "$(sha in.gguf)" = "$IN_SHA" ]'
echo "an older result" >exists.gguf
cp exists.gguf exists.orig
run quantize in.gguf exists.gguf Q8_0
check "2e an existing OUT is refused without --force, before any work" \
    eval '[ "$rc" != 0 ] && grep -q -- "--force" err && cmp -s exists.gguf exists.orig && no_work_done'
run quantize --force in.gguf exists.gguf Q8_0
check "2f ... and replaced with --force" eval '[ "$rc" = 0 ] && cmp -s exists.gguf lone.gguf'
ln -s /dev/full full.gguf
run quantize --force in.gguf full.gguf Q8_0
check "2g OUT a symlink to /dev/full is refused before any work" \
    eval '[ "$rc" != 0 ] && [ -L full.gguf ] && grep -q "full.gguf is a device" err && no_work_done'
# Straight at /dev/full only once the symlink case was refused for being a device: a binary
# that writes through OUT.tmp and renames would replace the device itself when run as root.
if [ "$rc" != 0 ] && [ -L full.gguf ] && grep -q "full.gguf is a device" err; then
    run quantize --force in.gguf /dev/full Q8_0
    check "2h OUT /dev/full is refused before any work, naming it" \
        eval '[ "$rc" != 0 ] && grep -q "/dev/full is a device" err && no_work_done && [ -c /dev/full ]'
else
    fail "2h OUT /dev/full (not tried: the symlink case was not refused)"
fi
mkfifo pipe.gguf
run quantize --force in.gguf pipe.gguf Q8_0
check "2i OUT a FIFO is refused before any work" \
    eval '[ "$rc" != 0 ] && [ -p pipe.gguf ] && grep -q "pipe.gguf is a FIFO" err && no_work_done'
mkdir dir.gguf
run quantize --force in.gguf dir.gguf Q8_0
check "2j OUT a directory is refused before any work" \
    eval '[ "$rc" != 0 ] && [ -d dir.gguf ] && grep -q "dir.gguf is a directory" err && no_work_done'
run quantize in.gguf no/such/folder/x.gguf Q8_0
check "2k OUT in a missing folder is refused before any work" \
    eval '[ "$rc" != 0 ] && grep -q "no/such/folder" err && no_work_done'
# A folder OUT cannot be created in: said before the work, not after it (gen-model on a 1B
# shape takes minutes). Root ignores a mode of 555, so as root a read-only tmpfs is used.
mkdir ro
if [ "$(id -u)" = 0 ]; then
    mount -t tmpfs -o ro,size=64k tmpfs ro 2>/dev/null && ro_ok=1 || ro_ok=0
else
    chmod 555 ro && ro_ok=1
fi
if [ "$ro_ok" = 1 ]; then
    run quantize in.gguf ro/x.gguf Q8_0
    check "2m OUT in a read-only folder is refused before any work, naming the folder" \
        eval '[ "$rc" != 0 ] && grep -q "ro/x.gguf" err && no_work_done && [ ! -e ro/x.gguf ]'
    [ "$(id -u)" = 0 ] && umount ro
else
    echo "SKIP: 2m (root, and no read-only tmpfs could be mounted)"
fi
# The longest name a file may have: the temp name beside it must still fit.
long=$(printf 'n%.0s' $(seq 1 250)).gguf
run quantize in.gguf "$long" Q8_0
check "2n OUT with a 255-byte name is written" eval '[ "$rc" = 0 ] && valid_gguf "$long"'
rm -f "$long"
check "2l no temp file is left after the refusals" no_temp_left

restore_in

# ---- 3. K types on rows that are not whole 256-value blocks fall back, truthfully labelled ----
run quantize in.gguf q4k.gguf Q4_K
check "3a quantize to Q4_K on 128/352-value rows exits 0 and says it fell back" \
    eval '[ "$rc" = 0 ] && grep -q "fallback" out && ! grep -q "0 tensors converted" out'
timeout 60 "$BIN" inspect --json q4k.gguf >q4k.json 2>err || true
check "3b general.file_type is MOSTLY_Q5_0 (8), what the file holds" \
    eval 'grep -q "\"file_type\": 8," q4k.json && grep -q "\"file_type_name\": \"MOSTLY_Q5_0\"" q4k.json'
# 37 matrices (token_embd, output, 7 per layer x 5); the 11 vectors stay F32. Q4_K_M's mix (as
# llama-quantize chooses it, engine/quant_mix.c) wants Q6_K for output.weight and for attn_v and
# ffn_down of layers 2 and 4 of 5; rows that are not whole 256-value blocks make those Q8_0 and
# the other 32 Q5_0
check "3c 32 matrices are Q5_0, 5 Q8_0 (none left F32, none claimed Q4_K)" \
    eval 'grep -A1 "\"type\": \"Q5_0\"" q4k.json | grep -q "\"count\": 32," &&
          grep -A1 "\"type\": \"Q8_0\"" q4k.json | grep -q "\"count\": 5," &&
          grep -A1 "\"type\": \"F32\"" q4k.json | grep -q "\"count\": 11," &&
          ! grep -q "\"type\": \"Q4_K\"" q4k.json'
run run -m q4k.gguf -p "Once upon a time" -n 4 --temp 0 --backend cpu
check "3d the fallback file runs" [ "$rc" = 0 ]

# ---- 9. gen-model: --seed picks the weights; -o follows the same rules ----
gen() { run gen-model --shape smollm2-135m --type Q8_0 "$@"; }
gen --seed 2 -o s2.gguf
check "9a gen-model --seed 2 exits 0" [ "$rc" = 0 ]
gen --seed 3 -o s3.gguf
check "9b seeds 2 and 3 give different files" eval '[ "$rc" = 0 ] && ! cmp -s s2.gguf s3.gguf'
rm -f s3.gguf
gen --seed 2 -o s2b.gguf
check "9c the same seed gives the same file" eval '[ "$rc" = 0 ] && cmp -s s2.gguf s2b.gguf'
rm -f s2b.gguf
gen --seed 2 -o s2.gguf
check "9d gen-model -o an existing file is refused without --force" \
    eval '[ "$rc" != 0 ] && grep -q -- "--force" err'
gen --seed two -o s9.gguf
check "9e gen-model --seed two is refused" eval '[ "$rc" != 0 ] && [ ! -e s9.gguf ]'
rm -f s2.gguf

echo "files: $passed passed, $failed failed"
[ "$failed" = 0 ]
