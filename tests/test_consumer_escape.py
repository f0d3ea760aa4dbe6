"""Slack mrkdwn escaping and visible truncation."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from consumer.pipeline.escape import ELLIPSIS, code, escape, plain, truncate

MARKER = " " + ELLIPSIS + " (truncated)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("plain", "plain", id="plain"),
        pytest.param("<!channel>", "&lt;!channel&gt;", id="channel"),
        pytest.param("<!here> <!everyone>", "&lt;!here&gt; &lt;!everyone&gt;", id="here-everyone"),
        pytest.param("<@U123>", "&lt;@U123&gt;", id="user-mention"),
        pytest.param("<#C123|general>", "&lt;#C123|general&gt;", id="channel-link"),
        pytest.param("<!subteam^S123>", "&lt;!subteam^S123&gt;", id="usergroup"),
        pytest.param("<https://x|y>", "&lt;https://x|y&gt;", id="labelled-link"),
        pytest.param("a & b", "a &amp; b", id="ampersand"),
        pytest.param("&amp;", "&amp;amp;", id="already-escaped-amp-is-escaped-again"),
        pytest.param("&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;", id="pre-escaped-stays-literal"),
        pytest.param("1 < 2 > 0", "1 &lt; 2 &gt; 0", id="comparison"),
        pytest.param("@here @channel", "@here @channel", id="bare-at-words-are-harmless"),
        pytest.param("*bold* _it_ `code`", "*bold* _it_ `code`", id="formatting-kept"),
        pytest.param("a\nb\tc", "a\nb\tc", id="newline-tab-kept"),
        pytest.param("cr\r\n", "cr\r\n", id="crlf-kept"),
        pytest.param("nul\x00", "nul\\x00", id="nul"),
        pytest.param("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m", id="ansi"),
        pytest.param("\x07\x08\x0b\x0c\x7f", "\\x07\\x08\\x0b\\x0c\\x7f", id="other-controls"),
        pytest.param("\ue0ff\ue0fe", "\ue0ff\ue0fe", id="fluent-bit-invalid-bytes-kept"),
        pytest.param("\uacb0\uc81c \U0001f4b8", "\uacb0\uc81c \U0001f4b8", id="korean-emoji"),
        pytest.param("", "", id="empty"),
    ],
)
def test_escape(text: str, expected: str) -> None:
    assert escape(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<!channel> @here <@U123> & <https://evil.example|click>", id="fixture-c5-0"),
        pytest.param("<<!!>>", id="doubled-brackets"),
        pytest.param("&<>&<>", id="only-specials"),
        pytest.param("<\x00!channel>", id="control-inside"),
    ],
)
def test_escaped_text_has_no_control_sequence(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped
    assert ">" not in escaped
    assert re.search(r"&(?!amp;|lt;|gt;)", escaped) is None


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("short", 100, ("short", False), id="fits"),
        pytest.param("x" * 100, 100, ("x" * 100, False), id="exactly-at-limit"),
        pytest.param("x" * 101, 100, ("x" * (100 - len(MARKER)) + MARKER, True), id="one-over"),
        pytest.param("", 0, ("", False), id="empty"),
        pytest.param("a" * 10 + "&amp;" + "b" * 30, 10 + 3 + len(MARKER),
                     ("a" * 10 + MARKER, True), id="cut-inside-amp"),
        pytest.param("a" * 10 + "&amp;" + "b" * 30, 10 + 4 + len(MARKER),
                     ("a" * 10 + MARKER, True), id="cut-before-semicolon"),
        pytest.param("a" * 10 + "&amp;" + "b" * 30, 10 + 5 + len(MARKER),
                     ("a" * 10 + "&amp;" + MARKER, True), id="cut-after-entity"),
        pytest.param("a" * 10 + "&lt;" + "b" * 30, 10 + 2 + len(MARKER),
                     ("a" * 10 + MARKER, True), id="cut-inside-lt"),
        pytest.param("a" * 10 + "&gt;" + "b" * 30, 10 + 1 + len(MARKER),
                     ("a" * 10 + MARKER, True), id="cut-right-after-ampersand"),
    ],
)
def test_truncate(text: str, limit: int, expected: tuple[str, bool]) -> None:
    result = truncate(text, limit)
    assert result == expected
    assert len(result[0]) <= limit


HOSTILE = escape("<!channel> & <@U123> & <https://evil.example|click> " * 40)
HALF_ENTITY = re.compile(r"&(?:a|am|amp|l|lt|g|gt)?$")


@pytest.mark.parametrize("limit", [*range(len(MARKER), len(MARKER) + 60), 500, 1000, 1999, 2000])
def test_truncate_never_leaves_half_an_entity(limit: int) -> None:
    cut, was_cut = truncate(HOSTILE, limit)
    assert was_cut
    assert len(cut) <= limit
    assert cut.endswith(MARKER)
    body = cut[: -len(MARKER)]
    assert HALF_ENTITY.search(body) is None, body[-8:]
    assert HOSTILE.startswith(body)


def test_truncate_with_custom_marker() -> None:
    assert truncate("abcdefghij", 6, marker="..") == ("abcd..", True)


@pytest.mark.parametrize("limit", [0, 1, 5, len(MARKER) - 1, len(MARKER)])
def test_truncate_with_a_tiny_limit_stays_within_it(limit: int) -> None:
    cut, was_cut = truncate("x" * 100, limit)
    assert was_cut
    assert len(cut) <= limit


@pytest.mark.parametrize("limit", range(len(MARKER)))
def test_truncate_below_the_marker_length_never_leaves_half_an_entity(limit: int) -> None:
    cut, was_cut = truncate(HOSTILE, limit)
    assert was_cut
    assert len(cut) <= limit
    assert HALF_ENTITY.search(cut) is None, cut


# -- text hygiene: what changes how the text reads without being seen ---------------------------------------------

INVISIBLE = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
             "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\U000e0041"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("user \u202egnp.exe", "user \\u202egnp.exe", id="rlo-trojan-source"),
        pytest.param("a\u2066b\u2069c", "a\\u2066b\\u2069c", id="isolates"),
        pytest.param("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c", id="marks"),
        pytest.param("pay\u200bment", "pay\\u200bment", id="zero-width-space"),
        pytest.param("\ufeffbom", "\\ufeffbom", id="bom"),
        pytest.param("tag\U000e0041\U000e0042", "tag\\U000e0041\\U000e0042", id="tag-characters"),
        pytest.param("\u202e<!channel>", "\\u202e&lt;!channel&gt;", id="bidi-and-mention"),
        pytest.param("\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd "
                     "\u0645\u0631\u062d\u0628\u0627", id="rtl-letters-themselves-kept"),
        pytest.param("x ``` y", "x \u02cb\u02cb\u02cb y", id="fence-run"),
        pytest.param("````", "\u02cb" * 4, id="longer-run"),
        pytest.param("`a` ``b``", "`a` ``b``", id="inline-code-kept"),
    ],
)
def test_escape_hygiene(text: str, expected: str) -> None:
    assert escape(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Foo`Bar", "Foo\u02cbBar", id="single"),
        pytest.param("x```\n<!here>", "x\u02cb\u02cb\u02cb\n&lt;!here&gt;", id="fence-then-mention"),
        pytest.param("a\u202eb", "a\\u202eb", id="bidi"),
        pytest.param("plain.Error", "plain.Error", id="plain"),
    ],
)
def test_code_cannot_close_its_backticks(text: str, expected: str) -> None:
    assert code(text) == expected
    assert "`" not in code(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<!channel> api", "\u2039!channel\u203a api", id="angle-brackets"),
        pytest.param("api\u202e", "api\\u202e", id="bidi"),
        pytest.param("a & b `x`", "a & b `x`", id="plain-text-is-not-mrkdwn"),
        pytest.param("esc\x1b", "esc\\x1b", id="control"),
    ],
)
def test_plain(text: str, expected: str) -> None:
    assert plain(text) == expected


@pytest.mark.parametrize("char", INVISIBLE)
@pytest.mark.parametrize("function", [escape, code, plain])
def test_no_invisible_character_survives(char: str, function: Callable[[str], str]) -> None:
    out = function(f"a{char}b")
    assert char not in out
    assert out.startswith("a\\u") or out.startswith("a\\U")
