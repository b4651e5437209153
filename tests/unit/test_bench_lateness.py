"""The real-time bench's reader: each line's entry_time sliced out, its lateness and both sides' CPU waits noted."""

from __future__ import annotations

import datetime as dt
import sys
import time

from bench.common import lateness

ENTRIES = ("2020-01-01T00:00:00.000000+00:00", "2020-01-01T00:00:01.500000+00:00", "2019-12-31T23:00:00.250000-01:00")
"""Three entry times, the last in another zone: 0, 1.5 and 0.25 s after 2020-01-01T00:00Z."""
OFFSETS_S = (0.0, 1.5, 0.25)
MIDNIGHT = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()


def test_the_reader_takes_each_lines_entry_time_wherever_it_stands_in_the_line() -> None:
    """Lines with other fields before entry_time, or a store_id after it: each lateness is receipt minus its entry."""
    lines = [
        f'{{"event_type":"foot_traffic","customer_id":"a","entry_time":"{ENTRIES[0]}","exit_time":"x"}}',
        f'{{"customer_id":"bb","entry_time":"{ENTRIES[1]}","store_id":"s-1"}}',
        f'{{"entry_time":"{ENTRIES[2]}"}}',
    ]
    script = f"import sys\nsys.stdout.write({chr(10).join(lines) + chr(10)!r})\n"
    before = time.time()
    found = lateness([sys.executable, "-c", script], {}, 60)
    after = time.time()
    assert len(found.late) == len(found.producer_wait) == len(found.reader_wait) == 3
    for late, offset in zip(found.late, OFFSETS_S, strict=True):
        assert (before - MIDNIGHT - offset) * 1000 <= late <= (after - MIDNIGHT - offset) * 1000
    assert min(found.producer_wait + found.reader_wait) >= 0
