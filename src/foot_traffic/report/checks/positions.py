"""The positions check: where arrivals fall inside their slots, against the model's distribution there."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from foot_traffic.report.checks.expected import F64, Layout, Placed
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.document import Table, p_text


def positions_check(layouts: Sequence[Layout], placed: Sequence[Placed]) -> Check:
    """Kolmogorov–Smirnov of the arrival positions, the model's distribution function inside each cell."""
    pooled = np.concatenate([p.position[np.isfinite(p.position)] for p in placed])
    if pooled.size:
        pooled.sort()
        statistic, p_value = ks_uniform(pooled)
        test = Test(f"KS against the model, {pooled.size} events", f"D = {statistic:.5f}", p_value=p_value)
    else:
        test = Test("KS against the model", "—", skipped="no event inside the open time")
    del pooled
    rows = []
    for label, values in _by_label(layouts, placed).items():
        if values.size:
            values.sort()
            statistic, p_value = ks_uniform(values)
            rows.append((label, str(values.size), f"{statistic:.5f}", p_text(p_value)))
    smooth = any(layout.store.model.arrival_model == "smooth" for layout in layouts)
    law = "the smooth model's piecewise-quadratic distribution function" if smooth else "a uniform distribution"
    return Check(
        key="positions",
        title="Arrival positions inside slots",
        description=(
            "Each entry instant is mapped through the model's distribution function of its slot's open time "
            f"(as covered by the range): {law}. The pooled values must be uniform on [0, 1) "
            "(one-sample Kolmogorov–Smirnov test, exact distribution of D)."
        ),
        tests=(test,),
        tables=(Table(("Slot", "Events", "D", "p-value"), tuple(rows), "Per slot (for diagnosis, not judged)"),)
        if rows
        else (),
    )


KS_BLOCK = 1 << 20
"""Values compared at once in the KS statistic."""


def ks_uniform(ordered: F64) -> tuple[float, float]:
    """Two-sided one-sample Kolmogorov–Smirnov test of sorted values against U(0, 1): (D, p-value).

    The same D and p-value as ``scipy.stats.kstest(values, "uniform")``, computed block
    by block so that no temporary is as large as the data.
    """
    n = ordered.size
    statistic = 0.0
    for first in range(0, n, KS_BLOCK):
        block = ordered[first : first + KS_BLOCK]
        rank = np.arange(first, first + block.size, dtype=np.float64)
        statistic = max(statistic, float(((rank + 1) / n - block).max()), float((block - rank / n).max()))
    return statistic, float(stats.kstwo.sf(statistic, n))


def _by_label(layouts: Sequence[Layout], placed: Sequence[Placed]) -> dict[str, F64]:
    parts: dict[str, list[F64]] = {}
    for layout, where in zip(layouts, placed, strict=True):
        labels = layout.plans[0].labels
        slot = where.cell % layout.slots
        finite = np.isfinite(where.position)
        for i, label in enumerate(labels):
            parts.setdefault(label, []).append(where.position[finite & (slot == i)])
    return {label: np.concatenate(values) for label, values in sorted(parts.items())}
