"""Local stand-in for Slack (incoming webhooks and a Web API subset), used by local mode and the tests.

Not a Slack client, and not Slack: one workspace, one bot, the channels it is told about, and scripted faults.

Run: ``python -m slack_receiver --host 127.0.0.1 --port 4580 --store PATH.jsonl [--ready-file PATH]``

Settings (environment, then ``.env``, read through ``consumer.config.read_environment``):

* ``SLACK_RECEIVER_TOKEN`` (default ``xoxb-cali-local``): the one bot token the Web API accepts.
* ``SLACK_RECEIVER_CHANNELS`` (default ``cali-alerts``): comma-separated channel names. Each gets a fixed
  Slack-like id (``C`` + 10 characters, derived from the name: ``slack_receiver.channels.channel_id``).
  The first is the default channel.

Incoming webhooks:

* ``POST /services/<anything>``: JSON body, or ``payload=<urlencoded json>`` form. Answers like Slack:
  ``200 ok``; ``400 invalid_payload`` (not a JSON object); ``400 no_text`` (no non-empty ``text``
  nor ``blocks``). The message lands in the channel named by the first path segment
  (``/services/cali-warn/...`` -> ``#cali-warn``, by name or id), otherwise in the default channel
  (``/services/local/cali/webhook`` -> the default channel). So each webhook URL can land in its own channel.

Web API (base URL ``http://127.0.0.1:<SLACK_RECEIVER_PORT>/api/``, so
``slack_sdk.WebClient(token=..., base_url=that)`` works unchanged; POST or GET; arguments as query string,
JSON body or form body):

* ``auth.test``; ``chat.postMessage`` (channel, text, blocks, thread_ts, reply_broadcast, metadata, username,
  icon_emoji);
  ``chat.update`` (channel, ts, text, blocks, metadata); ``conversations.history`` (channel, oldest, latest,
  inclusive, limit, cursor, include_all_metadata; newest first; thread replies only when broadcast);
  ``conversations.replies`` (channel, ts of the root or of a reply; root first, then replies).
* ``channel`` is an id, a name or ``#name``. Every message gets a ``ts`` unique in its channel.
* Errors, as ``{"ok": false, "error": ...}``: ``not_authed`` (no bearer token nor ``token`` argument),
  ``invalid_auth`` (another token), ``channel_not_found``, ``no_text``, ``msg_too_long`` (text over 40,000),
  ``invalid_blocks`` (with ``errors``, json pointers), ``invalid_blocks_format``, ``invalid_metadata_format``,
  ``message_not_found``, ``cant_update_message`` (a webhook's message), ``thread_not_found`` (also for a
  ``thread_ts`` naming no message: real Slack may post it unthreaded; the stand-in refuses so tests see it),
  ``invalid_cursor``, ``invalid_limit``, ``unknown_method`` (HTTP 404); a scripted 429 answers
  ``ratelimited`` with ``Retry-After``.

Messages and edits are kept in memory and appended, one flushed JSON line each, to the store file
(``slack_receiver.workspace`` describes the lines); an existing store is replayed at start.

Control API (tests and people):

* ``POST /_control/faults`` with a list, served in order to the next requests (appended to any still
  pending): ``{"status": 429, "body": "rate_limited", "retry_after": 2}`` (adds ``Retry-After``),
  ``{"delay": 3.0}`` (answer normally after sleeping), ``{"outage_seconds": N, "status": 503,
  "body": ...}`` (start an outage). Any item may add ``"on": "webhook" | "api" | "<method>"`` (e.g.
  ``"chat.update"``) to wait for that kind of request; without it the next request of either surface takes
  it. A fault status means Slack refused it: nothing is stored. ``body`` is the webhook's answer text or the
  API's ``error`` (default: Slack's for that status, e.g. 429 -> ``rate_limited`` / ``ratelimited``).
  A bare object ``{"outage_seconds": N, ...}`` starts an outage at once.
* ``POST /_control/outage`` ``{"seconds": N, "status": 503, "body": "service_unavailable", "on": ...}``.
* ``DELETE /_control/faults``: clear pending faults and any outage. ``GET /_control/faults``: status.
* ``POST /_control/reset``: forget stored messages (the file is truncated) and the attempt counters.
* ``GET /_control/messages[?channel=<name or id>]``: ``{"messages": [...], "attempts": N,
  "attempt_log": [...], "channels": [{"id", "name"}]}``; messages in arrival order, each
  ``{"received_at", "path", "channel", "channel_name", "ts", "payload" (as it reads now), "original" (as
  posted), "edits": [{"edit_ts", "received_at", "payload"}], "thread_ts"?, "reply_count"?,
  "reply_broadcast"?}``. ``attempts`` counts webhook posts and API calls.
* ``GET /_control/thread?channel=<name or id>&ts=<root or reply ts>``: ``{"messages": [root, replies...]}``.
* ``GET /``: the page (channels, messages, threads, as Slack shows them). ``GET /healthz``: ``ok``.
"""

from .server import ReceiverServer, make_server, running
from .settings import ReceiverSettings, load_receiver_settings

__all__ = ["ReceiverServer", "ReceiverSettings", "load_receiver_settings", "make_server", "running"]
