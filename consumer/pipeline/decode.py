"""Kinesis record bytes -> the log lines inside them.

Fluent Bit writes one JSON text plus "\n" per record, but other producers (and ``log_key``) may put several
lines, raw text or invalid UTF-8 in one record. Invalid bytes are replaced, never fatal; blank lines are skipped.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_RECORD_BYTES = 1024 * 1024  # Kinesis' own limit for one record's data


class Decoded(NamedTuple):  # a tuple: built once per record, on the hot path
    lines: list[str]
    invalid_utf8: bool = False
    truncated: bool = False


def decode(data: bytes) -> Decoded:
    truncated = len(data) > MAX_RECORD_BYTES
    if truncated:
        cut = MAX_RECORD_BYTES
        while cut and data[cut] & 0xC0 == 0x80:  # never split a UTF-8 character
            cut -= 1
        data = data[:cut]
    try:
        text = data.decode("utf-8")
        invalid = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        invalid = True
    if text.count("\n") == 1 and text.endswith("\n") and not text.endswith("\r\n") and text.strip():
        return Decoded([text[:-1]], invalid, truncated)  # Fluent Bit's shape: one line and its newline
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    return Decoded(lines, invalid, truncated)
