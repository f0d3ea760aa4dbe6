"""CALI_RESOURCES=terraform: local mode's resources made by terraform/localstack (the files compose applies) on the
emulator. Runs where `terraform` is on PATH and CALI_TF_PLUGIN_DIR holds the AWS provider; skips with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.config import load_local_settings
from localmode import terraform
from localmode.stack import Stack
from tests.integration.conftest import stack_env

pytestmark = pytest.mark.skipif(terraform.unavailable(load_local_settings()) is not None,
                                reason=f"CALI_RESOURCES=terraform: {terraform.unavailable(load_local_settings())}")


def test_terraform_creates_the_stream_and_tables_and_a_second_apply_changes_nothing(stack: Stack,
                                                                                     tmp_path: Path) -> None:
    env = stack_env(stack.settings.endpoint_url or "", CALI_RESOURCES="terraform", CALI_STREAM_SHARDS="3")
    local = Stack(env=env, run_dir=tmp_path)
    shards = local.create_resources()
    assert len(shards) == 3
    settings = local.settings
    dynamodb = local.client("dynamodb")
    tables = set(dynamodb.list_tables()["TableNames"])
    assert {settings.state_table, settings.silences_table, settings.app_name} <= tables
    ttl = dynamodb.describe_time_to_live(TableName=settings.state_table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    assert (tmp_path / "terraform" / "terraform.tfstate").is_file()
    assert local.create_resources() == shards  # a re-run: terraform finds everything in place
