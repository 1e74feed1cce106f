"""Column rounding (``table.round1_column``, ``table.pct_column``): what a report shows must be
exactly what ``round(x, 1)`` and ``pct`` showed value by value, down to the last bit and the
sign of a zero, or an export would change under the reader's eyes."""

from __future__ import annotations

import math
import random

from omni.domain.reports.table import pct, pct_column, round1_column


def _same(got: list[float | None], want: list[float | None]) -> None:
    assert [repr(v) for v in got] == [repr(v) for v in want]
    assert [type(v) for v in got] == [type(v) for v in want]


def test_round1_column_is_round_to_one_decimal_bit_for_bit() -> None:
    rnd = random.Random(12)
    columns = [
        # seconds from microsecond timestamps, a month of them, and a year's totals
        [rnd.randint(0, 10**12) / 1e6 for _ in range(5000)],
        [rnd.uniform(0, 86_400 * 31) for _ in range(5000)],
        [rnd.uniform(0, 1e8) for _ in range(2000)],
        # shares and tiny values, zeros of both signs
        [rnd.uniform(0, 100) for _ in range(5000)] + [0.0, -0.0, 0.04, -0.04, 0.05, -0.05],
        # values one ulp around the decimal halves, the ones a shortcut would get wrong
        [math.nextafter(k / 20, side) for k in range(1, 4000, 2) for side in (0.0, math.inf)],
        [k / 20 for k in range(1, 4000, 2)],
    ]
    for column in columns:
        _same(round1_column(column), [round(v, 1) for v in column])


def test_round1_column_rounds_exact_ties_to_even_and_leaves_the_rest_to_round() -> None:
    ties = [0.25, 0.75, 2.25, 1e8 + 0.25, 3600.0]
    _same(round1_column(ties), [0.2, 0.8, 2.2, 100000000.2, 3600.0])
    # a whole 0 (no span of a column's codes) stays the integer 0, as the JSON has always said
    _same(round1_column([0, 12.34]), [0, 12.3])
    _same(round1_column([2.0e9 + 0.06, 1e15 / 3]), [round(2.0e9 + 0.06, 1), round(1e15 / 3, 1)])
    assert round1_column([]) == []
    nan = round1_column([math.nan, 1.26])
    assert math.isnan(nan[0]) and nan[1] == 1.3


def test_pct_column_is_pct_value_by_value() -> None:
    rnd = random.Random(13)
    parts = [rnd.uniform(0, 30_000) for _ in range(3000)]
    wholes = [p + rnd.uniform(0, 30_000) for p in parts]
    _same(pct_column(parts, wholes), [pct(p, w) for p, w in zip(parts, wholes, strict=True)])
    with_zero = [*wholes[:10], 0, 0.0]
    _same(pct_column(parts[:12], with_zero), [pct(p, w) for p, w in zip(parts[:12], with_zero, strict=True)])
