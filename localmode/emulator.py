"""The local AWS endpoint: moto's Kinesis + DynamoDB served by hypercorn, standing in for LocalStack.

Why this shape (measured, see DESIGN.md):
- the KCL speaks HTTP/2 to Kinesis, which werkzeug's moto_server cannot; hypercorn serves h2c on the plain port;
- moto's backends are not thread-safe: one lock serialises every request, or concurrent PutRecords lose records;
- Fluent Bit only speaks HTTPS, so the same process also serves a TLS port with a CA we generate.

With ``--state-file`` the backends are restored from it at start and saved to it periodically and at stop
(``localmode.snapshot``: what survives what).

Run: ``python -m localmode.emulator --port 4566 --tls-port 4567 --tls-dir .run/tls``
(``--state-file .run/state/emulator.pickle`` to keep the state).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from localmode import moto_patches, snapshot
from localmode.tls import ensure_tls_files

log = logging.getLogger("cali.emulator")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Serialised:
    """Run one request at a time through the wrapped WSGI app, response body included."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.journal: snapshot.Journal | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            if self.journal is None or not snapshot.changes_state(environ):
                return list(self._app(environ, start_response))
            body = environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(body)
            statuses: list[str] = []

            def seen(status: str, headers: Any, *exc_info: Any) -> Any:
                statuses.append(status)
                return start_response(status, headers, *exc_info)

            answer = list(self._app(environ, seen))
            if statuses and statuses[-1].startswith("2"):
                self.journal.record(environ, body)  # before the answer leaves: what a client was told is kept
            return answer

    def replay(self, environs: Iterable[dict[str, Any]]) -> int:
        """Apply journaled requests again, in order (at start, before serving)."""
        count = 0
        for environ in environs:
            list(self._app(environ, lambda status, headers, *exc_info: None))
            count += 1
        return count

    def lock(self) -> threading.Lock:
        """Held, no request runs (a snapshot is one consistent instant)."""
        return self._lock


def moto_app(retention_seconds: float = moto_patches.DEFAULT_RETENTION_SECONDS) -> WSGIApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_patches.apply(retention_seconds)
    app: WSGIApp = DomainDispatcherApplication(create_backend_app)
    return app


def hypercorn_config(host: str, port: int, tls_port: int | None, tls_dir: Path) -> Config:
    config = Config()
    if tls_port is None:
        config.bind = [f"{host}:{port}"]
    else:  # hypercorn: with a certificate, ``bind`` is TLS and ``insecure_bind`` stays plain (h2c)
        files = ensure_tls_files(tls_dir)
        config.bind = [f"{host}:{tls_port}"]
        config.insecure_bind = [f"{host}:{port}"]
        config.certfile = str(files.cert)
        config.keyfile = str(files.key)
    config.accesslog = None
    config.errorlog = logging.getLogger("cali.emulator.hypercorn")
    config.keep_alive_timeout = 75
    config.wsgi_max_body_size = 32 * 1024 * 1024
    return config


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """At stop, hypercorn cancels the connections still open (the KCL keeps some); asyncio's stream callback then
    reports each cancellation as an error with a traceback. A cancelled connection at stop is no error."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        log.debug("connection cancelled at stop")
        return
    loop.default_exception_handler(context)


async def _serve(config: Config, app: Serialised) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancellation)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(app, config, mode="wsgi", shutdown_trigger=stop.wait)


def run(config: Config, retention_seconds: float, state_file: Path | None,
        snapshot_every: float = snapshot.DEFAULT_INTERVAL_SECONDS) -> None:
    app = Serialised(moto_app(retention_seconds))
    saver = None
    if state_file is not None:
        journal = state_file.with_suffix(".journal")
        existed = state_file.exists()
        restored = snapshot.load(state_file)
        if restored is None and existed and journal.exists():  # an unusable snapshot's journal cannot apply either
            journal.replace(journal.with_suffix(".unusable-journal"))
        if restored is None:
            log.info("no saved state in %s: starting empty", state_file)
        else:
            log.info("restored state saved at %s: %d streams, %d tables",
                     time.strftime("%H:%M:%S", time.localtime(restored.saved_at)), restored.streams, restored.tables)
        replayed = app.replay(snapshot.journaled(journal))
        if replayed:
            log.info("replayed %d requests journaled after that snapshot (the last stop was not clean)", replayed)
        app.journal = snapshot.Journal(journal)
        saver = snapshot.Saver(state_file, app.lock, snapshot_every, app.journal)
        saver.save()
        saver.start()
    try:
        asyncio.run(_serve(config, app))
    finally:
        if saver is not None:
            saver.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localmode.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--tls-port", type=int, default=None)
    parser.add_argument("--tls-dir", type=Path, default=Path(".run/tls"))
    parser.add_argument("--state-file", type=Path, default=None,
                        help="restore the backends from this file at start, save them to it while running and at stop")
    parser.add_argument("--snapshot-seconds", type=float, default=snapshot.DEFAULT_INTERVAL_SECONDS)
    parser.add_argument("--retention-minutes", type=float, default=moto_patches.DEFAULT_RETENTION_SECONDS / 60,
                        help="Kinesis records older than this are dropped (memory stays bounded; Kinesis: 24 h)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = hypercorn_config(args.host, args.port, args.tls_port, args.tls_dir)
    log.info("serving moto on http://%s:%d (h2c)%s", args.host, args.port,
             f" and https://{args.host}:{args.tls_port}" if args.tls_port else "")
    run(config, args.retention_minutes * 60, args.state_file, args.snapshot_seconds)


if __name__ == "__main__":
    main()
