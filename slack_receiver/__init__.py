"""Local stand-in for a Slack incoming webhook, used by local mode and the tests.

Run: ``python -m slack_receiver --host 127.0.0.1 --port 4580 --store PATH.jsonl [--ready-file PATH]``

HTTP interface:

* ``POST /services/<anything>``: JSON body, or ``payload=<urlencoded json>`` form. Answers like Slack:
  ``200 ok``; ``400 invalid_payload`` (not a JSON object); ``400 no_text`` (no non-empty ``text``
  nor ``blocks``). Accepted messages are stored (memory + one flushed JSON line in the store file).
* ``POST /_control/faults`` with a list, served in order to the next webhook posts (appended to any
  still pending): ``{"status": 429, "body": "rate_limited", "retry_after": 2}`` (adds ``Retry-After``),
  ``{"delay": 3.0}`` (answer normally after sleeping), ``{"outage_seconds": N, "status": 503,
  "body": ...}`` (start an outage). A fault status means Slack refused it: nothing is stored.
  A bare object ``{"outage_seconds": N, ...}`` starts an outage at once.
* ``POST /_control/outage`` ``{"seconds": N, "status": 503, "body": "service_unavailable"}``.
* ``DELETE /_control/faults``: clear pending faults and any outage. ``GET /_control/faults``: status.
* ``POST /_control/reset``: forget stored messages (the file is truncated) and the attempt counters.
* ``GET /_control/messages``: ``{"messages": [...], "attempts": N, "attempt_log": [...]}``.
* ``GET /``: HTML page of messages, newest first, refreshing every 2 s. ``GET /healthz``: ``ok``.
"""

from .server import ReceiverServer, make_server, running

__all__ = ["ReceiverServer", "make_server", "running"]
