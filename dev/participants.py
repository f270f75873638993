"""Demo saga participants for the local stack: the image saga's Anonymizer and AI Model.

One HTTP server, one path per participant. Failure injection, from the request:
  "fail_at": "<step>"            the participant of that step answers 500 every time (retryable,
                                 so the step gives up once its retries run out);
  "fail_at": "<step>", "fail_mode": "final"   it answers 422 (final: no retries);
  "fail_times": {"<step>": N}    it answers 503 to the first N attempts of each idempotency key.
and from the environment: PARTICIPANT_FAILURE_RATE (0..1, random 500s) and
PARTICIPANT_LATENCY_MS (added to every answer).

GET /_calls lists every call received (participant, idempotency key, body, answer status);
DELETE /_calls forgets them. Tests use these to see what the orchestrator sent.
"""

import json
import os
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# path -> (step name the participant serves, function building its answer)
PARTICIPANTS = {
    "/anonymize": (
        "anonymize",
        lambda body: {
            "image_id": body.get("image_id"),
            "anonymized": True,
            "data": "<redacted>",
        },
    ),
    "/process": (
        "process",
        lambda body: {
            "image_id": body.get("image_id"),
            "model": "demo-classifier-1",
            "label": "no-finding",
            "score": 0.97,
        },
    ),
}

FAILURE_RATE = float(os.environ.get("PARTICIPANT_FAILURE_RATE", "0"))
LATENCY_MS = float(os.environ.get("PARTICIPANT_LATENCY_MS", "0"))

calls = []
attempts_by_key = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm holds the body
        # until the client's delayed ACK, adding tens of milliseconds to every call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_calls":
            with lock:
                self.answer(200, list(calls))
        elif self.path == "/health":
            self.answer(200, {"status": "ok"})
        else:
            self.answer(404, {"error": "not found"})

    def do_DELETE(self):
        if self.path == "/_calls":
            with lock:
                calls.clear()
                attempts_by_key.clear()
            self.answer(200, {"cleared": True})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        participant = PARTICIPANTS.get(self.path)
        if participant is None:
            self.answer(404, {"error": f"no participant at {self.path}"})
            return
        step, build = participant
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.answer(400, {"error": "body is not JSON"})
            return
        key = self.headers.get("idempotency-key")
        with lock:
            attempt = attempts_by_key.get((step, key), 0) + 1
            attempts_by_key[(step, key)] = attempt
        if LATENCY_MS:
            time.sleep(LATENCY_MS / 1000)
        status, payload = decide(step, body, attempt)
        with lock:
            calls.append(
                {"participant": step, "idempotency_key": key, "attempt": attempt, "body": body, "status": status}
            )
        self.answer(status, payload if status < 400 else {"error": payload})


def decide(step, body, attempt):
    """The injected failure for this call, or the participant's normal answer."""
    if not isinstance(body, dict):
        return 200, build_default(step, {})
    if body.get("fail_at") == step:
        if body.get("fail_mode") == "final":
            return 422, f"{step} rejected the request (injected final failure)"
        return 500, f"{step} failed (injected failure)"
    fail_times = body.get("fail_times") or {}
    if isinstance(fail_times, dict) and attempt <= int(fail_times.get(step, 0)):
        return 503, f"{step} unavailable (injected, attempt {attempt})"
    if FAILURE_RATE and random.random() < FAILURE_RATE:
        return 500, f"{step} failed (random failure rate {FAILURE_RATE})"
    return 200, build_default(step, body)


def build_default(step, body):
    for _, (name, build) in PARTICIPANTS.items():
        if name == step:
            return build(body)
    return {}


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9101
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"participants listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
