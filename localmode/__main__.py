"""``python -m localmode run``: the whole pipeline without Docker. Ctrl-C stops every process cleanly.

``python -m localmode daemon``: only the KCL MultiLangDaemon, for the current environment (the consumer image's
command in docker compose): render the properties, then exec ``java`` so the daemon gets the container's signals.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from consumer.config import Settings, load_settings
from consumer.errors import ConfigError
from consumer.health import read_heartbeats
from localmode import daemon, paths
from localmode.console import Terminal
from localmode.preflight import StartError, check_ports, require_java
from localmode.resources import seed_leases
from localmode.stack import Stack
from localmode.status import Board, SlackWatch
from localmode.supervisor import GaveUp

log = logging.getLogger("cali.run")

STATUS_EVERY_SECONDS = 2.0


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    stack = Stack(run_dir=args.run_dir, keep_state=True)
    # A bad value stops here, before anything starts: the consumer's, local mode's (in ports()), the generator's.
    settings = stack.settings
    check_ports(stack.ports())
    generator = None if args.no_generator else stack.generator
    require_java()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal was closed
        signal.signal(sig, lambda *_: stopping.set())
    started, started_wall = time.monotonic(), time.time()
    say_how_we_start(stack, fresh=args.fresh)
    try:
        stack.start_emulator()
        resumed = stack.stream_exists()
        # Local mode runs the only worker of its emulator: a first start hands it the leases it would be assigned
        # anyway, without waiting for the KCL's lease assignment (~1.5 s). A resumed table is left as it is.
        shards = stack.create_resources(owners=[settings.worker_id])
        if resumed:
            stack.release_leader_lock()
        log.info("stream %s %s with %d shards", settings.stream_name, "resumed" if resumed else "created",
                 len(shards))
        stack.start_receiver()
        stack.start_daemon()
        if generator is not None:
            stack.start_generator(generator)
        log.info("pipeline up in %.1fs; Ctrl-C stops it (state is kept for the next `make run`)",
                 time.monotonic() - started)
        board, slack = Board(since=started_wall), SlackWatch(since=started_wall)
        while not stopping.wait(STATUS_EVERY_SECONDS):
            for line in stack.supervisor.watch(time.monotonic()):
                log.warning("%s", line)
            beats = read_heartbeats(settings.health_dir)
            now = time.time()
            news = slack.observe(beats, now)
            if news:
                log.warning("%s", news)
            terminal.show(board.update(beats, now, stack.supervisor.restarts()).line(), time.monotonic())
        log.info("stopping: the KCL daemon checkpoints on the way out, then the emulator saves its state")
        return 0
    except GaveUp as exc:
        log.error("%s; stopping", exc)
        return 1
    except (RuntimeError, TimeoutError) as exc:  # a part did not come up (wait_until)
        log.error("could not start: %s (logs in %s); stopping", exc, stack.supervisor.log_dir)
        return 1
    finally:
        stack.stop()
        if stopping.is_set():
            saved = stack.state_file
            log.info("stopped; %s", f"state saved in {saved}" if saved.exists() else "nothing saved")


def say_how_we_start(stack: Stack, fresh: bool) -> None:
    """Fresh start (asked for, or nothing saved), or resume from the saved state: say which."""
    saved = stack.state_file
    if fresh:
        stack.forget_state()
        log.info("fresh start (--fresh): saved state, Fluent Bit's buffer and the receiver's messages discarded")
    elif saved.exists():
        log.info("resuming from the state saved at %s (%s); `make run FRESH=1` starts empty",
                 time.strftime("%H:%M:%S", time.localtime(saved.stat().st_mtime)), saved)
    else:
        log.info("fresh start: no saved state in %s", saved.parent)


def daemon_argv(properties_file: Path | None = None, settings: Settings | None = None) -> list[str]:
    """Render the properties for the current environment; the daemon's command line (CBOR on: LocalStack and AWS
    read it; for moto set ``CBOR_ENABLED=false``, which the Java SDK reads itself). No AWS call."""
    settings = settings or load_settings()
    target = properties_file or paths.RUN / f"{settings.worker_id}.properties"
    props = daemon.write_properties(settings, target)
    log.info("KCL worker %s on stream %s (application %s), properties %s", settings.worker_id,
             settings.stream_name, settings.app_name, props)
    return daemon.command(props, cbor=True)


def seed_first_leases(settings: Settings) -> None:
    """On the very first start (no lease table yet) seed it, as local mode does, to skip the KCL's random 1-30 s
    wait on an empty table. Best effort: the KCL creates the table itself if this fails."""
    try:
        kinesis = boto3.client("kinesis", region_name=settings.region, endpoint_url=settings.endpoint_url)
        dynamodb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)
        shards = kinesis.describe_stream(StreamName=settings.stream_name)["StreamDescription"]["Shards"]
        seed_leases(dynamodb, settings.app_name, shards)
    except (BotoCoreError, ClientError) as exc:
        log.warning("could not seed the lease table (%s); the KCL will create it", exc)


def run_daemon(args: argparse.Namespace) -> int:
    """``--print`` only renders and prints (no table, no lease). Otherwise: the local receiver's webhook when none
    is configured (``--default-webhook``, compose), the lease table seeded on a first start, then exec java."""
    settings = load_settings()
    if settings.slack_webhook_url is None and args.default_webhook:
        os.environ["SLACK_WEBHOOK_URL"] = args.default_webhook  # the processors (java's children) read it
        log.info("no SLACK_WEBHOOK_URL set: alerts go to %s", args.default_webhook)
    argv = daemon_argv(args.properties_file, settings)
    if args.print:
        print(" ".join(argv))  # noqa: T201 (the requested output)
        return 0
    seed_first_leases(settings)
    os.execvp(argv[0], argv)  # replaces this process: SIGTERM reaches the daemon, which checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localmode", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="emulator + resources + Slack receiver + KCL daemon + generator")
    run_parser.add_argument("--no-generator", action="store_true", help="do not start the log generator")
    run_parser.add_argument("--run-dir", type=Path, default=paths.RUN, help="where state, logs and the receiver's "
                            "messages live (default .run/)")
    run_parser.add_argument("--fresh", action="store_true", help="forget the saved state (stream, leases, "
                            "checkpoints, CALI's state table, Fluent Bit's buffer) and start empty")
    daemon_parser = sub.add_parser("daemon", help="only the KCL daemon for the current environment (exec java)")
    daemon_parser.add_argument("--properties-file", type=Path, help="where to render the properties "
                               "(default .run/<workerId>.properties)")
    daemon_parser.add_argument("--print", action="store_true", help="print the command instead of running it "
                               "(touches nothing: no table is created, no lease seeded)")
    daemon_parser.add_argument("--default-webhook", metavar="URL", help="where alerts go when SLACK_WEBHOOK_URL is "
                               "empty (compose: the local Slack receiver)")
    args = parser.parse_args()
    terminal = Terminal()
    logging.basicConfig(level=logging.INFO, handlers=[terminal.log_handler()])
    try:
        if args.command == "daemon":
            raise SystemExit(run_daemon(args))
        with terminal:
            raise SystemExit(run(args, terminal))
    except (ConfigError, StartError) as exc:
        sys.stderr.write(f"cali: {exc}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
