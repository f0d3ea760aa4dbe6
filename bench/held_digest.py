"""Does the checkpoint move under a steady flow of throttled alerts? In-process, no daemon, a simulated clock.

CALI's ``AlertRecordProcessor`` (the real class) with ``MemoryState`` (limit 5/min), one shard, a 200 ms poll with
``--per-poll`` ERROR lines of distinct services each time, for ``--minutes`` simulated minutes; a fake checkpointer
records every checkpoint. Prints the alerts, digests and checkpoints. (What ``bench.footprint`` sees on the real
pipeline: the lease checkpoint never moves while the digest is never empty.)

Run: ``python -m bench.held_digest [--minutes 5] [--per-poll 2]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import Summary, base_parser, setup_logging
from consumer.alerter import Alerter
from consumer.deliver.slack import Posted
from consumer.kcl.processor import AlertRecordProcessor
from consumer.model import Level
from consumer.state.memory import MemoryState
from generator.fluentbit import fluent_bit_record
from generator.lines import make_line

POLL_SECONDS = 0.2
START = 1_000_000.0


class CountingSender:
    name = "main"

    def __init__(self) -> None:
        self.posts = 0

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        self.posts += 1
        return Posted()


def run(minutes: float = 5.0, per_poll: int = 2, digest_interval: float = 60.0) -> Summary:
    now = [START]

    def clock() -> float:
        return now[0]

    sender = CountingSender()
    state = MemoryState(5)

    def make_alerter(shard_id: str) -> Alerter:
        return Alerter(levels=frozenset({"ERROR", "WARN"}), state=state, senders={Level.ERROR: sender,
                       Level.WARN: sender}, display_tz=ZoneInfo("UTC"), clock=clock, sleep=lambda _: None,
                       digest_interval=digest_interval)

    checkpoints: list[tuple[float, str | None]] = []

    def checkpoint(sequence_number: str | None = None, sub_sequence_number: int | None = None) -> None:
        checkpoints.append((now[0] - START, sequence_number))

    checkpointer = SimpleNamespace(checkpoint=checkpoint)
    processor = AlertRecordProcessor(make_alerter, clock=clock, checkpoint_interval=5.0)
    processor.initialize(SimpleNamespace(shard_id="shardId-000000000000", sequence_number="TRIM_HORIZON"))
    seq = 0
    for _ in range(int(minutes * 60 / POLL_SECONDS)):
        records = []
        for _ in range(per_poll):
            seq += 1
            data = fluent_bit_record(make_line("ERROR", f"svc-{seq}", f"failure {seq}"))
            records.append(SimpleNamespace(binary_data=data, sequence_number=str(seq), sub_sequence_number=0))
        processor.process_records(SimpleNamespace(records=records, millis_behind_latest=0, checkpointer=checkpointer))
        now[0] += POLL_SECONDS
    alerter = processor.alerter
    assert alerter is not None
    stats = alerter.stats
    last = checkpoints[-1] if checkpoints else None
    print(f"\n== held digest: {seq} ERROR records ({per_poll} per {POLL_SECONDS:g} s poll, all distinct) over "
          f"{minutes:g} simulated minutes, throttle 5/min, digest interval {digest_interval:g} s ==")
    print(f"alerts sent {stats.alerts_sent}, digests sent {stats.digests_sent} ({stats.digested_events} events), "
          f"events held now {alerter.held}; checkpoints {len(checkpoints)}: "
          + ", ".join(f"at {t:.1f} s -> record {s}" for t, s in checkpoints[:5])
          + (f"; last at {last[0]:.1f} s -> record {last[1]} of {seq}" if last else ""))
    return [("held digest: checkpoints / records / last checkpointed record",
             f"{len(checkpoints)} / {seq} / {last[1] if last else '-'}")]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--per-poll", type=int, default=2)
    parser.add_argument("--digest-interval", type=float, default=60.0)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.minutes, args.per_poll, args.digest_interval)


if __name__ == "__main__":
    main()
