"""The checks of ``foot-traffic report``: events against the model the settings describe.

Pure functions of the events' columns (:mod:`foot_traffic.report.inputs.events`), the
stores' models and the range the report covers. Each check returns its tests
(a statistic with a p-value, or an exact condition) and tables; :func:`~foot_traffic.report.checks.results.judge`
then decides every verdict, the statistical tests sharing one significance
level (Bonferroni: each is held to alpha divided by their number).

The range is cut into *cells*, one per date and slot of each store. A cell is
*full* when the range covers all of its open time, *partial* when it covers
part of it. A day is *whole* when all its cells are full; only whole days are
compared with the exact plan and enter the weekday totals, so a run that
started mid-day, or a range that cuts a day, compares only what it covers.

Each check is a module of its own over what :mod:`foot_traffic.report.checks.expected`
lays out (the cells and the model's intensity in them); their results and the
verdicts are in :mod:`foot_traffic.report.checks.results`.
"""
