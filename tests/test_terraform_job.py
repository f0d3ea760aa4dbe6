"""docker/terraform-apply.sh, the compose `terraform` job, run by /bin/sh with a stand-in `terraform` and `wget` on
PATH (no Docker engine or AWS provider here): a provider pin change re-inits with -upgrade, and a re-run with
nothing changed (same files, variables and LocalStack session) is a no-op."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docker" / "terraform-apply.sh"

STAND_IN_TERRAFORM = """#!/bin/sh
echo "$*" >> "$CALLS"
[ "$1" = init ] && mkdir -p .terraform
[ "$1" = apply ] && [ -n "${FAIL_APPLY:-}" ] && exit 1
exit 0
"""
STAND_IN_WGET = """#!/bin/sh
printf '{"version": "4.14.0", "session_id": "%s", "uptime": 3}' "$SESSION"
"""


class Job:
    def __init__(self, root: Path) -> None:
        self.src, self.state, self.bin = root / "src", root / "state", root / "bin"
        self.calls = root / "calls"
        for d in (self.src, self.state, self.bin):
            d.mkdir()
        for tf in (REPO / "terraform" / "localstack").glob("*.tf"):
            shutil.copy(tf, self.src / tf.name)
        for name, text in (("terraform", STAND_IN_TERRAFORM), ("wget", STAND_IN_WGET)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    def run(self, session: str = "s-1", **extra: str) -> tuple[int, list[str], str]:
        self.calls.write_text("")
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "CALLS": str(self.calls), "SESSION": session,
               "CALI_TF_SRC": str(self.src), "CALI_TF_STATE": str(self.state),
               "TF_VAR_localstack_endpoint": "http://localstack:4566", "TF_VAR_stream_name": "cali-log-stream",
               **extra}
        result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30,
                                check=False)
        return result.returncode, [c.split()[0] for c in self.calls.read_text().splitlines()], result.stdout


@pytest.fixture
def job(tmp_path: Path) -> Job:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils/busybox, in the terraform image) is not on PATH")
    return Job(tmp_path)


def test_first_run_inits_with_upgrade_and_applies(job: Job) -> None:
    code, calls, _ = job.run()
    assert (code, calls) == (0, ["init", "apply"])
    assert "-upgrade" in job.calls.read_text().splitlines()[0]


def test_nothing_changed_is_a_no_op(job: Job) -> None:
    job.run()
    code, calls, out = job.run()
    assert (code, calls) == (0, [])
    assert "nothing changed" in out


def test_a_restarted_localstack_is_applied_again_without_init(job: Job) -> None:
    job.run(session="s-1")
    assert job.run(session="s-2")[:2] == (0, ["apply"])


def test_a_changed_variable_is_applied_again(job: Job) -> None:
    job.run()
    assert job.run(TF_VAR_shard_count="4")[:2] == (0, ["apply"])


def test_a_provider_pin_change_re_inits_with_upgrade(job: Job) -> None:
    """Defect: the lock file in the state volume kept the old version and a plain `init` refused the new pin."""
    job.run()
    provider = job.src / "provider.tf"
    provider.write_text(provider.read_text().replace('version = "= ', 'version = "= 9'))
    code, calls, _ = job.run()
    assert (code, calls) == (0, ["init", "apply"])
    assert "-upgrade" in job.calls.read_text().splitlines()[0]


def test_a_failed_apply_is_retried_at_the_next_run(job: Job) -> None:
    assert job.run(FAIL_APPLY="1")[:2] == (1, ["init", "apply"])
    assert job.run()[:2] == (0, ["apply"])


def test_force_applies_anyway(job: Job) -> None:
    job.run()
    assert job.run(CALI_TERRAFORM_FORCE="1")[:2] == (0, ["apply"])


def test_without_an_answer_from_localstack_it_applies(job: Job) -> None:
    job.run()
    (job.bin / "wget").write_text("#!/bin/sh\nexit 4\n")
    assert job.run()[:2] == (0, ["apply"])
