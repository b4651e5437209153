"""Shared test set-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo the logging configuration a test's in-process ``main()`` applies, so it cannot leak."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    client = logging.getLogger("foot_traffic.librdkafka")
    client_level = client.level
    yield
    root.setLevel(level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    client.setLevel(client_level)
