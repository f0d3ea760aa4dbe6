"""Start child processes, wait for them to be ready, stop them all in reverse order."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

log = logging.getLogger("cali.supervisor")
T = TypeVar("T")


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1,
               alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not alive():
            raise RuntimeError(f"{what}: the process exited before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(interval)


def wait_for(produce: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Poll ``produce`` until ``done`` says yes; its value. Tests and benchmarks wait on the pipeline with it."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {value!r:.2000}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout: float
    log_file: IO[bytes] | None = None

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Supervisor:
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], *, stop_timeout: float = 10.0,
              stdout: int | IO[bytes] | None = None, stdin: int | IO[bytes] | None = None,
              to_log: bool = True) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_dir / f"{name}.log", "ab") if to_log else None  # noqa: SIM115 (closed in stop)
        process = subprocess.Popen(list(argv), env=dict(env), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                   stdout=stdout if stdout is not None else log_file, stderr=log_file,
                                   start_new_session=True)
        child = Child(name, process, stop_timeout, log_file)
        self.children.append(child)
        log.info("started %s (pid %d)%s", name, process.pid,
                 f", log {self.log_dir / (name + '.log')}" if to_log else "")
        return child

    def stop(self, child: Child) -> int | None:
        if child.alive():
            # SIGTERM to the leader only: the KCL daemon must ask its Python children to shut down itself.
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(child.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", child.name, child.stop_timeout)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)  # anything the leader left behind
        if child.log_file:
            child.log_file.close()
        if child in self.children:
            self.children.remove(child)
        return child.process.returncode

    def kill(self, child: Child) -> None:
        """SIGKILL, as a crash would (tests)."""
        if child.alive():
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        self.stop(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)
