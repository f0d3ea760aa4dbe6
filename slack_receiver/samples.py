"""Sample messages for the receiver's page, through both surfaces: what CALI sends, and what must stay inert.

``.venv/bin/python -m slack_receiver.samples http://127.0.0.1:4580`` posts them to a running receiver: to
``#cali-alerts``, and one to ``#cali-warn`` (the default channel when there is none). The browser tests and the
README's screenshot use them.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Sequence
from typing import Any

from slack_sdk import WebClient

from .settings import DEFAULT_TOKEN

HOSTILE_TEXT = ("<script>window.pwned=1</script> <img src=x onerror=window.pwned=2> "
                "<javascript:window.pwned=3|click me> &lt;!channel&gt;")

ALERT: dict[str, Any] = {
    "text": "[ERROR] payment-api: Timeout after 30s calling &lt;upstream&gt; for order 81723 &amp; retry",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": ":red_circle: ERROR · payment-api", "emoji": True}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Service*\npayment-api"},
            {"type": "mrkdwn", "text": "*Time*\n2026-11-30 04:05:06.789 UTC (13:05:06 KST)"},
            {"type": "mrkdwn", "text": "*Host*\nip-10-0-3-17 / payment-api-7d9f"},
            {"type": "mrkdwn", "text": "*Trace*\n`4bf92f3577b34da6`"},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            "*Message*\n```Timeout after 30s calling &lt;upstream&gt; for order 81723 &amp; retry\n"
            "  at PaymentClient.charge(PaymentClient.java:88)```")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "shard shardId-000000000001 · seq 4960"}]},
    ],
}

DIGEST: dict[str, Any] = {
    "text": "37 more ERROR/WARN in the last minute",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": ":hourglass: Alert digest", "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*37 more ERROR/WARN* in the last minute, top:"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            "*checkout*\n• 21 x ERROR: Timeout after &lt;duration&gt; calling &lt;upstream&gt;\n"
            "• 9 x WARN: Retry &lt;n&gt; of &lt;n&gt; for cart &lt;id&gt;")}},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "_suppressed by the throttle (5 a minute)_"}]},
    ],
}

KOREAN = ("결제 서비스 응답 지연 :warning: 담당자 <@U024BE7LH> 확인 바랍니다 <!here> "
          "— 상태: <https://status.example.com/incidents/42|status page> ~취소됨~ _재시도 중_")

WARN_ALERT: dict[str, Any] = {
    "text": "[WARN] auth-service: token refresh took 2.4s",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": ":large_orange_circle: WARN · auth-service",
                                    "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Message*\n```token refresh took 2.4s (> 2s)```"}},
    ],
}


def _webhook(base: str, path: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def post_samples(base: str, token: str = DEFAULT_TOKEN) -> dict[str, str]:
    """Post every sample; returns the ts of the thread root and of the edited message."""
    web = WebClient(token=token, base_url=base + "/api/", timeout=10)
    _webhook(base, "/services/local/cali/webhook", ALERT)
    _webhook(base, "/services/local/cali/webhook", DIGEST)
    web.chat_postMessage(channel="cali-alerts", text=KOREAN)
    root = web.chat_postMessage(channel="cali-alerts", text=":rotating_light: *Incident* `checkout` error rate 12%")
    web.chat_postMessage(channel="cali-alerts", thread_ts=root["ts"], text="Rolled back to `v2.3.1` :rewind:")
    web.chat_postMessage(channel="cali-alerts", thread_ts=root["ts"], reply_broadcast=True,
                         text="Error rate back to 0.1% :white_check_mark:")
    edited = web.chat_postMessage(channel="cali-alerts", text="Incident open: 3 errors so far")
    web.chat_update(channel="cali-alerts", ts=edited["ts"],
                    text="Incident open: *7 errors* so far :chart_with_upwards_trend:")
    _webhook(base, "/services/local/cali/webhook", {"text": HOSTILE_TEXT})
    _webhook(base, "/services/cali-warn/local", WARN_ALERT)
    return {"root": root["ts"], "edited": edited["ts"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slack_receiver.samples", description=__doc__)
    parser.add_argument("url", help="the receiver, e.g. http://127.0.0.1:4580")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    post_samples(args.url.rstrip("/"), args.token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
