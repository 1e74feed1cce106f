"""CSV and XLSX writers for report tables, row by row, so memory does not grow with the rows.

Used by exports, scheduled mailings and anything else that writes a report to a file. XLSX is
openpyxl's write-only workbook (rows go to a temporary file as they come, the workbook is zipped
at ``close``); CSV is UTF-8 with a BOM so Excel opens Cyrillic correctly. Datetimes are written
in the report's zone without the offset (spreadsheets have no zoned type), seconds as numbers.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any, Protocol

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from omni.domain.reports.table import Cell, Column, Kind

CSV_BOM = "\ufeff"
SHEET_TITLE_MAX = 31
NUMBER_FORMATS = {Kind.PERCENT: "0.0", Kind.SECONDS: "0.0", Kind.DATETIME: "yyyy-mm-dd hh:mm"}


class Format(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


CONTENT_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class RowWriter(Protocol):
    def append(self, row: Sequence[Cell]) -> None: ...

    def close(self) -> None: ...


def _local(value: Cell, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None)
    return value


class CsvWriter:
    def __init__(self, out: IO[str], columns: Sequence[Column], lang: str, tz: tzinfo) -> None:
        self._out = out
        self._tz = tz
        self._csv = csv.writer(out)
        self._columns = columns
        self._lang = lang
        out.write(CSV_BOM)
        self._csv.writerow([c.title_in(lang) for c in columns])

    def append(self, row: Sequence[Cell]) -> None:
        self._csv.writerow(
            [
                _local(v, self._tz).isoformat(sep=" ", timespec="minutes")
                if isinstance(v, datetime)
                else c.value_in(v, self._lang)
                for c, v in zip(self._columns, row, strict=True)
            ]
        )

    def close(self) -> None:
        self._out.flush()


class XlsxWriter:
    def __init__(self, path: Path, columns: Sequence[Column], lang: str, tz: tzinfo, title: str) -> None:
        self._path = path
        self._tz = tz
        self._kinds = [c.kind for c in columns]
        self._columns = columns
        self._lang = lang
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title=_sheet_title(title))
        bold = Font(bold=True)
        header = []
        for c in columns:
            cell = WriteOnlyCell(self._sheet, value=c.title_in(lang))
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)

    def append(self, row: Sequence[Cell]) -> None:
        out: list[Any] = []
        for kind, column, raw in zip(self._kinds, self._columns, row, strict=True):
            value = column.value_in(raw, self._lang)
            fmt = NUMBER_FORMATS.get(kind)
            if fmt is None or value is None:
                out.append(_local(value, self._tz))
                continue
            cell = WriteOnlyCell(self._sheet, value=_local(value, self._tz))
            cell.number_format = fmt
            out.append(cell)
        self._sheet.append(out)

    def close(self) -> None:
        self._book.save(self._path)


def _sheet_title(title: str) -> str:
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\").strip() or "Report"
    return cleaned[:SHEET_TITLE_MAX]


def open_writer(
    fmt: Format, path: Path, columns: Sequence[Column], lang: str, tz: tzinfo, title: str
) -> tuple[RowWriter, IO[str] | None]:
    """A writer for ``path``; for CSV also the open text file (closed by ``finish``)."""
    if fmt == Format.XLSX:
        return XlsxWriter(path, columns, lang, tz, title), None
    handle = path.open("w", encoding="utf-8", newline="")
    return CsvWriter(handle, columns, lang, tz), handle


def finish(writer: RowWriter, handle: IO[str] | None) -> None:
    writer.close()
    if handle is not None:
        handle.close()
