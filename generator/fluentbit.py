"""The exact Kinesis record ``Data`` bytes Fluent Bit 3.2.10's ``kinesis_streams`` output writes (pure).

Checked byte for byte against the corpus in ``tests/fixtures/fluent-bit`` (see its README) and modelled on
Fluent Bit's ``msgpack2json`` / ``flb_utils_write_str`` and ``out_kinesis_streams/kinesis_api.c``:

* compact JSON, keys in the record's order, then exactly one ``\\n``;
* strings: ``\\"`` ``\\\\`` ``\\n`` ``\\r`` ``\\t`` ``\\b`` ``\\f`` as short escapes, every other control char
  and DEL as ``\\u00XX``; any other ASCII (``/``, ``<``, ``>``, ``&``, ``'``) as is; valid non-ASCII as
  lowercase ``\\uXXXX``, above U+FFFF as a UTF-16 surrogate pair;
* bytes that are not valid UTF-8 are neither replaced nor escaped: each one becomes the private-use character
  U+E0NN written as raw UTF-8 (``\\xff`` -> ``EE 83 BF``). A lone surrogate in a Python ``str`` (what
  ``json.loads`` makes of ``"\\ud800"``) is such a case too: its 3 bytes come out as 3 PUA characters;
* floats with an integral value as ``%.1f`` (``3.0``), others as ``%.16g``; ints clamped to the int64 range
  (what Fluent Bit's JSON parser does to bigger numbers); ``True``/``False``/``None`` as ``true``/``false``/``null``.

Fluent Bit sends no record for an empty map and drops records of 1048556 bytes or more:
``fluent_bit_record`` raises ``RecordDiscarded`` for those.
"""

from __future__ import annotations

import json.encoder
import math
import random
import re
from collections.abc import Mapping
from typing import Final

MAX_EVENT_SIZE: Final = 1_048_556
"""Fluent Bit drops a record whose JSON plus newline is this long or longer (1 MiB minus room for the key)."""

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

_SHORT_ESCAPES: Final = {
    0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x08: b"\\b", 0x0C: b"\\f",
}


def _ascii_escape(c: int) -> bytes:
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    if c < 0x20 or c == 0x7F:
        return b"\\u%04x" % c
    return bytes((c,))


_ASCII: Final[tuple[bytes, ...]] = tuple(_ascii_escape(c) for c in range(128))

# Fluent Bit's flb_utf8_len(): sequence length claimed by a lead byte (continuation bytes count as 1).
_SEQ_LEN: Final[tuple[int, ...]] = tuple(
    1 if c < 0xC0 else 2 if c < 0xE0 else 3 if c < 0xF0 else 4 if c < 0xF8 else 5 if c < 0xFC else 6
    for c in range(256)
)

_CONT: Final = (0x80, 0xBF)
# Well-formed UTF-8 (RFC 3629, what Fluent Bit's DFA decoder accepts): allowed ranges after each lead byte.
_FOLLOW: Final[dict[int, tuple[tuple[int, int], ...]]] = {
    **{lead: (_CONT,) for lead in range(0xC2, 0xE0)},
    0xE0: ((0xA0, 0xBF), _CONT),
    **{lead: (_CONT, _CONT) for lead in (*range(0xE1, 0xED), 0xEE, 0xEF)},
    0xED: ((0x80, 0x9F), _CONT),
    0xF0: ((0x90, 0xBF), _CONT, _CONT),
    **{lead: (_CONT, _CONT, _CONT) for lead in range(0xF1, 0xF4)},
    0xF4: ((0x80, 0x8F), _CONT, _CONT),
}

_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


class RecordDiscarded(ValueError):
    """Fluent Bit would not send this record at all (empty, or too large for Kinesis)."""


def _pua(byte: int) -> bytes:
    return chr(0xE000 | byte).encode("utf-8")


def _escape_utf8_bytes(raw: bytes) -> bytes:
    """Fluent Bit's string escaping over raw bytes, invalid UTF-8 included (x86-64 build, signed char)."""
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c < 0x80:
            out += _ASCII[c]
            i += 1
            continue
        length = _SEQ_LEN[c]
        if i + length > n:
            i += 1  # a sequence cut off by the end of the string: Fluent Bit skips its lead byte
            continue
        follow = _FOLLOW.get(c)
        accepted = 0  # bytes taken before the decoder rejected the sequence
        if follow is not None:
            accepted = 1
            for low, high in follow:
                if not low <= raw[i + accepted] <= high:
                    break
                accepted += 1
            else:
                codepoint = ord(raw[i : i + accepted].decode("utf-8"))
                if codepoint > 0xFFFF:
                    high_s = 0xD800 + ((codepoint - 0x10000) >> 10)
                    low_s = 0xDC00 + ((codepoint - 0x10000) & 0x3FF)
                    out += b"\\u%04x\\u%04x" % (high_s, low_s)
                else:
                    out += b"\\u%04x" % codepoint
                i += accepted
                continue
        taken = max(accepted, 1)  # rejected: the bytes taken so far become PUA chars, the rejecting one is re-read
        for byte in raw[i : i + taken]:
            out += _pua(byte)
        i += taken
    return bytes(out)


