"""Many PCG64 streams drawn at once, each bit for bit what numpy's ``Generator(PCG64(seed))`` draws.

A chain samples thousands of small chunks, each on its own stream. Building a numpy
generator per chunk costs more than its draws, so :class:`Streams` keeps every stream's
state in arrays and draws them all in a few array operations. It follows numpy's code
(``pcg64.h``, ``distributions.c``) exactly:

* PCG64 is an LCG on 128 bits, ``s ← s·M + inc``, whose output is XSL-RR:
  ``rotr64(hi(s) ^ lo(s), s >> 122)``. Seeding from four 64-bit words ``w`` sets
  ``inc = (w2:w3) << 1 | 1`` and ``s = ((inc + (w0:w1))·M + inc)``. The k-th output
  (0-based) is that of ``s_{k+1} = M^{k+1}·s_0 + (M^k + … + 1)·inc``: any draw is computed
  directly from the stream's seed, with no loop over earlier draws.
* A 32-bit draw takes the low half of a fresh 64-bit output and keeps the high half for
  the next 32-bit draw; a 64-bit draw (``random``) leaves a kept half in place.
* A bounded 32-bit integer in ``[0, r]`` is Lemire's: ``m = x·(r + 1)`` on 64 bits, ``x``
  rejected while ``m mod 2³² < 2³² mod (r + 1)``; the result is ``m >> 32``. A range of one
  value (``r = 0``) draws nothing.
* ``random()`` is ``(x >> 11)·2⁻⁵³`` of a 64-bit output.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_MULTIPLIER = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645
"""PCG's default 128-bit LCG multiplier (numpy's PCG64)."""
_M128 = (1 << 128) - 1
_M64 = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_M32 = np.uint64(0xFFFF_FFFF)
_S32 = np.uint64(32)


def _mul_hi64(a: U64, b: U64) -> U64:
    """The high 64 bits of the 128-bit products a·b."""
    a0, a1, b0, b1 = a & _M32, a >> _S32, b & _M32, b >> _S32
    p01, p10 = a0 * b1, a1 * b0
    mid = ((a0 * b0) >> _S32) + (p01 & _M32) + (p10 & _M32)
    high: U64 = a1 * b1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return high


def _add128(ah: U64, al: U64, bh: U64, bl: U64) -> tuple[U64, U64]:
    """The sums (ah:al) + (bh:bl) mod 2¹²⁸, as (high, low)."""
    low = al + bl
    return ah + bh + (low < al).astype(np.uint64), low


def _output(high: U64, low: U64) -> U64:
    """PCG's XSL-RR output of states (high:low)."""
    value: U64 = np.bitwise_xor(high, low)
    turn: U64 = np.right_shift(high, np.uint64(58))
    rotated: U64 = np.bitwise_or(
        np.right_shift(value, turn), np.left_shift(value, (np.uint64(64) - turn) & np.uint64(63))
    )
    return rotated


