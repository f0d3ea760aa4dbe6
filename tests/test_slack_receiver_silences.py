"""The receiver's /silences page against a real DynamoDB API (the session's moto emulator): it lists CALI's silences
with their counts, expires one from its button, refuses a cross-site post, and keeps hostile text inert."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from consumer.silence.store import SilenceStore
from localmode.resources import ensure_silences_table
from slack_receiver.server import ReceiverServer, running
from tests.emulator import make_client


@pytest.fixture
def store(emulator_url: str) -> SilenceStore:
    table = f"cali-test-{uuid.uuid4().hex[:8]}-silences"
    ensure_silences_table(make_client(emulator_url), table)
    return SilenceStore(make_client(emulator_url), table)


@pytest.fixture
def server(store: SilenceStore) -> Iterator[ReceiverServer]:
    with running() as srv:
        srv.state.silences = store
        srv.state.operator = "dana (slack page)"
        yield srv


def get(server: ReceiverServer, path: str) -> str:
    with urllib.request.urlopen(server.url + path, timeout=5) as response:
        return str(response.read().decode())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def post_expire(server: ReceiverServer, silence_id: str, origin: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin is not None:
        headers["Origin"] = origin
    request = urllib.request.Request(server.url + "/silences/expire", method="POST", headers=headers,
                                     data=urllib.parse.urlencode({"id": silence_id}).encode())
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=5) as response:
            return response.status, response.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def test_the_page_lists_active_silences_with_counts_and_expires_one(server: ReceiverServer,
                                                                    store: SilenceStore) -> None:
    now = time.time()
    kept = store.add(["service=payment-api"], now, now + 3600, "alice", "failover <b>now</b>")
    gone = store.add(["level=WARN"], now, now + 3600, "bob", "noisy")
    store.count(kept.id, "shardId-000000000000", ["0001"], now)
    page = get(server, "/silences")
    assert "Active (2, 1 events silenced)" in page
    assert kept.id in page and gone.id in page and "service=payment-api" in page
    assert "failover &lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page
    assert 'href="/silences"' in get(server, "/")  # the message page links to it

    assert post_expire(server, gone.id, origin="http://evil.example") == (403, "")
    assert {s.id: s.active(time.time()) for s in store.all()}[gone.id] is True
    assert post_expire(server, gone.id) == (303, "/silences")
    after = {s.id: s for s in store.all()}
    assert after[gone.id].active(time.time()) is False and after[gone.id].expired_by == "dana (slack page)"
    assert after[kept.id].active(time.time()) is True
    page = get(server, "/silences")
    assert "Active (1, 1 events silenced)" in page and "Expired (1 most recent)" in page
    assert post_expire(server, gone.id) == (303, "/silences")  # already ended: nothing to do, no error


def test_without_a_table_the_page_says_why() -> None:
    with running() as srv:
        assert "Silences are not available here: no silences table configured" in get(srv, "/silences")
