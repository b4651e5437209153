"""What a check returns (its tests and tables) and how the verdicts are decided: one significance level shared."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from foot_traffic.report.document import Table


@dataclass(frozen=True, slots=True)
class Test:
    """One row of a check's table: a statistic with a p-value, or a condition that holds or not."""

    name: str
    statistic: str
    p_value: float | None = None
    condition: str = ""
    passed: bool | None = None
    """The verdict of an exact condition; None for a statistical test (decided by :func:`judge`)."""
    skipped: str = ""
    """Why the test could not run (too few events, nothing covered); empty when it ran."""


@dataclass(frozen=True, slots=True)
class Check:
    """One check: what it compares, its tests and its tables."""

    key: str
    title: str
    description: str
    tests: tuple[Test, ...]
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Judgement:
    """Every test's verdict, the level each statistical test was held to, and the overall verdict."""

    alpha: float
    level: float
    statistical: int
    verdicts: dict[tuple[str, str], str]
    """Each test's verdict ("pass", "FAIL" or "skipped"), by (check key, test name)."""
    checks: dict[str, str]
    """Each check's verdict ("pass" or "FAIL"), by check key."""
    failed: tuple[str, ...]
    """Titles of the checks that failed."""

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return not self.failed


def judge(checks: Sequence[Check], alpha: float) -> Judgement:
    """Decide each test: exact conditions as they are, p-values against alpha / (number of statistical tests)."""
    statistical = sum(1 for c in checks for t in c.tests if t.p_value is not None and not t.skipped)
    level = alpha / max(statistical, 1)
    verdicts: dict[tuple[str, str], str] = {}
    by_check: dict[str, str] = {}
    failed = []
    for check in checks:
        ok = True
        for test in check.tests:
            if test.skipped:
                verdict = "skipped"
            elif test.p_value is not None:
                verdict = "pass" if test.p_value >= level else "FAIL"
            else:
                verdict = "pass" if test.passed else "FAIL"
            verdicts[(check.key, test.name)] = verdict
            ok &= verdict != "FAIL"
        by_check[check.key] = "pass" if ok else "FAIL"
        if not ok:
            failed.append(check.title)
    return Judgement(alpha, level, statistical, verdicts, by_check, tuple(failed))
