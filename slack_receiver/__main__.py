"""CLI: ``python -m slack_receiver --host 127.0.0.1 --port 4580 --store PATH.jsonl [--ready-file PATH]``.

The token and the channels come from ``SLACK_RECEIVER_TOKEN`` and ``SLACK_RECEIVER_CHANNELS`` (environment,
then ``.env``); a bad value exits 2 with one sentence.

With ``--port 0`` the OS picks a port; it is logged on stderr and, with ``--ready-file``, written
(digits only, atomically) to that file once the server listens. SIGTERM/SIGINT: clean stop, exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from consumer import aws
from consumer.config import load_settings
from consumer.errors import ConfigError
from consumer.silence.store import SilenceStore

from .server import make_server
from .settings import ReceiverSettings, load_receiver_settings, parse_channel_names
from .state import ReceiverState

logger = logging.getLogger("slack_receiver")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m slack_receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=4580, help="port to bind; 0 = any free port")
    parser.add_argument("--store", type=Path, help="JSONL file of accepted messages (kept if it exists)")
    parser.add_argument("--ready-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def write_ready_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(str(port), encoding="utf-8")
    os.replace(tmp, path)  # readers never see a half-written file


def with_route_channels(settings: ReceiverSettings) -> ReceiverSettings:
    """Every channel CALI's routes name exists here too (Web API posts to an unknown channel fail)."""
    try:
        routes = load_settings().routes
    except ConfigError:
        return settings  # the consumer will say what is wrong with its configuration
    named = [r.channel for r in routes.all if r.channel]
    return replace(settings, channels=parse_channel_names(",".join([*settings.channels, *named])))


def connect_silences(state: ReceiverState) -> None:
    """The /silences page reads CALI's silences table (the consumer's settings: endpoint, keys, application name)."""
    try:
        cali = load_settings()
    except ConfigError as exc:
        state.silences_problem = f"CALI's configuration is not usable ({exc})"
        return
    state.silences = SilenceStore(aws.client(cali, "dynamodb"), cali.silences_table)
    state.operator = f"{cali.operator} (slack page)"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = with_route_channels(load_receiver_settings())
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2
    try:
        server = make_server(args.host, args.port, args.store, settings)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    connect_silences(server.state)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    logger.info("listening on %s port=%d store=%s channels=%s (Web API at %s/api/)", server.url, server.port,
                args.store, ",".join(settings.channels), server.url)
    try:
        if args.ready_file is not None:
            write_ready_file(args.ready_file, server.port)
        while thread.is_alive() and not stop.wait(0.5):
            pass
        logger.info("stopping")
        return 0 if stop.is_set() else 1
    except OSError as exc:
        logger.error("cannot write ready file %s: %s", args.ready_file, exc)
        return 1
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
