#!/usr/bin/env bash
# A model added inside `sizeup chat` (/add URL) downloads in its own pane with its progress while
# the other pane stays usable; Esc cancels it and keeps the part; the same /add resumes it, and
# the model then loads and answers. A loopback HTTP server (python3) sends the file slowly.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.bash" || exit 1
M1="$FIX/models/stories260K.gguf"
M2="$FIX/models/babyllama-930K-Q8_0.gguf"
e2e_tmp tuidl
e2e_tmux tuidl
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for the test server"; exit 1; }
for f in "$M1" "$M2"; do [ -f "$f" ] || { echo "FAIL: fixture missing: $f"; exit 1; }; done

# 32 KiB every 0.1 s (the file is about 1 MiB: some 3 s), Range honoured and an ETag sent, so a
# resume resumes
cat > "$T/srv.py" <<'PY'
import http.server, os, sys, time
PATH = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        size = os.path.getsize(PATH); start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        else:
            self.send_response(200)
        # a validator, as Hugging Face sends: without one a cancelled part cannot be resumed
        # safely, and sizeup deletes it (pull.sh checks that case)
        self.send_header("ETag", '"fixture-v1"')
        self.send_header("Content-Length", str(size - start)); self.end_headers()
        with open(PATH, "rb") as f:
            f.seek(start)
            while True:
                b = f.read(32768)
                if not b: break
                try: self.wfile.write(b); self.wfile.flush()
                except Exception: return
                time.sleep(0.1)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$T/srv.py" "$M2" > "$T/port" & SRV=$!
e2e_at_exit "e2e_stop $SRV"
for _ in $(seq 1 50); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(head -1 "$T/port")
[ -n "$PORT" ] || fail "the test server did not start"
URL="http://127.0.0.1:$PORT/babyllama-930K-Q8_0.gguf"

tmux new-session -d -s "$S" -x 140 -y 30 \
    "SIZEUP_MODELS=$T/store XDG_STATE_HOME=$T/state $BIN chat $M1 --backend cpu --temp 0 -n 20; echo EXIT-STATUS:\$?; sleep 60"
wait_for "completion mode" 20 || fail "the first pane did not load"
tmux send-keys -t "$S" "/add $URL" Enter
wait_for "downloading $URL" 5 || fail "/add did not say what it downloads"
wait_for "KiB of 9" 10 || fail "no download progress in the pane"
# the other pane stays usable meanwhile
tmux send-keys -t "$S" Tab F2 "Once upon a time" Enter
wait_for "stop: token limit" 20 || fail "the other pane did not answer during the download"
screen | grep -qF "downloading " || fail "the download was over before the check (too fast?)"
tmux send-keys -t "$S" Escape
wait_for "download cancelled" 5 || fail "Esc did not cancel the download"
ls "$T"/store/*/*.part >/dev/null 2>&1 || fail "no part kept after the cancel"
tmux send-keys -t "$S" F2
# the same /add resumes, and the model loads in the new pane
tmux send-keys -t "$S" "/add $URL" Enter
for _ in $(seq 1 300); do [ "$(screen | grep -o 'no chat template' | wc -l)" -ge 2 ] && break; sleep 0.1; done
[ "$(screen | grep -o 'no chat template' | wc -l)" -ge 2 ] || fail "the downloaded model did not load"
ls "$T"/store/*/*.gguf >/dev/null 2>&1 || fail "the model is not in the store"
tmux send-keys -t "$S" "/quit" Enter
wait_for "EXIT-STATUS:0" 10 || fail "/quit did not exit with status 0"
tmux kill-session -t "$S"

# a reference on the command line that is not in the store downloads in its own pane too
tmux new-session -d -s "$S" -x 140 -y 30 \
    "SIZEUP_MODELS=$T/store2 XDG_STATE_HOME=$T/state $BIN chat $M1 $URL --backend cpu; echo EXIT-STATUS:\$?; sleep 60"
wait_for "downloading $URL" 10 || fail "the named URL did not download in its pane"
for _ in $(seq 1 300); do [ "$(screen | grep -o 'no chat template' | wc -l)" -ge 2 ] && break; sleep 0.1; done
[ "$(screen | grep -o 'no chat template' | wc -l)" -ge 2 ] || fail "the named URL's model did not load"
tmux send-keys -t "$S" "/quit" Enter
wait_for "EXIT-STATUS:0" 10 || fail "/quit did not exit with status 0 (second run)"
echo "tui_download: passed"
