"""CALI_RESOURCES=terraform without what it needs says why in one line, before any AWS call; its variables are the
ones compose passes to the `terraform` job."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.config import load_local_settings, load_settings
from consumer.errors import ConfigError
from localmode import terraform


def test_without_a_provider_directory_it_is_a_one_line_config_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "terraform").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # a stand-in `terraform` binary: only its presence matters here
    local = load_local_settings({"CALI_RESOURCES": "terraform"})
    with pytest.raises(ConfigError) as caught:
        terraform.apply(load_settings({}), local, tmp_path / "work", {})
    assert "\n" not in str(caught.value) and "CALI_TF_PLUGIN_DIR" in str(caught.value)
    empty = load_local_settings({"CALI_RESOURCES": "terraform", "CALI_TF_PLUGIN_DIR": str(tmp_path)})
    assert terraform.unavailable(empty) == f"CALI_TF_PLUGIN_DIR={tmp_path} holds no {terraform.PROVIDER}/"
    assert not (tmp_path / "work").exists()


def test_no_terraform_on_path_is_said_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    local = load_local_settings({"CALI_TF_PLUGIN_DIR": str(tmp_path)})
    assert terraform.unavailable(local) == "`terraform` is not on PATH"


def test_unknown_resources_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CALI_RESOURCES must be one of python, terraform"):
        load_local_settings({"CALI_RESOURCES": "cdk"})


def test_variables_are_the_settings_compose_passes() -> None:
    environ = {"KINESIS_STREAM_NAME": "s", "CALI_STREAM_SHARDS": "3", "CALI_APP_NAME": "a",
               "AWS_REGION": "eu-west-1", "LOCALSTACK_ENDPOINT": "http://127.0.0.1:5201"}
    declared = {line.split('"')[1] for line in (terraform.TERRAFORM_DIR / "variables.tf").read_text().splitlines()
                if line.startswith("variable ")}
    values = terraform.variables(load_settings(environ), load_local_settings(environ))
    assert {k.removeprefix("TF_VAR_") for k in values} == declared
    assert values == {"TF_VAR_localstack_endpoint": "http://127.0.0.1:5201", "TF_VAR_region": "eu-west-1",
                      "TF_VAR_stream_name": "s", "TF_VAR_shard_count": "3", "TF_VAR_app_name": "a"}


STAND_IN = """#!/bin/sh
echo "$* | $(pwd) | $TF_VAR_stream_name $TF_VAR_shard_count $TF_VAR_localstack_endpoint" >> "$CALLS"
[ "$1" = apply ] && [ -n "${FAIL_APPLY:-}" ] && { echo "Error: creating Kinesis Stream: boom" >&2; exit 1; }
exit 0
"""


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A stand-in `terraform` first on PATH (the AWS provider it would need cannot be had here) and a plugin
    directory laid out as `-plugin-dir` expects."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text(STAND_IN)
    (bin_dir / "terraform").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    plugins = tmp_path / "plugins"
    (plugins / terraform.PROVIDER / "5.100.0" / "linux_amd64").mkdir(parents=True)
    return tmp_path / "calls", plugins


def test_apply_runs_init_with_the_plugin_dir_then_apply_with_a_stand_in_terraform(
        stand_in: tuple[Path, Path], tmp_path: Path) -> None:
    calls, plugins = stand_in
    environ = {"CALI_RESOURCES": "terraform", "CALI_TF_PLUGIN_DIR": str(plugins),
               "KINESIS_STREAM_NAME": "s", "LOCALSTACK_ENDPOINT": "http://127.0.0.1:5201"}
    work = tmp_path / "work"
    env = {"CALLS": str(calls), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    terraform.apply(load_settings(environ), load_local_settings(environ), work, env)
    init, apply = calls.read_text().splitlines()
    assert init == f"init -input=false -no-color -upgrade -plugin-dir={plugins} | {work} | s 2 http://127.0.0.1:5201"
    assert apply.startswith("apply -input=false -auto-approve -no-color | ")
    assert sorted(p.name for p in work.glob("*.tf")) == sorted(p.name for p in terraform.TERRAFORM_DIR.glob("*.tf"))


def test_a_failed_apply_says_its_last_line_with_a_stand_in_terraform(stand_in: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    calls, plugins = stand_in
    local = load_local_settings({"CALI_TF_PLUGIN_DIR": str(plugins)})
    env = {"CALLS": str(calls), "FAIL_APPLY": "1", "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    with pytest.raises(RuntimeError, match=r"`terraform apply` failed \(exit 1\): Error: creating Kinesis Stream: "
                                           r"boom; see .*work and run it there"):
        terraform.apply(load_settings({}), local, tmp_path / "work", env)
