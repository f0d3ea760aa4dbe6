"""``python -m localmode run``: the whole pipeline without Docker. Ctrl-C stops every process cleanly."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from localmode.stack import Stack

log = logging.getLogger("cali.run")


def run(args: argparse.Namespace) -> int:
    stack = Stack()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    started = time.monotonic()
    try:
        stack.start_emulator()
        shards = stack.create_resources()
        log.info("stream %s ready with %d shards", stack.settings.stream_name, len(shards))
        stack.start_receiver()
        kcl = stack.start_daemon()
        if not args.no_generator:
            stack.start_generator()
        log.info("pipeline up in %.1fs; Ctrl-C stops it", time.monotonic() - started)
        while not stopping.wait(1.0):
            dead = [c.name for c in stack.supervisor.children if not c.alive()]
            if dead:
                log.error("%s exited; stopping (see %s)", ", ".join(dead), stack.supervisor.log_dir)
                return 1
        log.info("stopping: the KCL daemon checkpoints on the way out")
        del kcl
        return 0
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localmode", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="emulator + resources + Slack receiver + KCL daemon + generator")
    run_parser.add_argument("--no-generator", action="store_true", help="do not start the log generator")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
