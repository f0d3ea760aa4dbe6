"""What answers at the configured AWS endpoint: nothing, a LocalStack, CALI's own emulator (moto), or else."""

from __future__ import annotations

import json
import urllib.request
from enum import StrEnum
from urllib.parse import urlsplit

from localmode.supervisor import port_open


class Found(StrEnum):
    NOTHING = "nothing"
    LOCALSTACK = "localstack"
    MOTO = "moto"
    OTHER = "other"


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bytes(response.read(4096))
    except (OSError, ValueError):
        return None


def probe(url: str) -> Found:
    host, port = host_port(url)
    if not port_open(host, port):
        return Found.NOTHING
    base = url.rstrip("/")
    health = _get(f"{base}/_localstack/health")
    if health is not None:
        try:
            if "services" in json.loads(health):
                return Found.LOCALSTACK
        except ValueError:
            pass
    if _get(f"{base}/moto-api/") is not None:
        return Found.MOTO
    return Found.OTHER
