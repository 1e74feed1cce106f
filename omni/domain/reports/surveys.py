"""Surveys, CSAT and NPS (issue 12, report 9): survey answers read back.

* **Per question** (``surveys``): each survey node of each revision, its answers per option
  (a multiple-choice answer counts once per option picked), as counts and % of the respondents.
* **NPS** (``nps``): questions answered on 0..10 — a survey node whose variable name holds
  "nps", or a free-answer survey node whose answers are all whole numbers 0..10. NPS = % of
  promoters (9–10) − % of detractors (0–6).
* **CSAT** (``csat_by_operator``, ``csat_by_queue``): the conversation's ``variables["csat"]``
  (1..5: the widget/Telegram rating buttons, or a survey node writing the variable ``csat``),
  counted in the contact's interval. CSAT % = ratings of 4–5 / all ratings; also the mean.
* **Raw answers** (``survey_answers_raw``): every answer with its conversation, contact, channel,
  queue and operator, one page at a time (``Scope.extra["offset"]`` / ``["limit"]``), for export.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.reports import registry, rollups
from omni.domain.reports.filters import Scope
from omni.domain.reports.period import floor_interval
from omni.domain.reports.rollups import Changes
from omni.domain.reports.scoped import chunks, conditions, queue_names, user_names
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable, mean, pct

VALUE_LENGTH = 128
PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
STREAM_PAGE = 1000


def answer_text(value: Any) -> str:
    """How an answer is stored in the rollup key: option ids joined by "," for a multiple choice."""
    if isinstance(value, list):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text[:VALUE_LENGTH]


def score_0_10(value: str) -> int | None:
    try:
        n = int(value.strip())
    except ValueError:
        return None
    return n if 0 <= n <= 10 else None


class SurveyRollup:
    """``report_survey_intervals``: answers per question, value, queue, channel and operator."""

    name = "surveys"

    async def touched(self, session: AsyncSession, changes: Changes) -> set[datetime]:
        found: set[datetime] = set()
        a = m.SurveyAnswer
        for ids in chunks(changes.conversation_ids):
            found |= {
                floor_interval(at)
                for at in await session.scalars(select(a.created_at).where(a.conversation_id.in_(ids)))
            }
        return found

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database`` is ignored: these rows are few and built one way on every database."""
        t, a, c = m.ReportSurveyInterval, m.SurveyAnswer, m.Conversation
        await session.execute(delete(t).where(t.bucket >= start, t.bucket < end))
        rows = await session.execute(
            select(a.created_at, a.revision_id, a.node, a.variable, a.value, c.channel, c.queue_id,
                   c.inbox_id, c.assigned_user_id)
            .join(c, c.id == a.conversation_id)
            .where(a.created_at >= start, a.created_at < end)
        )  # fmt: skip
        counts: dict[tuple[Any, ...], int] = defaultdict(int)
        for at, rev, node, variable, value, channel, queue_id, inbox_id, user_id in rows.all():
            key = (floor_interval(at), rev, node, variable, answer_text(value), channel, queue_id or 0,
                   inbox_id or 0, user_id or 0)  # fmt: skip
            counts[key] += 1
        names = (
            "bucket",
            "revision_id",
            "node",
            "variable",
            "value",
            "channel",
            "queue_id",
            "inbox_id",
            "user_id",
        )
        if counts:
            await session.execute(
                insert(t), [dict(zip(names, k, strict=True)) | {"answers": n} for k, n in counts.items()]
            )


rollups.register(SurveyRollup())


# --- questions as the revision documents put them ---------------------------------------------


def _survey_nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(n.get("id")): n
        for n in document.get("nodes") or []
        if isinstance(n, dict) and n.get("type") == "survey"
    }


def _text(content: Any, lang: str) -> str:
    if not isinstance(content, dict):
        return ""
    if lang == "ru" and content.get("text_ru"):
        return str(content["text_ru"])
    return str(content.get("text") or "")


def _option_label(node: dict[str, Any], option: str, lang: str) -> str:
    for o in node.get("options") or []:
        if isinstance(o, dict) and str(o.get("id")) == option:
            return str((lang == "ru" and o.get("label_ru")) or o.get("label") or option)
    return option


