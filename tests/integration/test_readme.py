"""Every command between README's ``readme-test: operating`` markers, run as written in a new shell (no venv on
PATH, nothing exported but where the test's emulator listens and the worker's id) against a running pipeline that
uses ``.env``'s names. Whatever shell blocks others add between the markers are run too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.fluentbit import fluent_bit_record
from localmode.stack import Stack
from tests.integration.conftest import Daemon, stack_env
from tests.integration.helpers import (
    Receiver,
    dotenv_settings,
    leases,
    new_shell,
    put_lines,
    readme_commands,
    run_shell,
    wait_for,
)

DOTENV = dotenv_settings()


@pytest.fixture(scope="module")
def readme_pipeline(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """A pipeline with .env's stream and application names on the session's emulator."""
    worker = f"cali-readme-{uuid.uuid4().hex[:6]}"
    env = stack_env(stack.settings.endpoint_url or "", KINESIS_STREAM_NAME=DOTENV.stream_name,
                    CALI_APP_NAME=DOTENV.app_name, CALI_WORKER_ID=worker)
    other = Stack(env=env, run_dir=Path(tmp_path_factory.mktemp("cali-readme")))
    daemon = Daemon(other, worker)
    try:
        other.start_emulator()
        other.create_resources()
        other.start_receiver()
        daemon.start()
        marker = f"readme-{uuid.uuid4().hex[:6]}"
        put_lines(other.client("kinesis"), other.settings.stream_name, [fluent_bit_record(
            {"level": "ERROR", "service": f"{marker}-{i}", "message": f"{marker} failure {i}"}) for i in range(4)])
        receiver = Receiver(f"http://127.0.0.1:{other.local.slack_receiver_port}")
        wait_for(lambda: receiver.texts(marker), lambda t: len(t) == 4, 120, "the alerts")
        wait_for(lambda: leases(other.client("dynamodb"), other.settings.app_name),
                 lambda t: any(v["checkpoint"].isdigit() for v in t.values()), 60, "a checkpoint")
        yield other, worker
    finally:
        daemon.stop()
        other.stop()


def test_readme_marks_operating_commands() -> None:
    commands = readme_commands("operating")
    assert any("consumer.health" in c for c in commands)
    assert any("consumer.checkpoints" in c for c in commands)
    assert any("awslocal" in c for c in commands)


@pytest.mark.parametrize("command", readme_commands("operating"), ids=lambda c: c.split("  #")[0][:70])
def test_readme_command_works_as_written(command: str, readme_pipeline: tuple[Stack, str]) -> None:
    other, worker = readme_pipeline
    env = new_shell(other.settings.endpoint_url or "", worker)
    result = wait_for(lambda: run_shell(command, env), lambda r: r.returncode == 0, 30, f"`{command}` to succeed")
    assert result.stderr == "", "quiet: no banner, no warning, no traceback"
    assert result.stdout.strip()
    if "consumer.health" in command:
        assert result.stdout.startswith("healthy: ")
    if "consumer.checkpoints" in command:
        assert result.stdout.startswith(f"leader: {worker} ")
        assert "shardId-000000000000" in result.stdout and "renewing" in result.stdout
