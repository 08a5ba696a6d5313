#!/usr/bin/env python3
"""An OpenAI-compatible test server for sizeup's remote client (tests/test_remote.c,
tests/e2e/remote.sh). Standard library only; listens on 127.0.0.1 and 127.0.0.2 (another host
on loopback, for cross-host redirects), same port.

  python3 tests/oaisrv.py --port-file FILE [--record FILE] [--key KEY_ENV_NAME]

It writes the port to --port-file once both sockets listen, and one JSON line per request to
--record: {"host", "method", "path", "auth", "body"} ("auth" is the Authorization header, or
null), so tests can check what the client sent and where its key went.

The path prefix picks the personality the way a real server would show it:
  /v1/...            vLLM: owned_by "vllm", usage chunk, /metrics with vllm:gpu_cache_usage_perc
  /llamacpp/v1/...   llama-server: owned_by "llamacpp", Server: llama.cpp, "timings" in the
                     last chunk, /llamacpp/metrics with llamacpp:kv_cache_usage_ratio
  /ollama/v1/...     Ollama: owned_by "library", no usage, no /metrics
  /auth/v1/...       vLLM that wants "Authorization: Bearer $KEY" (--key names the variable)
  /evil/v1/...       vLLM whose /v1/models lists "good" and an id with ESC[2J, an OSC title and
                     a C1 CSI (U+009B) in it, for the messages that quote the listing

The model name picks the behaviour of /chat/completions and /completions:
  test-model         answers "Hello from the test server." in 6 chunks (LF line ends)
  reasoner           two reasoning_content chunks, then the answer
  crlf / cr          the same answer with CRLF / lone CR line ends
  keepalive          ": keep-alive" comments, event: and id: lines, empty events between chunks
  multiline          each chunk's JSON spread over several data: lines
  nousage            no usage chunk (the client must count and say "~")
  slow               100 chunks, 50 ms apart (for cancel)
  escapes            an answer with terminal control sequences in it (clear screen, OSC 52
                     clipboard write, a title, a C1 CSI), for the sanitizer; reasoning too
  nul                "\u0000" (valid JSON) inside the answer and the reasoning: the client
                     drops the NULs, the text around them is "Hello world."
  err500c1           500 whose message holds ESC[2J, a C1 CSI (U+009B) and an OSC title
  cut                3 chunks, then the connection closes without [DONE]
  reset              3 chunks, then a TCP reset
  badjson            2 chunks, then a chunk that is not JSON
  longline           2 chunks, then a 2 MiB line without an end
  stall              2 chunks, then silence for 60 s
  midstream-error    2 chunks, then {"error": {...}} as vLLM sends it
  err401 err403 err500 err400   that status with an OpenAI error body
  busy429-N busy503-N           the first N requests for the name get 429 / 503 with
                                Retry-After: 1, then it answers; busy429-long: Retry-After: 3600
  redirect           307 to the same path on 127.0.0.2 (another host), model test-model
  redirect-same      307 to /v1/chat/completions on the same host, model test-model
  anything else      404 {"error": {"message": "The model `X` does not exist."}}
"""
import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["Hello", " from", " the", " test", " server", "."]
SERVED = ["test-model", "reasoner", "other/model-70B"]
EVIL_ID = "evil\u001b[2J\u009b31m\u001b]0;pwned\u0007"
ESCAPES = ["Clear", "\u001b[2J", " copy \u001b]52;c;cHduZWQ=\u0007",
           " title \u001b]0;pwned\u001b\\", " c1 \u009b31m", " done."]
MODES = {"test-model", "reasoner", "crlf", "cr", "keepalive", "multiline", "nousage", "slow",
         "escapes", "cut", "reset", "badjson", "longline", "stall", "midstream-error", "err401",
         "err403", "err500", "err400", "redirect", "redirect-same", "busy429-long", "nul",
         "err500c1"}
counts = {}
counts_lock = threading.Lock()
record_lock = threading.Lock()
args = None


