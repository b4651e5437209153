"""The exceptions foot-traffic raises, each mapped to an exit status by the command line."""

from __future__ import annotations

from collections.abc import Sequence


class FootTrafficError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_status = 1


class ConfigError(FootTrafficError):
    """One or more settings are invalid; nothing has been started or sent.

    Each problem names the setting, the value received and what is expected.
    """

    exit_status = 2

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class KafkaUnavailableError(FootTrafficError):
    """The broker could not be reached, or the topic could not be made ready."""

    exit_status = 3


class DeliveryError(FootTrafficError):
    """A sink could not accept or confirm events; they were counted as failed."""

    exit_status = 1
