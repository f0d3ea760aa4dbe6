"""The local moto emulator (``python -m localmode.emulator``) as a child process, for unit tests that need a real
DynamoDB API (``tests/conftest.py`` starts one per session)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from localmode.supervisor import free_port

REPO = Path(__file__).resolve().parents[1]
REGION = "ap-northeast-2"


def make_client(url: str) -> Any:
    """One client per simulated process (a fresh session each: boto3's default session is not thread-safe)."""
    return boto3.session.Session().client("dynamodb", region_name=REGION, endpoint_url=url,
                                          aws_access_key_id="test", aws_secret_access_key="test")


@contextmanager
def running_emulator(log_path: Path) -> Iterator[str]:
    port = free_port()
    with log_path.open("wb") as log_file:
        child = subprocess.Popen([sys.executable, "-m", "localmode.emulator", "--port", str(port)], cwd=REPO,
                                 stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                pytest.fail(f"the emulator exited with {child.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                make_client(url).list_tables()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=15)