class Streams:
    """The PCG64 streams of the given seeds (one row of four 64-bit words each), at their first draw.

    Stream i may make ``budgets[i]`` 64-bit draws (a 32-bit draw is half of one): they are
    computed at once, stepping every stream together. A stream that needs more is marked
    in :attr:`over`, and what it drew then is not to be used.
    """

    def __init__(self, words: U64, budgets: I64) -> None:
        self.budgets = budgets
        self._base = np.cumsum(budgets) - budgets
        self._raw = _outputs(words, budgets, self._base)
        self._raw32 = self._raw.view("<u4")
        self.drawn = np.zeros(words.shape[0], dtype=np.int64)
        """How many 64-bit outputs each stream has drawn, never past its budget (a stream needing more is over)."""
        self.kept = np.zeros(words.shape[0], dtype=bool)
        """Whether the stream keeps the high half of an output for its next 32-bit draw."""
        self._kept_at = np.zeros(words.shape[0], dtype=np.int64)
        """Which output that half is of (64-bit draws may have come since)."""
        self.over = np.zeros(words.shape[0], dtype=bool)
        """The streams that needed more than their budget."""

    def _advance(self, outputs: I64) -> None:
        """Move every stream on by ``outputs``, none past its budget, so what a stream over it reads stays in range."""
        self.drawn = np.minimum(self.drawn + outputs, self.budgets)

    def _check(self, counts: I64, room: I64) -> I64:
        """The counts, with those of the streams they would take past their budget's ``room`` marked and cut."""
        past = counts > room
        if past.any():
            self.over |= past
            counts = np.minimum(counts, np.maximum(room, 0))
        return counts

    def doubles(self, counts: I64) -> npt.NDArray[np.float64]:
        """``random(counts[i])`` of every stream i, flat in stream order (values past a budget are not to be used)."""
        taken = self._check(counts, self.budgets - self.drawn)
        raw = self._raw[_spans(self._base + self.drawn, taken, counts)]
        self._advance(counts)
        return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)

    def words32(self, lengths: I64) -> npt.NDArray[np.uint32]:
        """The next ``lengths[i]`` 32-bit draws of every stream i, flat in stream order: draws nothing.

        Call :meth:`take32` with how many of them each stream used.
        """
        kept = self.kept.astype(np.int64)
        start = 2 * (self._base + self.drawn) - kept  # the kept half is there while no 64-bit draw came since
        taken = self._check(lengths, 2 * (self.budgets - self.drawn) + kept)
        words = self._raw32[_spans(start, taken, lengths)]
        moved = self.kept & (self._kept_at != self.drawn - 1) & (lengths > 0)
        if moved.any():
            firsts = (np.cumsum(lengths) - lengths)[moved]
            words[firsts] = self._raw32[2 * (self._base + self._kept_at)[moved] + 1]
        return words

    def take32(self, used: I64) -> None:
        """Note that every stream i made ``used[i]`` 32-bit draws."""
        fresh = used - self.kept.astype(np.int64)
        moving = used > 0
        self._advance(np.where(moving, (fresh + 1) // 2, 0))
        self.kept = np.where(moving, fresh % 2 == 1, self.kept)
        self._kept_at = np.where(moving, self.drawn - 1, self._kept_at)

    def uint32(self, counts: I64) -> npt.NDArray[np.uint32]:
        """``integers(0, 2**32, size=counts[i], dtype=uint32)`` of every stream i, flat in stream order."""
        words = self.words32(counts)
        self.take32(counts)
        return words

    def bounded(self, counts: I64, spans: I64) -> I64:
        """``integers(0, spans[i], size=counts[i])`` of every stream i (1 ≤ spans ≤ 2³²), flat in stream order.

        Each stream's words are tried in one pass, as many as its count and expected rejections
        need with a wide margin: a stream whose pass falls short is marked in :attr:`over`.
        """
        excl = np.clip(spans, 1, 1 << 32).astype(np.uint64)  # (the spans of streams drawing nothing may be any)
        threshold = np.uint64(1 << 32) % excl
        drawing = np.where(spans > 1, counts, 0)  # a span of one value draws nothing: its values are 0
        rate = threshold.astype(np.float64) / 4294967296.0  # each word's chance of rejection
        room = 2 * (self.budgets - self.drawn) + self.kept
        guess = np.minimum(
            np.ceil(drawing / (1.0 - rate) + 4 * np.sqrt(drawing / (1.0 - rate))).astype(np.int64) + 8, room
        )
        guess = np.where(drawing > 0, guess, 0)
        words = self.words32(guess)
        owner = np.repeat(np.arange(counts.shape[0]), guess)
        product = words.astype(np.uint64) * excl[owner]
        accepted = (product & _M32) >= threshold[owner]
        running = np.cumsum(accepted)
        starts = np.cumsum(guess) - guess
        cum = running - np.concatenate(([0], running))[starts][owner]  # accepted so far in the stream's pass
        keep = accepted & (cum <= drawing[owner])
        values = np.zeros(int(counts.sum()), dtype=np.int64)
        kept_owner = owner[keep]
        values[(np.cumsum(counts) - counts)[kept_owner] + cum[keep] - 1] = (product[keep] >> _S32).astype(np.int64)
        final = keep & (cum == drawing[owner])
        used = guess.copy()
        used[owner[final]] = np.flatnonzero(final) - starts[owner[final]] + 1
        self.over |= np.bincount(kept_owner, minlength=counts.shape[0]) < drawing
        self.take32(used)
        return values

    def bounded64(self, counts: I64, spans: I64) -> I64:
        """``integers(0, spans[i], size=counts[i])`` of every stream i, for spans above 2³², flat in stream order.

        numpy draws these on 64 bits (Lemire's on 128-bit products), each value from the next 64-bit
        output; a rejection's chance is below span / 2⁶⁴: a stream with one is marked in :attr:`over`.
        """
        owner = np.repeat(np.arange(counts.shape[0]), counts)
        excl = spans.astype(np.uint64)[owner]
        raw = self._raw[_spans(self._base + self.drawn, self._check(counts, self.budgets - self.drawn), counts)]
        self._advance(counts)
        with np.errstate(over="ignore"):
            low = raw * excl
            threshold = (np.uint64(0) - excl) % excl
        self.over[owner[low < threshold]] = True
        values: I64 = _mul_hi64(raw, excl).astype(np.int64)
        return values

    def bounded_each(self, counts: I64, spans: I64) -> I64:
        """``integers(0, spans)`` with one span per value (``spans``, flat in stream order: counts[i] of stream i).

        numpy draws such values one at a time, each retried on its own span until accepted. Rejections
        are rare for small spans: every value takes the next word, and a stream with a rejection among
        its values is marked in :attr:`over`.
        """
        owner = np.repeat(np.arange(counts.shape[0]), counts)
        drawing = spans > 1  # a span of one value draws nothing
        lengths = np.bincount(owner[drawing], minlength=counts.shape[0])
        words = self.words32(lengths)  # the drawing values' words, one each, in the same order
        excl = spans[drawing].astype(np.uint64)
        product = words.astype(np.uint64) * excl
        values = np.zeros(spans.shape[0], dtype=np.int64)
        values[drawing] = (product >> _S32).astype(np.int64)
        rejected = (product & _M32) < (np.uint64(1 << 32) % excl)
        self.over[owner[drawing][rejected]] = True  # rare: the stream is drawn again on its own
        self.take32(lengths)
        return values


def _spans(starts: I64, lengths: I64, widths: I64) -> I64:
    """Indices ``starts[i] + 0, 1, …`` of ``lengths[i]`` consecutive elements each, padded to ``widths[i]`` each."""
    if (lengths == widths).all():
        total = int(widths.sum())
        whole: I64 = np.repeat(starts - (np.cumsum(widths) - widths), widths) + np.arange(total, dtype=np.int64)
        return whole
    rank = np.arange(int(widths.sum()), dtype=np.int64) - np.repeat(np.cumsum(widths) - widths, widths)
    clipped: I64 = np.repeat(starts, widths) + np.minimum(rank, np.repeat(np.maximum(lengths - 1, 0), widths))
    return clipped


def _outputs(words: U64, budgets: I64, base: I64) -> U64:
    """The first ``budgets[i]`` outputs of the stream seeded by ``words[i]``, at ``base[i]`` on.

    Every stream steps together, those with the largest budgets first.
    """
    order = np.argsort(-budgets, kind="stable")
    words, budgets, base = words[order], budgets[order], base[order]
    raw = np.zeros(int(budgets.sum()) + 1, dtype=np.uint64)  # one more: where a stream past its budget reads
    with np.errstate(over="ignore"):
        inc_high = (words[:, 2] << np.uint64(1)) | (words[:, 3] >> np.uint64(63))
        inc_low = (words[:, 3] << np.uint64(1)) | np.uint64(1)
        high, low = _add128(inc_high, inc_low, words[:, 0], words[:, 1])
        high, low = _step(high, low, inc_high, inc_low)
        steps = int(budgets[0]) if budgets.shape[0] else 0
        active = np.searchsorted(-budgets, -np.arange(steps), side="left")  # the streams with a k-th output
        for k in range(steps):
            a = int(active[k])
            high, low = _step(high[:a], low[:a], inc_high[:a], inc_low[:a])
            raw[base[:a] + k] = _output(high, low)
    return raw


_MUL_HIGH, _MUL_LOW = np.uint64(_MULTIPLIER >> 64), np.uint64(_MULTIPLIER & 0xFFFF_FFFF_FFFF_FFFF)
_MUL_L0, _MUL_L1 = _MUL_LOW & _M32, _MUL_LOW >> _S32


def _step(high: U64, low: U64, inc_high: U64, inc_low: U64) -> tuple[U64, U64]:
    """One LCG step of states (high:low): s·M + inc mod 2¹²⁸."""
    a0, a1 = low & _M32, low >> _S32
    p01, p10 = a0 * _MUL_L1, a1 * _MUL_L0
    mid = ((a0 * _MUL_L0) >> _S32) + (p01 & _M32) + (p10 & _M32)
    product_high = a1 * _MUL_L1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32) + low * _MUL_HIGH + high * _MUL_LOW
    product_low = low * _MUL_LOW
    new_low = product_low + inc_low
    return product_high + inc_high + (new_low < product_low), new_low
