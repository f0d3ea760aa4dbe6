"""boto3 clients for the command-line tools, from ``Settings`` (so ``.env``'s endpoint and keys hold for them too,
without exporting anything)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from consumer.config import Settings

CLI_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


def client(settings: Settings, service: str, config: Config = CLI_CONFIG) -> Any:
    keys = {} if settings.aws_keys is None else {"aws_access_key_id": settings.aws_keys[0],
                                                 "aws_secret_access_key": settings.aws_keys[1].value}
    return boto3.client(service, region_name=settings.region,  # type: ignore[call-overload]
                        endpoint_url=settings.endpoint_url, config=config, **keys)
