"""The receiver's silences page (``/silences``): CALI's silences with their counts, and a button that expires one.

Reads and writes the same DynamoDB table as ``python -m consumer.silence`` (``consumer/silence/store.py``); the
processors see an expiry within ``CALI_SILENCE_REFRESH_SECONDS``. Rendering is pure; every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from consumer.silence import Silence

EXPIRE_PATH = "/silences/expire"
# No script at all; inline style only; forms may post only to this server.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
EXPIRED_SHOWN = 20

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;background:#f8f8fa;color:#1d1c1d}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
h1{font-size:1.3rem}h2{font-size:1.1rem}.muted{color:#616061}button{cursor:pointer}
"""


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(silence: Silence, action: bool) -> str:
    cells = [silence.id, " ".join(silence.matchers), str(silence.silenced), _when(silence.ends_at),
             silence.author + (f" (expired by {silence.expired_by})" if silence.expired_by else ""), silence.reason]
    html = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
    if action:
        html += (f'<td><form method="post" action="{EXPIRE_PATH}"><input type="hidden" name="id" '
                 f'value="{escape(silence.id)}"><button type="submit">Expire</button></form></td>')
    return f"<tr>{html}</tr>"


def _table(silences: Sequence[Silence], action: bool) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("id", "matchers", "silenced", "ends", "author", "reason"))
    head += "<th></th>" if action else ""
    return f"<table><tr>{head}</tr>{''.join(_row(s, action) for s in silences)}</table>"


def render_silences(silences: Sequence[Silence] | None, now: float, problem: str = "") -> str:
    """The page. ``silences`` None: the table could not be read (``problem`` says why)."""
    if silences is None:
        body = f'<p class="muted">Silences are not available here: {escape(problem)}</p>'
    else:
        active = [s for s in silences if s.active(now)]
        ended = sorted((s for s in silences if not s.active(now)), key=lambda s: -s.ends_at)[:EXPIRED_SHOWN]
        body = (f"<h2>Active ({len(active)}, {sum(s.silenced for s in active)} events silenced)</h2>"
                + (_table(active, True) if active else '<p class="muted">None.</p>')
                + f"<h2>Expired ({len(ended)} most recent)</h2>"
                + (_table(ended, False) if ended else '<p class="muted">None.</p>'))
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
            f"<title>CALI silences</title><style>{_STYLE}</style></head><body><h1>CALI silences</h1>"
            '<p class="muted"><a href="/">messages</a> · add one with <code>python -m consumer.silence add '
            "--match service=... --for 2h --reason ...</code></p>" + body + "</body></html>\n")
