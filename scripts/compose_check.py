"""`make compose-check`: bring the compose pipeline up for real and say in one line whether it works.

  docker compose up -d --build -> every service reaches its state (one-shots completed, the rest running/healthy)
  -> an ERROR alert that came through Fluent Bit (it names the generator's container) reaches the Slack receiver
  -> the lease table's checkpoints, read with `awslocal` inside the LocalStack container
  -> --scale consumer=2, and the leases again -> docker compose down (-v only with --volumes)

Exit codes: 0 pass; 1 fail (the verdict line says where, with the stuck service's last log lines above it);
3 no Docker engine here (one line, nothing started); 2 compose cannot read its configuration.

Standard library only, so it runs without the venv (`make compose-check` needs no Java, Maven or pip): names and
ports come from `docker compose config`, i.e. from .env as Compose itself resolves it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

EXIT_PASS, EXIT_FAIL, EXIT_CONFIG, EXIT_NO_ENGINE = 0, 1, 2, 3
CONTAINER_MARK = "cali-log-generator"  # in every alert of a record that came through Docker's driver + Fluent Bit

# What each service must reach: "completed" (exited 0), "healthy" (running and its healthcheck passed), "running".
EXPECTED: Mapping[str, str] = {
    "certs": "completed", "terraform": "completed", "localstack": "healthy", "slack-receiver": "healthy",
    "consumer": "healthy", "fluent-bit": "running", "log-generator": "running",
}


class CheckFailed(Exception):
    """The verdict: what did not happen, in one line."""


@dataclass(frozen=True)
class Container:
    service: str
    state: str  # created, running, restarting, exited, ...
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    exit_code: int


def parse_ps(text: str) -> list[Container]:
    """`docker compose ps -a --format json`: one JSON object per line (Compose >= 2.21) or one JSON array."""
    text = text.strip()
    if not text:
        return []
    rows: list[Any] = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                     if line.strip()]
    return [Container(str(r.get("Service", "")), str(r.get("State", "")).lower(), str(r.get("Health", "")).lower(),
                      int(r.get("ExitCode") or 0)) for r in rows]


def service_status(want: str, containers: Sequence[Container]) -> tuple[str, str]:
    """("ok" | "waiting" | "failed", what was seen) for one service's containers against what it must reach."""
    if not containers:
        return "waiting", "no container yet"
    seen = ", ".join(f"{c.state}{'/' + c.health if c.health else ''}"
                     f"{f' (exit {c.exit_code})' if c.state == 'exited' else ''}" for c in containers)
    if want == "completed":
        if all(c.state == "exited" and c.exit_code == 0 for c in containers):
            return "ok", seen
        if any(c.state == "exited" and c.exit_code != 0 for c in containers):
            return "failed", seen
        return "waiting", seen
    if want == "healthy" and any(c.health == "unhealthy" for c in containers):
        return "failed", seen
    ready = all(c.state == "running" and (want == "running" or c.health == "healthy") for c in containers)
    return ("ok" if ready else "waiting"), seen


def parse_leases(text: str) -> list[dict[str, str]]:
    """`awslocal dynamodb scan` output -> [{leaseKey, leaseOwner, checkpoint}] sorted by shard."""
    items = json.loads(text).get("Items", [])
    leases = [{key: next(iter(item.get(key, {"S": ""}).values())) for key in ("leaseKey", "leaseOwner", "checkpoint")}
              for item in items]
    return sorted(leases, key=lambda lease: lease["leaseKey"])


@dataclass(frozen=True)
class Names:
    receiver_url: str
    app_name: str
    region: str


def names_from_config(text: str) -> Names:
    """`docker compose config --format json`: the receiver's published port, the consumer's application and region."""
    services = json.loads(text)["services"]
    (port,) = [p for p in services["slack-receiver"].get("ports", []) if str(p.get("target")) == "4580"]
    env = services["consumer"].get("environment", {})
    return Names(f"http://127.0.0.1:{port['published']}", env.get("CALI_APP_NAME") or "cali-consumer",
                 env.get("AWS_REGION") or "ap-northeast-2")


