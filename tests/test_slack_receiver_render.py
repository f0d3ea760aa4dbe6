"""The receiver page's rendering, pure: mrkdwn and Block Kit to display trees, as Slack shows them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slack_receiver.mrkdwn import Node, decode, parse
from slack_receiver.render import body, channel_messages, plain_text
from slack_receiver.shortcodes import TABLE_PATH, emoji_for

CHANNELS = {"C0OPS": "ops"}


def mention(text: str, special: bool = False) -> list[Any]:
    return ["span", {"class": "mention special" if special else "mention"}, text]


def emoji(char: str, code: str) -> list[Any]:
    return ["span", {"class": "emoji", "title": code}, char]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("*bold* _it_ ~gone~ `x < y`", [["b", "bold"], " ", ["i", "it"], " ", ["s", "gone"], " ",
                                                    ["code", "x < y"]], id="styles"),
        pytest.param("*_both_*", [["b", ["i", "both"]]], id="nested"),
        pytest.param("snake_case_name 2*3*4 a * b *", ["snake_case_name 2*3*4 a * b *"], id="no-style-mid-word"),
        pytest.param("a &amp;lt; b &lt;n&gt; &amp; c", ["a &lt; b <n> & c"], id="entities-decoded-once"),
        pytest.param("&lt;!channel&gt; &lt;@U1&gt;", ["<!channel> <@U1>"], id="escaped-mentions-are-text"),
        pytest.param("<!here> <!channel>", [mention("@here", True), " ", mention("@channel", True)], id="special"),
        pytest.param("<@U024BE7LH> <@U1|ann>", [mention("@U024BE7LH"), " ", mention("@ann")], id="users"),
        pytest.param("<#C0OPS> <#C9|x>", [mention("#ops"), " ", mention("#x")], id="channels"),
        pytest.param("<!subteam^S1|@oncall>", [mention("@oncall")], id="usergroup"),
        pytest.param("<!date^1392734382^{date}|Feb 18>", ["Feb 18"], id="date"),
        pytest.param("<https://x.io/a?b=1&amp;c=2|the *site*>", [["a", {"href": "https://x.io/a?b=1&c=2"},
                                                                 "the *site*"]], id="link"),
        pytest.param("<mailto:a@b.c>", [["a", {"href": "mailto:a@b.c"}, "a@b.c"]], id="mailto"),
        pytest.param("<javascript:alert(1)|click>", ["<javascript:alert(1)|click>"], id="no-script-links"),
        pytest.param("<script>alert(1)</script>", ["<script>alert(1)</script>"], id="html-is-text"),
        pytest.param(":red_circle: :large_orange_circle: :nope:",
                     [emoji("🔴", ":red_circle:"), " ", emoji("🟠", ":large_orange_circle:"), " :nope:"],
                     id="emoji-slack-names"),
        pytest.param(":+1::skin-tone-3:", [emoji("👍🏼", ":+1::skin-tone-3:")], id="skin-tone"),
        pytest.param("at 10:30:45 :x", ["at 10:30:45 :x"], id="times-are-not-emoji"),
        pytest.param("`:red_circle: *b*`", [["code", ":red_circle: *b*"]], id="nothing-inside-code"),
        pytest.param("one\ntwo", ["one\ntwo"], id="newlines-kept"),
        pytest.param("&gt; quoted\n> more\nplain", [["blockquote", "quoted\nmore"], "plain"], id="quote"),
        pytest.param("see\n```a *b* <https://x|y> :x: &amp;lt;\n  at f()```\nend",
                     ["see", ["pre", "a *b* y :x: &lt;\n  at f()"], "end"], id="pre"),
        pytest.param("결제 *실패* :warning:", ["결제 ", ["b", "실패"], " ", emoji("⚠️", ":warning:")], id="korean"),
    ],
)
def test_mrkdwn(text: str, expected: list[Node]) -> None:
    assert parse(text, CHANNELS) == expected


def test_decode_only_slacks_three_entities() -> None:
    assert decode("&amp;amp; &quot; &#60; &lt;") == "&amp; &quot; &#60; <"


def test_emoji_table_is_slacks() -> None:
    table = json.loads(TABLE_PATH.read_text("utf-8"))
    assert table["source"].startswith("npm emoji-datasource@") and len(table["names"]) > 1800
    assert (emoji_for("rotating_light"), emoji_for("female-technologist")) == ("🚨", "👩\u200d💻")
    assert emoji_for("not_an_emoji") is None


ALERT_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": ":red_circle: ERROR &lt;x&gt;", "emoji": True}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Message*\n```a &lt;b&gt;```"},
     "fields": [{"type": "mrkdwn", "text": "*Service*\npay"}],
     "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Ack"}}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "_ctx_"},
                                     {"type": "image", "image_url": "https://x/i.png", "alt_text": "logo"}]},
    {"type": "divider"},
    {"type": "image", "image_url": "https://x/graph.png", "alt_text": "graph", "title": {"type": "plain_text",
                                                                                      "text": "Errors"}},
    {"type": "rich_text", "elements": [
        {"type": "rich_text_section", "elements": [{"type": "text", "text": "bold", "style": {"bold": True}},
                                                   {"type": "emoji", "name": "fire"},
                                                   {"type": "link", "url": "https://x", "text": "x"}]},
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "trace <b>"}]},
        {"type": "rich_text_list", "style": "bullet", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "item"}]}]},
    ]},
    {"type": "marquee"},
]


def test_blocks_win_over_the_text_fallback() -> None:
    shown = plain_text(body({"text": "FALLBACK *x*", "blocks": ALERT_BLOCKS}, CHANNELS))
    assert "FALLBACK" not in shown
    for part in ("🔴 ERROR &lt;x&gt;", "Message", "a <b>", "Service", "pay", "Ack", "ctx", "logo", "Errors",
                 "bold🔥x", "trace <b>", "item", "[marquee block]"):
        assert part in shown, part
    assert "*" not in shown and "```" not in shown


def test_images_are_links_and_only_safe_links_are_links() -> None:
    tree = body({"blocks": [{"type": "image", "image_url": "javascript:alert(1)", "alt_text": "x"},
                            {"type": "image", "image_url": "https://x/g.png", "alt_text": "g"}]}, CHANNELS)
    text = json.dumps(tree)
    assert '"href": "https://x/g.png"' in text and "javascript" not in text.split("href")[-1]
    assert '"img"' not in text


def test_text_without_blocks_and_mrkdwn_false() -> None:
    assert plain_text(body({"text": "*a* &lt;"}, {})) == "a <"
    assert plain_text(body({"text": "*a* &lt;", "mrkdwn": False}, {})) == "*a* <"


def view(ts: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"ts": ts, "payload": {"text": text}, "edits": [], **extra}


def test_threads_under_their_root_and_edits_marked() -> None:
    views = [view("1.000001", "root"), view("1.000002", "reply", thread_ts="1.000001"),
             view("1.000003", "loud", thread_ts="1.000001", reply_broadcast=True),
             view("1.000004", "changed", edits=[{"edit_ts": "1.000005"}])]
    shown = [plain_text(node) for node in channel_messages(views, {})]
    assert len(shown) == 3  # root (with its thread), the broadcast reply, the edited message
    assert "2 replies" in shown[0] and "reply" in shown[0] and "also sent to the channel" in shown[0]
    assert "replied to a thread" in shown[1] and shown[2].endswith("changed(edited)")


def test_consecutive_messages_of_one_sender_fold_like_slack() -> None:
    views = [view("100.000000", "a"), view("200.000000", "b"), view("600.000000", "c"),
             view("601.000000", "d", payload={"text": "d", "username": "deploy-bot"})]
    classes = [node[1]["class"] for node in channel_messages(views, {}) if isinstance(node, list)]
    assert classes == ["message", "message continued", "message", "message"]
