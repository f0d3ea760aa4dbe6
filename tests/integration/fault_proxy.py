"""An HTTP/1.1 proxy on 127.0.0.1 in front of the emulator that answers chosen AWS JSON-protocol requests with an
error, for boto3 clients (the Python processors); the KCL daemon (HTTP/2) keeps talking to the emulator directly.

``fail_next(table, code)``: the next DynamoDB request on ``table`` is answered 400 with that error code (a real
HTTP answer, parsed by botocore as a ClientError), once; everything else passes through unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.injected: list[dict[str, Any]] = []
        self._armed: tuple[str, str] | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._relay(b"")

            def do_POST(self) -> None:
                self._relay(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _relay(self, body: bytes) -> None:
                fault = proxy._take_fault(self.headers.get("X-Amz-Target", ""), body)
                if fault is not None:
                    self._answer(400, json.dumps(fault).encode(), {"Content-Type": "application/x-amz-json-1.0"})
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    response = upstream.getresponse()
                    self._answer(response.status, response.read(), dict(response.getheaders()))
                finally:
                    upstream.close()

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, table: str, code: str) -> None:
        with self._lock:
            self._armed = (table, code)

    def _take_fault(self, target: str, body: bytes) -> dict[str, Any] | None:
        if not target.startswith("DynamoDB_"):
            return None
        with self._lock:
            if self._armed is None:
                return None
            table, code = self._armed
            try:
                if json.loads(body or b"{}").get("TableName") != table:
                    return None
            except ValueError:
                return None
            self._armed = None
            fault = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected by the test"}
            self.injected.append({"operation": target.split(".", 1)[-1], **fault})
            return fault

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
