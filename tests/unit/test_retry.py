"""The retry helper: bounded attempts, a fixed wait between them, one warning per retry, final errors at once."""

from __future__ import annotations

import logging

import pytest

from foot_traffic.retry import Backoff, RetriesExhausted, Retryable, retrying


class Attempts:
    """Fails with Retryable ``failures`` times, then returns ``"ok"``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise Retryable(f"refused #{self.calls}")
        return "ok"


@pytest.mark.parametrize(("failures", "attempts"), [(0, 1), (2, 3), (4, 6)])
def test_succeeds_after_failures_within_the_attempts(failures: int, attempts: int) -> None:
    """A call that fails fewer times than allowed returns, having waited once per failure."""
    waits: list[float] = []
    call = Attempts(failures)
    assert retrying(call, Backoff(attempts, 2.5, waits.append), "Kafka at k:9092") == "ok"
    assert call.calls == failures + 1
    assert waits == [2.5] * failures


def test_gives_up_with_the_last_reason(caplog: pytest.LogCaptureFixture) -> None:
    """After the last attempt: RetriesExhausted with the last reason, no wait after it, a warning per retry."""
    waits: list[float] = []
    call = Attempts(10)
    with caplog.at_level(logging.WARNING), pytest.raises(RetriesExhausted) as caught:
        retrying(call, Backoff(3, 0.5, waits.append), "Schema registry at http://r")
    assert (caught.value.reason, caught.value.attempts, call.calls, waits) == ("refused #3", 3, 3, [0.5, 0.5])
    assert [r.getMessage() for r in caplog.records] == [
        f"Schema registry at http://r not reachable (attempt {i} of 3): refused #{i}; retrying in 0.5 s" for i in (1, 2)
    ]


def test_other_errors_are_final_at_once() -> None:
    """An exception other than Retryable passes through on the first attempt, with no wait."""
    waits: list[float] = []

    def refuse() -> str:
        raise PermissionError("authentication failed")

    with pytest.raises(PermissionError):
        retrying(refuse, Backoff(5, 1.0, waits.append), "Kafka at k:9092")
    assert waits == []
