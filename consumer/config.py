"""The only module that reads configuration: the environment first, then the repo's ``.env``.

One shared ``.env`` serves every process, but each reads only its own part, as a frozen dataclass:
``Settings`` (the consumer: processor, daemon launcher, CLI tools), ``LocalSettings`` (local mode: the ports it
listens on, how it creates the AWS resources) and ``GeneratorSettings`` (the log generator). So a bad value in one
part stops only the processes that use it. Secrets (webhook URLs, tokens) are ``Secret``s whose repr and str hide them.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from consumer.errors import ConfigError
from consumer.model import Level
from consumer.pipeline.levels import normalise_level
from consumer.routes import Routes, default_only, load_routes
from consumer.timing import BACKOFF_MAX_SECONDS, SEND_STALE_SECONDS, UPKEEP_GAP_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENV_FILE = REPO_ROOT / ".env"
DEFAULT_ROUTES_FILE = REPO_ROOT / "routes.yaml"
KCL_PROPERTIES = REPO_ROOT / "properties" / "cali.properties"
KCL_DEFAULT_FAILOVER_MILLIS = 10000  # the KCL's own default for failoverTimeMillis


@dataclass(frozen=True)
class Secret:
    """A value that must never reach a log line, an error message or a repr."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    """The consumer's settings: what the processor, the KCL daemon's launcher and the CLI tools read."""

    region: str
    endpoint_url: str | None
    stream_name: str
    app_name: str
    worker_id: str
    alert_levels: frozenset[str]
    throttle_max_per_minute: int
    display_timezone: str
    slack_webhook_url: Secret | None
    slack_webhook_url_warn: Secret | None
    slack_bot_token: Secret | None  # set: Web API mode (incidents, threads, updates in place); unset: webhook mode
    slack_channel: str  # Web API mode: the default channel (a name or, on real Slack, preferably its C-id)
    slack_api_url: str | None  # Web API base URL (the local receiver in local mode and tests); None: Slack's own
    update_interval_seconds: float  # Web API: at most one update of an incident's root per this interval
    resolve_after_seconds: float  # Web API: an incident without repeats for this long is updated to "quiet"
    send_stale_seconds: float  # a send claim older than this belongs to a dead processor (tests shorten it)
    slack_retry_max_seconds: float  # the longest pause between attempts of one Slack post (tests shorten it)
    upkeep_gap_seconds: float  # Web API: the pause between the requests of the incidents' upkeep (timing.py)
    log_level: str
    checkpoint_interval_seconds: float
    dedup_window_seconds: float
    digest_interval_seconds: float
    health_dir: Path
    routes: Routes
    webhooks: Mapping[str, Secret]  # the webhook URL behind each environment variable a route names (set ones only)
    silence_refresh_seconds: float
    operator: str  # who runs a CLI command (a silence's author): CALI_OPERATOR, else USER
    aws_keys: tuple[str, Secret] | None  # AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY; None: boto3's own chain

    @property
    def web_api(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def state_table(self) -> str:
        """The consumer's own DynamoDB table (throttle, dedup, delivered alerts); the KCL owns ``app_name``."""
        return f"{self.app_name}-state"

    @property
    def silences_table(self) -> str:
        """Silences, shared by every processor (consumer/silence); Terraform declares it too."""
        return f"{self.app_name}-silences"


@dataclass(frozen=True)
class LocalSettings:
    """What only local mode reads (``python -m localmode run``, the tests' and benchmarks' stacks)."""

    stream_shards: int  # the stream it creates (compose: the terraform job's TF_VAR_shard_count)
    resources: str  # creates its AWS resources with "python" (default) or "terraform" (terraform/localstack)
    terraform_plugin_dir: Path | None  # a local provider mirror for `terraform init -plugin-dir` (CALI_TF_PLUGIN_DIR)
    tls_port: int  # the emulator's HTTPS port, for Fluent Bit (CALI_TLS_PORT)
    slack_receiver_port: int  # the local Slack receiver (SLACK_RECEIVER_PORT)
    forward_port: int  # Fluent Bit's forward input, where the generator writes (FLUENT_BIT_FORWARD_PORT)


@dataclass(frozen=True)
class GeneratorSettings:
    """The log generator's defaults (``python -m generator``; its command-line arguments win)."""

    rate: float  # lines per second; 0: as fast as possible (GENERATOR_RATE)
    error_ratio: float  # the fraction of ERROR+WARN lines (GENERATOR_ERROR_RATIO)
    seed: int | None  # None: a random sequence (GENERATOR_SEED)


# The MVP plan's names (what .env uses) and the names CALI read before, still accepted as aliases. Within one place
# (.env, or the process environment) the two names of a pair must agree; the environment beats .env pair by pair.
# Both names are then set to the one value, so children see either: boto3 reads AWS_ENDPOINT_URL and
# AWS_DEFAULT_REGION itself, Fluent Bit and Terraform get the plan's names.
NAME_ALIASES: Final = (("LOCALSTACK_ENDPOINT", "AWS_ENDPOINT_URL"), ("KINESIS_STREAM_NAME", "CALI_STREAM_NAME"),
                       ("AWS_REGION", "AWS_DEFAULT_REGION"))


