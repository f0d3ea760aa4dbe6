"""Rebuild slack_receiver/emoji_table.json from npm's emoji-datasource (iamcal/emoji-data, Slack's own shortcodes).

    .venv/bin/python scripts/emoji_table.py            # npm pack emoji-datasource@VERSION, then write the table
    .venv/bin/python scripts/emoji_table.py --check    # the same, but fail if the committed table differs

Why vendored: the package is 25 MB (sprite sheets) for 50 KB of names; the table is derived data with its source
and version inside, so the receiver (and its Docker image) need neither npm nor a download at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE, VERSION = "emoji-datasource", "16.0.0"
TABLE = Path(__file__).resolve().parents[1] / "slack_receiver" / "emoji_table.json"


def build(emoji_json: bytes) -> dict[str, object]:
    names: dict[str, str] = {}
    for entry in sorted(json.loads(emoji_json), key=lambda e: e["sort_order"]):
        for name in entry["short_names"]:
            names.setdefault(name, entry["unified"])
    return {
        "source": f"npm {PACKAGE}@{VERSION} emoji.json (MIT, Copyright (c) 2013 Cal Henderson)",
        "sha256": hashlib.sha256(emoji_json).hexdigest(),
        "names": dict(sorted(names.items())),
    }


def fetch() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(Path(tmp) / f"{PACKAGE}-{VERSION}.tgz") as tar:
            member = tar.extractfile("package/emoji.json")
            assert member is not None
            return member.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed table, write nothing")
    text = json.dumps(build(fetch()), ensure_ascii=False, indent=0) + "\n"
    if parser.parse_args().check:
        same = TABLE.read_text("utf-8") == text
        sys.stdout.write("emoji table matches\n" if same else f"{TABLE} differs from {PACKAGE}@{VERSION}: rerun it\n")
        return 0 if same else 1
    TABLE.write_text(text, "utf-8")
    sys.stdout.write(f"wrote {TABLE} ({len(text)} bytes)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
