"""The receiver's page in a real browser: Debian's Chromium driven by Playwright, asserting what a person sees.

Messages go in through both surfaces (webhook and Web API, slack_receiver/samples.py): escaped entities,
shortcodes, mentions, a code block, Korean text, a thread and an edit, and text that tries to become HTML.
Under CI=true a missing browser fails the run; elsewhere these tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from slack_receiver import ReceiverServer, running
from slack_receiver.samples import post_samples
from slack_receiver.settings import DEFAULT_TOKEN, load_receiver_settings

CHROMIUM = Path(os.environ.get("CALI_CHROMIUM", "/usr/bin/chromium"))
# As root, with no network but loopback: no sandbox, no GPU, and nothing that phones home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 10_000


def _missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make setup-test installs requirements-dev.txt)"
    return None


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A fresh profile directory per run (Chromium's --user-data-dir).
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1100, "height": 900}, locale="en-US")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[ReceiverServer, dict[str, str]]]:
    settings = load_receiver_settings({"SLACK_RECEIVER_CHANNELS": "cali-alerts,cali-warn"})
    with running(settings=settings) as server:
        yield server, post_samples(server.url)


@pytest.fixture
def page(browser_context: Any, receiver: tuple[ReceiverServer, dict[str, str]]) -> Iterator[Any]:
    page = browser_context.new_page()
    problems: list[str] = []
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(receiver[0].url + "/")
    page.wait_for_selector("#messages .message", timeout=WAIT_MS)
    yield page
    page.close()
    assert problems == []


def message(page: Any, text: str) -> Any:
    return page.locator("#messages > .message", has_text=text)


def test_alert_blocks_render_like_slack(page: Any) -> None:
    alert = message(page, "ERROR · payment-api")
    assert alert.locator(".b-header").inner_text() == "🔴 ERROR · payment-api"
    assert alert.locator(".fields b").all_inner_texts() == ["Service", "Time", "Host", "Trace"]
    assert alert.locator("pre").inner_text().startswith("Timeout after 30s calling <upstream> for order 81723 & retry")
    text = page.locator("#messages").inner_text()
    assert "[ERROR] payment-api" not in text  # the text fallback is hidden when blocks exist
    for raw in ("*Service*", "```", ":red_circle:", "&lt;", "&amp;", "&gt;"):
        assert raw not in text, raw


def test_digest_placeholders_show_once_decoded(page: Any) -> None:
    digest = message(page, "Alert digest")
    assert "⌛ Alert digest" in digest.inner_text()
    assert "21 x ERROR: Timeout after <duration> calling <upstream>" in digest.inner_text()
    assert "Retry <n> of <n> for cart <id>" in digest.inner_text()


def test_korean_mentions_links_and_styles(page: Any) -> None:
    korean = message(page, "결제 서비스 응답 지연")
    assert "⚠️ 담당자 @U024BE7LH 확인 바랍니다 @here" in korean.inner_text()
    assert korean.locator(".mention.special").inner_text() == "@here"
    link = korean.locator("a")
    assert (link.inner_text(), link.get_attribute("href")) == ("status page", "https://status.example.com/incidents/42")
    assert korean.locator("s").inner_text() == "취소됨" and korean.locator("i").inner_text() == "재시도 중"


def test_thread_expands_under_its_root(page: Any) -> None:
    root = message(page, "Incident checkout error rate 12%")
    summary = root.locator("details.thread summary")
    assert summary.inner_text().startswith("2 replies")
    reply = root.locator(".replies .message", has_text="Rolled back to v2.3.1")
    assert not reply.is_visible()
    summary.click()
    reply.wait_for(state="visible", timeout=WAIT_MS)
    assert "⏪" in reply.inner_text()
    # The broadcast reply is in the thread and in the channel.
    assert "also sent to the channel" in root.locator(".replies").inner_text()
    assert "Error rate back to 0.1% ✅" in message(page, "replied to a thread").inner_text()
    screenshot = os.environ.get("CALI_SCREENSHOT")  # README's picture: CALI_SCREENSHOT=docs/receiver.png
    if screenshot:
        page.set_viewport_size({"width": 1100, "height": 1160})
        page.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
        page.mouse.move(0, 0)
        page.screenshot(path=screenshot)


def test_edit_is_marked_and_replaces_the_text(page: Any) -> None:
    edited = message(page, "Incident open:")
    assert edited.locator(".edited").inner_text() == "(edited)"
    assert "7 errors so far 📈" in edited.inner_text() and "3 errors" not in edited.inner_text()


def test_hostile_text_stays_text(page: Any) -> None:
    hostile = message(page, "window.pwned=1")
    assert hostile.inner_text().endswith(
        "<script>window.pwned=1</script> <img src=x onerror=window.pwned=2> <javascript:window.pwned=3|click me> "
        "<!channel>")
    assert page.locator("#messages script, #messages img, #messages iframe").count() == 0
    assert page.evaluate("() => window.pwned") is None
    hrefs = page.locator("#messages a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all(h.startswith(("https://", "http://", "mailto:")) for h in hrefs)
    assert hostile.locator(".mention").count() == 0  # an escaped <!channel> is not a mention


def test_new_messages_and_edits_appear_without_a_reload(page: Any,
                                                        receiver: tuple[ReceiverServer, dict[str, str]]) -> None:
    server, _ = receiver
    page.evaluate("() => { window.sameDocument = true; }")
    web = WebClient(token=DEFAULT_TOKEN, base_url=server.url + "/api/")
    posted = web.chat_postMessage(channel="cali-alerts", text="live :zap: arrival")
    message(page, "live ⚡ arrival").wait_for(timeout=WAIT_MS)
    web.chat_update(channel="cali-alerts", ts=posted["ts"], text="live arrival, *edited*")
    fresh = message(page, "live arrival, edited")
    fresh.locator(".edited").wait_for(timeout=WAIT_MS)
    web.chat_postMessage(channel="cali-alerts", thread_ts=posted["ts"], text="a reply arrives")
    fresh.locator("summary", has_text="1 reply").wait_for(timeout=WAIT_MS)
    assert page.evaluate("() => window.sameDocument") is True


def test_channels_at_the_side(page: Any) -> None:
    links = page.locator("#channels a")
    assert [t.split("\n")[0] for t in links.all_inner_texts()] == ["# cali-alerts", "# cali-warn"]
    assert page.locator("#channels a.active").get_attribute("data-channel") == "cali-alerts"
    page.locator("#channels a[data-channel=cali-warn]").click()
    page.locator("#channel-name", has_text="# cali-warn").wait_for(timeout=WAIT_MS)
    message(page, "WARN · auth-service").wait_for(timeout=WAIT_MS)
    assert "🟠 WARN · auth-service" in page.locator("#messages").inner_text()
    assert "payment-api" not in page.locator("#messages").inner_text()


def test_fonts_cover_korean_and_emoji(browser_context: Any) -> None:
    """The machine that shows the page has fonts for Korean and colour emoji (else boxes appear)."""
    fc_list = shutil.which("fc-list")
    assert fc_list is not None
    korean = subprocess.run([fc_list, ":lang=ko", "family"], capture_output=True, text=True, check=True).stdout
    emoji = subprocess.run([fc_list, ":charset=1f534", "family"], capture_output=True, text=True, check=True).stdout
    assert korean.strip(), "no font covers Korean (apt-get install fonts-noto-cjk)"
    assert "Emoji" in emoji, "no colour emoji font (apt-get install fonts-noto-color-emoji)"
