"""The Fluent Bit fixture corpus: the exact Kinesis record bytes a real Fluent Bit 3.2.10 wrote
(``tests/fixtures/fluent-bit/``, how it was made in its README).

It is data kept in the repository, so the tests that read it never skip: a missing or empty corpus fails them,
under ``CI=true`` as everywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FLUENT_BIT_DIR = Path(__file__).resolve().parent / "fixtures" / "fluent-bit"
RECORDS = FLUENT_BIT_DIR / "records.jsonl"
README = FLUENT_BIT_DIR / "README.md"


def fluent_bit_records() -> list[dict[str, Any]]:
    """Every line of ``records.jsonl`` (``case``, ``description``, ``partition_key``, ``data_b64``), in order."""
    lines = [json.loads(line) for line in RECORDS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"the Fluent Bit fixture corpus {RECORDS} is empty")
    return lines
