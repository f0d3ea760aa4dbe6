"""HTTP handler and server: a fake Slack (incoming webhooks and a Web API subset) plus a control API for tests."""

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
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from consumer.config import Secret
from consumer.silence.store import SilenceNotFound

from . import page, webapi
from .channels import WEBHOOK_PREFIX, Channel, Directory
from .faults import WEBHOOK
from .payload import PayloadError, parse_webhook_body
from .settings import DEFAULT_CHANNELS, DEFAULT_TOKEN, ReceiverSettings
from .silences import CSP as SILENCES_CSP
from .silences import EXPIRE_PATH, render_silences
from .state import CONTROL_POSTS, ReceiverState
from .store import MessageStore
from .workspace import Workspace

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
DEFAULT_SETTINGS = ReceiverSettings(token=Secret(DEFAULT_TOKEN), channels=(DEFAULT_CHANNELS,))


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
        url = urlsplit(self.path)
        path = url.path
        if path.startswith(webapi.API_PREFIX):
            self._api(path.removeprefix(webapi.API_PREFIX), url.query)
        elif path == "/":
            self._send(200, page.SHELL, "text/html; charset=utf-8", {"Content-Security-Policy": page.CSP})
        elif path == "/_page/state":
            query = parse_qs(url.query)
            channel, since = (query.get(name, [""])[0] for name in ("channel", "since"))
            self._send_json(200, page.state(self.state.workspace, channel, since))
        elif path.startswith("/static/") and (found := page.static_file(path.removeprefix("/static/"))):
            self._send(200, found[1], found[0])
        elif path == "/healthz":
            self._send_text(200, "ok")
        elif path == "/silences":
            self._silences_page()
        elif path == "/_control/messages":
            self._messages(url.query)
        elif path == "/_control/thread":
            self._thread(url.query)
        elif path == "/_control/faults":
            self._send_json(200, self.state.faults.status())
        else:
            self._send_text(404, "not_found")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path.startswith(WEBHOOK_PREFIX):
            self._webhook(path)
        elif path.startswith(webapi.API_PREFIX):
            self._api(path.removeprefix(webapi.API_PREFIX), url.query)
        elif path in CONTROL_POSTS:
            self._control(CONTROL_POSTS[path])
        elif path == EXPIRE_PATH:
            self._expire_silence()
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
            fault = state.faults.next_response(WEBHOOK)
            if fault.delay > 0:
                state.sleep(fault.delay)
            if fault.status is not None:  # Slack refused it: answer the fault, store nothing
                status, text, headers = fault.status, fault.webhook_body(), fault.headers()
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
        workspace = self.state.workspace
        workspace.post(workspace.directory.for_webhook(path), received_at, path, payload)
        return 200, "ok"

    # -- Web API --------------------------------------------------------------------------------
    def _api(self, method: str, query: str) -> None:
        state = self.state
        received_at = state.wall_clock()
        path = webapi.API_PREFIX + method
        state.count_attempt()
        body = self._read_body() if self.command == "POST" else b""
        headers: dict[str, str] = {}
        if body is None:
            status, answer = 413, {"ok": False, "error": "request_too_large"}
        else:
            fault = state.faults.next_response(method)
            if fault.delay > 0:
                state.sleep(fault.delay)
            if fault.status is not None:
                status, answer, headers = fault.status, {"ok": False, "error": fault.api_error()}, fault.headers()
            else:
                try:
                    args = webapi.parse_args(query, body, self.headers.get("Content-Type"))
                except webapi.ApiError as exc:
                    status, answer = exc.status, {"ok": False, "error": exc.code}
                else:
                    request = webapi.Request(args, received_at, path, self._base_url() + webapi.API_PREFIX)
                    status, answer = webapi.call(state.workspace, method, request,
                                                 self.headers.get("Authorization"), state.token)
        state.log_attempt(received_at, path, status)
        logger.info("%s %s -> %d %s", self.command, path, status, answer.get("error", "ok"))
        self._send_json(status, answer, headers)

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else cast(ReceiverServer, self.server).url

    # -- control reads --------------------------------------------------------------------------
    def _channel_arg(self, query: str) -> tuple[bool, Channel | None]:
        """(found, channel): no ``channel`` argument means all channels."""
        ref = parse_qs(query).get("channel", [""])[0]
        if not ref:
            return True, None
        channel = self.state.workspace.directory.find(ref)
        return channel is not None, channel

    def _messages(self, query: str) -> None:
        found, channel = self._channel_arg(query)
        if not found:
            self._send_json(404, {"error": "channel_not_found"})
        else:
            self._send_json(200, self.state.snapshot(channel))

    def _thread(self, query: str) -> None:
        found, channel = self._channel_arg(query)
        ts = parse_qs(query).get("ts", [""])[0]
        workspace = self.state.workspace
        thread = workspace.thread(channel or workspace.directory.default, ts) if found else []
        if not thread:
            self._send_json(404, {"error": "thread_not_found"})
        else:
            self._send_json(200, {"messages": [m.view() for m in thread]})

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
    # -- silences (CALI's, in DynamoDB) -----------------------------------------------------------
    def _silences_page(self) -> None:
        state = self.state
        silences, problem = None, state.silences_problem
        if state.silences is not None:
            try:
                silences = state.silences.all()
            except (BotoCoreError, ClientError) as exc:
                problem = f"the silences table cannot be read ({exc})"
        html = render_silences(silences, state.wall_clock(), problem)
        self._send(200, html, "text/html; charset=utf-8", {"Content-Security-Policy": SILENCES_CSP})

    def _expire_silence(self) -> None:
        body = self._read_body() or b""
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            self._send_text(403, "cross_origin")  # only the page itself may expire a silence
            return
        silence_id = parse_qs(body.decode("utf-8", "replace")).get("id", [""])[0]
        state = self.state
        if state.silences is None or not silence_id:
            self._send_text(400, "no_silence")
            return
        try:
            state.silences.expire(silence_id, state.operator, state.wall_clock())
            logger.info("silence %s expired from the page", silence_id)
        except SilenceNotFound:
            pass  # already ended: the page shows it so
        except (BotoCoreError, ClientError) as exc:
            self._send_text(502, f"silences table: {exc}")
            return
        self.send_response(303)
        self.send_header("Location", "/silences")
        self.send_header("Content-Length", "0")
        self.end_headers()

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
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, body, "text/plain; charset=utf-8", headers)

    def _send_json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False), "application/json; charset=utf-8", headers)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        logger.warning("%s %s", self.address_string(), format % args)


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
        self.state.workspace.store.close()


def make_server(host: str = "127.0.0.1", port: int = 0, store_path: Path | None = None,
                settings: ReceiverSettings = DEFAULT_SETTINGS) -> ReceiverServer:
    """Bind (port 0 picks a free port) without serving yet; raises OSError when it cannot bind."""
    store = MessageStore(store_path)
    try:
        workspace = Workspace(Directory(settings.channels), store)
        return ReceiverServer(host, port, ReceiverState(workspace, settings.token.value))
    except BaseException:
        store.close()
        raise


@contextmanager
def running(host: str = "127.0.0.1", port: int = 0, store_path: Path | None = None,
            settings: ReceiverSettings = DEFAULT_SETTINGS) -> Iterator[ReceiverServer]:
    """Serve in a background thread for the duration of the ``with`` block."""
    server = make_server(host, port, store_path, settings)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
