"""The object graph of one KCL child: Slack senders per route, the DynamoDB state, silences, the record processor.

Imported by ``consumer.__main__`` on the thread that builds the processor (``consumer.kcl.deferred``), so that its
imports (botocore, slack-sdk, ...) do not hold back the child's answer to the KCL's ``initialize``.
"""

from __future__ import annotations

import logging
import os
import time
from zoneinfo import ZoneInfo

import botocore.session
from botocore.config import Config

from consumer import logs, timing
from consumer.alerter import Alerter
from consumer.config import Settings
from consumer.decision import Mode
from consumer.deliver import Sender
from consumer.deliver.slack import SlackWebhook
from consumer.deliver.webapi import SlackWebApi
from consumer.errors import ConfigError
from consumer.kcl.processor import AlertRecordProcessor
from consumer.silence.apply import Silencer
from consumer.silence.store import SilenceCache, SilenceStore
from consumer.state.dynamodb import DynamoState

log = logging.getLogger("cali.consumer")


def build_senders(settings: Settings) -> tuple[dict[str, Sender], Mode]:
    """One sender per route (``routes.yaml``), named by the route's budget key. Web API mode when SLACK_BOT_TOKEN is
    set (its token checked once with auth.test): each route posts to its channel, else the default route's, else
    SLACK_CHANNEL. Webhook mode otherwise: each route to the URL in the environment variable it names, else the
    default route's webhook, else SLACK_WEBHOOK_URL."""
    routes = settings.routes
    if settings.slack_bot_token is not None:
        token, url = settings.slack_bot_token, settings.slack_api_url
        channels = {r.name: r.channel or routes.default.channel or settings.slack_channel for r in routes.all}
        log.info("Slack Web API as %s", SlackWebApi(token, settings.slack_channel, url).check())
        return {name: SlackWebApi(token, channel, url, name=f"route#{name}") for name, channel in channels.items()}, \
            Mode.WEB_API
    fallback = settings.webhooks.get(routes.default.webhook or "") or settings.slack_webhook_url
    if fallback is None:
        raise ConfigError("neither SLACK_BOT_TOKEN nor SLACK_WEBHOOK_URL is set (local mode sets one of them to the "
                          "local Slack receiver)")
    senders: dict[str, Sender] = {}
    for route in routes.all:
        if route.webhook and route.webhook not in settings.webhooks and route is not routes.default:
            log.info("route %s: %s is not set; its alerts go to the default webhook", route.name, route.webhook)
        senders[route.name] = SlackWebhook(settings.webhooks.get(route.webhook or "") or fallback, route.budget_key)
    return senders, Mode.WEBHOOK


def build_processor(settings: Settings) -> AlertRecordProcessor:
    senders, mode = build_senders(settings)
    tz = ZoneInfo(settings.display_timezone)
    # The endpoint is given explicitly (None on real AWS): compose sets only LOCALSTACK_ENDPOINT, which boto3 ignores.
    client_config = Config(connect_timeout=timing.DYNAMODB_CONNECT_TIMEOUT_SECONDS,
                           read_timeout=timing.DYNAMODB_READ_TIMEOUT_SECONDS,
                           retries={"mode": "standard", "max_attempts": 3})
    # botocore's session, not boto3's: the same client without importing boto3 and s3transfer (~0.15 s per child)
    dynamodb = botocore.session.get_session().create_client("dynamodb", region_name=settings.region,
                                                             endpoint_url=settings.endpoint_url, config=client_config)
    state = DynamoState(dynamodb, settings.state_table, settings.throttle_max_per_minute,
                        limits={route.budget_key: route.max_per_minute for route in settings.routes.all})
    silences = SilenceStore(dynamodb, settings.silences_table, sleep=time.sleep)
    silencer = Silencer(SilenceCache(silences, settings.silence_refresh_seconds, background=True), silences, time.time)

    def make_alerter(shard_id: str) -> Alerter:
        logs.context.fields["shard_id"] = shard_id
        return Alerter(levels=settings.alert_levels, state=state, senders=senders, display_tz=tz, clock=time.time,
                       sleep=time.sleep, dedup_window=settings.dedup_window_seconds,
                       digest_interval=settings.digest_interval_seconds, mode=mode,
                       update_interval=settings.update_interval_seconds,
                       resolve_after=settings.resolve_after_seconds, send_stale_after=settings.send_stale_seconds,
                       retry_max=settings.slack_retry_max_seconds,
                       owner=f"{settings.worker_id}/{shard_id}/{os.getpid()}", routes=settings.routes,
                       silencer=silencer, background_upkeep=mode is Mode.WEB_API,
                       upkeep_gap=settings.upkeep_gap_seconds)

    return AlertRecordProcessor(make_alerter, clock=time.monotonic,
                                checkpoint_interval=settings.checkpoint_interval_seconds,
                                health_dir=settings.health_dir)
