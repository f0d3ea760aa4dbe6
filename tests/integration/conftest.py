"""One emulator, one Slack receiver and one KCL daemon for the whole session (they are slow to start)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumer.config import read_environment, resolve_aliases
from localmode.stack import Stack
from localmode.supervisor import Child, free_port
from tests.integration.helpers import Receiver

WORKER_ID = "cali-test-worker-1"
GRACEFUL_EXIT = 143  # the JVM's status after a SIGTERM it handled (shutdown hooks ran; no SIGKILL was needed)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def stack_env(endpoint: str, **overrides: str) -> dict[str, str]:
    """A private stream, application and Slack receiver port on the given emulator."""
    run_id = uuid.uuid4().hex[:8]
    return resolve_aliases({  # over .env + the environment; a name or its alias (consumer/config.py) both work
        "LOCALSTACK_ENDPOINT": endpoint,
        "CALI_TLS_PORT": str(free_port()),
        "SLACK_RECEIVER_PORT": str(free_port()),
        "SLACK_WEBHOOK_URL": "",
        "SLACK_WEBHOOK_URL_WARN": "",
        "KINESIS_STREAM_NAME": f"cali-test-{run_id}",
        "CALI_APP_NAME": f"cali-test-{run_id}",
        "CALI_WORKER_ID": WORKER_ID,
        # The basic flow tests count every alert; the throttle has its own tests.
        "THROTTLE_MAX_PER_MINUTE": "100000",
        "CALI_DIGEST_INTERVAL_SECONDS": "2",
        # A 5xx or a cut connection is an uncertain outcome: 15 s before the next attempt in production, 2 s here.
        "CALI_SLACK_RETRY_MAX_SECONDS": "2",
        # One webhook, one budget (test_routes_silences.py has its own routes file).
        "CALI_ROUTES_FILE": "none",
        "LOG_LEVEL": "INFO",
        **overrides,
    }, read_environment())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = stack_env(f"http://127.0.0.1:{free_port()}")
    stack = Stack(env=env, run_dir=Path(tmp_path_factory.mktemp("cali-run")))
    try:
        stack.start_emulator()
        stack.create_resources()
        stack.start_receiver()
        yield stack
    finally:
        stack.stop()
        print(f"\nlocal-mode logs: {stack.supervisor.log_dir}")


@pytest.fixture(scope="session")
def receiver(stack: Stack) -> Receiver:
    return Receiver(f"http://127.0.0.1:{stack.local.slack_receiver_port}")


class Daemon:
    """A running KCL MultiLangDaemon; tests may stop, kill and restart it."""

    def __init__(self, stack: Stack, worker_id: str = WORKER_ID, overrides: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.worker_id = worker_id
        self.overrides = overrides  # KCL properties that differ from the stack's (e.g. its own endpoints)
        self.child: Child | None = None

    def start(self) -> None:
        if self.child is None or not self.child.alive():
            self.child = self.stack.start_daemon(self.worker_id, self.overrides)

    def stop(self) -> int | None:
        if self.child is None:
            return None
        code = self.stack.supervisor.stop(self.child)
        self.child = None
        return code

    def kill(self) -> None:
        """kill -9 of the daemon and its Python children, as a crash of the machine would."""
        if self.child is not None:
            self.stack.supervisor.kill(self.child)
            self.child = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.stack.supervisor.log_dir.glob("kcl-*.log"))


@pytest.fixture(scope="session")
def daemon(stack: Stack) -> Iterator[Daemon]:
    d = Daemon(stack)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def running_daemon(daemon: Daemon) -> Daemon:
    daemon.start()
    return daemon


@pytest.fixture
def pipeline(stack: Stack, tmp_path: Path) -> Iterator[Callable[..., tuple[Stack, Receiver]]]:
    """Factory: a private pipeline (stream with N shards, app, receiver) on the session emulator; ``env`` adds
    settings (e.g. a shorter stale-claim time). Its daemons are the test's to start, as ``Daemon(stack, id)``."""
    made: list[Stack] = []

    def make(shards: int, endpoint: str | None = None, owners: tuple[str, ...] = (),
             **env: str) -> tuple[Stack, Receiver]:
        other = Stack(env=stack_env(endpoint or stack.settings.endpoint_url or "", CALI_STREAM_SHARDS=str(shards),
                                    CALI_CHECKPOINT_INTERVAL_SECONDS="2", **env),
                      run_dir=tmp_path / f"p{len(made)}")
        made.append(other)
        other.start_emulator()
        other.create_resources(owners)
        other.start_receiver()
        return other, Receiver(f"http://127.0.0.1:{other.local.slack_receiver_port}")

    yield make
    for other in made:
        other.stop()
