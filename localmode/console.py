"""The terminal of ``python -m localmode run``: log lines scroll, the status line stays at the bottom.

On a terminal the status line is redrawn in place (rich's ``Live``) and log lines print above it. Anywhere else (a
pipe, a CI log) the status is an ordinary log line every ``plain_every`` seconds, so a log file does not fill up
with redraws.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

FORMAT = "%(asctime)s %(message)s"


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._console.print(Text(self.format(record)), soft_wrap=True)
        except Exception:
            self.handleError(record)


class Terminal:
    def __init__(self, stream: IO[str] | None = None, plain_every: float = 30.0) -> None:
        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.live = self.console.is_terminal
        self._plain_every = plain_every
        self._shown_at: float | None = None
        self._live = Live(console=self.console, auto_refresh=False, transient=True, redirect_stdout=False,
                          redirect_stderr=False) if self.live else None

    def log_handler(self) -> logging.Handler:
        handler = _ConsoleHandler(self.console)
        handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
        return handler

    def show(self, line: str, now: float) -> None:
        if self._live is not None:
            self._live.update(Text(line, style="bold"), refresh=True)
            return
        if self._shown_at is None or now - self._shown_at >= self._plain_every:
            self._shown_at = now
            logging.getLogger("cali.status").info("status: %s", line)

    def __enter__(self) -> Terminal:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
