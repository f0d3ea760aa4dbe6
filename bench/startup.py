"""Start-up: seconds from starting the pipeline to the first alert at the Slack receiver.

cold: what ``python -m localmode run`` does, from nothing (installed dependencies): a new emulator (moto keeps its
      state in memory, so every ``make run`` is a cold start), the stream and seeded lease table of a fresh
      application name, the Slack receiver, the KCL daemon. A few ERROR lines are put into the stream right after
      it exists, so the first alert does not wait for the generator.
warm: the daemon alone is SIGTERM'd and started again with the same workerId (emulator and receiver keep running);
      new ERROR lines are put while it is down; timed from the new ``java`` start to their first alert.

Run: ``python -m bench.startup [--runs 3]``.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from dataclasses import dataclass, field

from bench.common import (
    Receiver,
    Summary,
    base_parser,
    error_record,
    mean,
    new_run_id,
    new_stack,
    put_datas,
    running,
    say,
    setup_logging,
    table,
)
from localmode.stack import Stack
from localmode.supervisor import wait_for

ALERT_TIMEOUT = 180.0
LINES = 3
# The throttle is not what is measured: 6 runs x 3 lines would spend the 5/min budget and hold alerts in a digest.
ENV = {"THROTTLE_MAX_PER_MINUTE": "100000"}


@dataclass
class Cold:
    emulator: float
    resources: float
    receiver: float
    daemon_to_alert: float
    total: float
    phases: dict[str, float] = field(default_factory=dict)


PHASES = (  # (name, marker in the daemon's log); the first line at or after the daemon's start counts
    ("KCL initialised", "Initialization complete. Starting worker loop."),
    ("leases held", "New leases assigned to worker"),
    ("shard consumers", "Created new shardConsumer"),
    ("processors initialised", '"msg": "processing shard'),
)


def _line_time(line: str, day: datetime.date) -> float | None:
    """Epoch seconds of a daemon log line: logback's ``HH:MM:SS.mmm`` (local time) or CALI's JSON ``ts``."""
    try:
        if line.startswith("{"):
            return datetime.datetime.fromisoformat(str(json.loads(line)["ts"])).timestamp()
        clock = datetime.time.fromisoformat(line[:12])
    except (ValueError, KeyError):
        return None
    return datetime.datetime.combine(day, clock).timestamp()


def phases(stack: Stack, since: float) -> dict[str, float]:
    """Seconds from ``since`` (the daemon's start) to the first log line of each phase after it."""
    day = datetime.date.today()
    found: dict[str, float] = {}
    for path in stack.supervisor.log_dir.glob("kcl-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            for name, marker in PHASES:
                if name in found or marker not in line:
                    continue
                if name == "leases held" and ", count : 0," in line:
                    continue
                at = _line_time(line, day)
                if at is not None and at >= since:
                    found[name] = at - since
    return found


def put_errors(stack: Stack, marker: str) -> None:
    datas = [error_record(f"{marker}-svc{i}", f"{marker} start-up probe {i}") for i in range(LINES)]
    put_datas(stack.client("kinesis"), stack.settings.stream_name, datas)


def first_alert(receiver: Receiver, marker: str) -> float:
    found = wait_for(lambda: receiver.texts_with(marker), bool, ALERT_TIMEOUT, f"the first alert of {marker}")
    return min(at for at, _ in found)


def cold_run() -> Cold:
    stack = new_stack("startup", **ENV)
    marker = f"cold-{new_run_id()}"
    with running(stack):
        t0 = time.time()
        stack.start_emulator()
        t_emulator = time.time()
        stack.create_resources(owners=[stack.settings.worker_id])  # as `localmode run` does
        put_errors(stack, marker)
        t_resources = time.time()
        stack.start_receiver()
        t_receiver = time.time()
        stack.start_daemon()
        alert = first_alert(Receiver.of(stack), marker)
        found = phases(stack, t_receiver)
    return Cold(t_emulator - t0, t_resources - t_emulator, t_receiver - t_resources, alert - t_receiver, alert - t0,
                found)


def warm_runs(runs: int) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """(restart -> first alert, SIGTERM -> daemon exited, phases) per run, on one emulator and receiver."""
    stack = new_stack("startup", **ENV)
    restarts, stops, found = [], [], []
    with running(stack):
        stack.start_emulator()
        stack.create_resources()
        stack.start_receiver()
        receiver = Receiver.of(stack)
        marker = f"warmup-{new_run_id()}"
        put_errors(stack, marker)
        daemon = stack.start_daemon()
        first_alert(receiver, marker)
        for i in range(runs):
            time.sleep(2.0)  # let the processors checkpoint what they alerted
            t_stop = time.time()
            stack.supervisor.stop(daemon)  # SIGTERM: shutdown_requested, checkpoint, exit
            stops.append(time.time() - t_stop)
            marker = f"warm-{new_run_id()}"
            put_errors(stack, marker)
            t0 = time.time()
            daemon = stack.start_daemon()
            restarts.append(first_alert(receiver, marker) - t0)
            found.append(phases(stack, t0))
            say(f"warm run {i + 1}: {restarts[-1]:.2f} s (stop took {stops[-1]:.1f} s)")
    return restarts, stops, found


def run(runs: int = 3) -> Summary:
    colds = []
    for i in range(runs):
        colds.append(cold_run())
        say(f"cold run {i + 1}: {colds[-1].total:.2f} s")
    warms, stops, warm_phases = warm_runs(runs)

    print("\n== start-up: pipeline start -> first alert at the receiver ==")
    rows: list[list[object]] = [[f"cold {i + 1}", f"{c.total:.2f}", f"{c.emulator:.2f}", f"{c.resources:.2f}",
                                 f"{c.receiver:.2f}", f"{c.daemon_to_alert:.2f}"] for i, c in enumerate(colds)]
    rows.append(["cold mean", f"{mean(c.total for c in colds):.2f}", f"{mean(c.emulator for c in colds):.2f}",
                 f"{mean(c.resources for c in colds):.2f}", f"{mean(c.receiver for c in colds):.2f}",
                 f"{mean(c.daemon_to_alert for c in colds):.2f}"])
    print(table(["run", "total s", "emulator s", "stream+tables s", "receiver s", "daemon->alert s"], rows))
    print()
    wrows: list[list[object]] = [[f"warm {i + 1}", f"{w:.2f}", f"{s:.2f}"]
                                 for i, (w, s) in enumerate(zip(warms, stops, strict=True))]
    wrows.append(["warm mean", f"{mean(warms):.2f}", f"{mean(stops):.2f}"])
    print(table(["run", "restart->alert s", "SIGTERM->exit s"], wrows))
    print("\nwhere the daemon's part goes: seconds from starting `java` to the first log line of each phase "
          "(daemon log), then to the alert")
    names = [name for name, _ in PHASES]
    prows: list[list[object]] = []
    for label, found, total in [*((f"cold {i + 1}", c.phases, c.daemon_to_alert) for i, c in enumerate(colds)),
                                *((f"warm {i + 1}", p, w) for i, (p, w) in enumerate(zip(warm_phases, warms,
                                                                                           strict=True)))]:
        prows.append([label, *(f"{found[n]:.2f}" if n in found else "-" for n in names), f"{total:.2f}"])
    print(table(["run", *names, "alert"], prows))
    return [(f"cold start -> first alert (mean of {runs})", f"{mean(c.total for c in colds):.2f} s "
             f"(each {', '.join(f'{c.total:.2f}' for c in colds)})"),
            (f"warm daemon restart -> first alert (mean of {runs})",
             f"{mean(warms):.2f} s (each {', '.join(f'{w:.2f}' for w in warms)})")]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3, help="cold and warm runs each (default 3)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.runs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
