"""A Forward protocol client that counts a batch as sent only when the server acknowledged it.

Fluentd's Forward protocol v1 (which Fluent Bit's ``in_forward`` speaks): a batch goes in *Forward* mode,
``[tag, [[time, record], ...], {"size": n, "chunk": id}]``; a server that sees the ``chunk`` option answers
``{"ack": id}`` once it has taken the batch in. A write into a connection the server has already dropped (e.g.
Fluent Bit killed) succeeds locally and is lost; only the ack tells. fluent-logger has no acks, hence this module.
Spec: https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1
"""

from __future__ import annotations

import base64
import secrets
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]

Entry = tuple[int, Mapping[str, Any]]  # (time in whole seconds, as Docker's fluentd driver sends it; record)


class ForwardError(OSError):
    """The batch may not have arrived: no connection, a send error, no ack in time, or a wrong ack."""


class AckedForwardClient:
    """One TCP connection, opened on demand and dropped after any failure (the next ``send`` reconnects)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None
        self._unpacker = msgpack.Unpacker(raw=False)

    def send(self, tag: str, entries: Sequence[Entry]) -> None:
        """Send ``entries`` as one chunk and wait for its ack; ForwardError if it is not acknowledged."""
        chunk = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        packet = msgpack.packb([tag, [[t, dict(r)] for t, r in entries], {"size": len(entries), "chunk": chunk}])
        try:
            sock = self._connect()
            sock.sendall(packet)
            answer = self._read_answer(sock)
        except OSError as exc:
            self.close()
            raise ForwardError(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("ack") != chunk:
            self.close()
            raise ForwardError(f"unexpected answer instead of the ack: {answer!r:.200}")

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self._unpacker = msgpack.Unpacker(raw=False)
        return self._sock

    def _read_answer(self, sock: socket.socket) -> Any:
        while True:
            for answer in self._unpacker:
                return answer
            data = sock.recv(4096)  # the socket's timeout bounds the wait
            if not data:
                raise ConnectionResetError("the server closed the connection without an ack")
            self._unpacker.feed(data)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
