"""A RecordProcessor that only reads its records and checkpoints at the end of each batch: what the
MultiLangDaemon protocol itself costs (JSON lines over the child's stdin/stdout, base64 record data), i.e. the
ceiling any Python processor on this daemon can reach.

Run by the daemon: ``executableName = <python> -m bench.noop_processor``. stdout is the protocol channel: nothing
here prints.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from amazon_kclpy import kcl
from amazon_kclpy.checkpoint_error import CheckpointError
from amazon_kclpy.v3 import processor

from bench.marks import Marks


class NoopProcessor(processor.RecordProcessorBase):  # type: ignore[misc]
    def __init__(self, marks: Marks) -> None:
        self._marks = marks
        self.shard_id = "unknown"
        self.bytes_read = 0

    def initialize(self, initialize_input: Any) -> None:
        self.shard_id = initialize_input.shard_id

    def process_records(self, process_records_input: Any) -> None:
        started = time.time()
        last = None
        for record in process_records_input.records:
            self.bytes_read += len(record.binary_data)  # the base64 decode every processor pays
            last = record
        if last is None:
            return
        self._checkpoint(process_records_input.checkpointer, last.sequence_number, last.sub_sequence_number)
        self._marks.batch(self.shard_id, started, time.time(), len(process_records_input.records),
                          last.sequence_number)

    def lease_lost(self, lease_lost_input: Any) -> None:
        pass

    def shard_ended(self, shard_ended_input: Any) -> None:
        self._checkpoint(shard_ended_input.checkpointer, None, None)

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        pass  # every batch is already checkpointed

    @staticmethod
    def _checkpoint(checkpointer: Any, sequence_number: str | None, sub_sequence_number: int | None) -> None:
        try:
            checkpointer.checkpoint(sequence_number, sub_sequence_number)
        except CheckpointError as exc:
            sys.stderr.write(f"noop processor: checkpoint failed: {exc.value}\n")


def main() -> None:
    kcl.KCLProcess(NoopProcessor(Marks.from_env())).run()


if __name__ == "__main__":
    main()
