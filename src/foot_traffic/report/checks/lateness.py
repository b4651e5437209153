"""The lateness check: how late events arrive, against the law of LATE_EVENTS_PCT's delays.

A visit's *delay* is the time it was sent less its entry_time. The report sees it
one of two ways:

- *By record time*, when the records carry their time of sending
  (KAFKA_TIMESTAMP=emit) on the simulated clock, that is in real time: the delay
  is the record timestamp less the entry_time. An event is counted late when it
  is more than LATE_THRESHOLD_S late (less is the producer's own latency); the
  late fraction and the delays beyond the threshold are then compared with the
  law, both ways.
- *By arrival order* otherwise (a backfill or an accelerated run, whose records
  carry wall-clock times, KAFKA_TIMESTAMP=entry, or a file): a stream is written
  in the order its events are sent, so an event was sent no earlier than every
  event read before it in its partition (a file is one sequence), and each of
  those was sent no earlier than its entry_time. The *arrival lateness*, the
  latest entry_time read before the event in its partition less its own, is
  therefore a lower bound of its delay, and exact up to the gap to the last
  on-time event before it. It can only show events too late or too often late:
  the tests are one-sided.

Only each visit's first copy is judged: a duplicate's second copy follows its own law.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import stats

from foot_traffic.model.imperfections import Imperfections
from foot_traffic.report.checks.expected import F64, Bools
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.inputs.events import Events

LATE_THRESHOLD_S = 1.0
"""Delays up to this many seconds count as on time when judged by record time: the producer's own latency."""
REAL_TIME_LAG_MS = 1000
"""Records whose median lag behind their entry_time is within this many ms carry their time of sending in real time."""


def delay_cdf(imperfections: Imperfections, seconds: F64, *, left: bool = False) -> F64:
    """The delay law's distribution function (``left``: its left limits): min(Exp(mean), max), in seconds.

    The law has an atom at the cap, the mass of the exponential beyond it.
    """
    x = np.asarray(seconds, dtype=np.float64)
    below = -np.expm1(-np.maximum(x, 0.0) / imperfections.late_mean_s)
    cap = imperfections.late_max_s
    return np.where(x > cap if left else x >= cap, 1.0, below)


Law = Callable[[F64, bool], F64]
"""A distribution function, or its left limits when the flag is set."""


