"""Batch writes: the CPU one batch's state writes cost on moto, with local mode's patches and without them.

In local mode one emulator process serves every request one at a time, and it is the catch-up's bottleneck
(RESULTS.md §8h): what a batch's writes cost it slows every shard. Timed here, in-process (moto's backend behind
boto3, no HTTP; the client's own work is included), for a Web API batch of ``--incidents`` fingerprints with open
incidents:
- ``add_repeats``: the batch's repeats, one conditional update per incident, one transaction;
- ``add_to_digest``: as many groups over budget, one part;
- ``add_counts``: both in one transaction (what a Web API batch with both sends).

Each is timed over ``--batches`` batches, in ``--sets`` sets; the figure is the fastest set's mean CPU per batch
(``time.process_time``: other processes on the machine do not count).

Run: ``python -m bench.batch_writes [--incidents 30] [--batches 20] [--sets 5]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import boto3
from moto import mock_aws

from bench.common import Summary, base_parser, setup_logging, table
from consumer.state import Claim, Contribution, Ending, Incident, Repeated
from consumer.state.dynamodb import DynamoState, ensure_table
from localmode import moto_patches

SHARD = "shardId-000000000000"
ROOT = '{"text": "' + "x" * 2000 + '"}'  # an incident root's rendering, about the size the alerter keeps


def key(n: int) -> str:
    return f"{SHARD}/{49659000000000000000000000000000 + n}/0/0"


def _state(incidents: int) -> DynamoState:
    client = boto3.client("dynamodb", region_name="ap-northeast-2")
    ensure_table(client, "bench-state")
    state = DynamoState(client, "bench-state", 10 * incidents)
    now = time.time()
    for n in range(incidents):
        state.begin(Claim(key=key(n), owner="bench", now=now, budget="main", slot=n, stale_after=90.0,
                          fingerprint=f"fp{n}", dedup_window=300.0, incident_events=1, shard=SHARD, through=key(n)))
    state.end_all([Ending(key(n), "bench", now, key(n), root=Incident(f"fp{n}", 1, now, "C1", f"{n}.1", 1, root=ROOT))
                   for n in range(incidents)])
    return state


def _cpu_per_batch(write: Callable[[int], object], batches: int, sets: int) -> float:
    best, batch = float("inf"), 0
    for _ in range(sets):
        started = time.process_time()
        for _ in range(batches):
            batch += 1
            write(batch)
        best = min(best, (time.process_time() - started) / batches)
    return best


def measure(incidents: int, batches: int, sets: int) -> dict[str, float]:
    """CPU seconds per batch of each write, on a fresh in-process moto."""
    with mock_aws():
        state = _state(incidents)
        now = time.time()

        def repeats(batch: int) -> list[Repeated]:
            first = 1000 * batch
            return [Repeated(f"fp{n}", SHARD, key(first + n), key(first + n), 5) for n in range(incidents)]

        def digest(batch: int) -> dict[str, list[Contribution]]:
            first = 1000 * batch + 500
            return {"main#1": [Contribution(key(first + n), key(first + n), {("ERROR", f"svc{n}", f"t{n}"): 5})
                               for n in range(incidents)]}

        return {
            "add_repeats": _cpu_per_batch(lambda b: state.add_repeats(repeats(b), now), batches, sets),
            "add_to_digest": _cpu_per_batch(lambda b: state.add_to_digest(digest(b + 10_000), now), batches, sets),
            "add_counts": _cpu_per_batch(lambda b: state.add_counts(repeats(b + 20_000), digest(b + 20_000), now),
                                         batches, sets),
        }


def run(incidents: int = 30, batches: int = 20, sets: int = 5) -> Summary:
    moto_patches.restore()
    alone = measure(incidents, batches, sets)
    moto_patches.apply()
    try:
        patched = measure(incidents, batches, sets)
    finally:
        moto_patches.restore()
    print(f"\n== one batch's state writes, {incidents} incidents: CPU ms per batch, in-process moto ==")
    print(table(["write", "moto alone", "local mode's patches"],
                [[name, f"{alone[name] * 1000:.1f}", f"{patched[name] * 1000:.1f}"] for name in patched]))
    return [(f"batch writes, {incidents} incidents, CPU per batch (moto alone / patched): {name}",
             f"{alone[name] * 1000:.1f} / {patched[name] * 1000:.1f} ms") for name in patched]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--incidents", type=int, default=30, help="open incidents, each repeated per batch")
    parser.add_argument("--batches", type=int, default=20, help="batches per timed set")
    parser.add_argument("--sets", type=int, default=5, help="timed sets (the fastest counts)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.incidents, args.batches, args.sets)


if __name__ == "__main__":
    main()
