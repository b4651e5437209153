"""Chi-square statistics of counts against expected counts, sparse cells merged with their neighbours."""

from __future__ import annotations

import numpy as np

from foot_traffic.report.checks.expected import F64, I64

MIN_EXPECTED = 5.0
"""Neighbouring chi-square cells are merged until each expects at least this many events."""


def merge_small(observed: F64, expected: F64) -> tuple[F64, F64]:
    """Merge neighbouring cells until each expects at least MIN_EXPECTED (the last group absorbs the rest)."""
    groups_o: list[float] = []
    groups_e: list[float] = []
    run_o = run_e = 0.0
    for o, e in zip(observed.tolist(), expected.tolist(), strict=True):
        run_o += o
        run_e += e
        if run_e >= MIN_EXPECTED:
            groups_o.append(run_o)
            groups_e.append(run_e)
            run_o = run_e = 0.0
    if run_e > 0 or run_o > 0:
        if groups_e:
            groups_o[-1] += run_o
            groups_e[-1] += run_e
        else:
            groups_o.append(run_o)
            groups_e.append(run_e)
    return np.array(groups_o), np.array(groups_e)


def chi_square_day(observed: I64, mass: F64) -> tuple[float, int]:
    """Chi-square of counts against a multinomial of their total in proportion to ``mass``; (statistic, df)."""
    total = float(observed.sum())
    if total == 0 or mass.sum() <= 0:
        return 0.0, 0
    o, e = merge_small(observed.astype(np.float64), total * mass / mass.sum())
    if o.size < 2:
        return 0.0, 0
    return float(((o - e) ** 2 / e).sum()), int(o.size - 1)