async def _documents(session: AsyncSession, ids: set[int]) -> dict[int, tuple[str, int, dict[str, Any]]]:
    if not ids:
        return {}
    r, sc = m.ScenarioRevision, m.Scenario
    rows = await session.execute(
        select(r.id, sc.name, r.number, r.document).join(sc, sc.id == r.scenario_id).where(r.id.in_(ids))
    )
    return {rid: (name, number, doc or {}) for rid, name, number, doc in rows.all()}


async def _answers(session: AsyncSession, scope: Scope) -> dict[tuple[int, str, str], dict[str, int]]:
    """Answers in the scope per question ``(revision, node, variable)`` → stored value → count."""
    t = m.ReportSurveyInterval
    stmt = (
        select(t.revision_id, t.node, t.variable, t.value, func.sum(t.answers))
        .where(*conditions(t, scope, user=True))
        .group_by(t.revision_id, t.node, t.variable, t.value)
    )
    out: dict[tuple[int, str, str], dict[str, int]] = defaultdict(dict)
    for rev, node, variable, value, n in (await session.execute(stmt)).all():
        out[(rev, node, variable)][value] = int(n or 0)
    return out


def is_nps(node: dict[str, Any] | None, variable: str, values: dict[str, int]) -> bool:
    if "nps" in variable.lower():
        return all(score_0_10(v) is not None for v in values)
    kind = (node or {}).get("kind", "single")
    return kind == "text" and bool(values) and all(score_0_10(v) is not None for v in values)


QUESTION_COLUMNS = (
    Column("scenario", Kind.LABEL, "Scenario"),
    Column("revision", Kind.COUNT, "Revision"),
    Column("question", Kind.LABEL, "Question"),
    Column("answer", Kind.LABEL, "Answer"),
    Column("answers", Kind.COUNT, "Answers"),
    Column("answers_pct", Kind.PERCENT, "Answers, %"),
)


async def survey_results(session: AsyncSession, scope: Scope) -> ReportTable:
    """Per question and option: how many answered it, and % of that question's respondents."""
    table = ReportTable(key="surveys", columns=QUESTION_COLUMNS, chart=Chart("bar", "answer", ("answers",)))
    if scope.empty:
        return table
    lang = scope.who.language
    answers = await _answers(session, scope)
    docs = await _documents(session, {rev for rev, _, _ in answers})
    for (rev, node_id, variable), values in sorted(
        answers.items(), key=lambda kv: (docs.get(kv[0][0], ("", 0, {}))[:2], kv[0][1])
    ):
        name, number, doc = docs.get(rev, (str(rev), 0, {}))
        node = _survey_nodes(doc).get(node_id)
        question = _text((node or {}).get("question"), lang) or variable
        respondents = sum(values.values())
        per_option: dict[str, int] = defaultdict(int)
        multiple = (node or {}).get("kind") == "multiple"
        for value, n in values.items():
            for option in value.split(",") if multiple else [value]:
                per_option[option] += n
        order = [str(o.get("id")) for o in (node or {}).get("options") or [] if isinstance(o, dict)]
        if is_nps(node, variable, values):
            keys = sorted(per_option, key=lambda v: score_0_10(v) or 0)
        else:
            keys = [o for o in order if o in per_option] + sorted(set(per_option) - set(order))
        for option in keys:
            label = _option_label(node or {}, option, lang)
            table.rows.append(
                [name, number, question, label, per_option[option], pct(per_option[option], respondents)]
            )
    return table


NPS_COLUMNS = (
    Column("scenario", Kind.LABEL, "Scenario"),
    Column("revision", Kind.COUNT, "Revision"),
    Column("question", Kind.LABEL, "Question"),
    Column("respondents", Kind.COUNT, "Respondents"),
    Column("promoters", Kind.COUNT, "Promoters (9–10)"),
    Column("passives", Kind.COUNT, "Passives (7–8)"),
    Column("detractors", Kind.COUNT, "Detractors (0–6)"),
    Column("nps", Kind.NUMBER, "NPS"),
)


def nps_score(promoters: int, detractors: int, respondents: int) -> float | None:
    if not respondents:
        return None
    return round(100.0 * (promoters - detractors) / respondents, 1)


