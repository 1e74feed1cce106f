"""Call lists: CSV/XLSX import into a campaign (upload → sniff → mapping → preview → job) and
targets added over REST, with one normalisation and de-duplication path for both.

* **Upload** (``check_create_import``): the file is already on disk (streamed by the transport,
  ``omni.domain.files.save_upload_stream``); its format is decided by its first bytes (an XLSX is
  a zip), its shape sniffed from the first 64 KB: encoding (UTF-8, UTF-8 with BOM, else cp1251),
  delimiter, whether the first row is a header, the columns, a sample and a guessed mapping.
* **Mapping** (``Mapping``): columns by index: one or more phone columns tried in order, name,
  time zone, card fields, tags. ``preview`` shows the first rows exactly as the job would import
  them (the normalised numbers, or the reason the row is refused).
* **Job** (``run_import``): rows are read and normalised in a worker process a batch at a time
  (``BATCH``), so the event loop keeps serving and memory does not grow with the file; each
  batch is one transaction and one set-based insert (PostgreSQL: binary ``COPY`` into a
  temporary stage, then one ``INSERT … SELECT``; SQLite: multi-row VALUES) with ``ON CONFLICT
  (campaign_id, phone) DO NOTHING`` — the unique key does the de-duplication inside the list and
  against the campaign's existing targets, without a set held in memory — and each target
  ``dnc`` or ``pending`` by ``dnc.listed`` (a DNC list's number or prefix range, global or the
  campaign's; PostgreSQL decides it in the insert, SQLite with ``dnc.mark_dnc_targets`` after
  it). Refused rows (bad or missing phone, blank row, more
  columns than the file has, unknown zone, duplicates) go to a CSV with the reason, in the
  importer's language, downloadable when the job ends.
* **Progress and cancel**: between batches the job stores its counts and bytes, touches its
  heartbeat (``updated_at``) and reads its cancel flag; the transport pushes the job to the
  importer's sockets. A cancelled job keeps the rows already imported. A job whose node died
  (its heartbeat older than ``STALE_AFTER``) is failed with a message on the next read.

Only the first number of a target decides the ``dnc`` mark at import; the scheduler checks
every number before dialing it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import json
import logging
import multiprocessing
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from sqlalchemy import (
    JSON,
    Integer,
    String,
    case,
    cast,
    column,
    func,
    literal,
    null,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.db.models.outbound import ImportState, TargetState
from omni.domain import audit, grants
from omni.domain.auth import Principal, check_role
from omni.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from omni.domain.outbound import campaigns, dnc
from omni.domain.outbound.numbers import Number, check_zone, normalise_number, parse_number, zone_of
from omni.i18n import _l, gettext, localize

log = logging.getLogger(__name__)

__all__ = [
    "BATCH",
    "MAX_BYTES",
    "ImportRunner",
    "Mapping",
    "Row",
    "TargetIn",
    "access_campaign",
    "access_import",
    "access_rejects_file",
    "check_add_targets",
    "check_cancel_import",
    "check_create_import",
    "check_start_import",
    "detect_format",
    "fail_stale_imports",
    "import_dict",
    "normalise",
    "preview",
    "run_import",
    "sniff",
]

BATCH = 5000
"""Rows read, normalised and inserted between two progress reports (and cancel checks)."""
WORKER_PROCESS = True
"""Read and normalise a running import's file in a worker process (see ``Source``)."""
SQLITE_CHUNK = 400
"""Rows per multi-row INSERT on SQLite (its bound-parameter limit)."""
MAX_BYTES = 512 * 1024 * 1024
"""The largest list file accepted (a 1,000,000-row CSV is some 60 MB)."""
SNIFF_BYTES = 64 * 1024
SAMPLE_ROWS = 10
PREVIEW_ROWS = 20
MAX_FIELDS = 50
MAX_CELL = 1000
MAX_TAGS = 20
MAX_API_TARGETS = 1000
STALE_AFTER = timedelta(minutes=2)
"""A running job touches its heartbeat every batch (a second or two); one silent this long lost
its node."""
ACTIVE = (ImportState.PENDING, ImportState.RUNNING)
INTERRUPTED = _l("interrupted: the server stopped during the import; the rows counted so far are imported")
FAILED = _l("the import failed ({kind}); the rows counted so far are imported")
DUPLICATE_IN_LIST = _l("duplicate: the number is already in this list")
DUPLICATE_IN_CAMPAIGN = _l("duplicate: the number is already in the campaign")
REJECTS_HEAD = (_l("line"), _l("reason"))
XLSX_SIGNATURE = b"PK\x03\x04"
DELIMITERS = (",", ";", "\t", "|")
CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
HEADER_WORDS = {
    "phone": ("phone", "tel", "mobile", "телефон", "тел", "моб", "номер", "number"),
    "name": ("name", "fio", "фио", "имя", "клиент", "contact", "контакт"),
    "timezone": ("timezone", "time zone", "tz", "зона", "пояс", "часовой"),
    "tags": ("tags", "tag", "теги", "тег", "метки"),
}

Notify = Callable[[int, dict[str, Any]], Awaitable[None]]
"""``notify(user_id, job)``: the transport pushes the job to that user's sockets."""


# --- scope ---------------------------------------------------------------------------------


async def access_campaign(session: AsyncSession, who: Principal, campaign_id: int) -> m.Campaign:
    """A campaign whose lists the caller may manage: admins and supervisors only (403 for the
    others), then the campaigns' own scope rule (``campaigns.access_campaign``: a supervisor's
    queues; another group's campaign reads as 404)."""
    check_role(who, m.Role.ADMIN, m.Role.SUPERVISOR)
    await grants.check(session, who, grants.CAMPAIGN_MANAGE)
    return await campaigns.access_campaign(session, who, campaign_id)


async def access_import(
    session: AsyncSession, who: Principal, import_id: int
) -> tuple[m.ListImport, m.CallList, m.Campaign]:
    check_role(who, m.Role.ADMIN, m.Role.SUPERVISOR)
    await grants.check(session, who, grants.CAMPAIGN_MANAGE)
    job = await session.get(m.ListImport, import_id)
    if job is None:
        raise NotFound("list import {import_id} not found", import_id=import_id)
    call_list = await session.get_one(m.CallList, job.list_id)
    try:
        campaign = await access_campaign(session, who, call_list.campaign_id)
    except NotFound:
        raise NotFound("list import {import_id} not found", import_id=import_id) from None
    return job, call_list, campaign


# --- the file's shape ----------------------------------------------------------------------


