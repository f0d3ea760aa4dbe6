"""``python -m generator``: paced realistic log lines to stdout, Fluent Bit's forward input, or Kinesis.

Defaults come from the environment when set (so a container is configured by env alone):
GENERATOR_RATE, GENERATOR_ERROR_RATIO, GENERATOR_SEED, KINESIS_STREAM_NAME (alias CALI_STREAM_NAME),
FLUENT_BIT_FORWARD_PORT, LOG_LEVEL.
An empty value counts as unset. Command-line arguments win. SIGTERM / SIGINT: flush what is pending, close, exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType

from botocore.exceptions import ClientError

from consumer.config import load_generator_settings
from consumer.errors import ConfigError

from .lines import DEFAULT_SERVICES, LogLineFactory, LogRecord
from .outputs import MAX_RECORDS_PER_PUT, ForwardOutput, KinesisOutput, Output, StdoutOutput, docker_fields

log = logging.getLogger("generator")

DEFAULT_STREAM = "cali-log-stream"
STATUS_SERVICE = "log-generator"
DEFAULT_KINESIS_BATCH_INTERVAL = 0.2
MAX_LAG_SECONDS = 1.0  # further behind schedule than this: restart the schedule instead of bursting


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _ratio(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _port(text: str) -> int:
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), got {text!r}")
    return value


def _services(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names:
        raise argparse.ArgumentTypeError("at least one service name is needed")
    return names


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The CLI; ``env`` supplies defaults (GENERATOR_RATE, GENERATOR_ERROR_RATIO, GENERATOR_SEED, ...)."""
    parser = argparse.ArgumentParser(
        prog="python -m generator", description="Generate realistic application log lines."
    )

    try:
        defaults = load_generator_settings(env)  # GENERATOR_*: read where all configuration is read
    except ConfigError as exc:
        parser.error(f"environment: {exc}")

    def env_default(name: str, fallback: object, convert: Callable[[str], object]) -> object:
        raw = env.get(name, "").strip()
        if not raw:
            return fallback
        try:
            return convert(raw)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"environment variable {name}: {exc}")

    parser.add_argument(
        "--rate", type=_non_negative_float, default=defaults.rate,
        help="lines per second; 0 = as fast as possible (env GENERATOR_RATE, default 5)",
    )
    parser.add_argument(
        "--error-ratio", type=_ratio, default=defaults.error_ratio,
        help="fraction of ERROR+WARN lines, split 60/40 (env GENERATOR_ERROR_RATIO, default 0.2)",
    )
    parser.add_argument(
        "--seed", type=_int, default=defaults.seed,
        help="random seed for a reproducible sequence (env GENERATOR_SEED, default random)",
    )
    parser.add_argument(
        "--count", type=_non_negative_int, default=0, help="lines to write, then exit; 0 = forever (default)"
    )
    parser.add_argument(
        "--output", choices=("stdout", "forward", "kinesis"), default="stdout",
        help="stdout: JSON lines; forward: Docker fluentd-driver records to Fluent Bit's forward input; "
        "kinesis: Fluent Bit's record bytes straight into the stream (default stdout)",
    )
    parser.add_argument(
        "--forward-host", default="127.0.0.1", help="Fluent Bit forward input host for --output forward"
    )
    parser.add_argument(
        "--forward-port", type=_port, default=env_default("FLUENT_BIT_FORWARD_PORT", 24224, _port),
        help="Fluent Bit forward input port for --output forward (env FLUENT_BIT_FORWARD_PORT, default 24224)",
    )
    parser.add_argument(
        "--stream",
        default=(env.get("KINESIS_STREAM_NAME", "") or env.get("CALI_STREAM_NAME", "")).strip() or DEFAULT_STREAM,
        help=f"Kinesis stream for --output kinesis (env KINESIS_STREAM_NAME, default {DEFAULT_STREAM})",
    )
    parser.add_argument(
        "--batch-interval", type=_non_negative_float, default=None,
        help=f"seconds to collect lines before one write; default {DEFAULT_KINESIS_BATCH_INTERVAL} for kinesis, "
        "0 (every line at once) for stdout",
    )
    parser.add_argument(
        "--services", type=_services, default=DEFAULT_SERVICES,
        help=f"comma-separated service names (default {','.join(DEFAULT_SERVICES)})",
    )
    parser.add_argument("--with-seq", action="store_true", help='add "seq": 1, 2, ... to every line')
    parser.add_argument(
        "--status-log", choices=("text", "json"), default="text",
        help="the generator's own status lines on stderr: text, or json: lines of the log it produces (service "
        "log-generator), for where stderr joins that log, as with Docker's logging driver (default text)",
    )
    parser.add_argument(
        "--log-level", default=env.get("LOG_LEVEL", "").strip() or "INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper,
        help="stderr logging level (env LOG_LEVEL, default INFO)",
    )
    return parser