def resolve_aliases(env: Mapping[str, str], below: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` over ``below`` with each pair of NAME_ALIASES resolved to one value under both names. A pair named in
    ``env`` (even empty) replaces ``below``'s; two names of one pair that disagree in one mapping: ConfigError."""
    merged = {**(below or {}), **env}
    for name, alias in NAME_ALIASES:
        source = env if name in env or alias in env else below or {}
        given = {n: source[n].strip() for n in (name, alias) if n in source}
        if len(set(given.values())) > 1:
            raise ConfigError(f"{name}={given[name]!r} and its alias {alias}={given[alias]!r} disagree; "
                              f"set only {name}")
        merged.pop(name, None)
        merged.pop(alias, None)
        if given:
            merged[name] = merged[alias] = next(iter(given.values()))
    return merged


def read_environment(env_file: Path | None = DEFAULT_ENV_FILE) -> dict[str, str]:
    """``.env``, then the untracked ``.env.local`` beside it (a real webhook; compose reads it too), overlaid by the
    process environment (the environment wins, as in docker compose)."""
    merged: dict[str, str] = {}
    for path in (env_file, env_file.with_name(env_file.name + ".local")) if env_file is not None else ():
        if path.is_file():
            merged = resolve_aliases({k: v for k, v in dotenv_values(path).items() if v is not None}, merged)
    return resolve_aliases(dict(os.environ), merged)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


class _Reader:
    """Typed reads of one resolved environment, shared by every loader below: a bad value is a one-line ConfigError
    naming its variable (the caller exits 2 with it, no traceback). An empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str] | None) -> None:
        self.env = read_environment() if environ is None else resolve_aliases(environ)

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name, default).strip()

    def number(self, name: str, default: str, kind: type[int] | type[float]) -> int | float:
        raw = self.text(name, default) or default
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None

    def port(self, name: str, default: str) -> int:
        value = int(self.number(name, default, int))
        if not 0 < value < 65536:
            raise ConfigError(f"{name} must be a TCP port (1-65535), got {value}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        """One of ``allowed``; unset: the first."""
        value = self.text(name) or allowed[0]
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def webhook(self, name: str) -> Secret | None:
        raw = self.text(name)
        if raw and not _is_http_url(raw):  # the value is a secret: never echo it
            raise ConfigError(f"{name} must be an http(s) URL such as https://hooks.slack.com/services/...")
        return Secret(raw) if raw else None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The consumer's settings (the processor, the daemon's launcher, the CLI tools). Reads nothing that only local
    mode or the generator uses: a bad GENERATOR_RATE in the shared .env does not stop a consumer."""
    read = _Reader(environ)
    get, number = read.text, read.number
    names = [x.strip() for x in (get("CALI_ALERT_LEVELS", "ERROR,WARN") or "ERROR,WARN").split(",") if x.strip()]
    levels = frozenset(normalise_level(name).value for name in names)
    if not levels or Level.UNKNOWN.value in levels:
        raise ConfigError(f"CALI_ALERT_LEVELS must name levels such as ERROR,WARN; got {names!r}")
    throttle = int(number("THROTTLE_MAX_PER_MINUTE", "5", int))
    if throttle < 1:
        raise ConfigError("THROTTLE_MAX_PER_MINUTE must be at least 1")
    retry_max = float(number("CALI_SLACK_RETRY_MAX_SECONDS", str(BACKOFF_MAX_SECONDS), float))
    if not retry_max > 0:
        raise ConfigError("CALI_SLACK_RETRY_MAX_SECONDS must be a number of seconds above 0, got "
                          f"{get('CALI_SLACK_RETRY_MAX_SECONDS')!r}")
    upkeep_gap = float(number("CALI_UPKEEP_GAP_SECONDS", str(UPKEEP_GAP_SECONDS), float))
    if not upkeep_gap >= 0:
        raise ConfigError(f"CALI_UPKEEP_GAP_SECONDS must be 0 or more seconds, got {get('CALI_UPKEEP_GAP_SECONDS')!r}")
    timezone = get("CALI_DISPLAY_TIMEZONE", "UTC") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CALI_DISPLAY_TIMEZONE {timezone!r} is not a known time zone") from None
    worker_id = get("CALI_WORKER_ID") or f"cali-{socket.gethostname()}"
    token = Secret(get("SLACK_BOT_TOKEN")) if get("SLACK_BOT_TOKEN") else None
    channel = get("SLACK_CHANNEL")
    if token is not None and not channel:
        raise ConfigError("SLACK_BOT_TOKEN is set but SLACK_CHANNEL is not: name the channel alerts go to")
    api_url = get("SLACK_API_URL")
    if api_url and not _is_http_url(api_url):
        raise ConfigError(f"SLACK_API_URL must be an http(s) URL ending in /api/, got {api_url!r}")
    if api_url and not api_url.endswith("/"):
        api_url += "/"
    routes = _routes(get("CALI_ROUTES_FILE"), throttle)
    webhooks = {name: Secret(get(name)) for name in {r.webhook for r in routes.all if r.webhook} if get(name)}
    return Settings(
        region=get("AWS_REGION") or "ap-northeast-2",
        endpoint_url=get("LOCALSTACK_ENDPOINT") or None,
        stream_name=get("KINESIS_STREAM_NAME", "cali-log-stream"),
        app_name=get("CALI_APP_NAME", "cali-consumer"),
        worker_id=worker_id,
        alert_levels=levels,
        throttle_max_per_minute=throttle,
        display_timezone=timezone,
        slack_webhook_url=read.webhook("SLACK_WEBHOOK_URL"),
        slack_webhook_url_warn=read.webhook("SLACK_WEBHOOK_URL_WARN"),
        slack_bot_token=token,
        slack_channel=channel,
        slack_api_url=api_url or None,
        update_interval_seconds=float(number("CALI_UPDATE_INTERVAL_SECONDS", "10", float)),
        resolve_after_seconds=float(number("CALI_RESOLVE_AFTER_SECONDS", "900", float)),
        send_stale_seconds=float(number("CALI_SEND_STALE_SECONDS", str(SEND_STALE_SECONDS), float)),
        slack_retry_max_seconds=retry_max,
        upkeep_gap_seconds=upkeep_gap,
        log_level=get("LOG_LEVEL", "INFO").upper() or "INFO",
        checkpoint_interval_seconds=float(number("CALI_CHECKPOINT_INTERVAL_SECONDS", "5", float)),
        dedup_window_seconds=float(number("CALI_DEDUP_WINDOW_SECONDS", "300", float)),
        digest_interval_seconds=float(number("CALI_DIGEST_INTERVAL_SECONDS", "60", float)),
        health_dir=Path(get("CALI_HEALTH_DIR") or f"/tmp/cali-health/{worker_id}"),
        routes=routes,
        webhooks=webhooks,
        silence_refresh_seconds=float(number("CALI_SILENCE_REFRESH_SECONDS", "5", float)),
        operator=get("CALI_OPERATOR") or get("USER") or get("LOGNAME") or "unknown",
        aws_keys=(get("AWS_ACCESS_KEY_ID"), Secret(get("AWS_SECRET_ACCESS_KEY")))
        if get("AWS_ACCESS_KEY_ID") and get("AWS_SECRET_ACCESS_KEY") else None,
    )


def load_local_settings(environ: Mapping[str, str] | None = None) -> LocalSettings:
    read = _Reader(environ)
    plugin_dir = read.text("CALI_TF_PLUGIN_DIR")
    return LocalSettings(
        stream_shards=int(read.number("CALI_STREAM_SHARDS", "2", int)),
        resources=read.choice("CALI_RESOURCES", ("python", "terraform")),
        terraform_plugin_dir=Path(plugin_dir) if plugin_dir else None,
        tls_port=read.port("CALI_TLS_PORT", "4567"),
        slack_receiver_port=read.port("SLACK_RECEIVER_PORT", "4580"),
        forward_port=read.port("FLUENT_BIT_FORWARD_PORT", "24224"),
    )


def load_generator_settings(environ: Mapping[str, str] | None = None) -> GeneratorSettings:
    read = _Reader(environ)
    rate = float(read.number("GENERATOR_RATE", "5", float))
    if not 0 <= rate < math.inf:
        raise ConfigError(f"GENERATOR_RATE must be a finite number >= 0 (0: as fast as possible), got {rate}")
    ratio = float(read.number("GENERATOR_ERROR_RATIO", "0.2", float))
    if not 0 <= ratio <= 1:
        raise ConfigError(f"GENERATOR_ERROR_RATIO must be within [0, 1], got {ratio}")
    seed = int(read.number("GENERATOR_SEED", "0", int)) if read.text("GENERATOR_SEED") else None
    return GeneratorSettings(rate=rate, error_ratio=ratio, seed=seed)


def _routes(path: str, default_max_per_minute: int) -> Routes:
    """``CALI_ROUTES_FILE`` (default: the repository's ``routes.yaml``; ``none``: everything to the default route).
    A file that was named but is missing is an error; a missing default file means no rules."""
    if path.lower() == "none":
        return default_only(default_max_per_minute)
    if not path and not DEFAULT_ROUTES_FILE.is_file():
        return default_only(default_max_per_minute)
    return load_routes(Path(path) if path else DEFAULT_ROUTES_FILE, default_max_per_minute)


def kcl_failover_millis(properties: Path = KCL_PROPERTIES) -> int:
    """``failoverTimeMillis`` of the KCL properties (how long a lease lives without renewal)."""
    try:
        text = properties.read_text()
    except OSError:
        return KCL_DEFAULT_FAILOVER_MILLIS
    found = re.findall(r"^\s*failoverTimeMillis\s*[=:]\s*(\d+)\s*$", text, re.MULTILINE)
    return int(found[-1]) if found else KCL_DEFAULT_FAILOVER_MILLIS  # the last one wins, as in java.util.Properties
