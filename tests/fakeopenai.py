"""A scriptable OpenAI-protocol server for tests: real HTTP on 127.0.0.1, SSE streaming.

Each POST /v1/chat/completions takes the next scripted :class:`Reply` (the
``default`` one when the script is used up) and records the request body, so
tests can produce what a real model will not do on demand: 429s, 500s, a 401,
a stream that stalls, dangling citation numbers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted failure"
    stall_after: int | None = None  # stream this many pieces, then go silent
    stall_before: bool = False  # send nothing at all until the client gives up
    raw_events: list[str] | None = None  # SSE data lines sent verbatim (malformed streams)


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply(text="(script used up)")
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def play(self, *replies: Reply, default: Reply | None = None) -> None:
        """Script the next replies (and what follows them); forget earlier requests."""
        with self._lock:
            self.script = list(replies)
            self.default = default or Reply(text="(script used up)")
            self.requests = []

    def _next(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                body["_authorization"] = self.headers.get("authorization", "")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = fake._next(body)
                if reply.stall_before:
                    fake._release.wait(30)
                    return
                if reply.status != 200:
                    error = {"message": reply.error, "type": "scripted", "code": reply.status}
                    self._json(reply.status, {"error": error}, reply.headers)
                elif body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, _completion(body, reply.text), reply.headers)

            def _json(self, status: int, data: dict, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, body: dict, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                if reply.raw_events is not None:
                    events = reply.raw_events
                else:
                    pieces = re.findall(r"\S+\s*|\s+", reply.text)
                    events = [json.dumps(_chunk(body, {"role": "assistant", "content": ""}))]
                    events += [json.dumps(_chunk(body, {"content": p})) for p in pieces]
                    events.append(json.dumps(_chunk(body, {}, finish="stop")))
                    events.append("[DONE]")
                try:
                    for i, event in enumerate(events):
                        if reply.stall_after is not None and i == reply.stall_after + 1:
                            fake._release.wait(30)
                            return
                        self.wfile.write(f"data: {event}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(0.002)  # tokens arrive one by one, like a model's
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


def _chunk(body: dict, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(body: dict, text: str) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
