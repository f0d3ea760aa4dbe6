"""Realistic application log records (pure: no I/O, randomness only from a seeded ``random.Random``).

A record is a plain ``dict`` shaped like the JSON lines a containerised service writes::

    {"timestamp": "2026-11-26T05:00:00.123Z", "level": "ERROR", "service": "payment-api",
     "message": "db timeout after 3000ms", "trace_id": "4bf92f3577b34da6a3ce929d0e0e0001",
     "error": {"type": "TimeoutError", "stack": "Traceback (most recent call last):\\n  File ..."}}

``error`` is present on some ERROR records only. ``seq`` (an int) is appended when asked for, so tests can
match alerts to the lines that caused them. Key order is fixed (it is kept all the way to Kinesis).
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

LogRecord = dict[str, Any]
"""One log line as a JSON-ready dict (str keys; str/int/float/bool/None/list/dict values)."""

ERROR: Final = "ERROR"
WARN: Final = "WARN"
INFO: Final = "INFO"
DEBUG: Final = "DEBUG"
LEVELS: Final[tuple[str, ...]] = (ERROR, WARN, INFO, DEBUG)

DEFAULT_SERVICES: Final[tuple[str, ...]] = ("payment-api", "auth-api", "order-api", "inventory-api", "gateway")


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z``: ``2026-11-26T05:00:00.123Z`` (naive = already UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def make_line(
    level: str,
    service: str,
    message: str,
    *,
    timestamp: datetime | str | None = None,
    trace_id: str | None = None,
    error: Mapping[str, str] | None = None,
    seq: int | None = None,
    extra: Mapping[str, Any] | None = None,
    now: Callable[[], datetime] = utc_now,
) -> LogRecord:
    """Build one exact record (for tests and fixtures). Nothing is validated: odd levels are allowed.

    ``timestamp`` may be a datetime (formatted like the generator does) or a ready string; it defaults to
    ``now()``. ``trace_id`` defaults to a fresh random 32-hex id. Keys come out in the generator's order:
    timestamp, level, service, message, trace_id, [error], [seq], then ``extra`` in its own order.
    """
    if timestamp is None:
        timestamp = now()
    record: LogRecord = {
        "timestamp": timestamp if isinstance(timestamp, str) else format_timestamp(timestamp),
        "level": level,
        "service": service,
        "message": message,
        "trace_id": trace_id if trace_id is not None else uuid.uuid4().hex,
    }
    if error is not None:
        record["error"] = dict(error)
    if seq is not None:
        record["seq"] = seq
    if extra:
        record.update(extra)
    return record


# --------------------------------------------------------------------------------------------------------------
# Message templates
# --------------------------------------------------------------------------------------------------------------

_Field = Callable[[random.Random], str]


def _choice(*options: object) -> _Field:
    values = tuple(str(o) for o in options)
    return lambda rng: rng.choice(values)


def _int(low: int, high: int) -> _Field:
    return lambda rng: str(rng.randint(low, high))


def _hex(prefix: str, bits: int) -> _Field:
    width = (bits + 3) // 4
    return lambda rng: f"{prefix}{rng.getrandbits(bits):0{width}x}"


def _duration(rng: random.Random) -> str:
    # Typical request latencies: median ~150 ms with a long tail.
    return str(max(1, round(rng.lognormvariate(5.0, 0.8))))


def _amount(rng: random.Random) -> str:
    return f"{rng.randint(100, 250_000) / 100:.2f}"


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _sku(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGH')}-{rng.randint(100, 999)}"


_FIELDS: Final[dict[str, _Field]] = {
    "timeout_ms": _choice(1000, 2000, 3000, 3000, 5000, 10000, 30000),
    "dur_ms": _duration,
    "slow_ms": _int(800, 9500),
    "small_ms": _int(1, 45),
    "slo_ms": _choice(200, 300, 500, 1000),
    "order_id": _int(1000, 999_999),
    "user_id": lambda rng: f"u-{rng.randint(10_000, 99_999)}",
    "client_id": _hex("c-", 24),
    "payment_id": _hex("pay_", 48),
    "refund_id": _hex("rf_", 40),
    "session_id": _hex("s-", 32),
    "sku": _sku,
    "qty": _int(0, 25),
    "ip": _ip,
    "amount": _amount,
    "currency": _choice("USD", "EUR", "GBP"),
    "upstream": _choice(
        "payment-gw.internal:8443", "auth-db:5432", "orders-db:5432", "redis-cache:6379", "order-api:8080",
        "inventory-api:8080", "kafka-1:9092",
    ),
    "status_5xx": _choice(500, 502, 503, 503, 504),
    "status_ok": _choice(200, 200, 200, 201, 204),
    "method": _choice("GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"),
    "path": _choice(
        "/v1/orders", "/v1/orders/{id}", "/v1/payments", "/v1/payments/{id}/capture", "/v1/auth/token",
        "/v1/users/me", "/v1/inventory/{id}", "/v1/cart/items",
    ),
    "pct": _int(70, 99),
    "low_pct": _int(12, 45),
    "attempt": _int(2, 4),
    "pool": _choice(10, 20, 32, 50),
    "waiting": _int(5, 180),
    "failures": _int(5, 25),
    "table": _choice("orders", "payments", "users", "inventory_items", "sessions", "refunds"),
    "rows": _int(0, 480),
    "flag": _choice("new_checkout", "fast_refunds", "ab_pricing_v2", "strict_jwt"),
    "on_off": _choice("on", "off"),
    "batch": _int(50, 500),
    "partition": _int(0, 11),
    "offset": _int(10_000, 9_999_999),
    "mb": _int(380, 1900),
    "limit_mb": _choice(512, 1024, 2048),
    "key": _choice("user_id", "order_id", "sku", "amount"),
    "version": _choice("1.42.0", "1.42.1", "1.43.0"),
    "worker": _int(1, 16),
}


@dataclass(frozen=True)
class _Frame:
    file: str  # may use {mod}
    func: str
    code: str  # may use message fields


@dataclass(frozen=True)
class _Template:
    text: str
    services: frozenset[str] | None = None  # None: any service
    error_type: str | None = None  # ERROR templates: the exception behind the message
    exc_text: str | None = None  # the exception's own message (default: the log message)
    frames: tuple[_Frame, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return _fields_of(self.text, self.exc_text or "", *(f.code for f in self.frames))


def _fields_of(*texts: str) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for text in texts:
        for _, name, _, _ in string.Formatter().parse(text):
            if name and name != "mod":
                names[name] = None
    return tuple(names)


_PAY = frozenset({"payment-api"})
_AUTH = frozenset({"auth-api"})
_ORDER = frozenset({"order-api"})
_INV = frozenset({"inventory-api"})
_GW = frozenset({"gateway"})

_DB_FRAME = _Frame("{mod}/db.py", "fetch_one", "row = cursor.fetchone()")
_HTTP_FRAME = _Frame("{mod}/clients.py", "call", "resp = self.session.request(method, url, timeout=self.timeout)")

_TEMPLATES: Final[dict[str, tuple[_Template, ...]]] = {
    ERROR: (
        _Template(
            "db timeout after {timeout_ms}ms", error_type="TimeoutError",
            frames=(_Frame("{mod}/handlers.py", "handle", "result = repo.load(request.id)"), _DB_FRAME),
        ),
        _Template(
            "upstream {upstream} returned {status_5xx} after {dur_ms}ms", error_type="UpstreamError",
            frames=(_Frame("{mod}/service.py", "forward", "return client.call(req)"), _HTTP_FRAME),
        ),
        _Template(
            "connection pool exhausted (size={pool}, waiting={waiting})", error_type="PoolExhaustedError",
            exc_text="no connection available within {timeout_ms}ms",
            frames=(_Frame("{mod}/db.py", "connection", "conn = self.pool.acquire(timeout=self.acquire_timeout)"),),
        ),
        _Template(
            "unhandled exception in {method} {path}", error_type="KeyError", exc_text="'{key}'",
            frames=(_Frame("{mod}/handlers.py", "handle", "payload = body['{key}']"),),
        ),
        _Template(
            "charge failed for order {order_id}: card processor timeout after {timeout_ms}ms", _PAY,
            error_type="TimeoutError", exc_text="db timeout after {timeout_ms}ms",
            frames=(_Frame("{mod}/charge.py", "charge", "txn = processor.authorize(card, amount)"), _DB_FRAME),
        ),
        _Template(
            "refund {refund_id} failed: ledger write rejected", _PAY, error_type="LedgerError",
            exc_text="ledger write rejected: version conflict on account",
            frames=(_Frame("{mod}/refunds.py", "refund", "ledger.write(entry)"),),
        ),
        _Template(
            "token verification failed for user {user_id}: signature mismatch", _AUTH,
            error_type="InvalidSignatureError", exc_text="Signature verification failed",
            frames=(_Frame("{mod}/tokens.py", "verify", "claims = jwt.decode(token, key, algorithms=['RS256'])"),),
        ),
        _Template(
            "session store unreachable after {timeout_ms}ms", _AUTH, error_type="ConnectionError",
            exc_text="Error connecting to redis-cache:6379. Connection refused.",
            frames=(_Frame("{mod}/sessions.py", "load", "data = self.redis.get(session_key)"),),
        ),
        _Template(
            "order {order_id} creation failed: inventory reservation timeout after {timeout_ms}ms", _ORDER,
            error_type="TimeoutError", exc_text="reservation timeout after {timeout_ms}ms",
            frames=(_Frame("{mod}/orders.py", "create", "inventory.reserve(items)"), _HTTP_FRAME),
        ),
        _Template(
            "stock update for sku={sku} failed: deadlock detected", _INV, error_type="DeadlockDetected",
            exc_text="deadlock detected while updating inventory_items",
            frames=(_Frame("{mod}/stock.py", "adjust", "cur.execute(UPDATE_STOCK, (qty, sku))"), _DB_FRAME),
        ),
        _Template(
            "circuit open for {upstream}: {failures} consecutive failures", _GW, error_type="CircuitOpenError",
            frames=(_Frame("{mod}/proxy.py", "forward", "return breaker.call(upstream, request)"),),
        ),
        _Template(
            "worker {worker} out of memory: rss {mb}MB over limit {limit_mb}MB", _GW, error_type="MemoryError",
            exc_text="",
            frames=(_Frame("{mod}/buffers.py", "read_body", "body = await request.body()"),),
        ),
    ),
    WARN: (
        _Template("slow query on {table}: {slow_ms}ms (rows={rows})"),
        _Template("retrying request to {upstream} (attempt {attempt}/5)"),
        _Template("response time {slow_ms}ms exceeds SLO of {slo_ms}ms for {method} {path}"),
        _Template("connection pool at {pct}% (size={pool})"),
        _Template("token refresh slow: {slow_ms}ms", _AUTH),
        _Template("password retry {attempt}/5 for user {user_id}", _AUTH),
        _Template("payment {payment_id} pending review: amount={amount} {currency}", _PAY),
        _Template("card processor latency high: {slow_ms}ms", _PAY),
        _Template("order {order_id} paid but not confirmed after {slow_ms}ms", _ORDER),
        _Template("stock below threshold sku={sku} qty={qty}", _INV),
        _Template("rate limit at {pct}% for client {client_id}", _GW),
        _Template("cache hit ratio low: {low_pct}%", _GW | _INV),
    ),
    INFO: (
        _Template("{method} {path} {status_ok} {dur_ms}ms"),
        _Template("health check ok ({small_ms}ms)"),
        _Template("config reloaded, version {version}"),
        _Template("user {user_id} logged in from {ip}", _AUTH),
        _Template("token issued for client {client_id}", _AUTH),
        _Template("payment {payment_id} captured amount={amount} {currency}", _PAY),
        _Template("refund {refund_id} completed amount={amount} {currency}", _PAY),
        _Template("order {order_id} created", _ORDER),
        _Template("order {order_id} shipped", _ORDER),
        _Template("stock reserved sku={sku} qty={qty} order={order_id}", _INV),
        _Template("consumed batch of {batch} events from partition {partition} offset {offset}", _INV),
        _Template("upstream {upstream} healthy again", _GW),
    ),
    DEBUG: (
        _Template("db query took {small_ms}ms rows={rows}"),
        _Template("acquired connection from pool (in use {qty}/{pool})"),
        _Template("feature flag {flag}={on_off}"),
        _Template("cache miss key=order:{order_id}", _ORDER | _PAY),
        _Template("session {session_id} refreshed", _AUTH),
        _Template("cache hit key=sku:{sku}", _INV),
        _Template("routing {method} {path} to {upstream}", _GW),
    ),
}

_SITE = "/usr/local/lib/python3.11/site-packages"
_FRAMEWORK_FRAMES: Final[tuple[tuple[str, int, str, str], ...]] = (
    (f"{_SITE}/starlette/routing.py", 74, "app", "response = await func(request)"),
    (f"{_SITE}/starlette/middleware/errors.py", 165, "__call__", "await self.app(scope, receive, _send)"),
    (f"{_SITE}/flask/app.py", 880, "full_dispatch_request", "rv = self.dispatch_request()"),
)


def _module_of(service: str) -> str:
    base = service.removesuffix("-api").replace("-", "_")
    return base or "app"


class LogLineFactory:
    """Generates realistic records. Same ``seed`` -> same sequence (timestamps aside: they come from ``now``).

    ``error_ratio`` is the fraction of lines that are ERROR or WARN; ``error_share`` of those are ERROR (60 %
    by default), the rest WARN. The other lines are INFO, except ``debug_share`` of them that are DEBUG.
    ``stack_ratio`` of the ERROR lines carry an ``error`` object with a Python stack trace.
    With ``with_seq`` each record ends with ``"seq": n``, counting from ``seq_start``.
    """

    def __init__(
        self,
        seed: int | None = None,
        error_ratio: float = 0.2,
        services: Sequence[str] = DEFAULT_SERVICES,
        *,
        now: Callable[[], datetime] = utc_now,
        error_share: float = 0.6,
        debug_share: float = 0.2,
        stack_ratio: float = 0.4,
        with_seq: bool = False,
        seq_start: int = 1,
    ) -> None:
        for name, value in (
            ("error_ratio", error_ratio), ("error_share", error_share), ("debug_share", debug_share),
            ("stack_ratio", stack_ratio),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        if not services:
            raise ValueError("services must not be empty")
        self._rng = random.Random(seed)
        self._error_ratio = error_ratio
        self._error_cut = error_ratio * error_share
        self._debug_share = debug_share
        self._stack_ratio = stack_ratio
        self._services = tuple(services)
        self._now = now
        self._with_seq = with_seq
        self._next_seq = seq_start
        self._templates = {
            (level, service): tuple(t for t in _TEMPLATES[level] if t.services is None or service in t.services)
            for level in LEVELS
            for service in self._services
        }

    @property
    def services(self) -> tuple[str, ...]:
        return self._services

    def _pick_level(self) -> str:
        r = self._rng.random()
        if r < self._error_cut:
            return ERROR
        if r < self._error_ratio:
            return WARN
        return DEBUG if self._rng.random() < self._debug_share else INFO

    def line(self, level: str | None = None, service: str | None = None) -> LogRecord:
        """The next record; ``level`` / ``service`` force those instead of drawing them."""
        rng = self._rng
        level = level if level is not None else self._pick_level()
        if level not in _TEMPLATES:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        service = service if service is not None else rng.choice(self._services)
        templates = self._templates.get((level, service)) or tuple(
            t for t in _TEMPLATES[level] if t.services is None or service in t.services
        )
        template = rng.choice(templates)
        values = {name: _FIELDS[name](rng) for name in template.fields}
        if "path" in values:
            values["path"] = values["path"].replace("{id}", str(rng.randint(1000, 999_999)))
        message = template.text.format(**values)
        trace_id = f"{rng.getrandbits(128):032x}"
        error: dict[str, str] | None = None
        if template.error_type is not None and rng.random() < self._stack_ratio:
            error = {"type": template.error_type, "stack": self._stack(template, service, message, values)}
        seq: int | None = None
        if self._with_seq:
            seq = self._next_seq
            self._next_seq += 1
        return make_line(level, service, message, timestamp=self._now(), trace_id=trace_id, error=error, seq=seq)

    def _stack(self, template: _Template, service: str, message: str, values: Mapping[str, str]) -> str:
        rng = self._rng
        mod = _module_of(service)
        path, line_no, func, code = rng.choice(_FRAMEWORK_FRAMES)
        lines = ["Traceback (most recent call last):", f'  File "{path}", line {line_no}, in {func}', f"    {code}"]
        for frame in template.frames:
            lines.append(f'  File "/app/{frame.file.format(mod=mod)}", line {rng.randint(12, 420)}, in {frame.func}')
            lines.append(f"    {frame.code.format(**values)}")
        exc_text = message if template.exc_text is None else template.exc_text.format(**values)
        lines.append(f"{template.error_type}: {exc_text}" if exc_text else f"{template.error_type}")
        return "\n".join(lines)

    def take(self, n: int) -> list[LogRecord]:
        """The next ``n`` records."""
        return [self.line() for _ in range(n)]

    def __iter__(self) -> Iterator[LogRecord]:
        return self

    def __next__(self) -> LogRecord:
        return self.line()