async def nps(session: AsyncSession, scope: Scope) -> ReportTable:
    """Per 0..10 question: promoters, passives, detractors and the NPS."""
    table = ReportTable(
        key="nps", columns=NPS_COLUMNS, chart=Chart("bar", "question", ("nps",)), notes=["rpt.note.nps"]
    )
    if scope.empty:
        return table
    lang = scope.who.language
    answers = await _answers(session, scope)
    docs = await _documents(session, {rev for rev, _, _ in answers})
    for (rev, node_id, variable), values in sorted(answers.items()):
        name, number, doc = docs.get(rev, (str(rev), 0, {}))
        node = _survey_nodes(doc).get(node_id)
        if not is_nps(node, variable, values):
            continue
        question = _text((node or {}).get("question"), lang) or variable
        tally = {"promoters": 0, "passives": 0, "detractors": 0}
        for value, n in values.items():
            score = score_0_10(value) or 0
            tally["promoters" if score >= 9 else "passives" if score >= 7 else "detractors"] += n
        total = sum(tally.values())
        table.rows.append(
            [name, number, question, total, tally["promoters"], tally["passives"], tally["detractors"],
             nps_score(tally["promoters"], tally["detractors"], total)]
        )  # fmt: skip
    return table


CSAT_COLUMNS = (
    Column("name", Kind.LABEL, "Name"),
    Column("ratings", Kind.COUNT, "Ratings"),
    Column("satisfied", Kind.COUNT, "Satisfied (4–5)"),
    Column("csat", Kind.PERCENT, "CSAT"),
    Column("csat_mean", Kind.NUMBER, "Mean rating"),
)


async def _csat(session: AsyncSession, scope: Scope, key: str, by_user: bool) -> ReportTable:
    table = ReportTable(
        key=key, columns=CSAT_COLUMNS, chart=Chart("bar", "name", ("csat",)), notes=["rpt.note.csat"]
    )
    if scope.empty:
        return table
    t = m.ReportChatInterval
    dim = t.user_id if by_user else t.queue_id
    stmt = (
        select(dim, func.sum(t.csat_count), func.sum(t.csat_good), func.sum(t.csat_sum))
        .where(*conditions(t, scope, user=True), t.csat_count > 0)
        .group_by(dim)
    )
    rows = [
        (i, int(n or 0), int(g or 0), float(s or 0)) for i, n, g, s in (await session.execute(stmt)).all()
    ]
    ids = {r[0] for r in rows}
    names = await (user_names(session, ids) if by_user else queue_names(session, ids))
    total = [0, 0, 0.0]
    for i, n, good, s in sorted(rows, key=lambda r: (names.get(r[0], "~"), r[0])):
        table.rows.append([names.get(i, "—" if not i else str(i)), n, good, pct(good, n), mean(s, n)])
        total = [total[0] + n, total[1] + good, total[2] + s]
    n_all, good_all = int(total[0]), int(total[1])
    table.totals = [None, n_all, good_all, pct(good_all, n_all), mean(total[2], n_all)]
    return table


async def csat_by_operator(session: AsyncSession, scope: Scope) -> ReportTable:
    """CSAT per operator (the conversation's last assignee)."""
    return await _csat(session, scope, "csat_by_operator", by_user=True)


async def csat_by_queue(session: AsyncSession, scope: Scope) -> ReportTable:
    return await _csat(session, scope, "csat_by_queue", by_user=False)


RAW_COLUMNS = (
    Column("answered_at", Kind.DATETIME, "Date"),
    Column("conversation", Kind.COUNT, "Conversation"),
    Column("contact", Kind.TEXT, "Contact"),
    Column("channel", Kind.TEXT, "Channel", labels="enum.channel"),
    Column("queue", Kind.TEXT, "Queue"),
    Column("operator", Kind.TEXT, "Operator"),
    Column("question", Kind.TEXT, "Question"),
    Column("answer", Kind.TEXT, "Answer"),
)


def _page(scope: Scope) -> tuple[int, int]:
    """The page asked for: ``Scope.extra`` (``offset``/``limit``) when given, else the filter's
    ``offset``/``limit`` where the filter carries a page; ``limit`` 0 = only ``total_rows``."""

    def number(raw: object, default: int) -> int:
        return int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else default

    source: Any = scope.filter
    if "offset" in scope.extra or "limit" in scope.extra:
        offset, limit = scope.extra.get("offset", 0), scope.extra.get("limit", PAGE_SIZE)
    else:
        offset, limit = getattr(source, "offset", 0), getattr(source, "limit", PAGE_SIZE)
    return number(offset, 0), min(max(number(limit, PAGE_SIZE), 0), MAX_PAGE_SIZE)