def alert_through_fluent_bit(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first ERROR alert whose record came through Docker's driver and Fluent Bit (it names the container)."""
    for message in messages:
        payload = message.get("payload", {})
        if str(payload.get("text", "")).startswith("[ERROR]") and CONTAINER_MARK in json.dumps(payload):
            return message
    return None


@dataclass
class Check:
    """One run; ``docker`` is the command (tests put a stand-in first on PATH), timeouts in seconds."""

    docker: str = "docker"
    up_timeout: float = 600.0
    alert_timeout: float = 240.0
    lease_timeout: float = 120.0
    poll: float = 2.0
    clock: Callable[[], float] = time.monotonic
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    names: Names = Names("http://127.0.0.1:4580", "cali-consumer", "ap-northeast-2")

    def run(self, cmd: Sequence[str], timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.docker, *cmd], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def compose(self, *args: str, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        return self.run(["compose", *args], timeout)

    def engine_problem(self) -> str | None:
        try:
            info = self.run(["info", "--format", "{{.ServerVersion}}"], timeout=30)
        except FileNotFoundError:
            return "`docker` is not on PATH"
        except subprocess.TimeoutExpired:
            return "`docker info` did not answer in 30 s"
        if info.returncode != 0:
            return f"`docker info` failed: {_last_line(info.stderr or info.stdout)}"
        return None

    def step(self, name: str, started: float) -> None:
        self.timings[name] = self.clock() - started

    def wait_services(self, start: float, expected: Mapping[str, str] = EXPECTED) -> None:
        deadline = self.clock() + self.up_timeout
        while True:
            ps = self.compose("ps", "-a", "--format", "json", timeout=60)
            containers = parse_ps(ps.stdout) if ps.returncode == 0 else []
            status = {name: service_status(want, [c for c in containers if c.service == name])
                      for name, want in expected.items()}
            failed = [name for name, (state, _) in status.items() if state == "failed"]
            waiting = [name for name, (state, _) in status.items() if state == "waiting"]
            if not failed and not waiting:
                self.step("services ready", start)
                return
            if failed or self.clock() > deadline:
                stuck = failed or waiting
                for name in stuck:
                    self.show_logs(name)
                what = "failed" if failed else f"not ready after {self.up_timeout:.0f} s"
                raise CheckFailed(f"{what}: " + "; ".join(f"{n} ({status[n][1]}, wants {expected[n]})"
                                                         for n in stuck))
            time.sleep(self.poll)

    def show_logs(self, service: str, lines: int = 20) -> None:
        logs = self.compose("logs", "--no-color", "--tail", str(lines), service, timeout=60)
        say(f"--- last {lines} log lines of {service} ---\n{(logs.stdout + logs.stderr).rstrip()}")

    def wait_alert(self, start: float) -> Mapping[str, Any]:
        deadline = self.clock() + self.alert_timeout
        while True:
            found = alert_through_fluent_bit(self.messages())
            if found is not None:
                self.step("first ERROR alert via Fluent Bit", start)
                return found
            if self.clock() > deadline:
                for name in ("fluent-bit", "consumer"):
                    self.show_logs(name)
                raise CheckFailed(f"no ERROR alert through Fluent Bit at {self.names.receiver_url} after "
                                  f"{self.alert_timeout:.0f} s")
            time.sleep(self.poll)

    def messages(self) -> list[Mapping[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.names.receiver_url}/_control/messages", timeout=5) as response:
                return list(json.loads(response.read()).get("messages", []))
        except (OSError, ValueError):
            return []

    def leases(self) -> list[dict[str, str]]:
        scan = self.compose("exec", "-T", "localstack", "awslocal", "dynamodb", "scan", "--table-name",
                            self.names.app_name, "--region", self.names.region, "--output", "json", timeout=60)
        if scan.returncode != 0:
            raise CheckFailed(f"awslocal in the localstack container failed: {_last_line(scan.stderr)}")
        return parse_leases(scan.stdout)

    def show_leases(self, title: str) -> list[dict[str, str]]:
        leases = self.leases()
        say(f"{title}:")
        for lease in leases:
            say(f"  {lease['leaseKey']:<24} owner {lease['leaseOwner'] or '-':<28} checkpoint "
                  f"{lease['checkpoint'] or '-'}")
        return leases

    def scale_out(self) -> None:
        started = self.clock()
        scaled = self.compose("up", "-d", "--no-recreate", "--scale", "consumer=2")
        if scaled.returncode != 0:
            raise CheckFailed(f"--scale consumer=2 failed: {_last_line(scaled.stderr)}")
        self.wait_services(started, {**EXPECTED, "consumer": "healthy"})
        deadline = self.clock() + self.lease_timeout
        owners: set[str] = set()
        while self.clock() <= deadline:
            owners = {lease["leaseOwner"] for lease in self.leases() if lease["leaseOwner"]}
            if len(owners) >= 2:
                self.step("second worker holds a lease", started)
                break
            time.sleep(self.poll)
        else:
            self.notes.append(f"the second worker held no lease after {self.lease_timeout:.0f} s")
        self.show_leases("leases with two consumers")

    def main(self, volumes: bool) -> int:
        problem = self.engine_problem()
        if problem is not None:
            say(f"compose-check: no Docker engine here ({problem}); nothing was started")
            return EXIT_NO_ENGINE
        config = self.compose("config", "--format", "json", timeout=60)
        try:
            self.names = names_from_config(config.stdout)
        except (ValueError, KeyError, TypeError):
            say(f"compose-check: `docker compose config` failed: {_last_line(config.stderr or config.stdout)}")
            return EXIT_CONFIG
        start = self.clock()
        verdict = ""
        try:
            up = self.compose("up", "-d", "--build")
            if up.returncode != 0:
                say((up.stdout + up.stderr)[-3000:])
                raise CheckFailed(f"docker compose up failed: {_last_line(up.stderr)}")
            self.step("up", start)
            self.wait_services(start)
            self.wait_alert(start)
            leases = self.show_leases("leases and checkpoints (awslocal in the localstack container)")
            if not any(lease["checkpoint"] not in ("", "TRIM_HORIZON", "LATEST") for lease in leases):
                self.notes.append("no checkpoint past TRIM_HORIZON yet")
            self.scale_out()
        except CheckFailed as exc:
            verdict = f"FAIL: {exc}"
        finally:
            down_started = self.clock()
            self.compose("down", *(["-v"] if volumes else []), timeout=300)
            self.step("down", down_started)
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items())
        notes = "".join(f"; {note}" for note in self.notes)
        say(f"compose-check: {verdict or 'PASS'} ({timings}{notes})")
        return EXIT_FAIL if verdict else EXIT_PASS


def say(text: str) -> None:
    """The report on stdout (a CLI's output, not a log)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compose_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volumes", action="store_true", help="`docker compose down -v` at the end (forget state)")
    parser.add_argument("--up-timeout", type=float, default=600.0, help="seconds for every service (default 600)")
    parser.add_argument("--alert-timeout", type=float, default=240.0, help="seconds for the alert (default 240)")
    parser.add_argument("--lease-timeout", type=float, default=120.0,
                        help="seconds for the second worker's lease (default 120)")
    parser.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check = Check(up_timeout=args.up_timeout, alert_timeout=args.alert_timeout, lease_timeout=args.lease_timeout,
                  poll=args.poll)
    return check.main(args.volumes)


if __name__ == "__main__":
    sys.exit(main())