def run(
    factory: LogLineFactory,
    output: Output,
    *,
    rate: float,
    count: int = 0,
    batch_interval: float = 0.0,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_batch: int = MAX_RECORDS_PER_PUT,
) -> int:
    """Write ``count`` lines (0 = until ``stop``) paced to ``rate`` per second; returns how many were written.

    Lines are collected for up to ``batch_interval`` seconds (or ``max_batch`` lines) per ``output.write``.
    Whatever is pending is written before returning, also when ``stop`` is set. ``output`` is not closed.
    """
    stop = stop if stop is not None else threading.Event()
    pending: list[LogRecord] = []
    written = 0
    produced = 0
    start = last_flush = clock()

    def flush() -> None:
        nonlocal written, last_flush
        if pending:
            output.write(pending)
            written += len(pending)
            pending.clear()
        last_flush = clock()

    while not stop.is_set() and (count == 0 or produced < count):
        now = clock()
        if pending and now - last_flush >= batch_interval:
            flush()
            continue
        if rate > 0:
            due = start + produced / rate
            if now < due:
                wake = min(due, last_flush + batch_interval) if pending else due
                stop.wait(max(0.0, wake - now))
                continue
            if now - due > MAX_LAG_SECONDS:
                log.debug("%.1fs behind schedule; restarting the schedule", now - due)
                start = now - produced / rate
        pending.append(factory.line())
        produced += 1
        if len(pending) >= max_batch or batch_interval <= 0:
            flush()
    flush()
    return written


class StatusLineFormatter(logging.Formatter):
    """The generator's status as a line of the log it produces (``--status-log json``). In compose Docker's logging
    driver takes stderr to Fluent Bit with stdout: there the status is an ordinary JSON record of service
    ``log-generator`` (INFO, so it never alerts) instead of a non-JSON text record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname, "service": STATUS_SERVICE, "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = {"type": record.exc_info[0].__name__, "stack": self.formatException(record.exc_info)}
        return json.dumps(line, separators=(",", ":"))


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: flushing and exiting", signal.Signals(signum).name)
        stop.set()
        # A second signal acts as usual (e.g. a stuck flush can still be interrupted).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _make_output(args: argparse.Namespace) -> Output:
    if args.output == "stdout":
        return StdoutOutput()
    if args.output == "forward":
        return ForwardOutput(args.forward_host, args.forward_port)
    import boto3  # only needed here; region, credentials and AWS_ENDPOINT_URL are boto3's own business

    # Shaped as compose's Fluent Bit path writes the container's lines (container_id, container_name, source).
    return KinesisOutput(args.stream, boto3.client("kinesis"), container=docker_fields())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(os.environ).parse_args(argv)
    status = logging.StreamHandler(sys.stderr)
    status.setFormatter(StatusLineFormatter() if args.status_log == "json"
                        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[status])
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))
    batch_interval: float = args.batch_interval
    if batch_interval is None:
        batch_interval = DEFAULT_KINESIS_BATCH_INTERVAL if args.output == "kinesis" else 0.0

    stop = threading.Event()
    _install_signal_handlers(stop)
    factory = LogLineFactory(args.seed, args.error_ratio, args.services, with_seq=args.with_seq)
    target = {"kinesis": f"Kinesis stream {args.stream}", "stdout": "stdout",
              "forward": f"Fluent Bit forward input {args.forward_host}:{args.forward_port}"}[args.output]
    log.info(
        "generating to %s: rate=%s/s error_ratio=%s seed=%s count=%s",
        target, args.rate, args.error_ratio, args.seed, args.count or "forever",
    )
    output = _make_output(args)
    try:
        written = run(factory, output, rate=args.rate, count=args.count, batch_interval=batch_interval, stop=stop)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except ClientError as exc:  # e.g. no such stream, bad credentials: the message says it all
        log.error("generator failed: %s", exc)
        return 1
    except Exception:
        log.exception("generator failed")
        return 1
    finally:
        with contextlib.suppress(BrokenPipeError, ValueError):
            output.close()
    log.info("done: %d lines written", written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
