"""normalise_level: level names and numbers as applications write them -> one Level."""

from __future__ import annotations

import pytest

from consumer.model import Level
from consumer.pipeline.levels import TEXT_LEVEL_WORDS, normalise_level


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # names, any case, surrounding whitespace ignored
        pytest.param("ERROR", Level.ERROR, id="ERROR"),
        pytest.param("error", Level.ERROR, id="error"),
        pytest.param("Error", Level.ERROR, id="Error"),
        pytest.param("  error\n", Level.ERROR, id="padded"),
        pytest.param("ERR", Level.ERROR, id="ERR"),
        pytest.param("FATAL", Level.ERROR, id="FATAL"),
        pytest.param("fatal", Level.ERROR, id="fatal"),
        pytest.param("CRITICAL", Level.ERROR, id="CRITICAL"),
        pytest.param("crit", Level.ERROR, id="crit"),
        pytest.param("SEVERE", Level.ERROR, id="SEVERE-jul"),
        pytest.param("ALERT", Level.ERROR, id="ALERT-syslog"),
        pytest.param("EMERGENCY", Level.ERROR, id="EMERGENCY-gcp"),
        pytest.param("panic", Level.ERROR, id="panic-go"),
        pytest.param("WARN", Level.WARN, id="WARN"),
        pytest.param("warning", Level.WARN, id="warning"),
        pytest.param("Warn", Level.WARN, id="Warn"),
        pytest.param("INFO", Level.INFO, id="INFO"),
        pytest.param("notice", Level.INFO, id="notice"),
        pytest.param("information", Level.INFO, id="information"),
        pytest.param("DEBUG", Level.DEBUG, id="DEBUG"),
        pytest.param("fine", Level.DEBUG, id="fine-jul"),
        pytest.param("TRACE", Level.TRACE, id="TRACE"),
        pytest.param("finest", Level.TRACE, id="finest-jul"),
        # numbers follow pino/bunyan: 60 fatal, 50 error, 40 warn, 30 info, 20 debug, 10 trace
        pytest.param(60, Level.ERROR, id="60"),
        pytest.param(55, Level.ERROR, id="55"),
        pytest.param(50, Level.ERROR, id="50"),
        pytest.param(49.9, Level.WARN, id="49.9"),
        pytest.param(40, Level.WARN, id="40"),
        pytest.param(30, Level.INFO, id="30"),
        pytest.param(20, Level.DEBUG, id="20"),
        pytest.param(10, Level.TRACE, id="10"),
        pytest.param(0, Level.TRACE, id="0"),
        pytest.param(-1, Level.UNKNOWN, id="negative"),
        pytest.param("50", Level.ERROR, id="digits-50"),
        pytest.param(" 40 ", Level.WARN, id="digits-padded"),
        pytest.param(float("inf"), Level.ERROR, id="inf"),
        pytest.param(float("nan"), Level.UNKNOWN, id="nan"),
        # not levels
        pytest.param(True, Level.UNKNOWN, id="true"),
        pytest.param(False, Level.UNKNOWN, id="false"),
        pytest.param(None, Level.UNKNOWN, id="none"),
        pytest.param("", Level.UNKNOWN, id="empty"),
        pytest.param("   ", Level.UNKNOWN, id="blank"),
        pytest.param("ERRORS", Level.UNKNOWN, id="ERRORS"),
        pytest.param("E", Level.UNKNOWN, id="E"),
        pytest.param("5O", Level.UNKNOWN, id="letter-O"),
        pytest.param("-50", Level.UNKNOWN, id="digits-negative"),
        pytest.param("DEFAULT", Level.UNKNOWN, id="gcp-DEFAULT"),
        pytest.param({"level": "ERROR"}, Level.UNKNOWN, id="dict"),
        pytest.param(["ERROR"], Level.UNKNOWN, id="list"),
    ],
)
def test_normalise_level(raw: object, expected: Level) -> None:
    assert normalise_level(raw) is expected


@pytest.mark.parametrize("word", TEXT_LEVEL_WORDS)
def test_every_text_level_word_is_a_level(word: str) -> None:
    """The words the text parser looks for all map to a real level (none to UNKNOWN)."""
    assert normalise_level(word) is not Level.UNKNOWN
    assert normalise_level(word.lower()) is normalise_level(word)
    assert word == word.upper()
