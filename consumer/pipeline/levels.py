"""Level names and numbers as applications write them -> one ``Level``."""

from __future__ import annotations

from functools import lru_cache

from consumer.model import Level

_NAMES: dict[str, Level] = {
    **dict.fromkeys(("ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "SEVERE", "ALERT", "EMERG", "EMERGENCY",
                     "PANIC"), Level.ERROR),
    **dict.fromkeys(("WARN", "WARNING"), Level.WARN),
    **dict.fromkeys(("INFO", "INFORMATION", "NOTICE"), Level.INFO),
    **dict.fromkeys(("DEBUG", "DBG", "FINE"), Level.DEBUG),
    **dict.fromkeys(("TRACE", "FINER", "FINEST"), Level.TRACE),
}

# Numeric levels follow pino/bunyan (JSON loggers are where numbers show up): 60 fatal, 50 error, 40 warn,
# 30 info, 20 debug, 10 trace. Python's logging numbers differ (40 = ERROR) but Python JSON loggers write names.
_NUMBERS: tuple[tuple[int, Level], ...] = (
    (50, Level.ERROR), (40, Level.WARN), (30, Level.INFO), (20, Level.DEBUG), (0, Level.TRACE),
)

TEXT_LEVEL_WORDS = tuple(_NAMES)


def normalise_level(raw: object) -> Level:
    if isinstance(raw, str):  # the usual case first
        return _word_level(raw)
    if isinstance(raw, bool) or raw is None:
        return Level.UNKNOWN
    if isinstance(raw, int | float):
        return next((level for floor, level in _NUMBERS if raw >= floor), Level.UNKNOWN)
    return Level.UNKNOWN


@lru_cache(maxsize=1024)  # a handful of spellings per application: looked up once each
def _word_level(raw: str) -> Level:
    word = raw.strip().upper()
    if word.isdigit():
        return normalise_level(int(word))
    return _NAMES.get(word, Level.UNKNOWN)
