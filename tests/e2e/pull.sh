#!/usr/bin/env bash
# Model downloads from the command line against a real nginx on 127.0.0.1 that imitates
# Hugging Face (a file listing at /api/models/OWNER/REPO/tree/main, resolve URLs that redirect
# to storage): `sizeup pull` piped (plain lines, no \r) and on a terminal (a bar, in tmux),
# list / rm, inspect of a remote file from its header alone, run -m with a reference (from the
# store, and pulled on demand), the offline message, Ctrl-C then resume, split models, and HTTPS
# with a self-signed CA (--cacert, CURL_CA_BUNDLE). Every pulled file
# is compared byte for byte with its source. Fails with the reason (and the screen, for tmux).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M="$FIX/models"
e2e_tmp pull
e2e_tmux pull
fail() {
    echo "FAIL: $1"
    e2e_show_outputs
    tmux capture-pane -p -t "$S" 2>/dev/null | sed 's/^/  tty| /'
    exit 1
}
for tool in nginx tmux sha256sum; do
    command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] ||
        { echo "FAIL: $tool is not installed (make deps installs it)"; exit 1; }
done
[ -d "$M" ] || { echo "FAIL: fixtures not found at $FIX (set SIZEUP_FIXTURES)"; exit 1; }

# ---- the server: test/tiny (a listing and three quants), test/slow (one 8 MiB file) ----
W="$T/www"
mkdir -p "$W/storage/test/tiny" "$T/store" "$T/logs"
cp "$M/tiny/llama-Q8_0.gguf" "$W/storage/test/tiny/tiny-Q8_0.gguf"
cp "$M/tiny/llama-Q4_K_M.gguf" "$W/storage/test/tiny/tiny-Q4_K_M.gguf"
cp "$M/tiny/llama-F16.gguf" "$W/storage/test/tiny/tiny-F16.gguf"
# pull checks bytes and the GGUF magic, not the GGUF structure
{ printf GGUF; head -c 8388604 /dev/urandom; } >"$W/big.gguf"
# a split quant (two parts; pull checks bytes and the magic, which every part of a real split
# has, so halves of one file with the magic in front of the second will do)
Q2="$M/tiny/llama-Q2_K.gguf"
half=$(($(stat -c %s "$Q2") / 2))
head -c "$half" "$Q2" >"$W/storage/test/tiny/tiny-Q2_K-00001-of-00002.gguf"
{ printf GGUF; tail -c +"$((half + 1))" "$Q2"; } >"$W/storage/test/tiny/tiny-Q2_K-00002-of-00002.gguf"
{
    echo '['
    sep=
    for f in "$W"/storage/test/tiny/*.gguf; do
        sha=$(sha256sum "$f" | cut -d' ' -f1)
        size=$(stat -c %s "$f")
        printf '%s{"type":"file","path":"%s","size":%s,"lfs":{"oid":"%s","size":%s}}\n' \
            "$sep" "$(basename "$f")" "$size" "$sha" "$size"
        sep=,
    done
    echo ']'
} >"$W/tree.json"
BIG_SHA=$(sha256sum "$W/big.gguf" | cut -d' ' -f1)
# TLS: a fresh CA and a certificate for 127.0.0.1 signed by it
( cd "$T" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
      -subj /CN=sizeup-test-CA &&
  openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 &&
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >srv.ext &&
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem \
      -days 2 -extfile srv.ext ) >"$T/logs/openssl.log" 2>&1 ||
    { cat "$T/logs/openssl.log"; echo "FAIL: could not make the test certificates"; exit 1; }

start_nginx() {
    PORT=$((20000 + RANDOM % 40000))
    TPORT=$((PORT + 1))
    cat >"$T/nginx.conf" <<EOF
daemon off;
master_process off;
pid $T/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path $T/tmp_body; proxy_temp_path $T/tmp_proxy;
  fastcgi_temp_path $T/tmp_fcgi; uwsgi_temp_path $T/tmp_uwsgi; scgi_temp_path $T/tmp_scgi;
  server {
    listen 127.0.0.1:$PORT;
    root $W;
    absolute_redirect off;
    location = /api/models/test/tiny/tree/main {
      default_type application/json;
      try_files /tree.json =404;
    }
    location ~ ^/test/tiny/resolve/main/(.+)\$ { return 302 /storage/test/tiny/\$1; }
    # slow enough to watch a bar and to interrupt; "fast" lifts the limit for the resume
    location = /storage/test/tiny/tiny-F16.gguf { limit_rate 1m; }
    # no validator at all: no ETag, no Last-Modified (SSI drops both), no known checksum
    location = /noval/big.gguf {
      limit_rate 200k; etag off; ssi on; ssi_types *;
      rewrite ^ /big.gguf break;
    }
    location = /test/slow/resolve/main/big.gguf {
      set \$limit_rate 200k;
      if (-f $W/fast) { set \$limit_rate 0; }
      add_header X-Linked-Etag '"$BIG_SHA"';
      rewrite ^ /big.gguf break;
    }
  }
  server {
    listen 127.0.0.1:$TPORT ssl;
    ssl_certificate $T/srv.pem;
    ssl_certificate_key $T/srv.key;
    root $W;
  }
}
EOF
    e2e_nginx "$PORT"
}
for _ in 1 2 3 4 5; do start_nginx && break; done
[ -n "$NGINX_PID" ] || { cat "$T/logs/nginx.log"; echo "FAIL: nginx did not start"; exit 1; }

export HF_ENDPOINT="http://127.0.0.1:$PORT" SIZEUP_MODELS="$T/store"
unset HF_TOKEN CURL_CA_BUNDLE SIZEUP_CATALOG
STORED="$T/store/test/tiny"
# A tmux server already running (another test's) would hand its own environment to new
# sessions, so the settings go on the command line.
TENV=$(printf '%q ' "HF_ENDPOINT=$HF_ENDPOINT" "SIZEUP_MODELS=$SIZEUP_MODELS" \
    "ASAN_OPTIONS=${ASAN_OPTIONS:-}" "UBSAN_OPTIONS=${UBSAN_OPTIONS:-}" \
    "LSAN_OPTIONS=${LSAN_OPTIONS:-}")
in_tmux() { # command line, run in a 100x10 terminal; its exit status is shown after it
    tmux new-session -d -s "$S" -x 100 -y 10 \
        "env -u HF_TOKEN -u CURL_CA_BUNDLE -u SIZEUP_CATALOG $TENV $1; echo EXIT-STATUS:\$?;
         sleep 30"
}

# (a) piped: plain lines on stderr, no carriage returns, the path and verification on stdout
"$BIN" pull hf.co/test/tiny:Q8_0 >"$T/out" 2>"$T/err" || fail "(a) pull exited $?"
grep -q $'\r' "$T/err" && fail "(a) a carriage return in piped progress"
grep -q '^pulling hf.co/test/tiny:Q8_0: tiny-Q8_0.gguf (1.48 MiB) into ' "$T/err" ||
    fail "(a) no 'pulling ...' line"
grep -q '^tiny-Q8_0.gguf: 100% (1.48 MiB of 1.48 MiB), done$' "$T/err" ||
    fail "(a) no final progress line"
grep -q "^$STORED/tiny-Q8_0.gguf (1.48 MiB, verified sha256 [0-9a-f]\{64\})\$" "$T/out" ||
    fail "(a) no final line with the path and sha256"
cmp -s "$STORED/tiny-Q8_0.gguf" "$W/storage/test/tiny/tiny-Q8_0.gguf" || fail "(a) file differs"
ok

# (e) run -m REF from the store: no network needed (the endpoint now points nowhere)
HF_ENDPOINT=http://127.0.0.1:1 "$BIN" run -m hf.co/test/tiny:Q8_0 -p hello -n 4 --temp 0 \
    --backend cpu >"$T/out" 2>"$T/err" || fail "(e) run -m REF from the store exited $?"
grep -q '^\[sizeup\] prompt' "$T/err" || fail "(e) no stats line from run"
grep -q pulling "$T/err" && fail "(e) run pulled a model that is in the store"
ok

# (c) list shows it; rm removes it and says so; list no longer shows it
"$BIN" list >"$T/out" 2>"$T/err" || fail "(c) list exited $?"
grep -q "^test/tiny  Q8_0 .* 1.48 MiB .*just now .*$STORED/tiny-Q8_0.gguf\$" "$T/out" ||
    fail "(c) list does not show the model"
"$BIN" list --json >"$T/out" 2>"$T/err" || fail "(c) list --json exited $?"
grep -q '"quant": "Q8_0"' "$T/out" || fail "(c) list --json lacks the model"
"$BIN" rm hf.co/test/tiny:Q8_0 >"$T/out" 2>"$T/err" || fail "(c) rm exited $?"
grep -q "^removed $STORED/tiny-Q8_0.gguf\$" "$T/out" || fail "(c) rm did not say what it removed"
grep -q '1 model file removed, 1.48 MiB freed' "$T/out" || fail "(c) rm did not say what it freed"
[ -e "$STORED/tiny-Q8_0.gguf" ] && fail "(c) the file is still there"
"$BIN" list >"$T/out" 2>"$T/err" || fail "(c) list after rm exited $?"
grep -q 'tiny-Q8_0' "$T/out" && fail "(c) list still shows the removed model"
"$BIN" rm hf.co/test/tiny:Q8_0 >"$T/out" 2>"$T/err" && fail "(c) rm of nothing exited 0"
ok

# (d) inspect a remote file: the same card as for the local copy, from the header alone
"$BIN" inspect hf.co/test/tiny/tiny-Q4_K_M.gguf >"$T/out" 2>"$T/err" || fail "(d) inspect exited $?"
"$BIN" inspect "$M/tiny/llama-Q4_K_M.gguf" >"$T/local" 2>/dev/null ||
    fail "(d) local inspect failed"
for key in format architecture parameters weights layers vocabulary total; do
    diff <(grep "^$key:" "$T/local") <(grep "^$key:" "$T/out") >/dev/null ||
        fail "(d) '$key' differs from the local file's card"
done
# the fit is judged for the backend auto would pick: the host's memory where that is the CPU
if [ "$("$BIN" devices --json 2>/dev/null | jq -r '.auto_backend.backend // "cpu"')" = cpu ]; then
    fit="fits the CPU backend's .* available: yes"
else
    fit='\(fits device [0-9]* (.*): \(yes\|no\)\|fit: unknown (.*)\)'
fi
grep -q "^remote: read .* of 884 KiB (header only); memory estimate .*; $fit\$" "$T/out" ||
    fail "(d) no 'remote: read ...' line"
[ -z "$(find "$T/store" -name 'tiny-Q4_K_M*')" ] || fail "(d) inspect stored the file"
ok

# run -m REF not in the store: pulled first, then run
"$BIN" run -m hf.co/test/tiny:Q4_K_M -p hello -n 2 --temp 0 --backend cpu >"$T/out" 2>"$T/err" ||
    fail "(e) run -m REF (pull on demand) exited $?"
grep -q '^pulling hf.co/test/tiny:Q4_K_M: tiny-Q4_K_M.gguf' "$T/err" || fail "(e) no pulling line"
cmp -s "$STORED/tiny-Q4_K_M.gguf" "$W/storage/test/tiny/tiny-Q4_K_M.gguf" || fail "(e) file differs"
ok

# (f) offline: one line that says so and how to use a local file
HF_ENDPOINT=http://127.0.0.1:1 "$BIN" pull hf.co/x/y >"$T/out" 2>"$T/err" &&
    fail "(f) exited 0 offline"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "(f) not exactly one line"
grep -q 'cannot reach' "$T/err" && grep -q 'offline' "$T/err" &&
    grep -q -- '-m ./model.gguf' "$T/err" ||
    fail "(f) the line does not say offline / how to use a local file"
ok

# (m) a stored file truncated (or grown) after it was verified: run, inspect and list say it is
# damaged and give the command that fetches it again; that pull replaces it
Q4="$STORED/tiny-Q4_K_M.gguf"
for size in 4096 grow; do
    if [ "$size" = grow ]; then printf 'x' >>"$Q4"; else truncate -s "$size" "$Q4"; fi
    for cmd in "run -m hf.co/test/tiny:Q4_K_M -p hello -n 2 --backend cpu" \
               "inspect hf.co/test/tiny:Q4_K_M"; do
        # shellcheck disable=SC2086
        HF_ENDPOINT=http://127.0.0.1:1 "$BIN" $cmd >"$T/out" 2>"$T/err" &&
            fail "(m) $cmd on a damaged file exited 0"
        grep -qF "$Q4 is damaged" "$T/err" || fail "(m) $cmd does not say the file is damaged"
        grep -qF "sizeup pull hf.co/test/tiny:Q4_K_M" "$T/err" ||
            fail "(m) $cmd does not give the command to fetch it again"
    done
    # the same file named by its path in the store: checked against its record too
    "$BIN" run -m "$Q4" -p hello -n 2 --backend cpu >"$T/out" 2>"$T/err" &&
        fail "(m) run -m PATH on a damaged file exited 0"
    grep -qF "$Q4 is damaged" "$T/err" || fail "(m) run -m PATH does not say the file is damaged"
    grep -qF "fetch it again with: sizeup pull hf.co/test/tiny/tiny-Q4_K_M.gguf" "$T/err" ||
        fail "(m) run -m PATH does not give the command to fetch it again"
    "$BIN" list >"$T/out" 2>"$T/err" || fail "(m) list exited $?"
    grep -q "tiny-Q4_K_M.gguf  DAMAGED\$" "$T/out" || fail "(m) list does not mark the damaged file"
    grep -qF "DAMAGED: $Q4 is $(stat -c %s "$Q4") bytes, but was $(stat -c %s "$W/storage/test/tiny/tiny-Q4_K_M.gguf") when it was downloaded; fetch it again with: sizeup pull hf.co/test/tiny/tiny-Q4_K_M.gguf" "$T/out" ||
        fail "(m) list does not say how to fetch the damaged file again"
    "$BIN" list --json >"$T/out" 2>"$T/err" || fail "(m) list --json exited $?"
    grep -q '"damaged": true' "$T/out" || fail "(m) list --json does not mark the damaged file"
done
"$BIN" pull hf.co/test/tiny:Q4_K_M >"$T/out" 2>"$T/err" || fail "(m) pull of a damaged file exited $?"
grep -qF "$Q4 is damaged" "$T/err" || fail "(m) pull does not say the file was damaged"
grep -q "in the store" "$T/out" && fail "(m) pull reports a damaged file as in the store"
grep -q "^$Q4 (884 KiB, verified sha256 [0-9a-f]\{64\})\$" "$T/out" ||
    fail "(m) pull of a damaged file does not fetch and verify it again"
cmp -s "$Q4" "$W/storage/test/tiny/tiny-Q4_K_M.gguf" || fail "(m) the file fetched again differs"
"$BIN" list >"$T/out" 2>"$T/err" || fail "(m) list after the pull exited $?"
grep -q DAMAGED "$T/out" && fail "(m) list still marks the file fetched again"
ok

# (l) links inside the store are never followed: a repository folder that is a link to a
# folder elsewhere, a model file that is a link to a file elsewhere. rm refuses the folder and
# deletes only the link of the file; pull does not write through them; what they point to stays.
E="$T/elsewhere"
mkdir -p "$E" "$T/store/evil" "$STORED"
cp "$M/tiny/llama-Q8_0.gguf" "$E/precious-Q4_K_M.gguf"
printf '{"url": "http://x/y", "size": %s}\n' "$(stat -c %s "$E/precious-Q4_K_M.gguf")" \
    >"$E/precious-Q4_K_M.gguf.json"
ln -s "$E" "$T/store/evil/repo"
for ref in hf.co/evil/repo hf.co/evil/repo:Q4_K_M hf.co/evil/repo/precious-Q4_K_M.gguf; do
    "$BIN" rm "$ref" >"$T/out" 2>"$T/err" && fail "(l) rm $ref through a linked folder exited 0"
    grep -q 'symbolic link' "$T/err" || fail "(l) rm $ref does not name the link"
    cmp -s "$E/precious-Q4_K_M.gguf" "$M/tiny/llama-Q8_0.gguf" ||
        fail "(l) rm $ref deleted or changed a file outside the store"
    [ -e "$E/precious-Q4_K_M.gguf.json" ] || fail "(l) rm $ref deleted a record outside the store"
done
"$BIN" run -m hf.co/evil/repo -p hi -n 1 --backend cpu >"$T/out" 2>"$T/err" &&
    fail "(l) run -m through a linked folder exited 0"
grep -q 'symbolic link' "$T/err" || fail "(l) run -m through a linked folder does not say why"
"$BIN" pull "$HF_ENDPOINT/storage/test/tiny/tiny-Q8_0.gguf" >/dev/null 2>&1 ||
    fail "(l) pull by URL exited $?"
rm -rf "$T/store/127.0.0.1:$PORT"
ln -s "$E" "$T/store/127.0.0.1:$PORT"
"$BIN" pull "$HF_ENDPOINT/storage/test/tiny/tiny-Q8_0.gguf" >"$T/out" 2>"$T/err" &&
    fail "(l) pull into a linked folder exited 0"
[ -e "$E/storage" ] && fail "(l) pull wrote into the folder a link points to"
rm "$T/store/127.0.0.1:$PORT" "$T/store/evil/repo"
rmdir "$T/store/evil"
ln -s "$E/precious-Q4_K_M.gguf" "$STORED/linked-Q4_0.gguf"
cp "$E/precious-Q4_K_M.gguf.json" "$STORED/linked-Q4_0.gguf.json"
"$BIN" list >"$T/out" 2>"$T/err" || fail "(l) list exited $?"
grep -q linked-Q4_0 "$T/out" && fail "(l) list shows a link as a stored model"
"$BIN" rm hf.co/test/tiny/linked-Q4_0.gguf >"$T/out" 2>"$T/err" || fail "(l) rm of a linked file exited $?"
[ -L "$STORED/linked-Q4_0.gguf" ] && fail "(l) rm left the link"
cmp -s "$E/precious-Q4_K_M.gguf" "$M/tiny/llama-Q8_0.gguf" ||
    fail "(l) rm of a linked file deleted or changed its target"
ok

# (k) HOME unset, no XDG_CACHE_HOME or SIZEUP_MODELS: no store in a shared /tmp folder, but a
# message naming the variables to set; a relative XDG_CACHE_HOME counts as unset
had_tmp_store=no
[ -e /tmp/.cache/sizeup/models ] && had_tmp_store=yes
for xdg in unset relative/cache; do
    for cmd in "pull hf.co/test/tiny:Q8_0" "list" "rm hf.co/test/tiny:Q8_0"; do
        xenv=(-u XDG_CACHE_HOME)
        [ "$xdg" = unset ] || xenv=(XDG_CACHE_HOME="$xdg")
        # shellcheck disable=SC2086
        (cd "$T" && env -u HOME -u SIZEUP_MODELS "${xenv[@]}" "$BIN" $cmd) >"$T/out" 2>"$T/err" &&
            fail "(k) $cmd with HOME unset (XDG_CACHE_HOME $xdg) exited 0"
        for v in HOME XDG_CACHE_HOME SIZEUP_MODELS; do
            grep -q "$v" "$T/err" || fail "(k) $cmd with HOME unset: the message does not name $v"
        done
    done
done
[ "$had_tmp_store" = no ] && [ -e /tmp/.cache/sizeup/models ] &&
    fail "(k) /tmp/.cache/sizeup/models was created"
[ -e "$T/relative" ] && fail "(k) a relative XDG_CACHE_HOME was used"
ok

# (b) on a terminal: a bar, redrawn on one line, and the final line
in_tmux "$(printf %q "$BIN") pull hf.co/test/tiny:F16"
wait_for "EXIT-STATUS:" 20 || fail "(b) pull in tmux did not finish"
wait_for "EXIT-STATUS:0" 1 || fail "(b) pull in tmux failed"
tmux capture-pane -p -t "$S" >"$T/screen"
grep -q '^\[#*\]  100%  2.77 MiB/2.77 MiB' "$T/screen" || fail "(b) no finished bar on the screen"
grep -q "^$STORED/tiny-F16.gguf (2.77 MiB, verified sha256 " "$T/screen" || fail "(b) no final line"
cmp -s "$STORED/tiny-F16.gguf" "$W/storage/test/tiny/tiny-F16.gguf" || fail "(b) file differs"
tmux kill-session -t "$S"
ok

# (g) Ctrl-C: a resumable part and a message; the same pull again completes the file
in_tmux "$(printf %q "$BIN") pull hf.co/test/slow/big.gguf"
wait_for "%" 10 || fail "(g) no progress bar"
sleep 1
tmux send-keys -t "$S" C-c
wait_for "EXIT-STATUS:" 10 || fail "(g) Ctrl-C did not end the pull"
wait_for "EXIT-STATUS:130" 1 || fail "(g) exit status after Ctrl-C is not 130"
wait_for "cancelled; run the same command again to resume (" 1 || fail "(g) no resume message"
tmux kill-session -t "$S"
part="$T/store/test/slow/big.gguf.part"
[ -s "$part" ] || fail "(g) no .part left"
kept=$(stat -c %s "$part")
[ "$kept" -lt 8388608 ] || fail "(g) the part is already complete"
touch "$W/fast"
"$BIN" pull hf.co/test/slow/big.gguf >"$T/out" 2>"$T/err" || fail "(g) second pull exited $?"
grep -q "resumed at" "$T/err" || fail "(g) the second pull did not resume"
grep -q "verified sha256 $BIG_SHA" "$T/out" || fail "(g) not verified against X-Linked-Etag"
cmp -s "$T/store/test/slow/big.gguf" "$W/big.gguf" || fail "(g) resumed file differs"
[ -e "$part" ] && fail "(g) the part is still there"
ok

# (h) a split model: run refuses it before fetching anything (the engine loads one file);
# pull fetches every part; run still refuses it from the store, without the network
split_msg='is a split GGUF (2 parts); sizeup pull fetches it, but loading split models is not supported yet'
"$BIN" run -m hf.co/test/tiny:Q2_K -p hello -n 2 --backend cpu >"$T/out" 2>"$T/err" &&
    fail "(h) run -m on a split model exited 0"
grep -qF "hf.co/test/tiny:Q2_K $split_msg" "$T/err" || fail "(h) run does not say it is split"
grep -q pulling "$T/err" && fail "(h) run started pulling a split model"
[ -z "$(find "$T/store" -name '*Q2_K*')" ] || fail "(h) run left files of the split model"
HF_ENDPOINT=http://127.0.0.1:1 "$BIN" run -m qwen2.5:7b -p hello -n 2 --backend cpu \
    >"$T/out" 2>"$T/err" && fail "(h) run -m qwen2.5:7b exited 0"
grep -qF "qwen2.5:7b $split_msg" "$T/err" || fail "(h) run -m qwen2.5:7b does not say it is split"
[ -z "$(find "$T/store" -name '*qwen2.5*')" ] || fail "(h) run left files of qwen2.5:7b"
"$BIN" pull hf.co/test/tiny:Q2_K >"$T/out" 2>"$T/err" || fail "(h) pull of a split model exited $?"
for k in 1 2; do
    cmp -s "$STORED/tiny-Q2_K-0000$k-of-00002.gguf" \
        "$W/storage/test/tiny/tiny-Q2_K-0000$k-of-00002.gguf" || fail "(h) part $k differs"
done
HF_ENDPOINT=http://127.0.0.1:1 "$BIN" run -m hf.co/test/tiny:Q2_K -p hello -n 2 --backend cpu \
    >"$T/out" 2>"$T/err" && fail "(h) run -m on a stored split model exited 0"
grep -qF "$split_msg" "$T/err" || fail "(h) run does not say the stored model is split"
# (i) a folder is not a model file
"$BIN" run -m "$T/store" -p hello -n 2 --backend cpu >"$T/out" 2>"$T/err" &&
    fail "(i) run -m FOLDER exited 0"
grep -qF "$T/store is a directory" "$T/err" || fail "(i) run -m FOLDER does not say so"
ok

# (j) HTTPS with a self-signed CA: refused without it, accepted with --cacert or CURL_CA_BUNDLE
TURL="https://127.0.0.1:$TPORT/storage/test/tiny/tiny-Q8_0.gguf"
tls_stored() { find "$T/store" -path '*127.0.0.1*' -name tiny-Q8_0.gguf; }
"$BIN" pull "$TURL" >"$T/out" 2>"$T/err" && fail "(j) pull over TLS without the CA exited 0"
grep -qi 'TLS\|certificate' "$T/err" || fail "(j) the TLS failure is not named"
[ -z "$(tls_stored)" ] || fail "(j) a file was stored without a trusted certificate"
"$BIN" pull --cacert "$T/ca.pem" "$TURL" >"$T/out" 2>"$T/err" || fail "(j) pull --cacert exited $?"
cmp -s "$(tls_stored)" "$W/storage/test/tiny/tiny-Q8_0.gguf" || fail "(j) --cacert file differs"
# a plain server knows no checksum: only the size (its Content-Length) was compared
grep -q "tiny-Q8_0.gguf (1.48 MiB, verified size)\$" "$T/out" ||
    fail "(j) a pull without a known checksum does not say 'verified size'"
grep -q sha256 "$T/out" && fail "(j) 'sha256' claimed where no checksum was known"
"$BIN" pull --cacert "$T/ca.pem" "$TURL" >"$T/out" 2>"$T/err" || fail "(j) second pull exited $?"
grep -q "(1.48 MiB, in the store, verified size)\$" "$T/out" ||
    fail "(j) a file already there does not say 'in the store, verified size'"
"$BIN" rm "$TURL" >"$T/out" 2>"$T/err" || fail "(j) rm of the TLS file exited $?"
CURL_CA_BUNDLE="$T/ca.pem" "$BIN" pull "$TURL" >"$T/out" 2>"$T/err" ||
    fail "(j) pull with CURL_CA_BUNDLE exited $?"
cmp -s "$(tls_stored)" "$W/storage/test/tiny/tiny-Q8_0.gguf" || fail "(j) CURL_CA_BUNDLE file differs"
ok

# (o) user:password in a URL goes to the server but is never shown or stored (README)
PURL="http://user:secret@127.0.0.1:$PORT/storage/test/tiny/tiny-Q8_0.gguf"
SHOWN="http://127.0.0.1:$PORT/storage/test/tiny/tiny-Q8_0.gguf"
"$BIN" rm "$PURL" >/dev/null 2>&1
"$BIN" pull "$PURL" >"$T/out" 2>"$T/err" || fail "(o) pull with user:password exited $?"
grep -qF "pulling $SHOWN:" "$T/err" || fail "(o) the pulling line does not name the URL"
grep -q secret "$T/out" "$T/err" && fail "(o) pull shows the password"
grep -rqF secret "$T/store" && fail "(o) the password is written into the store"
grep -qF "\"url\": \"$SHOWN\"" "$T/store/127.0.0.1:$PORT/storage/test/tiny/tiny-Q8_0.gguf.json" ||
    grep -qF "\"url\":\"$SHOWN\"" "$T/store/127.0.0.1:$PORT/storage/test/tiny/tiny-Q8_0.gguf.json" ||
    fail "(o) the record does not keep the URL without the password"
# a record an older version wrote, with the password in it: list never shows it
REC="$T/store/127.0.0.1:$PORT/storage/test/tiny/tiny-Q8_0.gguf.json"
sed -i "s|$SHOWN|$PURL|" "$REC"
grep -qF secret "$REC" || fail "(o) could not write an old-style record"
for opt in --json ""; do
    # shellcheck disable=SC2086
    "$BIN" list $opt >"$T/out" 2>"$T/err" || fail "(o) list $opt exited $?"
    [ -z "$opt" ] || grep -qF "\"source_url\": \"$SHOWN\"" "$T/out" ||
        fail "(o) list $opt does not show the URL"
    grep -q secret "$T/out" "$T/err" && fail "(o) list $opt shows a recorded password"
done
sed -i "s|$PURL|$SHOWN|" "$REC"
"$BIN" pull "http://user:secret@127.0.0.1:$PORT/nope/x.gguf" >"$T/out" 2>"$T/err" &&
    fail "(o) pull of a missing file exited 0"
grep -qF "http://127.0.0.1:$PORT/nope/x.gguf" "$T/err" || fail "(o) the failure does not name the URL"
grep -q secret "$T/err" && fail "(o) a failed pull shows the password"
"$BIN" inspect "http://user:secret@127.0.0.1:$PORT/storage/test/tiny/tiny-Q4_K_M.gguf" \
    >"$T/out" 2>"$T/err" || fail "(o) inspect with user:password exited $?"
grep -q "^ *file: *http://127.0.0.1:$PORT/storage/test/tiny/tiny-Q4_K_M.gguf" "$T/out" ||
    fail "(o) inspect's file line does not name the URL"
grep -q secret "$T/out" "$T/err" && fail "(o) inspect shows the password"
"$BIN" rm "$PURL" >"$T/out" 2>"$T/err" || fail "(o) rm exited $?"
grep -q secret "$T/out" "$T/err" && fail "(o) rm shows the password"
ok

# (n) a 200 answer that is not a model (a login page, random bytes) is refused, not stored
printf '<html><body>Please log in</body></html>\n' >"$W/login.gguf"
head -c 4096 /dev/urandom | tr 'G' 'x' >"$W/noise.gguf"
"$BIN" pull "http://127.0.0.1:$PORT/login.gguf" >"$T/out" 2>"$T/err" &&
    fail "(n) pull of an HTML page exited 0"
grep -qF "http://127.0.0.1:$PORT/login.gguf is not a GGUF file (it starts with 3c 68 74 6d: an HTML page?)" \
    "$T/err" || fail "(n) the HTML page is not named as such"
"$BIN" pull "http://127.0.0.1:$PORT/noise.gguf" >"$T/out" 2>"$T/err" &&
    fail "(n) pull of random bytes exited 0"
grep -qF "noise.gguf is not a GGUF file (it starts with" "$T/err" ||
    fail "(n) random bytes are not refused as 'not a GGUF file'"
[ -z "$(find "$T/store" -name 'login.gguf*' -o -name 'noise.gguf*')" ] ||
    fail "(n) something of a refused file was left in the store"
"$BIN" list >"$T/out" 2>"$T/err" || fail "(n) list exited $?"
grep -q 'login\|noise' "$T/out" && fail "(n) list shows a refused file"
ok

# (p) inspect of a remote file whose tensors run past its end names the URL once
head -c 300000 "$M/tiny/llama-Q4_K_M.gguf" >"$W/cut.gguf"
"$BIN" inspect "http://127.0.0.1:$PORT/cut.gguf" >"$T/out" 2>"$T/err" &&
    fail "(p) inspect of a cut file exited 0"
grep -q "runs past the end\|past the bytes read\|cannot fit" "$T/err" ||
    fail "(p) inspect of a cut file does not say what is wrong"
[ "$(grep -o "http://127.0.0.1:$PORT/cut.gguf" "$T/err" | wc -l)" = 1 ] ||
    fail "(p) inspect names the URL more than once"
ok

# (q) a failed pull removes the folders it made for the file, and only those: a folder that was
# there before stays, empty or not
"$BIN" pull http://127.0.0.1:1/a/b.gguf >"$T/out" 2>"$T/err" && fail "(q) pull from port 1 exited 0"
[ ! -e "$T/store/127.0.0.1:1" ] || fail "(q) a failed pull left $(cd "$T/store" && find 127.0.0.1:1)"
"$BIN" pull "http://127.0.0.1:$PORT/nothere/x.gguf" >"$T/out" 2>"$T/err" &&
    fail "(q) pull of a missing file exited 0"
[ ! -e "$T/store/127.0.0.1:$PORT/nothere" ] || fail "(q) a 404 left the folder nothere"
mkdir -p "$T/store/127.0.0.1:1/kept"
"$BIN" pull http://127.0.0.1:1/kept/sub/b.gguf >"$T/out" 2>"$T/err" && fail "(q) pull exited 0"
[ -d "$T/store/127.0.0.1:1/kept" ] || fail "(q) a failed pull removed a folder that was there before"
[ ! -e "$T/store/127.0.0.1:1/kept/sub" ] || fail "(q) a failed pull left kept/sub"
rm -r "$T/store/127.0.0.1:1"
ok

# (r) Ctrl-C when the server gives no ETag or Last-Modified: the part could never be resumed,
# so it is deleted and the message says so instead of promising a resume
in_tmux "$(printf %q "$BIN") pull http://127.0.0.1:$PORT/noval/big.gguf"
wait_for "KiB" 10 || fail "(r) no progress"
sleep 1
tmux send-keys -t "$S" C-c
wait_for "EXIT-STATUS:" 10 || fail "(r) Ctrl-C did not end the pull"
wait_for "EXIT-STATUS:130" 1 || fail "(r) exit status after Ctrl-C is not 130"
wait_for "cancelled; the download cannot be resumed (the server gives no ETag" 1 ||
    fail "(r) no message that the download cannot be resumed"
tmux kill-session -t "$S"
[ -z "$(find "$T/store/127.0.0.1:$PORT" -name '*.part' 2>/dev/null)" ] ||
    fail "(r) an unresumable part was kept"
ok

echo "pull: $passed passed, 0 failed"
