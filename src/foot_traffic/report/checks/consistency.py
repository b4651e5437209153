"""The consistency check: fields that must agree with each other and with the model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from foot_traffic.report.checks.expected import Bools, Layout, Placed
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.inputs.events import Events


def consistency_check(
    events: Events,
    layouts: Sequence[Layout],
    placed: Sequence[Placed],
    owner: npt.NDArray[np.int16],
    in_range: Bools,
) -> Check:
    """Fields that must agree with each other and with the model: weekday, slot, local date, exit, store, hours."""
    date_wrong = slot_wrong = closed = 0
    for layout, where in zip(layouts, placed, strict=True):
        labels = layout.plans[0].labels
        slot_of_label = np.array([labels.index(x) if x in labels else -1 for x in events.labels] + [-1])
        day = np.array([(plan.date - dt.date(1970, 1, 1)).days for plan in layout.plans], dtype=np.int64)
        cell_day = day[where.cell // layout.slots]
        date_wrong += int(np.count_nonzero(events.local_day[where.rows] != cell_day))
        slot_wrong += int(np.count_nonzero(slot_of_label[events.label[where.rows]] != where.cell % layout.slots))
        closed += int(np.count_nonzero(~np.isfinite(where.position)))
    unknown = int(np.count_nonzero(in_range & (owner < 0)))
    stats_ = events.stats
    kinds = (
        ("weekday is the entry date's weekday", stats_.weekday_mismatch),
        ("exit_time = entry_time + duration", stats_.exit_mismatch),
        ("entry_time's local date is the model's (TIMEZONE)", date_wrong),
        ("time_slot is the slot of entry_time", slot_wrong),
        ("entry_time falls in the open time of an open day", closed),
        ("store_id names a configured store", unknown),
    )
    tests = tuple(
        Test(name, f"{count} event(s) do not", condition="every event", passed=count == 0) for name, count in kinds
    )
    return Check(
        key="consistency",
        title="Consistency of the fields",
        description=(
            "Fields that follow from entry_time and the model: the weekday, the slot label, the local date in "
            "TIMEZONE (or the store's zone), exit_time, the store, and the opening hours of CALENDAR_FILE."
        ),
        tests=tests,
    )