def _raw_where(scope: Scope) -> list[ColumnElement[bool]]:
    a, c = m.SurveyAnswer, m.Conversation
    f = scope.filter
    where: list[ColumnElement[bool]] = [a.created_at >= scope.period.start, a.created_at < scope.period.end]
    if scope.queue_ids is not None:
        where.append(c.queue_id.in_(scope.queue_ids) if scope.queue_ids else false())
    if (f.user_ids or f.group_ids) and scope.user_ids is not None:
        where.append(c.assigned_user_id.in_(scope.user_ids) if scope.user_ids else false())
    if f.channels:
        where.append(c.channel.in_(f.channels))
    if f.inbox_ids:
        where.append(c.inbox_id.in_(f.inbox_ids))
    return where


async def _raw_rows(session: AsyncSession, scope: Scope, offset: int, limit: int) -> list[list[Cell]]:
    a, c = m.SurveyAnswer, m.Conversation
    stmt = (
        select(a, c.channel, c.queue_id, c.assigned_user_id, m.Contact.name)
        .join(c, c.id == a.conversation_id)
        .join(m.Contact, m.Contact.id == c.contact_id)
        .where(*_raw_where(scope))
        .order_by(a.created_at.desc(), a.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    docs = await _documents(session, {r[0].revision_id for r in rows})
    queues = await queue_names(session, {r[2] or 0 for r in rows})
    users = await user_names(session, {r[3] or 0 for r in rows})
    lang = scope.who.language
    tz = scope.period.tz
    out: list[list[Cell]] = []
    for answer, channel, queue_id, user_id, contact in rows:
        node = _survey_nodes(docs.get(answer.revision_id, ("", 0, {}))[2]).get(answer.node) or {}
        value = answer.value
        if isinstance(value, list):
            shown = ", ".join(_option_label(node, str(v), lang) for v in value)
        else:
            shown = _option_label(node, answer_text(value), lang)
        out.append(
            [answer.created_at.astimezone(tz), answer.conversation_id, contact, channel,
             queues.get(queue_id or 0, ""), users.get(user_id or 0, ""),
             _text(node.get("question"), lang) or answer.variable, shown]
        )  # fmt: skip
    return out


async def survey_answers_raw(session: AsyncSession, scope: Scope) -> ReportTable:
    """Every answer of the period in the scope, newest first, one page (``total_rows`` = all)."""
    table = ReportTable(key="survey_answers_raw", columns=RAW_COLUMNS, total_rows=0)
    if scope.empty:
        return table
    a, c = m.SurveyAnswer, m.Conversation
    counted = select(func.count()).select_from(a).join(c, c.id == a.conversation_id).where(*_raw_where(scope))
    table.total_rows = int(await session.scalar(counted) or 0)
    offset, limit = _page(scope)
    if limit:
        table.rows = await _raw_rows(session, scope, offset, limit)
    return table


async def stream_survey_answers_raw(session: AsyncSession, scope: Scope) -> AsyncIterator[list[Cell]]:
    """Every row of ``survey_answers_raw`` page after page: the export writes them as they come,
    so its memory doesn't grow with the answers."""
    if scope.empty:
        return
    offset = 0
    while True:
        rows = await _raw_rows(session, scope, offset, STREAM_PAGE)
        for row in rows:
            yield row
        if len(rows) < STREAM_PAGE:
            return
        offset += STREAM_PAGE


_FILTERS = ("period", "queue", "group", "operator", "channel", "inbox")
registry.register(registry.ReportSpec("surveys", survey_results, filters=_FILTERS, order=90))
registry.register(registry.ReportSpec("nps", nps, filters=_FILTERS, order=91))
registry.register(registry.ReportSpec("csat_by_operator", csat_by_operator, filters=_FILTERS, order=92))
registry.register(registry.ReportSpec("csat_by_queue", csat_by_queue, filters=_FILTERS, order=93))
# The export streams paginated reports through ``ReportSpec.stream`` where the frame has it.
_stream: dict[str, Any] = (
    {"stream": stream_survey_answers_raw} if "stream" in registry.ReportSpec.__dataclass_fields__ else {}
)
registry.register(
    registry.ReportSpec(
        "survey_answers_raw", survey_answers_raw, filters=_FILTERS, paginated=True, order=94, **_stream
    )
)

__all__ = [
    "SurveyRollup",
    "csat_by_operator",
    "csat_by_queue",
    "is_nps",
    "nps",
    "nps_score",
    "stream_survey_answers_raw",
    "survey_answers_raw",
    "survey_results",
]
