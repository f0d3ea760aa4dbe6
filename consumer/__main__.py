"""Composition root of one KCL child process: ``python -m consumer`` (the properties' executableName).

stdout is the MultiLangDaemon's protocol channel. The real stdout is kept for amazon-kclpy only; fd 1 and
``sys.stdout`` are pointed at stderr so that no stray print or library can corrupt the protocol.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO
from zoneinfo import ZoneInfo

import boto3
from amazon_kclpy import kcl
from botocore.config import Config

from consumer import logs, timing
from consumer.alerter import Alerter, Sender
from consumer.config import Settings, load_settings
from consumer.decision import Mode
from consumer.deliver.slack import SlackWebhook
from consumer.deliver.webapi import SlackWebApi
from consumer.errors import ConfigError
from consumer.kcl.processor import AlertRecordProcessor
from consumer.model import Level
from consumer.state.dynamodb import DynamoState

log = logging.getLogger("cali.consumer")


def protocol_channel() -> IO[str]:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def build_senders(settings: Settings) -> tuple[dict[Level, Sender], Mode]:
    """Web API mode when SLACK_BOT_TOKEN is set (its token checked with auth.test), else webhook mode."""
    if settings.slack_bot_token is not None:
        api = SlackWebApi(settings.slack_bot_token, settings.slack_channel, settings.slack_api_url)
        log.info("Slack Web API as %s, channel %s", api.check(), settings.slack_channel)
        return {Level.ERROR: api, Level.WARN: api}, Mode.WEB_API
    if settings.slack_webhook_url is None:
        raise ConfigError("neither SLACK_BOT_TOKEN nor SLACK_WEBHOOK_URL is set (local mode sets one of them to the "
                          "local Slack receiver)")
    main = SlackWebhook(settings.slack_webhook_url, "main")
    senders: dict[Level, Sender] = {Level.ERROR: main, Level.WARN: main}
    if settings.slack_webhook_url_warn is not None:
        senders[Level.WARN] = SlackWebhook(settings.slack_webhook_url_warn, "warn")
    return senders, Mode.WEBHOOK


def build_processor(settings: Settings) -> AlertRecordProcessor:
    senders, mode = build_senders(settings)
    tz = ZoneInfo(settings.display_timezone)
    # The endpoint is given explicitly (None on real AWS): compose sets only LOCALSTACK_ENDPOINT, which boto3 ignores.
    client_config = Config(connect_timeout=timing.DYNAMODB_CONNECT_TIMEOUT_SECONDS,
                           read_timeout=timing.DYNAMODB_READ_TIMEOUT_SECONDS,
                           retries={"mode": "standard", "max_attempts": 3})
    dynamodb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url,
                            config=client_config)
    state = DynamoState(dynamodb, settings.state_table, settings.throttle_max_per_minute)

    def make_alerter(shard_id: str) -> Alerter:
        logs.context.fields["shard_id"] = shard_id
        return Alerter(levels=settings.alert_levels, state=state, senders=senders, display_tz=tz, clock=time.time,
                       sleep=time.sleep, dedup_window=settings.dedup_window_seconds,
                       digest_interval=settings.digest_interval_seconds, mode=mode,
                       update_interval=settings.update_interval_seconds,
                       resolve_after=settings.resolve_after_seconds, send_stale_after=settings.send_stale_seconds,
                       owner=f"{settings.worker_id}/{shard_id}/{os.getpid()}")

    return AlertRecordProcessor(make_alerter, clock=time.monotonic,
                                checkpoint_interval=settings.checkpoint_interval_seconds,
                                health_dir=settings.health_dir)


def main() -> None:
    channel = protocol_channel()
    try:
        settings = load_settings()
        logs.setup(settings.log_level, worker_id=settings.worker_id, pid=str(os.getpid()))
        processor = build_processor(settings)
    except ConfigError as exc:  # one readable line (the daemon's log shows it), no traceback
        sys.stderr.write(f"cali consumer: {exc}\n")
        raise SystemExit(2) from None
    kcl.KCLProcess(processor, input_file=sys.stdin, output_file=channel, error_file=sys.stderr).run()


if __name__ == "__main__":
    main()
