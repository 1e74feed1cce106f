"""The one shape every report answers in: columns, rows, totals and an optional chart.

REST returns it as JSON, the export writes it to CSV/XLSX, the mailing attaches it and the
reports page draws it, all without knowing which report it is. Column titles are catalog keys
(``rpt.col.<key>``) shown in the reader's language; values are plain numbers, strings or
ISO datetimes, so a spreadsheet sums them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from math import copysign
from operator import mul, sub, truediv
from typing import Any

from omni.i18n import keyed

Cell = str | int | float | bool | datetime | None


class Kind(enum.StrEnum):
    """How a column's values are shown (and formatted in an XLSX cell)."""

    TEXT = "text"
    COUNT = "count"
    NUMBER = "number"
    SECONDS = "seconds"
    PERCENT = "percent"
    DATETIME = "datetime"
    LABEL = "label"
    """A row label such as an interval start, a queue or an operator name."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    kind: Kind = Kind.COUNT
    title: str = ""
    """English title; the reader's language comes from the catalog key ``rpt.col.<key>``."""
    labels: str = ""
    """For a column of codes (a channel, a status): the catalog key prefix of their labels
    (``enum.channel``). The table keeps the code (tests, sorting); REST, the page and the files
    show ``keyed(lang, "<labels>.<code>")`` (the code itself when the catalog has no entry)."""

    def title_in(self, lang: str) -> str:
        return keyed(lang, f"rpt.col.{self.key}") or self.title or self.key

    def value_in(self, value: Cell, lang: str) -> Cell:
        """The cell as a reader in ``lang`` sees it: a code by its label."""
        if self.labels and isinstance(value, str) and value:
            return keyed(lang, f"{self.labels}.{value}") or value
        return value


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart the page draws from the table: ``x`` is a column key, ``series`` column keys."""

    kind: str  # "bar" | "line" | "stacked" | "pie"
    x: str
    series: tuple[str, ...]


@dataclass(slots=True)
class ReportTable:
    key: str
    columns: Sequence[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    totals: list[Cell] | None = None
    chart: Chart | None = None
    notes: list[str] = field(default_factory=list)
    """Catalog keys of remarks shown under the table (e.g. how SL is defined)."""
    total_rows: int | None = None
    """For paginated reports (contact history): rows matching, of which ``rows`` is one page."""

    def as_dicts(self) -> Iterable[dict[str, Cell]]:
        keys = [c.key for c in self.columns]
        for row in self.rows:
            yield dict(zip(keys, row, strict=True))

    def column(self, key: str) -> list[Cell]:
        index = [c.key for c in self.columns].index(key)
        return [row[index] for row in self.rows]

    def to_json(self, lang: str) -> dict[str, Any]:
        def cell(value: Cell) -> Any:
            return value.isoformat() if isinstance(value, datetime) else value

        return {
            "key": self.key,
            "title": keyed(lang, f"rpt.{self.key}") or self.key,
            "columns": [
                {"key": c.key, "kind": c.kind.value, "title": c.title_in(lang)} for c in self.columns
            ],
            "rows": [
                [cell(c.value_in(v, lang)) for c, v in zip(self.columns, row, strict=True)]
                for row in self.rows
            ],
            "totals": None if self.totals is None else [cell(v) for v in self.totals],
            "chart": None
            if self.chart is None
            else {"kind": self.chart.kind, "x": self.chart.x, "series": list(self.chart.series)},
            "notes": [keyed(lang, n) or n for n in self.notes],
            "total_rows": self.total_rows,
        }


def pct(part: float, whole: float) -> float | None:
    """A percentage rounded to one decimal, ``None`` (shown as a dash) without a base."""
    return round(100.0 * part / whole, 1) if whole else None


def mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


ROUND1_FAST_BELOW = 1e8
"""``round1_column`` takes its fast path for magnitudes below this (3 years in seconds)."""


def round1_column(values: Sequence[float]) -> list[float]:
    """``[round(v, 1) for v in values]``, bit for bit, at a fraction of the cost.

    ``round(v, 1)`` converts every float to a decimal string and back; a month's status report
    calls it 68,000 times and it was its largest single cost (cProfile). Here the column goes
    through C loops: ``n = round(10 * v)`` (nearest integer) and ``n / 10``. That is exactly
    ``round(v, 1)`` whenever ``10 * v`` as computed is not within 1e-7 of a half: below
    ``ROUND1_FAST_BELOW`` the product is off the exact ``10 * v`` by < 6e-8, so ``n`` is the one
    integer nearest to the exact value, and ``n / 10`` (one correctly rounded division) is the
    double nearest ``n / 10``, which is what ``round`` parses back from its string. ``copysign``
    keeps the sign of a value that rounds to zero (``round(-0.01, 1)`` is ``-0.0``). A column
    with a value near a half (an exact tie such as 0.25), a larger value, anything not a float
    (``round(0, 1)`` stays the integer 0) or not finite is rounded value by value instead.
    """
    if not values or not set(map(type, values)) <= {float}:
        return [round(v, 1) for v in values]
    try:
        tens = list(map(mul, values, repeat(10.0)))
        near = list(map(round, tens))
        off = max(map(abs, map(sub, tens, near)))
        largest = max(map(abs, values))
    except (ValueError, OverflowError):  # NaN or infinity
        return [round(v, 1) for v in values]
    if off >= 0.4999999 or largest >= ROUND1_FAST_BELOW:
        return [round(v, 1) for v in values]
    return list(map(copysign, map(truediv, near, repeat(10.0)), values))


def pct_column(parts: Sequence[float], wholes: Sequence[float]) -> list[float | None]:
    """``[pct(p, w) for p, w in zip(parts, wholes)]``, bit for bit, a column at a time."""
    if 0 in wholes:  # some rows have no base: value by value
        return [pct(p, w) for p, w in zip(parts, wholes, strict=True)]
    out: list[float | None] = [*round1_column(list(map(truediv, map(mul, repeat(100.0), parts), wholes)))]
    return out
