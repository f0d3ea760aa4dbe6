"""HTTP handler and server: a fake Slack incoming webhook plus a small control API for tests."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from .page import render_page
from .payload import PayloadError, parse_webhook_body
from .state import CONTROL_POSTS, ReceiverState
from .store import MessageStore

logger = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/services/"
MAX_BODY_BYTES = 1 << 20


class BadRequest(Exception):
    pass


class ReceiverHandler(BaseHTTPRequestHandler):
    server_version = "cali-slack-receiver/1.0"
    timeout = 30  # socket timeout: a client that stalls mid-body cannot pin a thread forever

    @property
    def state(self) -> ReceiverState:
        return cast(ReceiverServer, self.server).state

    # -- routing --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/":
            page = render_page(self.state.store.records())
            self._send(200, page, "text/html; charset=utf-8", {"Content-Security-Policy": _CSP})
        elif path == "/healthz":
            self._send_text(200, "ok")
        elif path == "/_control/messages":
            self._send_json(200, self.state.snapshot())
        elif path == "/_control/faults":
            self._send_json(200, self.state.faults.status())
        else:
            self._send_text(404, "not_found")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(WEBHOOK_PREFIX):
            self._webhook(path)
        elif path in CONTROL_POSTS:
            self._control(CONTROL_POSTS[path])
        else:
            self._read_body()
            self._send_text(404, "no_service")

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/_control/faults":
            self.state.faults.clear()
            self._send_json(200, {"ok": True})
        else:
            self._send_text(404, "not_found")

    # -- webhook --------------------------------------------------------------------------------
    def _webhook(self, path: str) -> None:
        state = self.state
        received_at = state.wall_clock()
        state.count_attempt()
        body = self._read_body()
        headers: dict[str, str] = {}
        if body is None:
            status, text = 413, "request_too_large"
        else:
            fault = state.faults.next_response()
            if fault.delay > 0:
                state.sleep(fault.delay)
            if fault.status is not None:  # Slack refused it: answer the fault, store nothing
                status, text, headers = fault.status, fault.body, fault.headers()
            else:
                status, text = self._accept(received_at, path, body)
        state.log_attempt(received_at, path, status)
        logger.info("POST %s -> %d %s", path, status, text)
        self._send_text(status, text, headers)

    def _accept(self, received_at: float, path: str, body: bytes) -> tuple[int, str]:
        try:
            payload = parse_webhook_body(body, self.headers.get("Content-Type"))
        except PayloadError as exc:
            return 400, exc.code
        self.state.store.append(received_at, path, payload)
        return 200, "ok"

    # -- control --------------------------------------------------------------------------------
    def _control(self, action: Callable[[ReceiverState, Any], dict[str, Any]]) -> None:
        body = self._read_body()
        try:
            if body is None:
                raise BadRequest("body too large")
            try:
                data = json.loads(body.decode("utf-8")) if body.strip() else None
            except ValueError as exc:
                raise BadRequest(f"body is not JSON: {exc}") from exc
            result = action(self.state, data)
        except (BadRequest, ValueError) as exc:
            self._send_text(400, f"invalid_request: {exc}")
            return
        self._send_json(200, result)

    # -- plumbing -------------------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        """The request body, or None when it is over the limit (the connection is then closed)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, body, "text/plain; charset=utf-8", headers)

    def _send_json(self, status: int, obj: object) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False), "application/json")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        logger.warning("%s %s", self.address_string(), format % args)


_CSP = "default-src 'none'; style-src 'unsafe-inline'"


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping on an injected delay must not block shutdown

    def __init__(self, host: str, port: int, state: ReceiverState) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__((host, port), ReceiverHandler)

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = str(self.socket.getsockname()[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):  # e.g. client gave up during a delay
            logger.debug("client %s went away: %r", client_address, error)
        else:
            logger.warning("error while handling a request from %s", client_address, exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        self.state.store.close()


def make_server(host: str = "127.0.0.1", port: int = 0, store_path: Path | None = None) -> ReceiverServer:
    """Bind (port 0 picks a free port) without serving yet; raises OSError when it cannot bind."""
    store = MessageStore(store_path)
    try:
        return ReceiverServer(host, port, ReceiverState(store))
    except BaseException:
        store.close()
        raise


@contextmanager
def running(host: str = "127.0.0.1", port: int = 0, store_path: Path | None = None) -> Iterator[ReceiverServer]:
    """Serve in a background thread for the duration of the ``with`` block."""
    server = make_server(host, port, store_path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
