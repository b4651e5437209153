"""How the rows of bench/run.py are taken and what bounds them: the text under docs/benchmarks.md's table."""

NOTES = """
How each figure is taken (bench/run.py):

- a, a′, a″, b: best of three runs each, ours and every anchor alike, the runs of the two sides
  interleaved (the machine is shared and noisy).
- a: `foot-traffic run --speed max` for one day of exactly N events to a fresh topic, timed from launch
  to exit (start-up, connection, topic creation and final flush included), next to Kafka's own
  `ProducerPerformance` with the same record count, the same record size (the mean size of our
  events) and `acks=all`, `enable.idempotence=true`, on the same broker: tuned with
  `batch.size=1048576 linger.ms=5` (the anchor), and with its default 16 kB batches (a′, for reference).
- a″: the same backfill (half the events) with the default `LOG_LEVEL=INFO`, which writes one line per
  event (standard error to /dev/null), against `LOG_LEVEL=WARNING`.
- b: a backfill of 10 M events to `--sink null` and to `--sink stdout` redirected to /dev/null. The
  steady state is (10 M − 1,000) / (time of the 10 M run − time of a 1,000-event run), each the
  fastest of its three: the tiny run is almost all fixed cost (imports, first plan, shutdown),
  reported apart as "fixed cost".
- c: a one-slot weights file and 17,280,000 customers a day give 200 events/s; a reader receives
  the JSON lines and records receipt time − entry_time (it slices entry_time out of each line, with
  no JSON parsing and the garbage collector off while it reads). At every read it also takes both
  sides' run-queue wait (`run_delay` in /proc/PID/schedstat: time runnable but not running), and
  the row gives, for the max, how long the producer and the reader had waited for a CPU since the
  read before. The anchor is the specification's loop (`bench/polling_loop.py`: check the clock,
  send what is due, sleep SLEEP=0.5) fed by the same model, read alike. While the producer runs,
  a C sleeper (`bench/wake_probe.c`, compiled by the row) is pinned to each CPU at real-time
  priority (SCHED_FIFO) and sleeps 1 ms at a time: at that priority nothing of the machine's own
  work keeps it from running when it wakes, so each wake more than 0.5 ms late is a time its CPU
  ran nothing. The machine was paused where every CPU was paused at once; an event's lateness
  *beyond the machine's pauses* is its lateness less the part of its wait that fell in such a
  pause (`bench/pauses.py`). p99 is judged as measured, the max beyond the pauses; the row gives
  the raw max, the pauses' count and the longest.
- d: launch to the log line `Producing to …` (ready, real-time run) and to the first line on
  standard output (backfill run, where the first event is due at once).
- e: peak resident set size of the process (getrusage of the child): a whole 10 M-customer day
  in backfill to the null sink, and 8 s of a real-time run planning such a day.
- f: CPU time of a real-time run with 100 customers a day, over a stretch without events.

What bounds the figures. Each paragraph names how its profile was taken: py-spy (a sampling
profiler) for a, b and the produce loop; for c, the scheduler's counters and a C sleeper per CPU
(no profiler). The
machine is a shared 2-core VM whose speed varies by up to 40 % from one run to the next, so a
figure near its target can land on either side of it.

- generation (b), profiled with py-spy (`py-spy record -r 400`, 2026-12-03, the 10 M-event
  null-sink backfill at LOG_LEVEL=WARNING, before freed memory was kept): the encoder took 57 %
  of the run (filling each block of lines from its template 13 %, the final copy of the lines
  into bytes 15 %, the ids' hex digits 7 %, the timestamps' gathers most of the rest), sampling
  (numpy, PCG64) 19 %, imports 6 %. The two copies were bound by page faults: glibc mapped each
  batch's 4 MB arrays afresh; kept freed memory (backfills only) took the encoder from 238 to
  125 ns an event in isolation and the whole run from 2.8 to 2.2 s. Before this day's encoder
  (a transposed 8-byte-word layout, about four passes over each line) the row ran 1.63 M
  events/s (18:51) against 4.2 M steady in the run of 22:17 and 5.1 M in that of 2026-12-04
  05:27; the stdout sink's 5.5 M against the null sink's 4.2 M at 22:17 was the machine's
  run-to-run noise, the null sink doing less.
- workers (g) is met at 40 M events (1.79× in the run of 2026-12-03 22:17, 1.77× in that of
  2026-12-04 05:27); at 10 M events (the 21:59 run of 2026-12-03) it gave 1.45×: with
  generation at about 5 M events/s, each process's fixed start-up (about 0.25 s, the parent's
  as well) was a third of the two-worker run.
- real-time lateness (c): its max is bound by pauses of the whole virtual machine. Traced on
  2026-12-04, the machine otherwise idle (no profiler: a throwaway wrapper around the producer
  noting each garbage collection over 0.5 ms and each batch sampled, and in the last six runs each
  wake of its loop more than 2 ms late; in the last three, a C sleeper pinned to each CPU at
  normal priority), ten 60–90 s runs: max 15.1, 32.4, 14.3, 27.5 and 34.7 ms, and five runs under
  8 ms; p99 0.33–0.44 ms. Each event over 8 ms in the last six runs came right after a wake of the
  loop as late as itself, with no run-queue wait of the producer's; at the two largest, both CPUs'
  sleepers stalled at the same instant, for 23.6 and 30.7 ms (the 27.5 ms event), 35.1 and 37.6 ms
  (the 34.7 ms event): the host ran neither CPU, and the guest's /proc/stat shows no steal time.
  Nothing of ours was running then: no collection over 0.5 ms fell inside a run (a full collection
  of 9–14 ms comes at exit), and a batch's sampling (16,400 arrivals, 1.7–1.9 ms) comes once every
  82 s, at none of the stalls. Hence the row's max beyond the machine's pauses. The 65.30 ms of
  the table of 2026-12-03 22:17 and the 51.78 and 21.61 ms of the row run alone that day came with
  no run-queue wait either and were not traced. They do not depend on freed memory being kept
  (suspected that day): the 21.61 ms and the runs above came without it; real time keeps glibc's
  defaults, having nothing to gain from it.
- backfill to Kafka (a), profiled with py-spy (`py-spy record --native`, 200 Hz) on a one-day
  backfill of 1,000,000 events (acks=all, idempotent, LOG_LEVEL=WARNING; 2026-12-03, the machine
  shared with other work), before the produce-loop levers below: of the loop thread's samples,
  `produce()` takes 41 % (librdkafka's partitioner alone 17 %: a CRC32 of each key and the queue's
  locks, even for a one-partition topic), the delivery reports 19 % (`poll` → a `Message` object
  and a Python callback per event; the callback's own code 3 %), the encoder 25 %, sampling and
  the loop the rest; start-up (imports) is about 6 % of the run. Without the profiler the run took
  2.1–2.3 s, the producer process 2.3–2.4 s of CPU (its loop thread one full core, librdkafka's
  threads the rest) and the broker 0.8–1.0 s: the bound is the one Python thread's per-event
  calls, with the broker on about 40 % of the other core (`ProducerPerformance`, a JVM, shares the
  same broker). confluent-kafka has no callback-free batch path; `produce_batch` measured no
  faster once librdkafka batching was tuned.
- produce-loop levers (2026-12-03, the machine shared with other test runs: load average 4 to
  10 on its 2 cores, so wall-clock figures moved by ±40 % from run to run and the loop thread's
  CPU time, `time.thread_time`, is the figure that decides). 1,000,000 pre-encoded events of one
  day to a fresh one-partition topic, flush included, best of five interleaved, loop-thread CPU:
  every delivery report, keyword arguments and librdkafka's partitioner (the earlier loop) 1.32 s;
  failed reports only (`delivery.report.only.error`: a confirmation no longer builds a `Message`
  and calls Python) 1.10 s; positional arguments to `produce()` (keywords cost the client a parse
  per call) 0.94 s; partition 0 named on a one-partition topic (any partitioner puts every key
  there, so placement is unchanged) 0.82 s, 0.62× the earlier loop. Computing the partition in
  Python (the CRC32 of the key, as librdkafka's default `consistent_random` does) costs what the
  partitioner costs: 0.89 s against 0.94 s on one partition, 1.20 s against 1.18 s on three; so a
  topic of several partitions keeps the client's partitioner. `bench/produce_loop.py` repeats the
  measure on the sink as it is (a later, busier sitting: every report 1.07 s, failed ones only
  0.82 s, 0.77×; three partitions 1.49 s). `bench/levers.py` at load average 10 put every report
  at 0.90× the default, where lz4 and zstd in the same sitting scattered from 0.71× to 1.21×:
  whole-process wall clocks could not decide there. Whole process, best of five interleaved with
  the earlier code and the tuned `ProducerPerformance`: the earlier code 281,770 ev/s and 2.54 s
  of process CPU, this one 302,531 ev/s and 2.06 s, the anchor 229,568 rec/s (a second sitting:
  213,382 ev/s and 2.86 s, 226,460 ev/s and 2.12 s, the anchor 102,701 rec/s); row a alone, in a
  quieter moment: 446,065 ev/s against 398,406 rec/s, 1.12×. Failed reports only are kept by
  default wherever the counts allow them (no metrics, no exactly-once; the delivered count is then
  the events handed over less those pending less those failed, exact once nothing is pending).
  After the levers the loop thread's profile (py-spy `--native` again: the C callbacks below
  are invisible to cProfile) is the encoder 29 %, `produce()` 20 %, serving the reports in
  `poll` 16 % (the Python client still runs a C callback per message to free its
  per-message state, even when it calls no Python), the two slices per event (value and key) 10 %,
  sampling 7 %, start-up about 9 %. Reading value and key through a memoryview, or two ranges
  zipped, moved the slices by less than 0.02 s per million events: not kept. INFO against WARNING
  (500,000 events, best of three): WARNING 305,215 ev/s and 1.12 s of process CPU, INFO 241,835
  ev/s and 1.39 s, 0.79×.
- producer levers of the backfill (`bench/levers.py`: 1,000,000 events of one day, acks=all,
  idempotent, LOG_LEVEL=WARNING, best of three interleaved, two sittings on 2026-12-03 with the
  machine shared; the default reached 436k and 363k ev/s):
  - compression: lz4 1.04× and 1.08× the default (none), zstd 1.08× and 0.91×, inside the
    machine's noise. Both cut the bytes the broker writes (200,000 events: 58 MB on disk without,
    14.6 MB with lz4, 8.6 MB with zstd), but the broker here is on loopback with a fast disk, so
    bytes do not bound the run, and librdkafka compresses on its own thread, not the loop's. Not
    made the default: a cluster across a slow network can set `KAFKA_PRODUCER_COMPRESSION_TYPE=lz4`.
  - bigger batches for backfills: `linger.ms=50` 0.95× and 1.00×; `linger.ms=50
    batch.num.messages=100000 batch.size=4000000` with lz4 1.12× and 1.08×, no more than lz4
    alone. At about 400k events/s, 5 ms of lingering already gathers some 2,000 events (0.5 MB) per
    batch, and a longer linger reaches at most the 1 MB cap (librdkafka's `batch.size`; about 4,000
    events of 251 B): the batches are not what bounds the run, the loop thread is (above). Not kept:
    backfills keep the real-time properties.
- real-time lateness (c) on a loaded machine: p99 is bound by the operating system's timer
  wake-up, the max by the scheduler of the shared machine: each stall is time the producer, or the
  reader, was runnable but not running while other processes held both cores. Traced (no profiler)
  on 2026-12-03, both sides of the pipe time-stamped (a throwaway wrapper noting at each flush of
  the stdout sink the wall time, the loop thread's CPU time, page faults and run-queue wait from
  its schedstat; the reader the same at each read; every 200 ms each task's CPU time from /proc),
  60 s runs at load average 0.9–1.4: max 46.9, 10.9 (the first event, below) and 36.7 ms. At each
  event over 20 ms the producer had waited 20–32 ms on the run queue between two flushes while
  using 0.3–0.4 ms of CPU, with no page fault, and/or the reader had waited up to 32 ms (the 46.9
  ms: 28.2 ms of the producer's wait, 18.3 ms of the reader's); in those 200 ms the cores went to
  other work (a backfill at --speed max, a pytest run, a micro-benchmark) and the
  broker's JVM. Such stalls came 0 to 8 times a run, at random moments (12, 16, 17, 34 s…): the
  earlier "24 s" was one of them. Not ours: the next chunk's sampling (16,384 arrivals, 0.9 ms)
  comes every 82 s at 200 events/s, the first 82 s after the start, so never inside the 60 s row;
  garbage collection was ruled out before; the reader's work is a few µs a line. Ours, and fixed:
  numpy imports numpy.random lazily, and a live run's first draw paid that import (7 ms) after the
  run's start instant, so the events due in its first milliseconds left 6–18 ms late (the max of
  one run, 10.9 ms); the model now loads it on import, and the first send comes 2.5–4 ms after the
  start (six 4 s runs each, interleaved with the code before, load average 2–3: the first event's
  lateness 7.2–16.5 ms, median 12.0, before; 1.6–7.1 ms, median 1.9, after). Row c alone after the
  fix, four runs at load average 3.3–7.3 (other tests and benchmarks): max 135.8, 178.0,
  37.4, 36.0 ms, p99 5.05, 52.1, 4.3, 4.5 ms, each max with a CPU wait that matches it (producer
  51.9 / 78.0 / 36.9 / 35.6 ms, reader 87.7 / 118.6 / 0.1 / 0.1 ms). A fifth at load average
  1.0–1.6: max 149.7 ms (producer 70.1 ms, reader 83.2 ms), p99 7.8 ms: a one-minute load average
  misses the bursts that matter. The same producer and reader under SCHED_FIFO (`chrt -f 10`),
  interleaved with plain runs (load average 2.9–6.1): SCHED_FIFO max 5.3 and 5.4 ms, p99 0.47 both
  times; plain max 87.8 and 9.7 ms, p99 6.4 and 3.3 ms. A 0.1 ms EEVDF slice request
  (`sched_setattr`, which needs no privilege) did not help (max 84.0 and 57.3 ms). So the target
  holds where the process gets a CPU when it wakes: a quiet machine, or a real-time scheduling
  class. The polling loop's max beyond its 500 ms sleep (6–39 ms) is the same waits, besides its
  own few ms of work per round.
"""
