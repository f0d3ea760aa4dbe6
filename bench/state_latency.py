"""State latency: what the shared state adds to each delivered alert.

Per alert, the calls ``Alerter._alert`` makes on its ``AlertState`` for a new alert that goes out, in its order:
``view`` (local: the decision's input, no request), ``begin`` (budget slot + fingerprint + send claim, one
TransactWriteItems), then ``end`` after the post (send record + high-water mark, one TransactWriteItems). Timed for
``--alerts`` alerts (after 20 not counted) on ``MemoryState`` and on ``DynamoState`` against the emulator, once idle
and once while a KCL daemon polls the stream's 2 (empty) shards, as in the running pipeline (moto serialises
requests). The Slack post between ``begin`` and ``end`` is not part of it.

The alerts are 13 s apart on the clock handed to the state: with the real limit (5 a minute) every alert finds a
slot. Each alert has its own fingerprint. ``--mode webapi``: each alert opens an incident (its ``begin`` writes the
incident, its ``end`` the root message's channel, ts and JSON), as in Web API mode.

Run: ``python -m bench.state_latency [--alerts 500] [--mode webhook|webapi]``.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import (
    Summary,
    add_mode,
    base_parser,
    mean,
    new_stack,
    percentile,
    running,
    say,
    setup_logging,
    table,
)
from consumer.state import Claim, Incident, Verdict
from consumer.state.dynamodb import DynamoState, ensure_table
from consumer.state.memory import MemoryState

WARMUP = 20
ROOT = '{"text": "[ERROR] pay: db timeout after 30ms", "blocks": [{"type": "section", "text": {"type": "mrkdwn", ' \
    '"text": "*pay* db timeout after 30ms"}}]}'  # an incident root's JSON, as the alerter keeps it
LIMIT = 5
SPACING_SECONDS = 13.0


def delivered_path(state: Any, key: str, fingerprint: str, now: float, webhook: str,
                   web_api: bool = False) -> list[tuple[str, Any]]:
    """The state calls of one alert that goes out, in ``Alerter._alert``'s order, as (name, thunk) pairs."""
    slot: list[int | None] = [None]

    def view() -> bool:
        slot[0] = state.view(webhook, fingerprint, now, key).free_slot
        return slot[0] is not None

    def begin() -> bool:
        assert slot[0] is not None
        claim = Claim(key=key, owner="bench-owner", now=now, budget=webhook, slot=slot[0], stale_after=60.0,
                      fingerprint=fingerprint, dedup_window=300.0, incident_events=1 if web_api else 0,
                      shard=key.rsplit("/", 3)[0], through=key)
        return bool(state.begin(claim).verdict is Verdict.TAKEN)

    root = Incident(fingerprint, 1, now, "C0CALI", f"{now:.6f}", shown_count=1, root=ROOT) if web_api else None
    return [("view", view), ("begin", begin),
            ("end", lambda: state.end(key, "bench-owner", now, key, root=root) is None)]


def time_alerts(state: Any, n: int, webhook: str = "main", web_api: bool = False) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    base = time.time()
    run = f"{base:.0f}"
    for i in range(WARMUP + n):
        now = base + i * SPACING_SECONDS
        key = f"shardId-{webhook}/{run}{i:06d}/0/0"
        spent: list[tuple[str, float]] = []
        for name, step in delivered_path(state, key, f"bench-{run}-{i}", now, webhook, web_api):
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


def run(alerts: int = 500, mode: str = "webhook") -> Summary:
    web_api = mode == "webapi"
    results: dict[str, dict[str, list[float]]] = {"MemoryState": time_alerts(MemoryState(LIMIT), alerts,
                                                                             web_api=web_api)}
    stack = new_stack("state")
    with running(stack):
        stack.start_emulator()
        stack.create_resources()
        client = stack.client("dynamodb")
        table_name = stack.settings.state_table
        ensure_table(client, table_name)
        say("DynamoState, emulator idle")
        results["DynamoState (emulator idle)"] = time_alerts(DynamoState(client, table_name, LIMIT), alerts,
                                                             webhook="idle", web_api=web_api)
        stack.start_receiver()
        stack.start_daemon()
        time.sleep(15.0)  # the daemon takes its leases and polls
        say("DynamoState, KCL daemon polling the emulator")
        results["DynamoState (KCL polling)"] = time_alerts(DynamoState(client, table_name, LIMIT), alerts,
                                                           webhook="busy", web_api=web_api)

    def f(values: list[float]) -> str:
        return f"{percentile(values, 50) * 1000:.3f}"

    calls = [c for c in results["MemoryState"] if c != "total"]
    print(f"\n== state latency per delivered alert, {alerts} alerts, {mode} mode (ms) ==")
    rows = []
    for name, timings in results.items():
        total = timings["total"]
        rows.append([name, f(total), f"{percentile(total, 95) * 1000:.3f}", f"{percentile(total, 99) * 1000:.3f}",
                     f"{mean(total) * 1000:.3f}", *(f(timings[c]) for c in calls)])
    print(table(["state", "p50", "p95", "p99", "mean", *(f"p50 {c}" for c in calls)], rows))
    memory = percentile(results["MemoryState"]["total"], 50)
    summary: Summary = []
    for name in ("DynamoState (emulator idle)", "DynamoState (KCL polling)"):
        total = results[name]["total"]
        extra = (percentile(total, 50) - memory) * 1000
        print(f"{name}: +{extra:.1f} ms per alert at p50 over MemoryState")
        summary.append((f"state calls per alert ({mode}), {name}: p50 / p95",
                        f"{percentile(total, 50) * 1000:.1f} / {percentile(total, 95) * 1000:.1f} ms"))
    summary.insert(0, ("state calls per alert, MemoryState: p50 / p95",
                       f"{memory * 1000:.3f} / {percentile(results['MemoryState']['total'], 95) * 1000:.3f} ms"))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--alerts", type=int, default=500, help="timed alerts per state (default 500)")
    add_mode(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.alerts, args.mode)


if __name__ == "__main__":
    main()
