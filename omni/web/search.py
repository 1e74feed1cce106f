"""The search page (``/search``) for operators, supervisors and admins, and the read-only
conversation it opens at the hit (``/search/conversations/{id}?hit=<message>#m-<message>``).

Server-rendered on purpose: a search is a GET with its filters in the address (bookmarkable,
back-button friendly), and the hit's transcript needs no live socket. What is found and shown
is ``omni.domain.search``'s answer (scope, masking); a bad filter is shown next to its field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import grants, search
from omni.domain.auth import access_conversation, visible_queue_ids
from omni.domain.errors import DomainError, InvalidInput
from omni.domain.labels import list_labels
from omni.domain.masking import masker_for
from omni.i18n import enum_label
from omni.web.pages import field_errors, page_context

PAGE_SIZE = 20
TRANSCRIPT_LIMIT = 2000
ROLES = (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)
CHANNELS = ("widget", "telegram", "voice", "api")
STATUSES = tuple(s.value for s in m.ConversationStatus)


def _int(value: str, name: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise InvalidInput("choose a value from the list", field=name)
    return int(text)


def _day(value: str, name: str) -> date | None:
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("a date looks like 2026-11-30", field=name) from None


def _query(params: dict[str, str], page: int) -> search.SearchQuery:
    since, until = _day(params["since"], "since"), _day(params["until"], "until")
    kind = params["kind"]
    if kind and kind not in search.KINDS:
        raise InvalidInput("choose a value from the list", field="kind")
    return search.SearchQuery(
        text=params["q"],
        kinds=(kind,) if kind else search.KINDS,
        channel=params["channel"] or None,
        queue_id=_int(params["queue_id"], "queue_id"),
        status=params["status"] or None,
        extra={"label": params["label"]} if params["label"] else {},
        date_from=datetime.combine(since, time(), UTC) if since else None,
        date_to=datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None,
        sort=params["sort"] or "relevance",
        offset=page * PAGE_SIZE,
        limit=PAGE_SIZE,
    )


class SearchPage(Controller):
    path = "/search"

    @get("/", include_in_schema=False)
    async def page(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*ROLES)
        keys = ("q", "kind", "channel", "queue_id", "status", "label", "since", "until", "sort")
        params = {k: str(request.query_params.get(k, "") or "")[:200] for k in keys}
        raw_page = str(request.query_params.get("page", "0"))
        page = int(raw_page) if raw_page.isdigit() and int(raw_page) < 500 else 0
        errors: dict[str, str] = {}
        result: search.SearchPage | None = None
        services = services_of(request)
        async with services.db.transaction() as session:
            visible = await visible_queue_ids(session, ctx.who)
            stmt = select(m.Queue.id, m.Queue.name).order_by(m.Queue.name)
            if visible is not None:
                stmt = stmt.where(m.Queue.id.in_(visible))
            queues = [(str(i), n) for i, n in (await session.execute(stmt)).all()]
            labels = [(str(x.id), x.name) for x in await list_labels(session, ctx.who)]
            if any(params.values()):
                try:
                    result = await search.search(session, ctx.who, _query(params, page))
                except DomainError as exc:
                    errors = field_errors(exc, ctx.lang)
        status_code = 422 if errors else 200
        base = {k: v for k, v in params.items() if v}
        return ctx.template(
            "search.html",
            status_code=status_code,
            params=params,
            errors=errors,
            result=result,
            queues=queues,
            labels=labels,
            channels=[(c, enum_label(ctx.lang, "channel", c)) for c in CHANNELS],
            statuses=[(s, ctx.t(f"op.st.{s}")) for s in STATUSES],
            kinds=search.KINDS,
            page=page,
            prev_link="/search?" + urlencode({**base, "page": page - 1}) if page > 0 else "",
            next_link="/search?" + urlencode({**base, "page": page + 1})
            if result and result.has_more
            else "",
            channel_label=lambda c: enum_label(ctx.lang, "channel", c),
        )

    @get("/conversations/{conversation_id:int}", include_in_schema=False)
    async def conversation(self, request: Request[Any, Any, Any], conversation_id: int) -> Template:
        """The transcript, read-only, with the hit message marked (``?hit=``) and scrolled to
        (the ``#m-<id>`` anchor). Out of scope reads as not found, as everywhere."""
        ctx = await page_context(request)
        ctx.require(*ROLES)
        raw_hit = str(request.query_params.get("hit", ""))
        hit = int(raw_hit) if raw_hit.isdigit() and len(raw_hit) < 19 else None
        services = services_of(request)
        async with services.db.transaction() as session:
            conv = await access_conversation(session, ctx.who, conversation_id)
            contact = await session.get_one(m.Contact, conv.contact_id)
            masker = await masker_for(session, ctx.who)
            messages = list(
                await session.scalars(
                    select(m.Message)
                    .where(m.Message.conversation_id == conv.id)
                    .order_by(m.Message.id)
                    .limit(TRANSCRIPT_LIMIT)
                )
            )
            queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
            can_grade = ctx.who.role in (m.Role.SUPERVISOR, m.Role.ADMIN) and await grants.allowed(
                session, ctx.who, grants.QA_GRADE
            )
        return ctx.template(
            "search_conversation.html",
            conv=conv,
            contact_name=contact.name,
            contact_phone=masker.phone(contact.phone) or "",
            queue_name=queue.name if queue else "",
            channel=enum_label(ctx.lang, "channel", conv.channel),
            status=ctx.t(f"op.st.{conv.status}"),
            messages=messages,
            bodies={msg.id: masker.body(msg) for msg in messages},
            hit=hit,
            can_grade=can_grade,
            back=request.headers.get("referer", "")
            if "/search" in request.headers.get("referer", "")
            else "/search",
        )
