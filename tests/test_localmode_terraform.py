"""CALI_RESOURCES=terraform without what it needs says why in one line, before any AWS call; its variables are the
ones compose passes to the `terraform` job."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.config import load_settings
from consumer.errors import ConfigError
from localmode import terraform


def test_without_a_provider_directory_it_is_a_one_line_config_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "terraform").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # a stand-in `terraform` binary: only its presence matters here
    settings = load_settings({"CALI_RESOURCES": "terraform"})
    with pytest.raises(ConfigError) as caught:
        terraform.apply(settings, tmp_path / "work", {})
    assert "\n" not in str(caught.value) and "CALI_TF_PLUGIN_DIR" in str(caught.value)
    empty = load_settings({"CALI_RESOURCES": "terraform", "CALI_TF_PLUGIN_DIR": str(tmp_path)})
    assert terraform.unavailable(empty) == f"CALI_TF_PLUGIN_DIR={tmp_path} holds no {terraform.PROVIDER}/"
    assert not (tmp_path / "work").exists()


def test_no_terraform_on_path_is_said_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert terraform.unavailable(load_settings({"CALI_TF_PLUGIN_DIR": str(tmp_path)})) == "`terraform` is not on PATH"


def test_unknown_resources_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CALI_RESOURCES must be one of python, terraform"):
        load_settings({"CALI_RESOURCES": "cdk"})


def test_variables_are_the_settings_compose_passes() -> None:
    settings = load_settings({"KINESIS_STREAM_NAME": "s", "CALI_STREAM_SHARDS": "3", "CALI_APP_NAME": "a",
                              "AWS_REGION": "eu-west-1", "LOCALSTACK_ENDPOINT": "http://127.0.0.1:5201"})
    declared = {line.split('"')[1] for line in (terraform.TERRAFORM_DIR / "variables.tf").read_text().splitlines()
                if line.startswith("variable ")}
    values = terraform.variables(settings)
    assert {k.removeprefix("TF_VAR_") for k in values} == declared
    assert values == {"TF_VAR_localstack_endpoint": "http://127.0.0.1:5201", "TF_VAR_region": "eu-west-1",
                      "TF_VAR_stream_name": "s", "TF_VAR_shard_count": "3", "TF_VAR_app_name": "a"}
