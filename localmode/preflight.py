"""What local mode checks before it starts anything: the ports it will listen on and the tools it runs.

Each problem is a ``StartError`` whose text is one sentence saying what is wrong and what to do; ``python -m
localmode`` prints it and exits 2 (no traceback), as it does for a ``ConfigError``.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from consumer.errors import CaliError
from localmode import paths


class StartError(CaliError):
    """The machine is not ready for local mode (a port in use, a tool missing)."""


@dataclass(frozen=True)
class Port:
    number: int
    setting: str  # the variable that moves it
    part: str  # what would listen there


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can a server bind here? (SO_REUSEADDR as servers set it, so a socket in TIME_WAIT does not count.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(ports: Iterable[Port], host: str = "127.0.0.1") -> None:
    for port in ports:
        if not port_free(port.number, host):
            raise StartError(f"port {port.number} ({port.setting}, {port.part}) is in use: stop what listens "
                             f"there or set {port.setting} to a free port")


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StartError("java is not on PATH: the KCL MultiLangDaemon needs Java 17 "
                         "(e.g. `apt-get install openjdk-17-jre-headless`)")
    if not any(paths.JARS.glob("amazon-kinesis-client-multilang-*.jar")):
        raise StartError(f"the KCL jars are missing from {paths.JARS}: run `make setup` (it needs Maven)")
    if not paths.LAUNCHER_JAR.is_file():
        raise StartError(f"CALI's KCL launcher is missing ({paths.LAUNCHER_JAR}): run `make setup` (it needs a JDK)")
    return java
