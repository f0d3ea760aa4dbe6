"""What answers at the configured AWS endpoint: nothing, a LocalStack, or something else."""

from __future__ import annotations

import json
import urllib.request
from enum import StrEnum
from urllib.parse import urlsplit

from localmode.supervisor import port_open


class Found(StrEnum):
    NOTHING = "nothing"
    LOCALSTACK = "localstack"
    OTHER = "other"


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def probe(url: str) -> Found:
    host, port = host_port(url)
    if not port_open(host, port):
        return Found.NOTHING
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_localstack/health", timeout=2) as response:
            body = json.loads(response.read())
        return Found.LOCALSTACK if isinstance(body, dict) and "services" in body else Found.OTHER
    except (OSError, ValueError):
        return Found.OTHER
