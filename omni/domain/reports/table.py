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
