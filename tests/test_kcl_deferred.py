"""``consumer.kcl.deferred`` played through amazon-kclpy's real protocol loop (JSON lines in StringIO, no Java):
``initialize`` is answered while the build still runs, every later action reaches the built processor after its own
``initialize``, and a failed build ends the child with an exit code, never with an action reported done."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor

from consumer.kcl.deferred import BUILD_FAILED, DeferredProcessor
from localmode.supervisor import wait_for

SHARD = "shardId-000000000007"
INITIALIZE = {"action": "initialize", "shardId": SHARD, "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": 0}
PROCESS = {"action": "processRecords", "records": [], "millisBehindLatest": 0}
LEASE_LOST = {"action": "leaseLost"}


class Recording(processor.RecordProcessorBase):  # type: ignore[misc]
    """The built processor's stand-in: records which actions reach it, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def initialize(self, initialize_input: Any) -> None:
        self.calls.append(f"initialize {initialize_input.shard_id}")

    def process_records(self, process_records_input: Any) -> None:
        self.calls.append(f"process_records {len(process_records_input.records)}")

    def lease_lost(self, lease_lost_input: Any) -> None:
        self.calls.append("lease_lost")

    def shard_ended(self, shard_ended_input: Any) -> None:
        self.calls.append("shard_ended")

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        self.calls.append("shutdown_requested")


def play(build: Callable[[], Any], out: io.StringIO, *actions: dict[str, Any]) -> None:
    """The protocol loop over ``actions``, then what ``consumer.__main__`` does when stdin closes."""
    deferred = DeferredProcessor(build)
    kcl.KCLProcess(deferred, input_file=io.StringIO("".join(json.dumps(a) + "\n" for a in actions)),
                   output_file=out, error_file=io.StringIO()).run()
    deferred.wait()


def answered(out: io.StringIO) -> list[str]:
    """The actions the child reported done, in order."""
    return [json.loads(line)["responseFor"] for line in out.getvalue().split("\n") if line]


def test_initialize_is_answered_before_the_build_ends_and_every_action_reaches_the_built_processor() -> None:
    out, built = io.StringIO(), Recording()

    def build() -> Recording:  # cannot finish before the child has answered initialize
        wait_for(out.getvalue, lambda text: '"responseFor": "initialize"' in text, 10, "the initialize answer", 0.01)
        return built

    play(build, out, INITIALIZE, PROCESS, LEASE_LOST)
    assert answered(out) == ["initialize", "processRecords", "leaseLost"]
    assert built.calls == [f"initialize {SHARD}", "process_records 0", "lease_lost"]


def test_a_build_that_exits_ends_the_child_at_the_next_action_with_its_code() -> None:
    def build() -> Recording:
        raise SystemExit(2)  # what consumer.__main__ raises for a configuration error, after its one line

    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        play(build, out, INITIALIZE, PROCESS)
    assert exited.value.code == 2
    assert answered(out) == ["initialize"]  # processRecords is not reported done


def test_an_unexpected_build_error_is_logged_and_ends_the_child(caplog: pytest.LogCaptureFixture) -> None:
    def build() -> Recording:
        raise RuntimeError("no service model")

    out = io.StringIO()
    with caplog.at_level(logging.ERROR, "cali.processor"), pytest.raises(SystemExit) as exited:
        play(build, out, INITIALIZE, PROCESS)
    assert exited.value.code == BUILD_FAILED
    assert answered(out) == ["initialize"]
    assert caplog.messages == ["building the record processor failed: RuntimeError: no service model"]


def test_a_failed_build_still_ends_the_child_when_stdin_closes_first() -> None:
    def build() -> Recording:
        raise SystemExit(2)

    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        play(build, out)
    assert exited.value.code == 2
    assert answered(out) == []
