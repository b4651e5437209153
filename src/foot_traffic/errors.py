"""The exceptions foot-traffic raises, each mapped to an exit status by the command line."""

from __future__ import annotations

from collections.abc import Sequence


def _one_line(text: str) -> str:
    """Escape what is not printable (newlines, controls), as repr would, so the text stays on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class FootTrafficError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_status = 1


class ConfigError(FootTrafficError):
    """One or more settings are invalid; nothing has been started or sent.

    Each problem names the setting, the value received and what is expected.
    """

    exit_status = 2

    def __init__(self, problems: Sequence[str]) -> None:
        # one line each: a key quoted from a file may hold a newline or another control character
        self.problems = [_one_line(problem) for problem in problems]
        super().__init__("; ".join(self.problems))


class KafkaUnavailableError(FootTrafficError):
    """The broker could not be reached, or the topic could not be made ready."""

    exit_status = 3


class KafkaRefusedError(KafkaUnavailableError):
    """The brokers refused this client: its SASL login or its TLS handshake failed.

    Retrying with the same credentials and certificates cannot help, so start-up
    stops at the first such refusal instead of using up MAX_RETRIES.
    """


class DeliveryError(FootTrafficError):
    """A sink could not accept or confirm events; they were counted as failed."""

    exit_status = 1
