"""The daemon's JVM flags (``localmode/daemon.py``): the class archive that ``make setup`` trains is mapped when it
exists, and the JVM of this machine accepts it for these jars (``-Xshare:on`` refuses to start otherwise)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from localmode import daemon

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
