"""Logging set-up, done once by the command line; modules only take a named logger."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str = "INFO") -> None:
    """Send every log record to standard error at ``level``; librdkafka's chatter only at DEBUG."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("foot_traffic.librdkafka").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)