def ks_statistics(values: F64, law: Law) -> tuple[float, float]:
    """D⁺ = sup(F_n − F) and D⁻ = sup(F − F_n) of values against a law that may have atoms.

    With atoms, D⁻ is taken just before each value (the law's left limit against
    the share of values strictly below), as the definition asks; the continuous
    laws' p-values (``ksone``, ``kstwo``) are then conservative.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    i = np.arange(x.size)
    d_plus = float(np.max((i + 1) / x.size - law(x, False)))
    d_minus = float(np.max(law(x, True) - i / x.size))
    return max(d_plus, 0.0), max(d_minus, 0.0)


def lateness_check(
    events: Events,
    first: Bools,
    imperfections: Imperfections,
    lateness: npt.NDArray[np.int64],
    *,
    held: Bools | None,
    kafka_timestamp: str,
) -> Check:
    """Observed delays of the first copies against the law (by record time in real time, else by arrival order).

    ``lateness`` is each event's :func:`arrival_lateness`.
    ``held`` marks the events that entered during a sensor outage, left out (their
    delay is the outage's); None when outages are drawn but unknown (no SEED): the
    law is then not judged.
    """
    rows = np.flatnonzero(first if held is None else first & ~held)
    lag_ms = _record_lag_ms(events, rows, kafka_timestamp)
    unknown = held is None
    if lag_ms is not None:
        tests, notes = _by_record_time(lag_ms / 1000.0, imperfections, unknown)
        how = "record time"
    else:
        tests, notes = _by_arrival_order(lateness[rows] / 1e6, imperfections, unknown)
        how = "arrival order"
    if held is not None and held.any():
        notes.append(f"{int(np.count_nonzero(first & held)):,} visit(s) entered during a sensor outage: left out.")
    law = (
        f"LATE_EVENTS_PCT={imperfections.late_pct:g} of the visits are sent late, by min(Exp(mean "
        f"{imperfections.late_mean_s:g} s), {imperfections.late_max_s:g} s)"
    )
    return Check(
        key="lateness",
        title="Late events",
        description=(
            f"{law}. Judged by {how}: "
            + (
                "each delay is the record timestamp less the entry_time (KAFKA_TIMESTAMP=emit, in real time); "
                f"delays above {LATE_THRESHOLD_S:g} s are late, and their fraction (binomial) and law "
                "(Kolmogorov–Smirnov, given they exceed the threshold) must fit, both ways."
                if lag_ms is not None
                else "each event's arrival lateness is the latest entry_time read before it in its partition (a "
                "file: before it in the file) among the events of its store and date, less its own: a lower bound "
                "of its delay, since one producer writes a store's day in the order it sends it. It may not exceed "
                "the cap, the overtaken fraction may not be above the late fraction (one-sided binomial), and the "
                "lateness may not be stochastically above the law's mixture (1 − p)·δ₀ + p·law (one-sided "
                "Kolmogorov–Smirnov)."
            )
            + " Only each visit's first copy is judged, and not the visits a sensor outage held (SEED needed to "
            "know the drawn outages)."
        ),
        tests=tuple(tests),
        notes=tuple(notes),
    )


def _record_lag_ms(events: Events, rows: npt.NDArray[np.intp], kafka_timestamp: str) -> F64 | None:
    """Each row's record timestamp less its entry_time, in ms, when the records carry real-time sending times."""
    if events.record_ms is None or kafka_timestamp != "emit" or not rows.size:
        return None
    lag = (events.record_ms[rows] - events.entry_us[rows] / 1000.0).astype(np.float64)
    return lag if abs(float(np.median(lag))) <= REAL_TIME_LAG_MS else None


def arrival_lateness(events: Events) -> npt.NDArray[np.int64]:
    """Each event's latest entry_time read before it in its sequence less its own, in µs.

    A sequence is the events of one partition (a file: all of them) of one store and
    local date: one unit of work, which one producer sends in order even when
    workers, shards or a fleet share the run.
    """
    n = len(events)
    partition = events.partition if events.partition is not None else np.zeros(n, dtype=np.int32)
    rows = np.lexsort((events.order, events.local_day, events.store, partition))
    key = np.stack((partition[rows], events.store[rows], events.local_day[rows]))
    starts = np.flatnonzero(np.concatenate(([True], (key[:, 1:] != key[:, :-1]).any(axis=0)))) if n else rows
    segment = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    entries = events.entry_us[rows]
    relative = entries - np.minimum.reduceat(entries, starts)[segment] if n else entries
    latest = np.empty(n, dtype=np.int64)
    shift = int(relative.max()).bit_length() if n else 0
    batch = 1 << max(62 - shift, 1)  # segments whose shifted values fit in 63 bits
    for first in range(0, starts.size, batch):
        low = int(starts[first])
        high = int(starts[first + batch]) if first + batch < starts.size else n
        offset = (segment[low:high] - first).astype(np.int64) << shift
        latest[low:high] = np.maximum.accumulate(offset + relative[low:high]) - offset
    lateness = np.empty(n, dtype=np.int64)
    lateness[rows] = latest - relative
    return lateness


def _cap_test(worst_s: float, cap_s: float, what: str) -> Test:
    return Test(
        f"{what} within LATE_DELAY_MAX_SECONDS",
        f"largest {worst_s:.3f} s",
        condition=f"≤ {cap_s:g} s",
        passed=worst_s <= cap_s,
    )


def _outage_skip(name: str, statistic: str) -> Test:
    return Test(name, statistic, skipped="sensor outages hold visits, and without SEED the report cannot tell which")


def _by_record_time(delays_s: F64, imperfections: Imperfections, unknown: bool) -> tuple[list[Test], list[str]]:
    """Late fraction (two-sided binomial) and law beyond the threshold (KS), and the cap, of real-time delays."""
    n = int(delays_s.size)
    late = delays_s[delays_s > LATE_THRESHOLD_S]
    k = int(late.size)
    survive = 1.0 - float(delay_cdf(imperfections, np.array([LATE_THRESHOLD_S]))[0])
    expected = imperfections.late_pct * survive
    fraction = f"{k} of {n} visits more than {LATE_THRESHOLD_S:g} s late (expected {expected * n:.1f})"
    law = f"delays beyond {LATE_THRESHOLD_S:g} s against the law"
    worst = float(delays_s.max()) if n else 0.0
    if unknown:
        cap = _outage_skip("every delay within LATE_DELAY_MAX_SECONDS", f"largest {worst:.3f} s")
        return [cap, _outage_skip("late fraction", fraction), _outage_skip(law, f"{k} delays")], []
    tests = [_cap_test(worst, imperfections.late_max_s + LATE_THRESHOLD_S, "every delay")]
    if n == 0 or expected <= 0:
        tests.append(Test("late fraction", fraction, condition="none late", passed=k == 0))
    else:
        tests.append(Test("late fraction (binomial)", fraction, p_value=float(stats.binomtest(k, n, expected).pvalue)))
    if k:
        base = 1.0 - survive

        def conditional(x: F64, left: bool) -> F64:
            return np.clip((delay_cdf(imperfections, x, left=left) - base) / survive, 0.0, 1.0)

        d = max(ks_statistics(late, conditional))
        tests.append(Test(f"{law} (KS)", f"D = {d:.4f}, {k} delays", p_value=float(stats.kstwo.sf(d, k))))
    else:
        tests.append(Test(law, "no late event", skipped="no delay beyond the threshold"))
    return tests, [_quantiles(late)]


def _by_arrival_order(lateness_s: F64, imperfections: Imperfections, unknown: bool) -> tuple[list[Test], list[str]]:
    """The cap, and one-sided tests of the overtaken fraction and of the lateness, for lower bounds of the delays."""
    n = int(lateness_s.size)
    overtaken = lateness_s[lateness_s > 0]
    k = int(overtaken.size)
    p = imperfections.late_pct
    fraction = f"{k} of {n} visits overtaken (at most {p * n:.1f} expected)"
    law = "arrival lateness not above the law's mixture"
    worst = float(lateness_s.max()) if n else 0.0
    notes = [_quantiles(overtaken)]
    if unknown:
        cap = _outage_skip("arrival lateness within LATE_DELAY_MAX_SECONDS", f"largest {worst:.3f} s")
        return [cap, _outage_skip("overtaken fraction", fraction), _outage_skip(law, f"{n} visits")], notes
    tests = [_cap_test(worst, imperfections.late_max_s, "arrival lateness")]
    if n == 0 or p <= 0:
        tests.append(Test("overtaken fraction", fraction, condition="none overtaken", passed=k == 0))
        return tests, notes
    binomial = stats.binomtest(k, n, p, alternative="greater")
    tests.append(Test("overtaken fraction (one-sided binomial)", fraction, p_value=float(binomial.pvalue)))

    def mixture(x: F64, left: bool) -> F64:
        below = (x <= 0) if left else (x < 0)
        return np.where(below, 0.0, (1 - p) + p * delay_cdf(imperfections, x, left=left))

    _, d_minus = ks_statistics(lateness_s, mixture)
    statistic = f"D⁻ = {d_minus:.4f}, {n} visits"
    tests.append(Test(f"{law} (one-sided KS)", statistic, p_value=float(stats.ksone.sf(d_minus, n))))
    return tests, notes


def _quantiles(delays_s: F64) -> str:
    """A note of the observed delays' median, 90th percentile and largest value."""
    if not delays_s.size:
        return "No late event observed."
    median, p90, top = (float(q) for q in np.quantile(delays_s, [0.5, 0.9, 1.0]))
    return (
        f"Observed late delays: {delays_s.size:,}; mean {float(delays_s.mean()):.1f} s, median {median:.1f} s, "
        f"90th percentile {p90:.1f} s, largest {top:.1f} s."
    )