def detect_format(head: bytes, filename: str) -> str:
    """``xlsx`` or ``csv`` from the first bytes; anything else is refused with the reason."""
    if head.startswith(XLSX_SIGNATURE):
        return "xlsx"
    lower = filename.lower()
    if lower.endswith((".xlsx", ".xlsm")):
        raise InvalidInput("'{name}' is not really an XLSX file", name=filename, field="file")
    if lower.endswith(".xls"):
        raise InvalidInput("old Excel files (.xls) are not supported: save it as .xlsx or CSV", field="file")
    if b"\x00" in head[:4096]:
        raise InvalidInput("'{name}' is not a text file", name=filename, field="file")
    return "csv"


def _encoding(raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    cut = raw.rfind(b"\n") if len(raw) >= SNIFF_BYTES else len(raw)
    try:
        raw[: cut if cut > 0 else len(raw)].decode("utf-8")
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


def _delimiter(lines: list[str]) -> str:
    """The delimiter splitting the sample's lines into the same (largest) number of columns."""
    best, score = ",", (-1, -1)
    for delim in DELIMITERS:
        counts = [len(r) for r in csv.reader([ln for ln in lines if ln.strip()], delimiter=delim)]
        if not counts:
            continue
        common = max(set(counts), key=counts.count)
        candidate = (counts.count(common) if common > 1 else 0, common)
        if candidate > score:
            best, score = delim, candidate
    return best


def _is_phone(value: str, region: str) -> bool:
    if not any(ch.isdigit() for ch in value):
        return False
    try:
        parse_number(value, region)
    except InvalidInput:
        return False
    return True


def _guess(header: list[str] | None, sample: list[list[str]], region: str) -> dict[str, Any]:
    """A mapping to start from: header words first, else the columns whose values are numbers."""
    width = max([len(header or [])] + [len(r) for r in sample] + [0])
    phones: list[int] = []
    guessed: dict[str, Any] = {"phones": phones, "name": None, "timezone": None, "tags": None, "fields": {}}
    for i in range(width):
        title = (header[i] if header and i < len(header) else "").strip()
        lowered = title.lower()
        kind = next((k for k, words in HEADER_WORDS.items() if any(w in lowered for w in words)), None)
        values = [r[i] for r in sample if i < len(r) and r[i].strip()]
        numeric = bool(values) and sum(_is_phone(v, region) for v in values) * 2 > len(values)
        if kind == "phone" or (kind is None and numeric):
            phones.append(i)
        elif kind in ("name", "timezone", "tags") and guessed[kind] is None:
            guessed[kind] = i
        elif title:
            guessed["fields"][title[:64]] = i
    return guessed


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def sniff(path: Path, fmt: str, region: str) -> dict[str, Any]:
    """The file's shape (runs in a thread): encoding, delimiter, header, columns, sample rows and a
    guessed mapping. Refuses a file with no rows at all."""
    encoding = delimiter = ""
    if fmt == "xlsx":
        rows = []
        with _xlsx_rows(path) as it:
            for row in it:
                rows.append(row)
                if len(rows) > SAMPLE_ROWS:
                    break
    else:
        with path.open("rb") as fh:
            raw = fh.read(SNIFF_BYTES)
        encoding = _encoding(raw)
        textual = raw.decode(encoding, errors="ignore")
        if len(raw) >= SNIFF_BYTES:
            textual = textual[: textual.rfind("\n") + 1] or textual
        lines = textual.splitlines()
        delimiter = _delimiter(lines[: SAMPLE_ROWS * 3])
        rows = []
        for row in csv.reader(lines, delimiter=delimiter):
            if any(c.strip() for c in row):
                rows.append(row)
            if len(rows) > SAMPLE_ROWS:
                break
    # Trailing empty cells don't count (openpyxl pads every row to the sheet's widest).
    rows = [r[: max(i for i, c in enumerate(r) if c.strip()) + 1] for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InvalidInput("the file has no rows", field="file")
    first = rows[0]
    header = not any(_is_phone(c, region) for c in first) and any(
        _is_phone(c, region) for r in rows[1:] for c in r
    )
    sample = rows[1:] if header else rows
    # With a header, its columns are the file's: a row with more is refused at import (an
    # unquoted delimiter shifted its cells); without one, the widest sampled row.
    width = len(first) if header else max(len(r) for r in rows)
    titles = [(first[i].strip() if header and i < len(first) else "") for i in range(width)]
    columns = [{"index": i, "title": titles[i]} for i in range(width)]
    return {
        "encoding": encoding,
        "delimiter": delimiter,
        "header": header,
        "columns": columns,
        "sample": [(r + [""] * width)[:width] for r in sample[:SAMPLE_ROWS]],
        "mapping": _guess(titles if header else None, sample, region),
    }


@contextlib.contextmanager
def _xlsx_rows(path: Path, sizes: dict[str, int] | None = None) -> Iterator[Iterator[list[str]]]:
    """The first sheet's rows as strings, streamed (openpyxl's read-only mode); ``sizes`` gets
    the sheet's row count as its dimension states it (``rows``), for progress."""
    from openpyxl import load_workbook  # a heavy import, only when an XLSX is read

    with path.open("rb") as fh:  # a handle: openpyxl judges a path by its (random) name
        try:
            book = load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged zip
            raise InvalidInput(
                "the XLSX file can't be read: {error}", error=str(exc)[:200], field="file"
            ) from exc
        try:
            sheet = book.worksheets[0]
            if sizes is not None:
                sizes["rows"] = int(getattr(sheet, "max_row", 0) or 0)
            yield ([_cell(v) for v in row] for row in sheet.iter_rows(values_only=True))
        finally:
            book.close()


# --- the mapping and one row ---------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """Columns by index (0-based) of the file's rows."""

    phones: tuple[int, ...]
    name: int | None = None
    timezone: int | None = None
    tags: int | None = None
    fields: dict[str, int] = field(default_factory=dict)
    header: bool = True

    @classmethod
    def check(cls, data: dict[str, Any], width: int) -> Mapping:
        """Validate a mapping against a file of ``width`` columns; every problem at once."""
        errors: list[DomainError] = []

        def column(value: Any, name: str) -> int | None:
            if value is None:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < width:
                errors.append(
                    InvalidInput("{field}: the file has no column {column}", column=value, field=name)
                )
                return None
            return value

        raw_phones = data.get("phones") or []
        phones = tuple(c for c in (column(v, "phones") for v in raw_phones) if c is not None)
        if not raw_phones:
            errors.append(InvalidInput("choose at least one phone column", field="phones"))
        elif len(set(phones)) != len(phones):
            errors.append(InvalidInput("a phone column is chosen twice", field="phones"))
        fields: dict[str, int] = {}
        raw_fields = data.get("fields") or {}
        if len(raw_fields) > MAX_FIELDS:
            errors.append(
                InvalidInput("at most {max_fields} card fields", max_fields=MAX_FIELDS, field="fields")
            )
        for key, value in raw_fields.items():
            name = str(key).strip()
            if not name or len(name) > 64:
                errors.append(InvalidInput("a card field needs a name of 1 to 64 characters", field="fields"))
                continue
            index = column(value, "fields")
            if index is not None:
                fields[name] = index
        mapping = cls(
            phones=phones,
            name=column(data.get("name"), "name"),
            timezone=column(data.get("timezone"), "timezone"),
            tags=column(data.get("tags"), "tags"),
            fields=fields,
            header=bool(data.get("header", True)),
        )
        if errors:
            raise InvalidInput(errors[0].template, field=errors[0].field, errors=errors, **errors[0].params)
        return mapping

    def to_json(self) -> dict[str, Any]:
        return {
            "phones": list(self.phones),
            "name": self.name,
            "timezone": self.timezone,
            "tags": self.tags,
            "fields": dict(self.fields),
            "header": self.header,
        }


@dataclass(frozen=True)
class Row:
    """One row as it would be imported: a target, or the reason it is refused."""

    line: int
    cells: list[str]
    phones: list[str] = field(default_factory=list)
    name: str = ""
    timezone: str = ""
    region: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Context:
    mapping: Mapping
    width: int
    region: str
    zone: str
    lang: str


def _take(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()[:MAX_CELL]


def _refuse(line: int, cells: list[str], lang: str, exc: DomainError) -> Row:
    return Row(line, cells, reason=localize(exc, lang))


def normalise(line: int, cells: list[str], ctx: Context) -> Row:
    """One row through the mapping: E.164 numbers in column order (the first valid one is the
    target's key; invalid extra numbers are dropped), its zone, card fields and tags."""
    filled = [c for c in cells if c.strip()]
    if not filled:
        return _refuse(line, cells, ctx.lang, InvalidInput("blank row"))
    last = max(i for i, c in enumerate(cells) if c.strip()) + 1
    if last > ctx.width:
        return _refuse(
            line,
            cells,
            ctx.lang,
            InvalidInput("the row has {count} columns, the file has {width}", count=last, width=ctx.width),
        )
    numbers: list[Number] = []
    first_error: InvalidInput | None = None
    for index in ctx.mapping.phones:
        raw = _take(cells, index)
        if not raw:
            continue
        try:
            number = normalise_number(raw, ctx.region)
        except InvalidInput as exc:
            first_error = first_error or exc
            continue
        if all(n.e164 != number.e164 for n in numbers):
            numbers.append(number)
    if not numbers:
        return _refuse(line, cells, ctx.lang, first_error or InvalidInput("no phone number", field="phone"))
    zone = _take(cells, ctx.mapping.timezone)
    if zone:
        try:
            check_zone(zone)
        except InvalidInput as exc:
            return _refuse(line, cells, ctx.lang, exc)
    tags_cell = _take(cells, ctx.mapping.tags)
    tags = [t.strip()[:64] for t in tags_cell.replace(";", ",").split(",") if t.strip()][:MAX_TAGS]
    return Row(
        line,
        cells,
        phones=[n.e164 for n in numbers],
        name=_take(cells, ctx.mapping.name)[:256],
        timezone=zone_of(numbers[0], zone, ctx.zone),
        region=numbers[0].region,
        fields={key: _take(cells, index) for key, index in ctx.mapping.fields.items()},
        tags=tags,
    )


# --- reading the file, a batch at a time ---------------------------------------------------


class Reader:
    """The rows of a stored list file, read in batches by a worker thread.

    CSV rows come from ``csv.reader`` over the byte stream (memory is the batch, not the file);
    ``bytes_done`` is the position in the file. XLSX rows come from openpyxl's read-only
    stream; their byte position is estimated from the sheet's row count.
    """

    def __init__(self, path: Path, fmt: str, encoding: str, delimiter: str, header: bool) -> None:
        self.size = path.stat().st_size
        self.line = 0
        self._fmt = fmt
        self._stack = contextlib.ExitStack()
        self._raw: BinaryIO | None = None
        self._rows_total: int | None = None
        if fmt == "xlsx":
            sizes: dict[str, int] = {}
            self._rows = self._stack.enter_context(_xlsx_rows(path, sizes))
            self._rows_total = sizes.get("rows") or None
        else:
            raw = self._stack.enter_context(path.open("rb"))
            self._raw = raw
            handle = io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors="replace", newline="")
            self._stack.callback(handle.detach)
            self._rows = csv.reader(handle, delimiter=delimiter or ",")
        if header:
            self.next_rows(1)
            self.line = 1

    @property
    def bytes_done(self) -> int:
        if self._raw is not None:
            with contextlib.suppress(ValueError, OSError):
                return min(self.size, self._raw.tell())
            return self.size
        if not self._rows_total:
            return 0
        return min(self.size, self.size * self.line // self._rows_total)

    def next_rows(self, count: int) -> list[tuple[int, list[str]]]:
        out: list[tuple[int, list[str]]] = []
        while len(out) < count:
            try:
                cells = next(self._rows)
            except StopIteration:
                break
            except csv.Error as exc:
                self.line += 1
                out.append((self.line, [f"<{exc}>"]))
                continue
            self.line += 1
            out.append((self.line, cells))
        return out

    def close(self) -> None:
        self._stack.close()


@dataclass
class Batch:
    """Rows read and normalised by the reader, with what storing them needs prepared there too
    (so the event loop only sends them)."""

    count: int
    """Rows read (0: the end of the file)."""
    position: int
    """The file position right after these rows."""
    refused: list[Row]
    good: list[Row] | None = None
    """The good rows (not when ``prepare``d: then only what storing them needs crosses back)."""
    records: list[tuple[Any, ...]] | None = None
    """The good rows as the staging table's records (``_records``), when ``prepare``d."""
    phones: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)
    """The good rows' first numbers, line numbers and cells (``prepare``d), for reporting their
    duplicates."""


def _read_batch(reader: Reader, ctx: Context, count: int, prepare: bool = False) -> Batch:
    """The next rows through the mapping (``prepare``: the staging table's records, built here
    off the event loop)."""
    rows = [normalise(line, cells, ctx) for line, cells in reader.next_rows(count)]
    good = [r for r in rows if r.ok]
    batch = Batch(len(rows), reader.bytes_done, [r for r in rows if not r.ok])
    if not prepare:
        batch.good = good
        return batch
    batch.records = _records(good)
    batch.phones = [r.phones[0] for r in good]
    batch.lines = [r.line for r in good]
    batch.cells = [r.cells for r in good]
    return batch


_WORKER: dict[str, Any] = {}
"""The reader of the import this worker serves (one worker per running import)."""


def _worker_open(path: Path, fmt: str, encoding: str, delimiter: str, ctx: Context) -> int:
    _WORKER["reader"] = Reader(path, fmt, encoding, delimiter, ctx.mapping.header)
    _WORKER["ctx"] = ctx
    return int(_WORKER["reader"].size)


def _worker_next(count: int, prepare: bool) -> Batch:
    return _read_batch(_WORKER["reader"], _WORKER["ctx"], count, prepare)


def _worker_close() -> None:
    reader = _WORKER.pop("reader", None)
    if reader is not None:
        reader.close()


class Source:
    """The file's batches, read and normalised one batch ahead of the one being stored.

    By default in a worker process of its own: parsing and phone normalisation are CPU-bound
    Python, and a thread shares the GIL with the event loop (on a busy machine the loop then
    waits milliseconds at each of its system calls: stalls of hundreds of milliseconds were
    measured). ``in_process=False`` (SQLite's single-process mode) uses a worker thread.
    """

    def __init__(
        self, path: Path, fmt: str, encoding: str, delimiter: str, ctx: Context, *, prepare: bool
    ) -> None:
        self._args = (path, fmt, encoding, delimiter, ctx)
        self._prepare = prepare
        self._pool: Executor | None = None
        self._ahead: asyncio.Future[Batch] | None = None
        self.size = 0
        self.position = 0

    async def open(self, *, in_process: bool) -> None:
        loop = asyncio.get_running_loop()
        if in_process:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            try:
                self.size = await loop.run_in_executor(self._pool, _worker_open, *self._args)
                return
            except BrokenProcessPool:  # no process could start here (e.g. ``python -`` as __main__)
                log.warning("list import: no worker process, reading in a thread instead")
                self._pool.shutdown(wait=False)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="list-import")
        self.size = await loop.run_in_executor(self._pool, _worker_open, *self._args)

    def _submit(self) -> asyncio.Future[Batch]:
        assert self._pool is not None
        return asyncio.wrap_future(self._pool.submit(_worker_next, BATCH, self._prepare))

    async def next(self) -> Batch:
        ahead = self._ahead or self._submit()
        self._ahead = None
        batch = await asyncio.shield(ahead)  # a cancelled job still waits for it before closing
        if batch.count:
            self._ahead = self._submit()
        self.position = batch.position
        return batch

    async def close(self) -> None:
        if self._pool is None:
            return
        if self._ahead is not None:
            await asyncio.wait([self._ahead])
            self._ahead = None
        pool, self._pool = self._pool, None
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(pool.submit(_worker_close))
        pool.shutdown(wait=False, cancel_futures=True)


async def preview(
    session: AsyncSession, who: Principal, import_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    """The first rows of the file as the job would import them with this mapping."""
    job, _list, campaign = await access_import(session, who, import_id)
    path = await _upload_path(session, job)
    mapping = Mapping.check(data, len(job.sniffed.get("columns", [])))
    ctx = _context(job, campaign, mapping, who.language)

    def run() -> list[Row]:
        reader = Reader(
            path,
            job.format,
            job.sniffed.get("encoding", ""),
            job.sniffed.get("delimiter", ""),
            mapping.header,
        )
        try:
            batch = _read_batch(reader, ctx, PREVIEW_ROWS)
            return sorted([*batch.refused, *(batch.good or [])], key=lambda r: r.line)
        finally:
            reader.close()

    rows = await asyncio.to_thread(run)
    return {"mapping": mapping.to_json(), "rows": [_row_dict(r) for r in rows]}


def _row_dict(row: Row) -> dict[str, Any]:
    return {
        "line": row.line,
        "cells": row.cells,
        "ok": row.ok,
        "reason": row.reason,
        "phones": row.phones,
        "name": row.name,
        "timezone": row.timezone,
        "fields": row.fields,
        "tags": row.tags,
    }


def _context(job: m.ListImport, campaign: m.Campaign, mapping: Mapping, lang: str) -> Context:
    return Context(
        mapping=mapping,
        width=max(1, len(job.sniffed.get("columns", []))),
        region=campaign.default_region or "RU",
        zone=campaign.timezone or "UTC",
        lang=lang,
    )


async def _upload_path(session: AsyncSession, job: m.ListImport) -> Path:
    stored = await session.get(m.StoredFile, job.file_id) if job.file_id else None
    if stored is None or not await anyio.Path(stored.path).is_file():
        raise Conflict("the uploaded file of import {import_id} is gone: upload it again", import_id=job.id)
    return Path(stored.path)


# --- actions -------------------------------------------------------------------------------


async def check_create_import(
    session: AsyncSession, who: Principal, campaign_id: int, stored: m.StoredFile
) -> m.ListImport:
    """Record an uploaded file as a new list of the campaign with a pending import: its format,
    its sniffed shape and a guessed mapping. A file that is not a list is refused (and deleted)."""
    campaign = await access_campaign(session, who, campaign_id)
    path = Path(stored.path)
    try:
        async with await anyio.open_file(path, "rb") as fh:
            head = await fh.read(4096)
        fmt = detect_format(head, stored.name)
        shape = await asyncio.to_thread(sniff, path, fmt, campaign.default_region or "RU")
    except BaseException:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    stored.content_type = CONTENT_TYPES[fmt]
    session.add(stored)
    call_list = m.CallList(campaign_id=campaign.id, name=stored.name, created_by=who.id)
    session.add(call_list)
    await session.flush()
    now = datetime.now(UTC)
    job = m.ListImport(
        list_id=call_list.id,
        user_id=who.id,
        file_id=stored.id,
        filename=stored.name,
        format=fmt,
        mapping=shape["mapping"],
        sniffed=shape,
        state=ImportState.PENDING,
        bytes_total=stored.size,
        bytes_done=0,
        rows_read=0,
        rows_imported=0,
        rows_invalid=0,
        rows_duplicate=0,
        rows_dnc=0,
        cancel_requested=False,
        error="",
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    audit.record(
        session,
        who,
        "campaign.list.upload",
        object_type="list_import",
        object_id=job.id,
        data={"campaign_id": campaign.id, "file": stored.name, "size": stored.size, "format": fmt},
    )
    return job


async def check_start_import(
    session: AsyncSession, who: Principal, import_id: int, data: dict[str, Any]
) -> m.ListImport:
    """Fix the mapping and mark the job running; the transport then runs ``run_import``."""
    job, call_list, _campaign = await access_import(session, who, import_id)
    if job.state != ImportState.PENDING:
        raise Conflict("import {import_id} has already started", import_id=import_id)
    await _upload_path(session, job)
    mapping = Mapping.check(data, len(job.sniffed.get("columns", [])))
    now = datetime.now(UTC)
    job.mapping = {**mapping.to_json(), "lang": who.language}
    job.state = ImportState.RUNNING
    job.updated_at = now
    audit.record(
        session,
        who,
        "campaign.list.import",
        object_type="list_import",
        object_id=job.id,
        data={"campaign_id": call_list.campaign_id, "mapping": mapping.to_json()},
    )
    return job


async def check_cancel_import(session: AsyncSession, who: Principal, import_id: int) -> m.ListImport:
    """Ask a running job to stop after its current batch (what it imported stays); a job that
    never started is cancelled at once."""
    job, call_list, _campaign = await access_import(session, who, import_id)
    await fail_stale_imports(session, datetime.now(UTC), job_id=job.id)
    if job.state not in ACTIVE:
        raise Conflict("import {import_id} is no longer running", import_id=import_id)
    if job.state == ImportState.PENDING:
        job.state = ImportState.CANCELLED
        job.finished_at = datetime.now(UTC)
    job.cancel_requested = True
    audit.record(
        session,
        who,
        "campaign.list.cancel",
        object_type="list_import",
        object_id=job.id,
        data={"campaign_id": call_list.campaign_id},
    )
    return job


async def fail_stale_imports(session: AsyncSession, now: datetime, *, job_id: int | None = None) -> int:
    """Running jobs whose node stopped touching them (restart, crash) become failed with a
    message; the rows they imported stay. Safe on any node at any time."""
    query = update(m.ListImport).where(
        m.ListImport.state == ImportState.RUNNING,
        or_(m.ListImport.updated_at.is_(None), m.ListImport.updated_at < now - STALE_AFTER),
    )
    if job_id is not None:
        query = query.where(m.ListImport.id == job_id)
    result = await session.execute(
        query.values(
            state=ImportState.FAILED,
            error=INTERRUPTED,
            finished_at=now,
        ).execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a CursorResult of UPDATE


async def access_rejects_file(session: AsyncSession, who: Principal, import_id: int) -> m.StoredFile:
    job, _list, _campaign = await access_import(session, who, import_id)
    stored = await session.get(m.StoredFile, job.invalid_file_id) if job.invalid_file_id else None
    if stored is None or not await anyio.Path(stored.path).is_file():
        raise NotFound("import {import_id} has no rejected rows", import_id=import_id)
    return stored


def import_dict(job: m.ListImport, campaign_id: int, lang: str = "en") -> dict[str, Any]:
    """A job as REST and the ``list_import`` socket message show it (``lang``: an interruption
    found by the staleness check is stored in English)."""
    return {
        "id": job.id,
        "list_id": job.list_id,
        "campaign_id": campaign_id,
        "filename": job.filename,
        "format": job.format,
        "state": job.state,
        "mapping": {k: v for k, v in (job.mapping or {}).items() if k != "lang"},
        "columns": job.sniffed.get("columns", []),
        "sample": job.sniffed.get("sample", []),
        "header": bool(job.sniffed.get("header", False)),
        "encoding": job.sniffed.get("encoding", ""),
        "delimiter": job.sniffed.get("delimiter", ""),
        "bytes_total": job.bytes_total,
        "bytes_done": job.bytes_done,
        "rows_read": job.rows_read,
        "rows_imported": job.rows_imported,
        "rows_invalid": job.rows_invalid,
        "rows_duplicate": job.rows_duplicate,
        "rows_dnc": job.rows_dnc,
        "has_rejects": job.invalid_file_id is not None,
        "cancel_requested": job.cancel_requested,
        "error": gettext(lang, job.error) if job.error else "",
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


# --- inserting a batch ---------------------------------------------------------------------

STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS import_stage (ord int, name text, phone text, phones text,"
    " tz text, region text, fields text, tags text) ON COMMIT DELETE ROWS"
)
"""PostgreSQL: a batch's rows arrive by binary ``COPY`` in this per-connection table, emptied
at each commit; one ``INSERT … SELECT`` moves them into ``campaign_targets``."""
BATCH_SETTINGS = "SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)"
"""For the batch's transaction only: the DNC look-up must probe ``ix_dnc_entries_number`` (a
list uploaded just before the import has no statistics yet, and the planner then scans all of
it once a row: 0.7 ms a row at 1,000 entries, measured), and the statement, run once a batch,
is not worth JIT-compiling (the seq-scan penalty's cost pushed it over ``jit_above_cost``:
730 ms of JIT a batch, measured)."""
_stage = table(
    "import_stage",
    column("ord", Integer),
    *(column(name, String) for name in ("name", "phone", "phones", "tz", "region", "fields", "tags")),
)


_encode = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(value, ensure_ascii=False)`` without building an encoder a call (a third of
the reader's JSON time); the text is the same."""


def _records(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """The staging table's records (built by the reader, off the event loop). ``phones`` are
    E.164 (``+`` and digits: nothing to escape); a file's rows mostly share their tags."""
    tags: dict[tuple[str, ...], str] = {}
    out: list[tuple[Any, ...]] = []
    for index, r in enumerate(rows):
        key = tuple(r.tags)
        text_tags = tags.get(key)
        if text_tags is None:
            text_tags = tags[key] = _encode(r.tags)
        phones = '["' + '", "'.join(r.phones) + '"]'
        out.append((index, r.name, r.phones[0], phones, r.timezone, r.region, _encode(r.fields), text_tags))
    return out


def _pg_statement(campaign_id: int, list_id: int, lengths: Sequence[int]) -> str:
    """The batch's one statement, from the staging table: the targets in file order (the first
    row of a number wins), each ``dnc`` or ``pending`` by ``dnc.listed`` (the DNC rule, with the
    prefix lengths the campaign's entries have), numbers the campaign already has skipped by the
    unique key; returns the phone and state of each target made. Rendered once per job with
    its values inline (integers only) and run on the session's asyncpg connection."""
    t = m.CampaignTarget
    s = _stage.c
    # OFFSET 0 keeps the subquery as it is: the DNC look-up runs once a row, not once for each
    # of the two columns it decides.
    staged = (
        select(_stage, dnc.listed(s.phone, campaign_id, lengths).label("listed"))
        .order_by(s.ord)
        .offset(0)
        .subquery("staged")
    )
    u = staged.c
    rows = select(
        literal(campaign_id),
        literal(list_id),
        u.name,
        u.phone,
        cast(u.phones, JSON),
        literal(0),
        u.tz,
        u.region,
        cast(u.fields, JSON),
        cast(u.tags, JSON),
        case((u.listed, literal(TargetState.DNC.value)), else_=literal(TargetState.PENDING.value)),
        literal(0),
        case((u.listed, null()), else_=func.now()),
        func.now(),
        func.now(),
    )
    names = [
        "campaign_id",
        "list_id",
        "name",
        "phone",
        "phones",
        "phone_index",
        "timezone",
        "region",
        "fields",
        "tags",
        "state",
        "attempts",
        "next_due_at",
        "created_at",
        "updated_at",
    ]
    statement = (
        postgresql.insert(t)
        .from_select(names, rows, include_defaults=False)
        .on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
        .returning(t.phone, t.state)
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes are untyped
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def _insert_pg(
    session: AsyncSession, statement: str, records: list[tuple[Any, ...]]
) -> list[tuple[str, str]]:
    """COPY the records into the staging table and run the job's statement; (phone, state) of
    each target made."""
    if not records:
        return []
    # Through SQLAlchemy first: it begins the session's transaction on the connection, so the
    # COPY and the INSERT below are in it (alone, each would commit — and empty the stage).
    await session.execute(text(STAGE))
    await session.execute(text(BATCH_SETTINGS))
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's Connection, inside the session's transaction
    await driver.copy_records_to_table("import_stage", records=records)
    made = await driver.fetch(statement)
    return [(str(rec[0]), str(rec[1])) for rec in made]


async def _insert_sqlite(
    session: AsyncSession, campaign_id: int, list_id: int, rows: Sequence[Row], now: datetime
) -> list[tuple[int, str]]:
    """SQLite (embedded, one process): multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING``
    in chunks (its bound-parameter limit); the (id, phone) of each target made."""
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    made: list[tuple[int, str]] = []
    t = m.CampaignTarget
    for start in range(0, len(rows), SQLITE_CHUNK):
        values = [
            {
                "campaign_id": campaign_id,
                "list_id": list_id,
                "name": r.name,
                "phone": r.phones[0],
                "phones": r.phones,
                "phone_index": 0,
                "timezone": r.timezone,
                "region": r.region,
                "fields": r.fields,
                "tags": r.tags,
                "state": TargetState.PENDING.value,
                "attempts": 0,
                "next_due_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for r in rows[start : start + SQLITE_CHUNK]
        ]
        stmt = (
            sqlite_insert(t)
            .values(values)
            .on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
            .returning(t.id, t.phone)
        )
        made.extend((int(i), str(p)) for i, p in (await session.execute(stmt)).all())
    return made


@dataclass
class Stored:
    imported: int = 0
    duplicate: int = 0
    dnc: int = 0
    rejects: list[tuple[int, list[str], str]] = field(default_factory=list)
    """(line, cells, reason) of each duplicate."""


@dataclass(frozen=True)
class Target:
    """Where a job's (or a REST batch's) targets go: the campaign, the list, and on PostgreSQL
    the statement (``_pg_statement``) with the DNC prefix lengths in it."""

    campaign_id: int
    list_id: int
    lengths: tuple[int, ...]
    statement: str = ""

    @classmethod
    async def of(cls, session: AsyncSession, is_sqlite: bool, campaign_id: int, list_id: int) -> Target:
        lengths = tuple(await dnc.prefix_lengths(session, campaign_id))
        statement = "" if is_sqlite else _pg_statement(campaign_id, list_id, lengths)
        return cls(campaign_id, list_id, lengths, statement)


async def _store(
    session: AsyncSession,
    into: Target,
    rows: Sequence[Row],
    lang: str,
    prepared: Batch | None = None,
) -> Stored:
    """Store a batch's good rows (``rows``, or the ``prepared`` records of a reader's batch) as
    targets, ``dnc`` where a DNC list has the number; the duplicates (in this list, or already in
    the campaign) come back with their reason. One transaction: a batch is stored whole or not
    at all."""
    out = Stored()
    if prepared is not None and prepared.records is not None:
        records, phones, lines, cells = prepared.records, prepared.phones, prepared.lines, prepared.cells
    else:
        records = _records(rows) if into.statement else []
        phones = [r.phones[0] for r in rows]
        lines, cells = [r.line for r in rows], [r.cells for r in rows]
    if not phones:
        return out
    if into.statement:
        made = await _insert_pg(session, into.statement, records)
        out.dnc = sum(state == TargetState.DNC.value for _phone, state in made)
        fresh = {phone for phone, _state in made}
    else:
        created = await _insert_sqlite(session, into.campaign_id, into.list_id, rows, datetime.now(UTC))
        if created:
            out.dnc = await dnc.mark_dnc_targets(
                session,
                into.campaign_id,
                list_id=into.list_id,
                since_id=min(i for i, _phone in created),
                lengths=into.lengths,
            )
        fresh = {phone for _id, phone in created}
    made_here = frozenset(fresh)
    missed = {phone for phone in phones if phone not in fresh}
    owners: dict[str, int | None] = {}
    if missed:
        t = m.CampaignTarget
        found = await session.execute(
            select(t.phone, t.list_id).where(t.campaign_id == into.campaign_id, t.phone.in_(missed))
        )
        owners = {str(p): lid for p, lid in found.all()}
    in_list = gettext(lang, DUPLICATE_IN_LIST)
    in_campaign = gettext(lang, DUPLICATE_IN_CAMPAIGN)
    for index, phone in enumerate(phones):
        if phone in fresh:
            fresh.discard(phone)  # a later row with the same number is a duplicate
            out.imported += 1
        else:
            out.duplicate += 1
            ours = phone in made_here or owners.get(phone) == into.list_id
            out.rejects.append((lines[index], cells[index], in_list if ours else in_campaign))
    return out


# --- the job -------------------------------------------------------------------------------


class Rejects:
    """The refused rows with their reason, as a CSV (UTF-8 with BOM, so Excel opens it)."""

    def __init__(self, path: Path, width: int, lang: str) -> None:
        self.path = path
        self.count = 0
        self._fh = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._fh)
        head = [gettext(lang, text) for text in REJECTS_HEAD]
        self._writer.writerow(head + [str(i + 1) for i in range(width)])

    def write(self, rows: Sequence[tuple[int, list[str], str]]) -> None:
        for line, cells, reason in rows:
            self._writer.writerow([line, reason, *cells])
        self.count += len(rows)

    def close(self) -> None:
        self._fh.close()


async def _progress(
    db: Database, job_id: int, notify: Notify | None, **values: Any
) -> tuple[bool, dict[str, Any]]:
    """Store counts and the heartbeat; the cancel flag as it stands now, and the job's dict."""
    async with db.transaction() as session:
        job = await session.get(m.ListImport, job_id)
        if job is None:
            return True, {}
        for name, value in values.items():
            setattr(job, name, value)
        job.updated_at = datetime.now(UTC)
        call_list = await session.get_one(m.CallList, job.list_id)
        data = import_dict(job, call_list.campaign_id)
        user_id, cancel = job.user_id, job.cancel_requested
    if notify is not None and user_id is not None:
        try:
            await notify(user_id, data)
        except Exception:  # a socket problem must not fail the import: GET still shows it
            log.exception("list import %s: progress push failed", job_id)
    return cancel, data


async def run_import(db: Database, import_id: int, data_dir: Path, notify: Notify | None) -> None:
    """Run a started job to its end: done, cancelled (rows so far stay) or failed (error kept)."""
    async with db.transaction() as session:
        job = await session.get(m.ListImport, import_id)
        if job is None or job.state != ImportState.RUNNING:
            return
        call_list = await session.get_one(m.CallList, job.list_id)
        campaign = await session.get_one(m.Campaign, call_list.campaign_id)
        lang = str(job.mapping.get("lang") or "en")
        try:
            path = await _upload_path(session, job)
            mapping = Mapping.check(job.mapping, len(job.sniffed.get("columns", [])))
        except DomainError as exc:  # the file went away between start and run: say so, now
            job.state, job.error, job.finished_at = ImportState.FAILED, localize(exc, lang), datetime.now(UTC)
            data, user_id = import_dict(job, call_list.campaign_id, lang), job.user_id
        else:
            data, user_id = {}, None
    if data:
        if notify is not None and user_id is not None:
            with contextlib.suppress(Exception):
                await notify(user_id, data)
        return
    async with db.transaction() as session:
        job = await session.get_one(m.ListImport, import_id)
        call_list = await session.get_one(m.CallList, job.list_id)
        campaign = await session.get_one(m.Campaign, call_list.campaign_id)
        ctx = _context(job, campaign, mapping, lang)
        into = await Target.of(session, db.is_sqlite, campaign.id, call_list.id)
        owner = f"user:{job.user_id}"
        fmt, encoding, delimiter = (
            job.format,
            job.sniffed.get("encoding", ""),
            job.sniffed.get("delimiter", ""),
        )
    counts = {"rows_read": 0, "rows_imported": 0, "rows_invalid": 0, "rows_duplicate": 0, "rows_dnc": 0}
    folder = data_dir / "uploads"
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    rejects_path = folder / secrets.token_urlsafe(18)
    rejects: Rejects | None = None
    state, error = ImportState.DONE, ""
    source = Source(path, fmt, encoding, delimiter, ctx, prepare=not db.is_sqlite)
    try:
        await source.open(in_process=WORKER_PROCESS and not db.is_sqlite)
        rejects = await asyncio.to_thread(Rejects, rejects_path, ctx.width, lang)
        while True:
            batch = await source.next()  # the next one is read while this one is stored
            if not batch.count:
                break
            bad = [(r.line, r.cells, r.reason) for r in batch.refused]
            async with db.transaction() as session:
                stored = await _store(session, into, batch.good or [], lang, batch)
            bad.extend(stored.rejects)
            bad.sort(key=lambda entry: entry[0])
            await asyncio.to_thread(rejects.write, bad)
            counts["rows_read"] += batch.count
            counts["rows_imported"] += stored.imported
            counts["rows_duplicate"] += stored.duplicate
            counts["rows_invalid"] += len(batch.refused)
            counts["rows_dnc"] += stored.dnc
            cancel, _data = await _progress(db, import_id, notify, bytes_done=batch.position, **counts)
            if cancel:
                state = ImportState.CANCELLED
                break
    except BaseException as exc:
        cancelled = isinstance(exc, asyncio.CancelledError)
        if isinstance(exc, DomainError):
            error = localize(exc, lang)
        elif cancelled:
            error = gettext(lang, INTERRUPTED)
        else:
            log.exception("list import %s failed", import_id)
            error = gettext(lang, FAILED, kind=type(exc).__name__)
        state = ImportState.FAILED
        if not isinstance(exc, Exception):
            with contextlib.suppress(BaseException):
                await asyncio.shield(
                    _finish(db, import_id, notify, state, error, counts, source, rejects, owner)
                )
            raise
    await _finish(db, import_id, notify, state, error, counts, source, rejects, owner)


async def _finish(
    db: Database,
    import_id: int,
    notify: Notify | None,
    state: ImportState,
    error: str,
    counts: dict[str, int],
    source: Source,
    rejects: Rejects | None,
    owner: str,
) -> None:
    await source.close()
    done = source.size if state == ImportState.DONE else source.position
    values: dict[str, Any] = {
        "state": state.value,
        "error": error,
        "finished_at": datetime.now(UTC),
        "bytes_done": done,
        **counts,
    }
    if rejects is not None:
        await asyncio.to_thread(rejects.close)
        if rejects.count:
            stored = m.StoredFile(
                id=rejects.path.name,
                inbox_id=None,
                owner=owner,
                name=f"rejected-{import_id}.csv",
                content_type="text/csv",
                size=(await anyio.Path(rejects.path).stat()).st_size,
                path=str(rejects.path),
            )
            async with db.transaction() as session:
                session.add(stored)
            values["invalid_file_id"] = stored.id
        else:
            await anyio.Path(rejects.path).unlink(missing_ok=True)
    source_path: str | None = None
    async with db.transaction() as session:
        job = await session.get(m.ListImport, import_id)
        if job is not None:
            # The uploaded file has done its work: its contacts are targets now and the refused
            # rows have their own file; customer data is not kept twice.
            uploaded = await session.get(m.StoredFile, job.file_id) if job.file_id else None
            if uploaded is not None:
                source_path = uploaded.path
                job.file_id = None
                await session.delete(uploaded)
            audit.record(
                session,
                None,
                f"campaign.list.import.{state.value}",
                object_type="list_import",
                object_id=import_id,
                data={**counts, "error": error} if error else dict(counts),
                result="ok" if state == ImportState.DONE else state.value,  # a short code
            )
    if source_path:
        await anyio.Path(source_path).unlink(missing_ok=True)
    await _progress(db, import_id, notify, **values)


class ImportRunner:
    """The in-process import tasks of this node (held so they aren't garbage-collected)."""

    def __init__(self, db: Database, data_dir: Path, notify: Notify | None = None) -> None:
        self.db = db
        self.data_dir = data_dir
        self.notify = notify
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, import_id: int) -> None:
        task = asyncio.create_task(self._run(import_id), name=f"list-import-{import_id}")
        self._tasks[import_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(import_id, None))

    async def _run(self, import_id: int) -> None:
        with contextlib.suppress(Exception):  # logged and stored as failed by run_import
            await run_import(self.db, import_id, self.data_dir, self.notify)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


# --- targets over REST ---------------------------------------------------------------------


@dataclass(frozen=True)
class TargetIn:
    phones: list[str]
    name: str = ""
    timezone: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


async def check_add_targets(
    session: AsyncSession,
    is_sqlite: bool,
    who: Principal,
    campaign_id: int,
    targets: Sequence[TargetIn],
    list_name: str = "",
) -> dict[str, Any]:
    """Add targets given as JSON to a new list of the campaign: the import's normalisation,
    de-duplication and DNC marking; refused items come back with their index and reason."""
    campaign = await access_campaign(session, who, campaign_id)
    if not targets:
        raise InvalidInput("no targets given", field="targets")
    if len(targets) > MAX_API_TARGETS:
        raise InvalidInput(
            "at most {max_targets} targets per request", max_targets=MAX_API_TARGETS, field="targets"
        )
    call_list = m.CallList(
        campaign_id=campaign.id, name=(list_name.strip() or "API")[:256], created_by=who.id
    )
    session.add(call_list)
    await session.flush()
    fields = sorted({k for t in targets for k in t.fields})
    if len(fields) > MAX_FIELDS:
        raise InvalidInput("at most {max_fields} card fields", max_fields=MAX_FIELDS, field="fields")
    # Each item becomes a row of a virtual file: phones, name, zone, tags, then the fields.
    width = max(len(t.phones) for t in targets)
    mapping = Mapping(
        phones=tuple(range(width)),
        name=width,
        timezone=width + 1,
        tags=width + 2,
        fields={k: width + 3 + i for i, k in enumerate(fields)},
    )
    ctx = Context(
        mapping,
        width + 3 + len(fields),
        campaign.default_region or "RU",
        campaign.timezone or "UTC",
        who.language,
    )
    good: list[Row] = []
    refused: list[dict[str, Any]] = []
    for index, item in enumerate(targets):
        cells = [
            *item.phones,
            *([""] * (width - len(item.phones))),
            item.name,
            item.timezone,
            ",".join(item.tags),
        ]
        cells += [str(item.fields.get(k, "")) for k in fields]
        row = normalise(index, cells, ctx)
        if row.ok:
            good.append(row)
        else:
            refused.append({"index": index, "reason": row.reason})
    into = await Target.of(session, is_sqlite, campaign.id, call_list.id)
    stored = await _store(session, into, good, who.language)
    refused += [{"index": line, "reason": reason} for line, _cells, reason in stored.rejects]
    refused.sort(key=lambda r: int(r["index"]))
    audit.record(
        session,
        who,
        "campaign.targets.add",
        object_type="call_list",
        object_id=call_list.id,
        data={"campaign_id": campaign.id, "imported": stored.imported, "refused": len(refused)},
    )
    return {
        "list_id": call_list.id,
        "imported": stored.imported,
        "duplicate": stored.duplicate,
        "invalid": len(targets) - len(good),
        "dnc": stored.dnc,
        "refused": refused,
    }


# --- reading lists and targets -------------------------------------------------------------


async def campaign_lists(
    session: AsyncSession, who: Principal, campaign_id: int, lang: str = "en"
) -> list[dict[str, Any]]:
    """The campaign's lists, newest first, with their targets by state and their last import."""
    campaign = await access_campaign(session, who, campaign_id)
    await fail_stale_imports(session, datetime.now(UTC))
    lists = (
        await session.scalars(
            select(m.CallList).where(m.CallList.campaign_id == campaign.id).order_by(m.CallList.id.desc())
        )
    ).all()
    t = m.CampaignTarget
    counts: dict[int, dict[str, int]] = {}
    for list_id, state, count in (
        await session.execute(
            select(t.list_id, t.state, func.count())
            .where(t.campaign_id == campaign.id)
            .group_by(t.list_id, t.state)
        )
    ).all():
        if list_id is not None:
            counts.setdefault(int(list_id), {})[str(state)] = int(count)
    jobs: dict[int, m.ListImport] = {}
    if lists:
        for job in await session.scalars(
            select(m.ListImport)
            .where(m.ListImport.list_id.in_([c.id for c in lists]))
            .order_by(m.ListImport.id)
        ):
            jobs[job.list_id] = job
    return [
        {
            "id": c.id,
            "campaign_id": c.campaign_id,
            "name": c.name,
            "created_at": c.created_at.isoformat(),
            "targets": sum(counts.get(c.id, {}).values()),
            "by_state": counts.get(c.id, {}),
            "last_import": import_dict(jobs[c.id], campaign.id, lang) if c.id in jobs else None,
        }
        for c in lists
    ]


def target_dict(t: m.CampaignTarget) -> dict[str, Any]:
    return {
        "id": t.id,
        "campaign_id": t.campaign_id,
        "list_id": t.list_id,
        "name": t.name,
        "phone": t.phone,
        "phones": list(t.phones or []),
        "phone_index": t.phone_index,
        "timezone": t.timezone,
        "region": t.region,
        "fields": dict(t.fields or {}),
        "tags": list(t.tags or []),
        "state": t.state,
        "attempts": t.attempts,
        "next_due_at": t.next_due_at.isoformat() if t.next_due_at else None,
        "last_outcome": t.last_outcome,
        "created_at": t.created_at.isoformat(),
    }


async def campaign_targets(
    session: AsyncSession,
    who: Principal,
    campaign_id: int,
    *,
    state: str | None = None,
    list_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[dict[str, Any]]]:
    """A page of the campaign's targets (by id), optionally of one state and one list; the total."""
    campaign = await access_campaign(session, who, campaign_id)
    t = m.CampaignTarget
    where = [t.campaign_id == campaign.id]
    if state is not None:
        where.append(t.state == state)
    if list_id is not None:
        where.append(t.list_id == list_id)
    total = int(await session.scalar(select(func.count()).select_from(t).where(*where)) or 0)
    rows = await session.scalars(select(t).where(*where).order_by(t.id).offset(offset).limit(limit))
    return total, [target_dict(r) for r in rows]
