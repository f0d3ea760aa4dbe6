"""The local pipeline as parts that can be started one by one: by ``python -m localmode run`` and by tests."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from consumer.config import (
    GeneratorSettings,
    LocalSettings,
    Settings,
    load_generator_settings,
    load_local_settings,
    load_settings,
    read_environment,
    resolve_aliases,
)
from consumer.state.dynamodb import ensure_table
from localmode import daemon, paths, terraform
from localmode.endpoint import Found, host_port, probe
from localmode.preflight import Port, StartError
from localmode.resources import ensure_silences_table, ensure_stream, seed_leases
from localmode.supervisor import Child, Supervisor, free_port, port_open, wait_until
from slack_receiver.settings import load_receiver_settings

log = logging.getLogger("cali.stack")

WEBHOOK_PATH = "/services/local/cali/webhook"


@dataclass
class Stack:
    env: dict[str, str] = field(default_factory=read_environment)
    run_dir: Path = paths.RUN
    keep_state: bool = False  # the emulator saves its state under run_dir/state and restores it at start
    supervisor: Supervisor = field(init=False)
    uses_moto: bool = field(init=False, default=True)
    slack_mode: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.env.setdefault("CALI_PYTHON", sys.executable)
        self.supervisor = Supervisor(self.run_dir / "logs")
        self.slack_mode = self._slack_mode()  # once: starting the receiver sets the URLs it decides on
        if self.slack_mode == "local web api" and not self.env.get("SLACK_CHANNEL", "").strip():
            self.env["SLACK_CHANNEL"] = load_receiver_settings(self.env).channels[0]  # the receiver's default

    @property
    def settings(self) -> Settings:
        """The consumer's settings (what the daemon's processors will read)."""
        return load_settings(self.env)

    @property
    def local(self) -> LocalSettings:
        """Local mode's own: its ports, the stream's shards, how the resources are created."""
        return load_local_settings(self.env)

    @property
    def generator(self) -> GeneratorSettings:
        return load_generator_settings(self.env)

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state" / "emulator.pickle"

    @property
    def fluent_bit(self) -> str | None:
        return shutil.which("fluent-bit")

    def ports(self) -> list[Port]:
        """The ports this stack will listen on, given what already answers at the AWS endpoint."""
        endpoint, local = self.settings.endpoint_url, self.local
        ports = []
        if endpoint is not None and probe(endpoint) is Found.NOTHING:
            ports += [Port(host_port(endpoint)[1], "LOCALSTACK_ENDPOINT", "the AWS emulator"),
                      Port(local.tls_port, "CALI_TLS_PORT", "the emulator's HTTPS port for Fluent Bit")]
        if self.slack_mode.startswith("local"):
            ports.append(Port(local.slack_receiver_port, "SLACK_RECEIVER_PORT", "the local Slack receiver"))
        if self.fluent_bit is not None:
            ports.append(Port(local.forward_port, "FLUENT_BIT_FORWARD_PORT", "Fluent Bit's forward input"))
        return ports

    def client(self, service: str) -> Any:
        s = self.settings
        return boto3.client(service, region_name=s.region, endpoint_url=s.endpoint_url,  # type: ignore[call-overload]
                            aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID", "test"),
                            aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY", "test"))

    # -- parts -------------------------------------------------------------------------------------------------
    def start_emulator(self) -> Child | None:
        """Start moto+hypercorn at LOCALSTACK_ENDPOINT, unless a LocalStack already answers there."""
        url = self.settings.endpoint_url
        if url is None:
            raise ValueError("LOCALSTACK_ENDPOINT is empty: local mode needs an endpoint")
        found = probe(url)
        if found is Found.LOCALSTACK:
            log.info("LocalStack is running at %s: using it", url)
            self.uses_moto = False
            return None
        if found is Found.MOTO:
            log.info("an emulator (moto) is already running at %s: using it", url)
            return None
        if found is Found.OTHER:
            raise StartError(f"port {host_port(url)[1]} (LOCALSTACK_ENDPOINT) is in use by something that is neither "
                             "LocalStack nor CALI's emulator: stop it or set LOCALSTACK_ENDPOINT to a free port")
        host, port = host_port(url)
        tls_port = self.local.tls_port
        keep = ["--state-file", str(self.state_file)] if self.keep_state else []
        child = self.supervisor.start("emulator", [sys.executable, "-m", "localmode.emulator", "--host", host,
                                                   "--port", str(port), "--tls-port", str(tls_port),
                                                   "--tls-dir", str(self.run_dir / "tls"), *keep], self.env,
                                      stop_timeout=30.0)
        wait_until(lambda: port_open(host, port) and port_open(host, tls_port), 30, "emulator", alive=child.alive)
        return child

    def create_resources(self, owners: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The stream and CALI's tables: by Python (default), or by terraform/localstack (CALI_RESOURCES=terraform,
        the files compose applies); then the KCL's lease table seeded, as the compose consumer's launcher does."""
        s, local = self.settings, self.local
        dynamodb = self.client("dynamodb")
        if local.resources == "terraform":
            terraform.apply(s, local, self.run_dir / "terraform", self.env)
        shards = ensure_stream(self.client("kinesis"), s.stream_name, local.stream_shards)  # after terraform: finds it
        if local.resources == "python":
            ensure_table(dynamodb, s.state_table)
            ensure_silences_table(dynamodb, s.silences_table)
        seed_leases(dynamodb, s.app_name, shards, owners)
        return shards

    def stream_exists(self) -> bool:
        kinesis = self.client("kinesis")
        try:
            kinesis.describe_stream_summary(StreamName=self.settings.stream_name)
        except kinesis.exceptions.ResourceNotFoundException:
            return False
        return True

    def release_leader_lock(self) -> None:
        """Delete a KCL 3 leader lock left in the saved state. Local mode runs the only worker of its emulator and
        none runs yet, so the lock is stale; if its owner died without releasing it (kill -9), the KCL would wait
        for it forever (amazon-kinesis-client #1803) and assign no lease."""
        dynamodb = self.client("dynamodb")
        table = f"{self.settings.app_name}-CoordinatorState"
        with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
            dynamodb.delete_item(TableName=table, Key={"key": {"S": "Leader"}})

    def forget_state(self) -> None:
        """A fresh start: the emulator's saved state, Fluent Bit's buffer and the receiver's messages go."""
        shutil.rmtree(self.state_file.parent, ignore_errors=True)  # the snapshot and its journal
        shutil.rmtree(self.fluent_bit_env()["FLUENT_BIT_STORAGE"], ignore_errors=True)
        (self.run_dir / "slack-messages.jsonl").unlink(missing_ok=True)

    def _slack_mode(self) -> str:
        """Which Slack local mode talks to, from the environment:
        - SLACK_BOT_TOKEN set to the local receiver's token (SLACK_RECEIVER_TOKEN, default xoxb-cali-local) and no
          SLACK_API_URL: the Web API of the local receiver ("local web api");
        - SLACK_BOT_TOKEN set otherwise: that Web API (Slack's own, or SLACK_API_URL) ("web api");
        - SLACK_WEBHOOK_URL set: that webhook ("webhook");
        - neither: the local receiver's incoming webhook ("local webhook", the default)."""
        token = self.env.get("SLACK_BOT_TOKEN", "").strip()
        if token:
            local = load_receiver_settings(self.env).token.value
            return "local web api" if token == local and not self.env.get("SLACK_API_URL", "").strip() else "web api"
        return "webhook" if self.env.get("SLACK_WEBHOOK_URL", "").strip() else "local webhook"

    def start_receiver(self) -> Child | None:
        """The local Slack receiver, unless alerts go to a real Slack (see ``_slack_mode``)."""
        mode = self.slack_mode
        if not mode.startswith("local"):
            log.info("alerts go to the configured %s", "SLACK_WEBHOOK_URL" if mode == "webhook" else "Slack Web API")
            return None
        port = self.local.slack_receiver_port
        self.env.update(self.route_webhooks(port))
        child = self.supervisor.start("slack-receiver", [sys.executable, "-m", "slack_receiver", "--host",
                                                         "127.0.0.1", "--port", str(port), "--store",
                                                         str(self.run_dir / "slack-messages.jsonl")], self.env,
                                      restart=True)
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), 15, "slack receiver", alive=child.alive)
        if mode == "local web api":
            self.env["SLACK_API_URL"] = f"http://127.0.0.1:{port}/api/"
        else:
            self.env["SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        log.info("local Slack receiver (%s): http://127.0.0.1:%d/ (messages in %s)", mode.removeprefix("local "),
                 port, self.run_dir / "slack-messages.jsonl")
        return child

    def route_webhooks(self, port: int) -> dict[str, str]:
        """Each route's webhook variable that is not set points at the route's channel on the local receiver
        (``/services/<channel>/local``; the receiver creates every channel the routes name), so webhook mode shows
        each route's alerts in its own channel."""
        routes = self.settings.routes
        out = {}
        for route in routes.all:
            channel = route.channel or routes.default.channel
            if route.webhook and channel and not self.env.get(route.webhook, "").strip():
                out[route.webhook] = f"http://127.0.0.1:{port}/services/{channel.removeprefix('#')}/local"
        return out

    def start_daemon(self, worker_id: str | None = None, overrides: dict[str, str] | None = None,
                     jvm_flags: Sequence[str] | None = None) -> Child:
        env = dict(self.env)
        if worker_id:
            env["CALI_WORKER_ID"] = worker_id
        settings = load_settings(env)
        props = daemon.write_properties(settings, self.run_dir / f"{settings.worker_id}.properties", overrides)
        name = f"kcl-{settings.worker_id}"
        argv = daemon.command(props, cbor=not self.uses_moto, log_file=self.supervisor.log_dir / f"{name}.kcl.log",
                              jvm_flags=jvm_flags)
        return self.supervisor.start(name, argv, env, stop_timeout=40.0, restart=True)

    def start_generator(self, generator: GeneratorSettings | None = None) -> list[Child]:
        generator = generator or self.generator
        common = ["--rate", str(generator.rate), "--error-ratio", str(generator.error_ratio)]
        if generator.seed is not None:
            common += ["--seed", str(generator.seed)]
        fluent_bit = self.fluent_bit
        if fluent_bit is None:
            log.info("fluent-bit is not on PATH: the generator writes Fluent Bit-shaped records to Kinesis itself")
            argv = [sys.executable, "-m", "generator", *common, "--output", "kinesis",
                    "--stream", self.settings.stream_name]
            return [self.supervisor.start("generator", argv, self.env, restart=True)]
        env = {**self.env, **self.fluent_bit_env()}
        fb = self.supervisor.start("fluent-bit", [fluent_bit, "-c", str(paths.FLUENT_BIT_CONF)], env, restart=True)
        gen = self.supervisor.start("generator", [sys.executable, "-m", "generator", *common, "--output", "forward",
                                                  "--forward-port", env["FLUENT_BIT_FORWARD_PORT"]], env,
                                    restart=True)
        return [fb, gen]

    def fluent_bit_env(self) -> dict[str, str]:
        local = self.local
        host, _ = host_port(self.settings.endpoint_url or "http://127.0.0.1:4566")
        return {"KINESIS_HOST": host, "KINESIS_TLS_PORT": str(local.tls_port),
                "KINESIS_CA_FILE": str(self.run_dir / "tls" / "ca.pem"),
                "FLUENT_BIT_FORWARD_PORT": str(local.forward_port),
                "FLUENT_BIT_STORAGE": str(self.run_dir / "fluent-bit-storage")}

    def stop(self) -> None:
        self.supervisor.stop_all()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except OSError:
        return False


def private_env(name: str, **overrides: str) -> dict[str, str]:
    """``.env`` + the environment, with free ports, a private stream and application named ``name``, and the local
    receiver as Slack (a real webhook or bot token there is never used): a stack of its own next to ``make run``,
    for a benchmark or the class archive's training run. ``overrides`` win."""
    return resolve_aliases({
        "LOCALSTACK_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "CALI_TLS_PORT": str(free_port()),
        "SLACK_RECEIVER_PORT": str(free_port()),
        "SLACK_WEBHOOK_URL": "",
        "SLACK_WEBHOOK_URL_WARN": "",
        "SLACK_BOT_TOKEN": "",
        "KINESIS_STREAM_NAME": name,
        "CALI_APP_NAME": name,
        **overrides,
    }, read_environment())
