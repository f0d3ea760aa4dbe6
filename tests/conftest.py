"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator import running_emulator


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local moto emulator (a real DynamoDB API) for the session's unit tests."""
    with running_emulator(tmp_path_factory.mktemp("emulator") / "emulator.log") as url:
        yield url
