"""The receiver's own settings, read through the project's one environment reader (``consumer.config``).

``SLACK_RECEIVER_TOKEN`` (default ``xoxb-cali-local``): the one bot token the Web API accepts.
``SLACK_RECEIVER_CHANNELS`` (default ``cali-alerts``): comma-separated channel names; the first is where webhook
posts land unless their path names another (see :mod:`slack_receiver.channels`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from consumer.config import Secret, read_environment
from consumer.errors import ConfigError

DEFAULT_TOKEN = "xoxb-cali-local"
DEFAULT_CHANNELS = "cali-alerts"
# Slack's rule for channel names: lower case letters, digits, hyphens and underscores, at most 80 characters.
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]{1,80}")


@dataclass(frozen=True)
class ReceiverSettings:
    token: Secret
    channels: tuple[str, ...]


def parse_channel_names(raw: str) -> tuple[str, ...]:
    names: list[str] = []
    for item in raw.split(","):
        name = item.strip().removeprefix("#")
        if not name:
            continue
        if not _CHANNEL_NAME.fullmatch(name):
            raise ConfigError(f"SLACK_RECEIVER_CHANNELS: {name!r} is not a Slack channel name "
                              "(lower case letters, digits, '-' and '_', at most 80)")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError("SLACK_RECEIVER_CHANNELS must name at least one channel, e.g. cali-alerts")
    return tuple(names)


def load_receiver_settings(environ: Mapping[str, str] | None = None) -> ReceiverSettings:
    env = read_environment() if environ is None else environ
    token = env.get("SLACK_RECEIVER_TOKEN", "").strip() or DEFAULT_TOKEN
    if any(ch.isspace() for ch in token):
        raise ConfigError("SLACK_RECEIVER_TOKEN must not contain spaces")
    channels = parse_channel_names(env.get("SLACK_RECEIVER_CHANNELS", "").strip() or DEFAULT_CHANNELS)
    return ReceiverSettings(token=Secret(token), channels=channels)