def personality(path):
    for p in ("llamacpp", "ollama", "auth", "evil"):
        if path.startswith("/" + p + "/"):
            return p, path[len(p) + 1:]
    return "vllm", path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"   # bodies end when the connection closes: a cut is a close

    def log_message(self, fmt, *a):
        pass

    def record(self, body):
        if not args.record:
            return
        line = json.dumps({"host": self.server.server_address[0], "method": self.command,
                           "path": self.path, "auth": self.headers.get("Authorization"),
                           "body": body})
        with record_lock, open(args.record, "a") as f:
            f.write(line + "\n")

    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, msg, extra=None):
        self.send_json(status, {"error": {"message": msg, "type": "test", "code": status}},
                       extra)

    def kind_headers(self, kind):
        if kind == "llamacpp":
            self.send_header("Server", "llama.cpp")

    def do_GET(self):
        self.record(None)
        kind, rest = personality(self.path.partition("?")[0])
        if kind == "auth" and not self.authorized():
            return
        if rest == "/v1/models":
            owner = {"vllm": "vllm", "auth": "vllm", "llamacpp": "llamacpp",
                     "ollama": "library", "evil": "vllm"}[kind]
            served = ["good", EVIL_ID] if kind == "evil" else SERVED
            data = [{"id": m, "object": "model", "owned_by": owner, "max_model_len": 4096}
                    for m in served]
            self.send_json(200, {"object": "list", "data": data})
        elif rest == "/metrics" and kind in ("vllm", "auth", "evil"):
            text = ("# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent.\n"
                    "# TYPE vllm:gpu_cache_usage_perc gauge\n"
                    'vllm:gpu_cache_usage_perc{model_name="test-model"} 0.25\n'
                    "vllm:num_requests_running 1\n")
            self.send_text(200, text)
        elif rest == "/metrics" and kind == "llamacpp":
            self.send_text(200, "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                                "llamacpp:kv_cache_usage_ratio 0.5\n")
        else:
            self.error(404, "no such path: " + self.path)

    def send_text(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        want = "Bearer " + (args.key or "")
        if args.key and self.headers.get("Authorization") == want:
            return True
        self.error(401, "Invalid API key (got %s)" % self.headers.get("Authorization"))
        return False

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            req = json.loads(raw)
        except ValueError:
            req = None
        self.record(req)
        path, _, query = self.path.partition("?")
        kind, rest = personality(path)
        if req is None:
            return self.error(400, "body is not JSON")
        if kind == "auth" and not self.authorized():
            return
        chat = rest == "/v1/chat/completions"
        if not chat and rest != "/v1/completions":
            return self.error(404, "no such path: " + self.path)
        model = req.get("model", "")
        if query == "redirected=1":
            model = "test-model"
        if model.startswith("busy"):
            return self.busy(kind, chat, req, model)
        if model not in MODES:
            return self.error(404, "The model `%s` does not exist." % model)
        if model == "err500c1":
            return self.error(500, "bad \u001b[2J \u009b31m \u001b]0;pwned\u0007 end")
        if model.startswith("err"):
            code = int(model[3:])
            return self.error(code, "test refusal %d" % code)
        if model == "redirect":
            port = self.server.server_address[1]
            return self.redirect("http://127.0.0.2:%d%s?redirected=1" % (port, path), req)
        if model == "redirect-same":
            return self.redirect(path + "?redirected=1", req)
        self.stream(kind, chat, req, model)

    def busy(self, kind, chat, req, model):
        code = 429 if model.startswith("busy429") else 503
        if model.endswith("-long"):
            return self.error(code, "busy", {"Retry-After": "3600"})
        times = int(model.split("-")[1])
        with counts_lock:
            counts[model] = counts.get(model, 0) + 1
            seen = counts[model]
        if seen <= times:
            return self.error(code, "busy, come back later", {"Retry-After": "1"})
        self.stream(kind, chat, req, "test-model")

    def redirect(self, location, req):
        # The target answers test-model; the body is the client's to send again (307).
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ---- the stream ----

    def chunk(self, chat, text=None, reasoning=None, finish=None):
        if chat:
            delta = {}
            if text is not None:
                delta["content"] = text
            if reasoning is not None:
                delta["reasoning_content"] = reasoning
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": "test", "choices": [choice]}
        return {"id": "cmpl-test", "object": "text_completion", "model": "test",
                "choices": [{"index": 0, "text": text or "", "finish_reason": finish}]}

    def send_event(self, obj, mode):
        data = json.dumps(obj) if not isinstance(obj, str) else obj
        eol = {"crlf": "\r\n", "cr": "\r"}.get(mode, "\n")
        if mode == "multiline" and data.startswith("{"):
            # valid JSON again once the lines are joined with "\n"
            lines = data.replace(", ", ",\n").split("\n")
            text = "".join("data: %s%s" % (l, eol) for l in lines) + eol
        elif mode == "keepalive":
            text = (": keep-alive" + eol + "event: message" + eol + "id: 7" + eol +
                    "data: " + data + eol + eol + ":" + eol + eol)
        else:
            text = "data: " + data + eol + eol
        self.wfile.write(text.encode())
        self.wfile.flush()

    def stream(self, kind, chat, req, mode):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.kind_headers(kind)
        self.end_headers()
        if chat:
            self.send_event(self.chunk(chat, text=""), mode)   # the role-only first chunk
        if mode == "reasoner":
            for r in ["Let me think.", " The user greets."]:
                self.send_event(self.chunk(chat, reasoning=r), mode)
        if mode == "escapes" and chat:
            self.send_event(self.chunk(chat, reasoning="think \u001b[31mred"), mode)
        if mode == "nul" and chat:
            self.send_event(self.chunk(chat, reasoning="th\u0000ink"), mode)
        words = ANSWER
        if mode == "escapes":
            words = ESCAPES
        if mode == "nul":
            words = ["Hello", "\u0000", " wor\u0000ld", "."]
        if mode == "slow":
            words = ["w%d " % i for i in range(100)]
        for i, w in enumerate(words):
            if mode == "cut" and i == 3:
                return self.close_now(False)
            if mode == "reset" and i == 3:
                return self.close_now(True)
            if mode in ("badjson", "longline", "stall", "midstream-error") and i == 2:
                return self.misbehave(mode)
            self.send_event(self.chunk(chat, text=w), mode)
            if mode == "slow":
                time.sleep(0.05)
        self.send_event(self.chunk(chat, finish="stop"), mode)
        if mode not in ("nousage",) and kind != "ollama":
            usage = {"id": "x", "object": "chat.completion.chunk", "choices": [],
                     "usage": {"prompt_tokens": 11, "completion_tokens": len(words) + 1,
                               "total_tokens": 12 + len(words)}}
            if kind == "llamacpp":
                usage["timings"] = {"prompt_n": 11, "prompt_ms": 5.5,
                                    "prompt_per_second": 2000.0, "predicted_n": len(words),
                                    "predicted_ms": 12.0, "predicted_per_second": 500.0}
            self.send_event(usage, mode)
        self.send_event("[DONE]", mode)

    def close_now(self, reset):
        self.wfile.flush()
        self.close_connection = True
        if reset:
            # linger 0: close() sends a RST instead of the FIN the server would send next
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()

    def misbehave(self, mode):
        if mode == "badjson":
            self.send_event('{"choices": [{"delta": {"content": "x"', "plain")
        elif mode == "longline":
            self.wfile.write(b"data: " + b"x" * (2 << 20))
            self.wfile.flush()
            time.sleep(2)
        elif mode == "stall":
            for _ in range(600):
                time.sleep(0.1)
                if getattr(self.server, "stopping", False):
                    break
        elif mode == "midstream-error":
            self.send_event({"error": {"message": "CUDA out of memory", "code": 500}}, "plain")
            self.send_event("[DONE]", "plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that hung up (a cancel, a refused over-long line) is what tests do
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record")
    ap.add_argument("--key", help="name of the environment variable holding the /auth key")
    args = ap.parse_args()
    if args.key:
        import os
        args.key = os.environ.get(args.key)
    one = Server(("127.0.0.1", 0), Handler)
    port = one.server_address[1]
    two = Server(("127.0.0.2", port), Handler)
    for s in (one, two):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
