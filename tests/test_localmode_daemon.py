"""The daemon's command line (``localmode/daemon.py``): the class archive that ``make setup`` trains is mapped when it
exists, and the JVM of this machine accepts it for these jars (``-Xshare:on`` refuses to start otherwise); CALI's
launcher (``kcl-launcher/``) gives the Scheduler the pass interval of properties/cali.properties. Real ``java`` runs
(no emulator: the endpoint refuses connections, and the daemon is killed once it has built its Scheduler)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from consumer.config import load_settings
from localmode import daemon, paths

DISPATCH = "shardConsumerDispatchPollIntervalMillis"
NOBODY = "http://127.0.0.1:9"  # the discard port: nothing listens, every request is refused at once

PROPERTIES = Path("unused.properties")


def test_the_class_archive_is_mapped_only_when_it_exists(tmp_path: Path) -> None:
    archive = tmp_path / "kcl.jsa"
    assert daemon.class_archive_flags(archive) == []
    archive.write_bytes(b"")
    assert daemon.class_archive_flags(archive) == [f"-XX:SharedArchiveFile={archive}"]
    argv = daemon.command(PROPERTIES, cbor=True, jvm_flags=["-Dtraining"])
    assert argv[:4] == ["java", daemon.HEAP, *daemon.START_UP]
    assert "-Dtraining" in argv and not any(a.startswith("-XX:SharedArchiveFile") for a in argv)


@pytest.mark.skipif(not daemon.CLASS_ARCHIVE.is_file(), reason="no class archive: `make setup` makes it")
def test_the_jvm_accepts_setups_class_archive_for_these_jars() -> None:
    argv = daemon.command(PROPERTIES, cbor=True)
    java = argv[:argv.index(daemon.MAIN_CLASS) + 1]
    assert f"-XX:SharedArchiveFile={daemon.CLASS_ARCHIVE}" in java
    done = subprocess.run([java[0], "-Xshare:on", *java[1:], "--help"], capture_output=True, text=True, timeout=60)
    assert "shared archive" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    assert "Usage" in done.stdout + done.stderr


def launcher_run(tmp_path: Path, overrides: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The daemon as local mode starts it, on properties/cali.properties rendered for an endpoint nobody serves;
    its log on stderr."""
    settings = load_settings({"LOCALSTACK_ENDPOINT": NOBODY, "CALI_WORKER_ID": "launcher-test"})
    props = daemon.write_properties(settings, tmp_path / "launcher-test.properties", overrides)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    return subprocess.Popen(daemon.command(props, cbor=True), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)


def first_line_with(proc: subprocess.Popen[str], text: str, timeout: float) -> str | None:
    """The first stderr line containing ``text``; the process is killed then, or after ``timeout`` seconds."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        return next((line for line in proc.stderr or () if text in line), None)
    finally:
        timer.cancel()
        proc.kill()


@pytest.mark.skipif(not paths.LAUNCHER_JAR.is_file(), reason="no KCL launcher: `make setup` compiles it")
def test_the_launcher_gives_the_scheduler_the_pass_interval_of_the_properties_file(tmp_path: Path) -> None:
    with launcher_run(tmp_path) as proc:
        line = first_line_with(proc, "Scheduler passes every", timeout=60)
    # the value read back from the KCL's Scheduler, not from the file
    assert line is not None and line.rstrip().endswith(f"Scheduler passes every 200 ms ({DISPATCH})"), line


@pytest.mark.skipif(not paths.LAUNCHER_JAR.is_file(), reason="no KCL launcher: `make setup` compiles it")
def test_a_bad_pass_interval_stops_the_daemon_with_one_sentence_and_exit_code_2(tmp_path: Path) -> None:
    with launcher_run(tmp_path, {DISPATCH: "soon"}) as proc:
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert f"{DISPATCH} must be a whole number of milliseconds above 0, not 'soon'" in stderr
    assert "Exception" not in stderr and "\tat " not in stderr, stderr
