"""Every configuration or environment problem found at start: one sentence on stderr, exit code 2, no traceback,
and nothing started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.config import REPO_ROOT, read_environment, resolve_aliases
from localmode.supervisor import free_port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Local mode on free ports, as a new shell would run it (the environment plus .env)."""
    return resolve_aliases({"LOCALSTACK_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                            "CALI_TLS_PORT": str(free_port()), "SLACK_RECEIVER_PORT": str(free_port()),
                            "FLUENT_BIT_FORWARD_PORT": str(free_port()), "SLACK_WEBHOOK_URL": ""}, read_environment())


def run(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localmode", "run", "--run-dir", str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def assert_one_sentence(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        pytest.param("THROTTLE_MAX_PER_MINUTE", "abc", ["THROTTLE_MAX_PER_MINUTE must be a number", "'abc'"],
                     id="not-a-number"),
        pytest.param("THROTTLE_MAX_PER_MINUTE", "0", ["THROTTLE_MAX_PER_MINUTE must be at least 1"], id="zero"),
        pytest.param("SLACK_WEBHOOK_URL", "not-a-url", ["SLACK_WEBHOOK_URL must be an http(s) URL"],
                     id="webhook-not-a-url"),
        pytest.param("SLACK_WEBHOOK_URL", "ftp://hooks.example/x", ["http(s) URL"], id="webhook-not-http"),
        pytest.param("SLACK_RECEIVER_PORT", "70000", ["SLACK_RECEIVER_PORT must be a TCP port"], id="port-range"),
        pytest.param("GENERATOR_RATE", "fast", ["GENERATOR_RATE must be a number", "'fast'"], id="generator-rate"),
        pytest.param("GENERATOR_ERROR_RATIO", "2", ["GENERATOR_ERROR_RATIO must be within [0, 1]"],
                     id="generator-ratio"),
        pytest.param("CALI_DISPLAY_TIMEZONE", "Mars/Olympus", ["not a known time zone"], id="timezone"),
    ],
)
def test_bad_configuration(env: dict[str, str], tmp_path: Path, name: str, value: str, words: list[str]) -> None:
    result = run({**env, name: value}, tmp_path)
    assert_one_sentence(result, "cali: ", *words)
    assert not (tmp_path / "run" / "logs").exists()  # nothing was started


def test_a_secret_webhook_is_not_echoed(env: dict[str, str], tmp_path: Path) -> None:
    result = run({**env, "SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/SECRETSECRET"}, tmp_path)
    assert_one_sentence(result, "SLACK_WEBHOOK_URL")
    assert "SECRETSECRET" not in result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("setting", ["SLACK_RECEIVER_PORT", "CALI_TLS_PORT"])
def test_a_port_in_use_is_named_before_anything_starts(env: dict[str, str], tmp_path: Path, busy_port: int,
                                                       setting: str) -> None:
    result = run({**env, setting: str(busy_port)}, tmp_path)
    assert_one_sentence(result, f"port {busy_port} ({setting}", "is in use")
    assert not (tmp_path / "run" / "logs").exists()


def test_no_java(env: dict[str, str], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    result = run({**env, "PATH": str(bin_dir)}, tmp_path)
    assert_one_sentence(result, "java is not on PATH", "Java 17")


@pytest.mark.parametrize(("missing", "words"), [("java", "Java 17"), ("javac", "JDK"), ("mvn", "Maven")])
def test_setup_without_java_or_maven(tmp_path: Path, missing: str, words: str) -> None:
    """scripts/setup.sh checks its tools before it does anything (in this order)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    tools = ("java", "javac", "mvn")
    for tool in ("dirname", *tools):
        found = shutil.which(tool)
        if tool != missing and found:
            (bin_dir / tool).symlink_to(found)
    absent = [tool for tool in tools[:tools.index(missing)] if not (bin_dir / tool).exists()]
    if absent:
        pytest.skip(f"{', '.join(absent)} not on PATH here")
    result = subprocess.run(["/bin/bash", str(REPO_ROOT / "scripts" / "setup.sh"), "run"],
                            env={**os.environ, "PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60)
    assert_one_sentence(result, f"'{missing}' is not on PATH", words)
