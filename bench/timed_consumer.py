"""CALI's processor (``python -m consumer``, unchanged) plus one batch mark per ``process_records`` call.

The only addition is a wrapper around ``AlertRecordProcessor.process_records`` that takes two clock readings and
appends one line to ``BENCH_MARK_FILE`` per non-empty batch, as ``bench.noop_processor`` does, so the two are timed
the same way. Run by the daemon: ``executableName = <python> -m bench.timed_consumer``.
"""

from __future__ import annotations

import time
from typing import Any

from bench.marks import Marks
from consumer import __main__ as consumer_main
from consumer.kcl.processor import AlertRecordProcessor


def instrument(marks: Marks) -> None:
    original = AlertRecordProcessor.process_records

    def process_records(self: AlertRecordProcessor, process_records_input: Any) -> None:
        started = time.time()
        original(self, process_records_input)
        records = process_records_input.records
        if records:
            marks.batch(self.shard_id, started, time.time(), len(records), records[-1].sequence_number)

    setattr(AlertRecordProcessor, "process_records", process_records)  # noqa: B010 (mypy: no method assignment)


def main() -> None:
    instrument(Marks.from_env())
    consumer_main.main()


if __name__ == "__main__":
    main()
