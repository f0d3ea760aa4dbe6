"""load_settings (and local mode's and the generator's loaders) from a plain mapping, and read_environment's
precedence (environment over .env)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from consumer.config import (
    GeneratorSettings,
    LocalSettings,
    Secret,
    Settings,
    load_generator_settings,
    load_local_settings,
    load_settings,
    read_environment,
    resolve_aliases,
)
from consumer.errors import ConfigError

WEBHOOK = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("region", "ap-northeast-2", id="region"),
        pytest.param("endpoint_url", None, id="endpoint_url"),
        pytest.param("stream_name", "cali-log-stream", id="stream_name"),
        pytest.param("app_name", "cali-consumer", id="app_name"),
        pytest.param("worker_id", f"cali-{socket.gethostname()}", id="worker_id"),
        pytest.param("alert_levels", frozenset({"ERROR", "WARN"}), id="alert_levels"),
        pytest.param("throttle_max_per_minute", 5, id="throttle_max_per_minute"),
        pytest.param("display_timezone", "UTC", id="display_timezone"),
        pytest.param("slack_webhook_url", None, id="slack_webhook_url"),
        pytest.param("slack_webhook_url_warn", None, id="slack_webhook_url_warn"),
        pytest.param("log_level", "INFO", id="log_level"),
        pytest.param("checkpoint_interval_seconds", 5.0, id="checkpoint_interval_seconds"),
        pytest.param("dedup_window_seconds", 300.0, id="dedup_window_seconds"),
        pytest.param("digest_interval_seconds", 60.0, id="digest_interval_seconds"),
        pytest.param("state_table", "cali-consumer-state", id="state_table"),
    ],
)
def test_defaults(field: str, expected: object) -> None:
    value = getattr(load_settings({}), field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("environ", "field", "expected"),
    [
        pytest.param({"AWS_DEFAULT_REGION": "us-east-1"}, "region", "us-east-1", id="default-region-alias"),
        pytest.param({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}, "region", "eu-west-1",
                     id="region-and-alias-agree"),
        pytest.param({"LOCALSTACK_ENDPOINT": " http://localhost:4566 "}, "endpoint_url", "http://localhost:4566",
                     id="endpoint-stripped"),
        pytest.param({"AWS_ENDPOINT_URL": "http://localhost:4566"}, "endpoint_url", "http://localhost:4566",
                     id="endpoint-alias"),
        pytest.param({"LOCALSTACK_ENDPOINT": ""}, "endpoint_url", None, id="empty-endpoint-is-real-aws"),
        pytest.param({"KINESIS_STREAM_NAME": "plan"}, "stream_name", "plan", id="stream"),
        pytest.param({"CALI_STREAM_NAME": "old"}, "stream_name", "old", id="stream-alias"),
        pytest.param({"CALI_APP_NAME": "app"}, "state_table", "app-state", id="state-table-follows-app"),
        pytest.param({"CALI_WORKER_ID": "w-1"}, "worker_id", "w-1", id="worker-id"),
        pytest.param({"THROTTLE_MAX_PER_MINUTE": " 7 "}, "throttle_max_per_minute", 7, id="padded-int"),
        pytest.param({"THROTTLE_MAX_PER_MINUTE": ""}, "throttle_max_per_minute", 5, id="empty-int-is-default"),
        pytest.param({"LOG_LEVEL": "debug"}, "log_level", "DEBUG", id="log-level-upper"),
        pytest.param({"CALI_DISPLAY_TIMEZONE": "Asia/Seoul"}, "display_timezone", "Asia/Seoul", id="timezone"),
        pytest.param({"CALI_DISPLAY_TIMEZONE": "  "}, "display_timezone", "UTC", id="blank-timezone-is-utc"),
        pytest.param({"CALI_CHECKPOINT_INTERVAL_SECONDS": "0.5"}, "checkpoint_interval_seconds", 0.5,
                     id="checkpoint-interval"),
        pytest.param({"CALI_DIGEST_INTERVAL_SECONDS": "2"}, "digest_interval_seconds", 2.0, id="digest-interval"),
    ],
)
def test_values(environ: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load_settings(environ), field) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("ERROR,WARN", {"ERROR", "WARN"}, id="default-form"),
        pytest.param("error, warn", {"ERROR", "WARN"}, id="lowercase-spaces"),
        pytest.param("ERROR", {"ERROR"}, id="errors-only"),
        pytest.param(" , ERROR ,, ", {"ERROR"}, id="empty-items-ignored"),
        pytest.param("ERROR,WARN,INFO", {"ERROR", "WARN", "INFO"}, id="with-info"),
        pytest.param("ERROR,ERROR", {"ERROR"}, id="duplicates"),
        pytest.param("ERROR,WARNING", {"ERROR", "WARN"}, id="WARNING-alias"),
        pytest.param("fatal,Warning", {"ERROR", "WARN"}, id="aliases-normalised"),
        pytest.param("", {"ERROR", "WARN"}, id="empty-is-default"),
        pytest.param("  ", {"ERROR", "WARN"}, id="blank-is-default"),
    ],
)
def test_alert_levels(raw: str, expected: set[str]) -> None:
    assert load_settings({"CALI_ALERT_LEVELS": raw}).alert_levels == frozenset(expected)


@pytest.mark.parametrize("raw", [pytest.param("ERRORS", id="typo"), pytest.param("ERROR,CRITICAL_ONLY", id="unknown"),
                                 pytest.param(" , ,", id="only-separators")])
def test_unknown_alert_level_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError):
        load_settings({"CALI_ALERT_LEVELS": raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        pytest.param("THROTTLE_MAX_PER_MINUTE", "five", id="throttle-word"),
        pytest.param("THROTTLE_MAX_PER_MINUTE", "5.5", id="throttle-float"),
        pytest.param("CALI_CHECKPOINT_INTERVAL_SECONDS", "10s", id="interval"),
        pytest.param("CALI_DEDUP_WINDOW_SECONDS", "5m", id="dedup-window"),
        pytest.param("CALI_DIGEST_INTERVAL_SECONDS", "1min", id="digest-interval"),
        pytest.param("CALI_SLACK_RETRY_MAX_SECONDS", "2s", id="retry-max"),
        pytest.param("CALI_SLACK_RETRY_MAX_SECONDS", "0", id="retry-max-zero"),
        pytest.param("CALI_UPKEEP_GAP_SECONDS", "-1", id="upkeep-gap-negative"),
        pytest.param("CALI_UPKEEP_GAP_SECONDS", "1s", id="upkeep-gap-unit"),
    ],
)
def test_bad_number_is_a_config_error(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: raw})
    assert name in str(info.value)
    assert repr(raw) in str(info.value)


# -- local mode's and the generator's settings: read here too, but not by the consumer ---------------------------

LOCAL_AND_GENERATOR_BAD = [
    pytest.param(load_local_settings, "CALI_STREAM_SHARDS", "2x", "must be a number, got '2x'", id="shards"),
    pytest.param(load_local_settings, "SLACK_RECEIVER_PORT", "http", "must be a number, got 'http'", id="port"),
    pytest.param(load_local_settings, "SLACK_RECEIVER_PORT", "70000", "must be a TCP port", id="port-range"),
    pytest.param(load_local_settings, "CALI_TLS_PORT", "45 67", "must be a number, got '45 67'", id="tls-port"),
    pytest.param(load_local_settings, "FLUENT_BIT_FORWARD_PORT", "0", "must be a TCP port", id="forward-port"),
    pytest.param(load_local_settings, "CALI_RESOURCES", "cdk", "must be one of python, terraform", id="resources"),
    pytest.param(load_generator_settings, "GENERATOR_RATE", "fast", "must be a number, got 'fast'", id="rate"),
    pytest.param(load_generator_settings, "GENERATOR_RATE", "-1", "must be a finite number >= 0", id="rate-<0"),
    pytest.param(load_generator_settings, "GENERATOR_RATE", "inf", "must be a finite number >= 0", id="rate-inf"),
    pytest.param(load_generator_settings, "GENERATOR_ERROR_RATIO", "20%", "must be a number, got '20%'", id="ratio"),
    pytest.param(load_generator_settings, "GENERATOR_ERROR_RATIO", "1.5", "must be within [0, 1]", id="ratio>1"),
    pytest.param(load_generator_settings, "GENERATOR_SEED", "abc", "must be a number, got 'abc'", id="seed"),
]


@pytest.mark.parametrize(("loader", "name", "raw", "words"), LOCAL_AND_GENERATOR_BAD)
def test_a_bad_local_or_generator_value_stops_its_own_loader_and_not_the_consumers(
        loader: Callable[[Mapping[str, str]], object], name: str, raw: str, words: str) -> None:
    """One .env feeds every container in compose: a bad GENERATOR_RATE stops the generator (and `make run`, in one
    line), never the consumer."""
    with pytest.raises(ConfigError) as info:
        loader({name: raw})
    message = str(info.value)
    assert message.startswith(name) and words in message and "\n" not in message
    assert load_settings({name: raw}) == load_settings({})


def test_local_and_generator_defaults() -> None:
    assert load_local_settings({}) == LocalSettings(stream_shards=2, resources="python", terraform_plugin_dir=None,
                                                    tls_port=4567, slack_receiver_port=4580, forward_port=24224)
    assert load_generator_settings({}) == GeneratorSettings(rate=5.0, error_ratio=0.2, seed=None)


def test_local_and_generator_values() -> None:
    local = load_local_settings({"CALI_STREAM_SHARDS": "3", "CALI_RESOURCES": "terraform", "CALI_TF_PLUGIN_DIR": "/p",
                                 "CALI_TLS_PORT": " 5001 ", "SLACK_RECEIVER_PORT": "5002",
                                 "FLUENT_BIT_FORWARD_PORT": "5003"})
    assert local == LocalSettings(stream_shards=3, resources="terraform", terraform_plugin_dir=Path("/p"),
                                  tls_port=5001, slack_receiver_port=5002, forward_port=5003)
    generator = load_generator_settings({"GENERATOR_RATE": "2.5", "GENERATOR_ERROR_RATIO": "1",
                                         "GENERATOR_SEED": "42"})
    assert generator == GeneratorSettings(rate=2.5, error_ratio=1.0, seed=42)
    assert load_generator_settings({"GENERATOR_RATE": "0", "GENERATOR_SEED": " "}).rate == 0.0  # 0: unpaced


@pytest.mark.parametrize("raw", [pytest.param("0", id="zero"), pytest.param("-1", id="negative")])
def test_throttle_budget_must_be_positive(raw: str) -> None:
    with pytest.raises(ConfigError, match="THROTTLE_MAX_PER_MINUTE"):
        load_settings({"THROTTLE_MAX_PER_MINUTE": raw})


@pytest.mark.parametrize("raw", [pytest.param("Mars/Olympus_Mons", id="unknown"),
                                 pytest.param("KST", id="abbreviation"), pytest.param("../etc/passwd", id="path")])
def test_unknown_display_timezone_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="CALI_DISPLAY_TIMEZONE"):
        load_settings({"CALI_DISPLAY_TIMEZONE": raw})


@pytest.mark.parametrize(
    ("environ", "main", "warn"),
    [
        pytest.param({"SLACK_WEBHOOK_URL": WEBHOOK}, WEBHOOK, None, id="main-only"),
        pytest.param({"SLACK_WEBHOOK_URL": f"  {WEBHOOK}\n"}, WEBHOOK, None, id="stripped"),
        pytest.param({"SLACK_WEBHOOK_URL": "   "}, None, None, id="blank-is-unset"),
        pytest.param({"SLACK_WEBHOOK_URL": WEBHOOK, "SLACK_WEBHOOK_URL_WARN": WEBHOOK + "W"}, WEBHOOK, WEBHOOK + "W",
                     id="main-and-warn"),
    ],
)
def test_webhooks_are_secrets(environ: dict[str, str], main: str | None, warn: str | None) -> None:
    settings = load_settings(environ)
    for secret, expected in ((settings.slack_webhook_url, main), (settings.slack_webhook_url_warn, warn)):
        if expected is None:
            assert secret is None
        else:
            assert isinstance(secret, Secret)
            assert secret.value == expected
    for text in (repr(settings), str(settings), repr(settings.slack_webhook_url), f"{settings.slack_webhook_url}"):
        assert "SECRETSECRET" not in text


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    assert isinstance(settings, Settings)
    with pytest.raises(AttributeError):
        settings.stream_name = "other"  # type: ignore[misc]


# -- read_environment: .env, overlaid by the process environment ---------------------------------------------

KEYS = ("THROTTLE_MAX_PER_MINUTE", "CALI_STREAM_NAME", "SLACK_WEBHOOK_URL", "CALI_DISPLAY_TIMEZONE", "CALI_EMPTY",
        "KINESIS_STREAM_NAME", "LOCALSTACK_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n"
        "THROTTLE_MAX_PER_MINUTE=7\n"
        "CALI_STREAM_NAME=from-dotenv\n"
        f"SLACK_WEBHOOK_URL={WEBHOOK}\n"
        "CALI_DISPLAY_TIMEZONE='Asia/Seoul'  # quoted, with a comment\n"
        "CALI_EMPTY\n",
        encoding="utf-8",
    )
    return path


def test_environment_wins_over_dotenv(clean_env: pytest.MonkeyPatch, env_file: Path) -> None:
    clean_env.setenv("THROTTLE_MAX_PER_MINUTE", "3")
    clean_env.setenv("CALI_STREAM_NAME", "")  # set but empty still wins, as in docker compose
    merged = read_environment(env_file)
    assert merged["THROTTLE_MAX_PER_MINUTE"] == "3"
    assert merged["CALI_STREAM_NAME"] == ""
    assert merged["SLACK_WEBHOOK_URL"] == WEBHOOK  # only in .env
    assert merged["CALI_DISPLAY_TIMEZONE"] == "Asia/Seoul"
    assert "CALI_EMPTY" not in merged  # a bare key without a value is skipped
    settings = load_settings(merged)
    assert settings.throttle_max_per_minute == 3
    assert settings.display_timezone == "Asia/Seoul"
    assert settings.slack_webhook_url == Secret(WEBHOOK)


def test_dotenv_used_when_environment_is_silent(clean_env: pytest.MonkeyPatch, env_file: Path) -> None:
    settings = load_settings(read_environment(env_file))
    assert (settings.throttle_max_per_minute, settings.stream_name) == (7, "from-dotenv")


@pytest.mark.parametrize("which", [pytest.param("none", id="no-file"), pytest.param("missing", id="missing-file")])
def test_no_dotenv(clean_env: pytest.MonkeyPatch, tmp_path: Path, which: str) -> None:
    clean_env.setenv("CALI_STREAM_NAME", "from-env")
    merged = read_environment(None if which == "none" else tmp_path / "absent.env")
    assert merged["CALI_STREAM_NAME"] == "from-env"
    assert "THROTTLE_MAX_PER_MINUTE" not in merged


# -- the plan's names and their aliases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alias"),
    [("LOCALSTACK_ENDPOINT", "AWS_ENDPOINT_URL"), ("KINESIS_STREAM_NAME", "CALI_STREAM_NAME"),
     ("AWS_REGION", "AWS_DEFAULT_REGION")],
)
def test_a_name_and_its_alias_that_disagree_are_one_line_error(name: str, alias: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: "a-1", alias: "b-2"})
    message = str(caught.value)
    assert "\n" not in message and name in message and alias in message and f"set only {name}" in message


def test_read_environment_exports_the_resolved_value_under_both_names(clean_env: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """boto3 reads AWS_ENDPOINT_URL / AWS_DEFAULT_REGION itself; Fluent Bit and Terraform get the plan's names."""
    path = tmp_path / ".env"
    path.write_text("LOCALSTACK_ENDPOINT=http://127.0.0.1:4566\nKINESIS_STREAM_NAME=plan\nAWS_REGION=eu-west-1\n")
    merged = read_environment(path)
    assert merged["AWS_ENDPOINT_URL"] == merged["LOCALSTACK_ENDPOINT"] == "http://127.0.0.1:4566"
    assert merged["CALI_STREAM_NAME"] == merged["KINESIS_STREAM_NAME"] == "plan"
    assert merged["AWS_DEFAULT_REGION"] == merged["AWS_REGION"] == "eu-west-1"