def escape_string(value: str | bytes) -> bytes:
    """One JSON string as Fluent Bit writes it, quotes included.

    ``bytes`` are taken as the raw string bytes (invalid UTF-8 allowed); a ``str`` is its UTF-8 encoding, a
    lone surrogate encoded as its 3 bytes. Valid text takes a fast path: for it Python's ASCII-only JSON
    string encoder writes the very same escapes (``\\b``/``\\f`` short, DEL as ``\\u007f``, lowercase hex).
    """
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return b'"' + _escape_utf8_bytes(value) + b'"'
        return json.encoder.encode_basestring_ascii(text).encode("ascii")
    if _SURROGATE_RE.search(value) is not None:
        return b'"' + _escape_utf8_bytes(value.encode("utf-8", "surrogatepass")) + b'"'
    return json.encoder.encode_basestring_ascii(value).encode("ascii")


def _format_float(value: float) -> bytes:
    if not math.isfinite(value):
        raise ValueError(f"JSON cannot carry the float {value!r}")
    if _INT64_MIN <= value < 2.0**63 and value.is_integer():
        return b"%.1f" % value
    return b"%.16g" % value


def _dump(value: object, out: list[bytes]) -> None:
    if isinstance(value, (str, bytes)):
        out.append(escape_string(value))
    elif value is None:
        out.append(b"null")
    elif value is True:
        out.append(b"true")
    elif value is False:
        out.append(b"false")
    elif isinstance(value, int):
        out.append(b"%d" % min(max(value, _INT64_MIN), _INT64_MAX))
    elif isinstance(value, float):
        out.append(_format_float(value))
    elif isinstance(value, Mapping):
        out.append(b"{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, (str, bytes)):
                raise TypeError(f"map keys must be str, got {type(key).__name__}")
            if index:
                out.append(b",")
            out.append(escape_string(key))
            out.append(b":")
            _dump(item, out)
        out.append(b"}")
    elif isinstance(value, (list, tuple)):
        out.append(b"[")
        for index, item in enumerate(value):
            if index:
                out.append(b",")
            _dump(item, out)
        out.append(b"]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def fluent_bit_json(record: Mapping[str, object]) -> bytes:
    """The record as Fluent Bit's compact JSON, without the trailing newline."""
    if not isinstance(record, Mapping):
        raise TypeError(f"a Fluent Bit record is a map, got {type(record).__name__}")
    out: list[bytes] = []
    _dump(record, out)
    return b"".join(out)


def fluent_bit_record(record: Mapping[str, object]) -> bytes:
    """Exactly the ``Data`` bytes Fluent Bit's ``kinesis_streams`` output puts in Kinesis for this record."""
    body = fluent_bit_json(record)
    if len(body) <= 2:
        raise RecordDiscarded("Fluent Bit sends no record for an empty map")
    if len(body) + 1 >= MAX_EVENT_SIZE:
        raise RecordDiscarded(f"{len(body) + 1} bytes: Fluent Bit drops records of {MAX_EVENT_SIZE} bytes or more")
    return body + b"\n"


_KEY_CHARS: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def partition_prefix(rng: random.Random) -> str:
    """The 10 random alphanumerics Fluent Bit draws once per output instance (``flb_sts_session_name``)."""
    return "".join(rng.choice(_KEY_CHARS) for _ in range(10))


def partition_key(rng: random.Random, prefix: str | None = None) -> str:
    """A partition key shaped like Fluent Bit's: 10 alphanumerics then digits, 16-18 characters in all.

    Fluent Bit appends ``djb2(tag) % 7919`` and ``(5381 * sec * nsec) % 7919`` to its instance prefix; here
    both numbers are drawn from ``rng`` (4 digits, then 2-4). Pass ``prefix`` to keep one instance's prefix;
    without it every key gets a fresh one.
    """
    head = partition_prefix(rng) if prefix is None else prefix
    return f"{head}{rng.randrange(1000, 7919)}{rng.randrange(10, 7919)}"
