"""Local mode configured with exactly the MVP plan's ``.env`` block (its names: LOCALSTACK_ENDPOINT,
KINESIS_STREAM_NAME, ...), the stream renamed: the generator, the KCL daemon and the processors all use the renamed
stream, and its alerts arrive."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from dotenv import dotenv_values

from consumer.config import resolve_aliases
from localmode.stack import Stack
from localmode.supervisor import free_port
from tests.integration.helpers import Receiver, wait_for

PLAN_ENV = """\
LOCALSTACK_ENDPOINT=http://localhost:4566
AWS_REGION=ap-northeast-2
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
KINESIS_STREAM_NAME=cali-log-stream
SLACK_WEBHOOK_URL=
THROTTLE_MAX_PER_MINUTE=5
"""
CALI_PREFIXES = ("CALI_", "AWS_", "KINESIS_", "LOCALSTACK_", "SLACK_", "THROTTLE_", "GENERATOR_", "FLUENT_BIT_")


def test_the_plans_env_block_runs_local_mode_on_the_renamed_stream(stack: Stack, tmp_path: Path) -> None:
    stream = f"cali-plan-{uuid.uuid4().hex[:8]}"
    endpoint = stack.settings.endpoint_url or ""
    env_file = tmp_path / ".env"
    env_file.write_text(PLAN_ENV.replace("http://localhost:4566", endpoint)
                        .replace("=cali-log-stream", f"={stream}"))
    # Nothing of CALI's from this process: only the plan's block, plus ports and a pace private to this test.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(CALI_PREFIXES)}
    plan = {k: v or "" for k, v in dotenv_values(env_file).items()}
    assert set(plan) == {"LOCALSTACK_ENDPOINT", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                         "KINESIS_STREAM_NAME", "SLACK_WEBHOOK_URL", "THROTTLE_MAX_PER_MINUTE"}
    test_only = {"SLACK_RECEIVER_PORT": str(free_port()), "CALI_APP_NAME": stream, "CALI_WORKER_ID": "plan-worker",
                 "GENERATOR_RATE": "20", "GENERATOR_ERROR_RATIO": "0.5", "GENERATOR_SEED": "5"}
    env = resolve_aliases({**plan, **test_only}, inherited)
    local = Stack(env=env, run_dir=tmp_path / "run")
    try:
        local.start_emulator()  # finds the session's emulator at LOCALSTACK_ENDPOINT and uses it
        local.create_resources()
        local.start_receiver()
        local.start_daemon()
        local.start_generator()  # fluent-bit is not on PATH here: straight to Kinesis (boto3 in a child)
        receiver = Receiver(f"http://127.0.0.1:{test_only['SLACK_RECEIVER_PORT']}")
        messages = wait_for(receiver.messages, lambda found: len(found) >= 2, 90, "alerts from the renamed stream")
    finally:
        local.stop()
    assert local.settings.stream_name == stream and local.settings.throttle_max_per_minute == 5
    kinesis = stack.client("kinesis")
    # by name: ListStreams answers 10 at a time and the shared emulator holds many tests' streams
    assert kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.describe_stream_summary(StreamName="cali-log-stream")
    assert all(m["payload"]["text"] for m in messages)
    assert (tmp_path / "run" / "plan-worker.properties").read_text().count(f"streamName = {stream}") == 1
