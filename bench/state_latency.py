"""State latency: what the shared throttle and the idempotency records add to each delivered alert.

Per alert, the calls ``Alerter._alert`` makes on its ``AlertState`` for a new alert that goes out, in its order
(the bench follows whichever interface the state has): [``delivered_through`` / ``was_delivered``: already sent?
Since the per-shard high-water mark (``ended_through``, read once per processor) a new event skips it],
[``has_budget``: local], ``claim_fingerprint`` (dedup), ``try_acquire`` (the application-wide throttle), then the
idempotency record: the send claim ``begin_send`` + ``end_send`` (``mark_delivered`` before send claims). Timed for
``--alerts`` alerts (after 20 not counted) on ``MemoryState`` and on ``DynamoState`` against the emulator, once
idle and once while a KCL daemon polls the stream's 2 (empty) shards, as in the running pipeline (moto serialises
requests). The Slack post between ``begin_send`` and ``end_send`` is not part of it.

The alerts are 13 s apart on the clock handed to the state: with the real limit (5 a minute) every acquire
succeeds and the throttle item holds its real size (4-5 send times). Each alert has its own fingerprint.

Run: ``python -m bench.state_latency [--alerts 500]``.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import (
    Summary,
    base_parser,
    mean,
    new_stack,
    percentile,
    running,
    say,
    setup_logging,
    table,
)
from consumer.state.dynamodb import DynamoState, ensure_table
from consumer.state.memory import MemoryState

WARMUP = 20
LIMIT = 5
SPACING_SECONDS = 13.0


def delivered_path(state: Any, key: str, fingerprint: str, now: float, webhook: str) -> list[tuple[str, Any]]:
    """The state calls of one alert that goes out, in ``Alerter._alert``'s order, as (name, thunk) pairs. Follows
    the interface the state has: send claims (``begin_send`` / ``end_send``) or the older ``mark_delivered``."""
    owner = "bench-owner"
    steps: list[tuple[str, Any]] = []
    if hasattr(state, "ended_through"):
        pass  # a per-shard high-water mark, read once per processor: a new event needs no delivered_through read
    elif hasattr(state, "delivered_through"):
        steps.append(("delivered_through", lambda: state.delivered_through(key) is None))
    else:
        steps.append(("was_delivered", lambda: not state.was_delivered(key)))
    if hasattr(state, "has_budget"):
        steps.append(("has_budget", lambda: state.has_budget(webhook, now)))  # local: no request
    steps.append(("claim_fingerprint", lambda: state.claim_fingerprint(fingerprint, key, now, 300.0)))
    steps.append(("try_acquire", lambda: state.try_acquire(webhook, now)))
    if hasattr(state, "begin_send"):
        steps.append(("begin_send", lambda: state.begin_send(key, owner, now, 60.0)[0]))
        steps.append(("end_send", lambda: state.end_send(key, owner, now, key) is None))
    else:
        steps.append(("mark_delivered", lambda: state.mark_delivered(key, now, key) is None))
    return steps


def time_alerts(state: Any, n: int, webhook: str = "main") -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    base = time.time()
    run = f"{base:.0f}"
    for i in range(WARMUP + n):
        now = base + i * SPACING_SECONDS
        key = f"shardId-{webhook}/{run}{i:06d}/0/0"
        spent: list[tuple[str, float]] = []
        for name, step in delivered_path(state, key, f"bench-{run}-{i}", now, webhook):
            t0 = time.perf_counter()
            ok = step()
            spent.append((name, time.perf_counter() - t0))
            if not ok:
                raise RuntimeError(f"alert {i}: {name} did not take the delivered path")
        if i >= WARMUP:
            for name, seconds in spent:
                timings.setdefault(name, []).append(seconds)
            timings.setdefault("total", []).append(sum(seconds for _, seconds in spent))
    return timings


def acquire_cost(client: Any, table_name: str, sizes: tuple[int, ...] = (5, 100, 300, 1000),
                 reps: int = 30) -> list[list[object]]:
    """try_acquire's cost against how many send times its throttle item holds: min(THROTTLE_MAX_PER_MINUTE, messages
    sent in the last 60 s). Filled through try_acquire itself (its item format is its own business)."""
    rows: list[list[object]] = []
    base = time.time()
    for size in sizes:
        state = DynamoState(client, table_name, size + reps + 1)  # never refused
        webhook = f"fill-{size}-{base:.0f}"
        for i in range(size):
            state.try_acquire(webhook, base + i * 0.001)
        spent = []
        for j in range(reps):
            t0 = time.perf_counter()
            if not state.try_acquire(webhook, base + (size + j) * 0.001):
                raise RuntimeError("refused")
            spent.append(time.perf_counter() - t0)
        rows.append([size, f"{percentile(spent, 50) * 1000:.1f}", f"{percentile(spent, 95) * 1000:.1f}"])
    return rows


def run(alerts: int = 500) -> Summary:
    results: dict[str, dict[str, list[float]]] = {"MemoryState": time_alerts(MemoryState(LIMIT), alerts)}
    stack = new_stack("state")
    with running(stack):
        stack.start_emulator()
        stack.create_resources()
        client = stack.client("dynamodb")
        table_name = stack.settings.state_table
        ensure_table(client, table_name)
        say("DynamoState, emulator idle")
        results["DynamoState (emulator idle)"] = time_alerts(DynamoState(client, table_name, LIMIT), alerts,
                                                             webhook="idle")
        say("try_acquire against the size of the throttle item")
        acquire_rows = acquire_cost(client, table_name)
        stack.start_receiver()
        stack.start_daemon()
        time.sleep(15.0)  # the daemon takes its leases and polls
        say("DynamoState, KCL daemon polling the emulator")
        results["DynamoState (KCL polling)"] = time_alerts(DynamoState(client, table_name, LIMIT), alerts,
                                                           webhook="busy")

    def f(values: list[float]) -> str:
        return f"{percentile(values, 50) * 1000:.3f}"

    calls = [c for c in results["MemoryState"] if c != "total"]
    print(f"\n== state latency per delivered alert, {alerts} alerts (ms) ==")
    rows = []
    for name, timings in results.items():
        total = timings["total"]
        rows.append([name, f(total), f"{percentile(total, 95) * 1000:.3f}", f"{percentile(total, 99) * 1000:.3f}",
                     f"{mean(total) * 1000:.3f}", *(f(timings[c]) for c in calls)])
    print(table(["state", "p50", "p95", "p99", "mean", *(f"p50 {c}" for c in calls)], rows))
    print("\ntry_acquire (DynamoState, emulator idle) against the send times its item holds = min(limit, messages in "
          "the last 60 s):")
    print(table(["send times in the item", "p50 ms", "p95 ms"], acquire_rows))
    memory = percentile(results["MemoryState"]["total"], 50)
    summary: Summary = []
    for name in ("DynamoState (emulator idle)", "DynamoState (KCL polling)"):
        total = results[name]["total"]
        extra = (percentile(total, 50) - memory) * 1000
        print(f"{name}: +{extra:.1f} ms per alert at p50 over MemoryState")
        summary.append((f"state calls per alert, {name}: p50 / p95",
                        f"{percentile(total, 50) * 1000:.1f} / {percentile(total, 95) * 1000:.1f} ms"))
    summary.insert(0, ("state calls per alert, MemoryState: p50 / p95",
                       f"{memory * 1000:.3f} / {percentile(results['MemoryState']['total'], 95) * 1000:.3f} ms"))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--alerts", type=int, default=500, help="timed alerts per state (default 500)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.alerts)


if __name__ == "__main__":
    main()
