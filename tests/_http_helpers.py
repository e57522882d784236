"""A scripted HTTP server on loopback for the transport's tests (statuses, headers, bodies and
delays that a real MLflow server never sends on demand: a 503 with Retry-After, a proxy's HTML
page, a hung answer). Everything else is tested against a real ``mlflow server``."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int = 200
    body: str = "{}"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float


class ScriptedServer:
    """Answers each request with the next Reply of ``script`` (the last one repeats)."""

    def __init__(self, script: list[Reply] | Callable[[Seen], Reply]) -> None:
        self.script = script
        self.seen: list[Seen] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers), body, time.monotonic())
                outer.seen.append(seen)
                if callable(outer.script):
                    reply = outer.script(seen)
                else:
                    reply = outer.script[min(len(outer.seen), len(outer.script)) - 1]
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def mlflow_error(code: str, message: str) -> str:
    return json.dumps({"error_code": code, "message": message})
