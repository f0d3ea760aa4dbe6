"""botocore clients for the command-line tools, from ``Settings`` (so ``.env``'s endpoint and keys hold for them too,
without exporting anything), and the one sentence such a tool says when AWS, LocalStack or the emulator cannot
answer or the configuration is wrong."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from consumer.config import Settings, load_settings
from consumer.errors import ConfigError

CLI_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
START_HINT = "start the pipeline first (`make run`, or `docker compose up`)"


def client(settings: Settings, service: str, config: Config = CLI_CONFIG) -> Any:
    key_id, secret = (None, None) if settings.aws_keys is None else (settings.aws_keys[0],
                                                                     settings.aws_keys[1].value)
    # botocore's session, as the processor's (consumer/wiring.py): the record processor imports this module (via
    # consumer.health), and boto3 would add its import time to every child's start.
    return botocore.session.get_session().create_client(service, region_name=settings.region,
                                                        endpoint_url=settings.endpoint_url, config=config,
                                                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def explain(exc: BotoCoreError | ClientError, settings: Settings) -> str:
    """One line saying what is wrong and what to do."""
    where = settings.endpoint_url or f"AWS ({settings.region})"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return f"nothing answers at {where} (LOCALSTACK_ENDPOINT): {START_HINT}"
    if isinstance(exc, ReadTimeoutError):
        return f"{where} (LOCALSTACK_ENDPOINT) does not answer in time: is it overloaded or stuck?"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (.env has the local test keys)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            return (f"{error.get('Message') or 'a table or stream does not exist'} at {where} "
                    f"in {settings.region}: {START_HINT}; the KCL creates its tables at its first start")
        return f"{where} refused: {error.get('Code')}: {error.get('Message')}"
    return f"{where}: {' '.join(str(exc).split())}"


def cli_settings() -> Settings:
    """Settings for a command-line tool; a configuration error is one line and exit code 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"cali: {exc}\n")
        raise SystemExit(2) from None


@contextmanager
def one_line_errors(settings: Settings, exit_code: int = 2) -> Iterator[None]:
    """AWS trouble inside the block ends a command-line tool with one line on stderr, no traceback."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        sys.stderr.write(f"cali: {explain(exc, settings)}\n")
        raise SystemExit(exit_code) from None
