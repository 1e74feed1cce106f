"""Quality assessment pages (issue 18; rules in ``omni.domain.qa``), server-rendered forms:

* ``/qa/scorecards`` — the scorecard builder (``qa.scorecards``): the list, a form for a new
  one and ``/qa/scorecards/{id}`` to change one (a used one becomes a new version).
* ``/qa/grade/{conversation_id}`` — the grading panel (``qa.grade``): the transcript, and for
  a call its recording player, beside the scorecard's form. Opened from a conversation of the
  contact history (the reports page) or of the search; ``?mode=live`` while it runs.
* ``/qa/evaluations`` — the evaluations the caller may read (an operator: "My evaluations"),
  and ``/qa/evaluations/{id}``, where the graded operator comments.

A refusal comes back next to its field with what was typed kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.domain import grants, qa
from omni.domain.auth import access_conversation
from omni.domain.errors import DomainError
from omni.domain.masking import masker_for
from omni.domain.reports.scoped import queue_names, user_names
from omni.i18n import enum_label
from omni.web.pages import PageContext, field_errors, page_context, read_form, require_grant

ROLES = (m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)
BLANK_ROWS = 3
"""Empty question rows under a scorecard's own (fill one to add a question)."""
TRANSCRIPT_LIMIT = 2000


def _one(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return str(value[-1] if isinstance(value, list) else value).strip()


def items_from_form(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The question rows of the builder form (``text_<n>``, ``kind_<n>``…); a row without text
    is left out, a weight that is not a number goes to the domain as text (it names the row)."""
    items: list[dict[str, Any]] = []
    n = 0
    while f"text_{n}" in form:
        text = _one(form, f"text_{n}")
        if text:
            weight: Any = _one(form, f"weight_{n}") or "1"
            scale: Any = _one(form, f"scale_{n}") or "5"
            item: dict[str, Any] = {
                "text": text,
                "kind": _one(form, f"kind_{n}") or "yesno",
                "weight": int(weight) if weight.lstrip("-").isdigit() else weight,
                "critical": bool(_one(form, f"critical_{n}")),
            }
            if item["kind"] == "scale":
                item["scale_max"] = int(scale) if scale.isdigit() else scale
            if _one(form, f"key_{n}"):
                item["key"] = _one(form, f"key_{n}")
            items.append(item)
        n += 1
    return items


def answers_from_form(card: m.QaScorecard, form: Mapping[str, Any]) -> dict[str, Any]:
    """``a_<key>``: ``yes``/``no`` (yes/no), a number (scale), ``na`` (not applicable); a
    question left blank is left out, so the domain names it."""
    answers: dict[str, Any] = {}
    for item in card.items:
        raw = _one(form, f"a_{item['key']}")
        if not raw:
            continue
        if raw == "na":
            answers[item["key"]] = None
        elif item["kind"] == "yesno":
            answers[item["key"]] = raw == "yes"
        else:
            answers[item["key"]] = int(raw) if raw.isdigit() else raw
    return answers


async def _may(request: Request[Any, Any, Any], ctx: PageContext, name: str) -> bool:
    async with services_of(request).db.transaction() as session:
        return await grants.allowed(session, ctx.who, name)


class QaPage(Controller):
    path = "/qa"

    # --- scorecard builder -----------------------------------------------------------------

    async def _builder(
        self,
        request: Request[Any, Any, Any],
        ctx: PageContext,
        card: m.QaScorecard | None,
        *,
        values: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Template:
        async with services_of(request).db.transaction() as session:
            cards = await qa.list_scorecards(session, ctx.who, include_retired=True)
        items = list(card.items) if card and values is None else items_from_form(values or {})
        blank = {"key": "", "text": "", "kind": "yesno", "weight": 1, "critical": False, "scale_max": 5}
        rows = [{**blank, **{k: v for k, v in it.items() if v is not None}} for it in items]
        rows += [blank] * BLANK_ROWS
        return ctx.template(
            "qa/scorecards.html",
            status_code=422 if errors else 200,
            cards=cards,
            card=card,
            card_name=_one(values, "name") if values is not None else (card.name if card else ""),
            description=_one(values, "description")
            if values is not None
            else (card.description if card else ""),
            rows=rows,
            errors=errors or {},
        )

    @get("/scorecards", include_in_schema=False)
    async def scorecards(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        await require_grant(request, ctx, grants.QA_SCORECARDS)
        return await self._builder(request, ctx, None)

    @get("/scorecards/{scorecard_id:int}", include_in_schema=False)
    async def scorecard(self, request: Request[Any, Any, Any], scorecard_id: int) -> Template:
        ctx = await page_context(request)
        await require_grant(request, ctx, grants.QA_SCORECARDS)
        async with services_of(request).db.transaction() as session:
            card = await qa.get_scorecard(session, scorecard_id)
        return await self._builder(request, ctx, card)

    async def _save(self, request: Request[Any, Any, Any], scorecard_id: int | None) -> Template | Redirect:
        ctx = await page_context(request)
        await require_grant(request, ctx, grants.QA_SCORECARDS)
        form = await read_form(request, ctx)
        data: dict[str, Any] = {
            "name": _one(form, "name"),
            "description": _one(form, "description"),
            "items": items_from_form(form),
        }
        if scorecard_id is not None:
            data["active"] = _one(form, "active") != "no"
        card: m.QaScorecard | None = None
        try:
            async with services_of(request).db.transaction() as session:
                if scorecard_id is None:
                    card = await qa.check_create_scorecard(session, ctx.who, data)
                else:
                    card = await qa.check_update_scorecard(session, ctx.who, scorecard_id, data)
                saved = card.id
        except DomainError as exc:
            async with services_of(request).db.transaction() as session:
                current = await qa.get_scorecard(session, scorecard_id) if scorecard_id else None
            return await self._builder(request, ctx, current, values=form, errors=field_errors(exc, ctx.lang))
        return Redirect(f"/qa/scorecards/{saved}?saved=1", status_code=303)

    @post("/scorecards", include_in_schema=False)
    async def create_scorecard(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        return await self._save(request, None)

    @post("/scorecards/{scorecard_id:int}", include_in_schema=False)
    async def update_scorecard(
        self, request: Request[Any, Any, Any], scorecard_id: int
    ) -> Template | Redirect:
        return await self._save(request, scorecard_id)

    # --- grading panel ---------------------------------------------------------------------

    async def _panel(
        self,
        request: Request[Any, Any, Any],
        ctx: PageContext,
        conversation_id: int,
        *,
        values: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Template:
        chosen = _one(values or request.query_params, "scorecard")
        mode = _one(values or request.query_params, "mode") or "history"
        async with services_of(request).db.transaction() as session:
            await grants.check(session, ctx.who, grants.QA_GRADE)
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
            recorded = bool(
                await session.scalar(
                    select(m.Call.recording_path).where(
                        m.Call.conversation_id == conv.id, m.Call.recording_path != ""
                    )
                )
            )
            cards = await qa.list_scorecards(session, ctx.who)
            card = next((c for c in cards if str(c.id) == chosen), cards[0] if cards else None)
            earlier = await qa.list_evaluations(session, ctx.who, conversation_id=conv.id)
            names = await user_names(session, {u for e in earlier for u in (e.grader_id, e.operator_id) if u})
            operator = await session.get(m.User, conv.assigned_user_id) if conv.assigned_user_id else None
            queues = await queue_names(session, {conv.queue_id} if conv.queue_id else set())
        return ctx.template(
            "qa/grade.html",
            status_code=422 if errors else 200,
            conv=conv,
            contact_name=contact.name,
            contact_phone=masker.phone(contact.phone) or "",
            queue_name=queues.get(conv.queue_id or 0, ""),
            channel=enum_label(ctx.lang, "channel", conv.channel),
            operator_name=(operator.display_name or operator.username) if operator else "",
            messages=messages,
            recorded=recorded,
            cards=cards,
            card=card,
            mode=mode if mode in ("history", "live") else "history",
            values=values or {},
            errors=errors or {},
            earlier=earlier,
            names=names,
        )

    @get("/grade/{conversation_id:int}", include_in_schema=False)
    async def grade(self, request: Request[Any, Any, Any], conversation_id: int) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN)
        await require_grant(request, ctx, grants.QA_GRADE)
        return await self._panel(request, ctx, conversation_id)

    @post("/grade/{conversation_id:int}", include_in_schema=False)
    async def submit_grade(
        self, request: Request[Any, Any, Any], conversation_id: int
    ) -> Template | Redirect:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN)
        await require_grant(request, ctx, grants.QA_GRADE)
        form = await read_form(request, ctx)
        try:
            async with services_of(request).db.transaction() as session:
                card_id = _one(form, "scorecard")
                card = await qa.get_scorecard(session, int(card_id) if card_id.isdigit() else 0)
                ev = await qa.check_create_evaluation(
                    session,
                    ctx.who,
                    {
                        "scorecard_id": card.id,
                        "conversation_id": conversation_id,
                        "answers": answers_from_form(card, form),
                        "comment": _one(form, "comment"),
                        "mode": _one(form, "mode") or "history",
                    },
                )
                saved = ev.id
        except DomainError as exc:
            return await self._panel(
                request, ctx, conversation_id, values=form, errors=field_errors(exc, ctx.lang)
            )
        return Redirect(f"/qa/evaluations/{saved}", status_code=303)

    # --- evaluations -----------------------------------------------------------------------

    @get("/evaluations", include_in_schema=False)
    async def evaluations(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*ROLES)
        async with services_of(request).db.transaction() as session:
            rows = await qa.list_evaluations(session, ctx.who)
            names = await user_names(session, {u for e in rows for u in (e.grader_id, e.operator_id) if u})
            cards = {c.id: c for c in await qa.scorecard_rows(session, {e.scorecard_id for e in rows})}
        return ctx.template(
            "qa/evaluations.html",
            rows=rows,
            names=names,
            cards=cards,
            builder=await _may(request, ctx, grants.QA_SCORECARDS),
        )

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        ctx: PageContext,
        evaluation_id: int,
        errors: dict[str, str] | None = None,
    ) -> Template:
        async with services_of(request).db.transaction() as session:
            ev = await qa.get_evaluation(session, ctx.who, evaluation_id)
            card = await qa.get_scorecard(session, ev.scorecard_id)
            names = await user_names(session, {u for u in (ev.grader_id, ev.operator_id) if u})
        return ctx.template(
            "qa/evaluation.html",
            status_code=422 if errors else 200,
            ev=ev,
            card=card,
            names=names,
            errors=errors or {},
            may_comment=ev.operator_id == ctx.who.id,
        )

    @get("/evaluations/{evaluation_id:int}", include_in_schema=False)
    async def evaluation(self, request: Request[Any, Any, Any], evaluation_id: int) -> Template:
        ctx = await page_context(request)
        ctx.require(*ROLES)
        return await self._detail(request, ctx, evaluation_id)

    @post("/evaluations/{evaluation_id:int}/comment", include_in_schema=False)
    async def comment(self, request: Request[Any, Any, Any], evaluation_id: int) -> Template | Redirect:
        ctx = await page_context(request)
        ctx.require(*ROLES)
        form = await read_form(request, ctx)
        try:
            async with services_of(request).db.transaction() as session:
                await qa.check_comment(session, ctx.who, evaluation_id, _one(form, "comment"))
        except DomainError as exc:
            return await self._detail(request, ctx, evaluation_id, field_errors(exc, ctx.lang))
        return Redirect(f"/qa/evaluations/{evaluation_id}?saved=1", status_code=303)


CONTROLLERS = [QaPage]