def test_an_alias_in_the_environment_beats_the_plans_name_in_dotenv(clean_env: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """The one precedence: the process environment over .env, pair by pair; the two names agree in each place."""
    path = tmp_path / ".env"
    path.write_text("LOCALSTACK_ENDPOINT=http://127.0.0.1:4566\nKINESIS_STREAM_NAME=plan\n")
    clean_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5201")
    settings = load_settings(read_environment(path))
    assert (settings.endpoint_url, settings.stream_name) == ("http://127.0.0.1:5201", "plan")
    clean_env.setenv("LOCALSTACK_ENDPOINT", "http://127.0.0.1:5202")
    with pytest.raises(ConfigError, match="disagree"):
        read_environment(path)


def test_overrides_over_a_read_environment_take_either_name(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("KINESIS_STREAM_NAME=plan\n")
    for name in ("KINESIS_STREAM_NAME", "CALI_STREAM_NAME"):
        assert load_settings(resolve_aliases({name: "mine"}, read_environment(path))).stream_name == "mine"


def test_env_local_beside_dotenv_overrides_it_and_the_environment_overrides_both(clean_env: pytest.MonkeyPatch,
                                                                                 env_file: Path) -> None:
    (env_file.parent / ".env.local").write_text(f"SLACK_WEBHOOK_URL={WEBHOOK}/local\nCALI_STREAM_NAME=local\n")
    merged = read_environment(env_file)
    assert (merged["SLACK_WEBHOOK_URL"], merged["KINESIS_STREAM_NAME"]) == (f"{WEBHOOK}/local", "local")
    assert merged["THROTTLE_MAX_PER_MINUTE"] == "7"  # only in .env
    clean_env.setenv("KINESIS_STREAM_NAME", "shell")
    assert read_environment(env_file)["CALI_STREAM_NAME"] == "shell"
