"""Labels, saved views, bulk actions and snooze over REST (issue 18, *Organise the work*).

The rules live in the domain (``omni.domain.labels``, ``views``, ``bulk``, ``snooze``); these
controllers decode, call one ``check_*`` and shape the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import OK, READ, REMOVE, WRITE, OkOut, out, out_list
from omni.api.contracts import Count, Id, IntId, Name, OptIntId
from omni.api.core import DEPS, conversation_out, conversation_shown
from omni.api.schemas import ConversationOut
from omni.domain import bulk, labels, snooze, views
from omni.domain.auth import Principal
from omni.domain.masking import masker_for
from omni.services import Services

__all__ = ["CONTROLLERS"]


class LabelUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    color: Name | UnsetType = UNSET


class LabelCreate(LabelUpdate, kw_only=True):
    name: Name
    queue_id: IntId | UnsetType | None = UNSET


class LabelOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    color: str
    queue_id: int | None


class LabelsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    add: list[IntId] = msgspec.field(default_factory=list)
    remove: list[IntId] = msgspec.field(default_factory=list)


class ViewFilters(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: list[Name] | UnsetType = UNSET
    queue_id: list[IntId] | UnsetType = UNSET
    channel: list[Name] | UnsetType = UNSET
    label_id: list[IntId] | UnsetType = UNSET
    operator_id: list[IntId] | UnsetType = UNSET


class ViewUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    target: Name | UnsetType = UNSET
    filters: ViewFilters | UnsetType = UNSET
    group_id: IntId | UnsetType | None = UNSET
    pinned: bool | UnsetType = UNSET


class ViewCreate(ViewUpdate, kw_only=True):
    name: Name


class ViewOut(msgspec.Struct, kw_only=True):
    id: int
    owner_id: int
    group_id: int | None
    name: str
    target: str
    filters: dict[str, Any]
    pinned: bool


class BulkIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    conversation_ids: list[Id]
    action: Name
    """``assign`` (``to_user_id``), ``label`` (``add``/``remove``), ``close``
    (``result_code_id``) or ``transfer`` (``to_queue_id``, ``note``)."""
    to_user_id: IntId | None = None
    to_queue_id: IntId | None = None
    result_code_id: IntId | None = None
    note: Name = ""
    add: list[IntId] = msgspec.field(default_factory=list)
    remove: list[IntId] = msgspec.field(default_factory=list)


class RefusedOut(msgspec.Struct, kw_only=True):
    id: int
    code: str
    error: str


class BulkOut(msgspec.Struct, kw_only=True):
    action: str
    done: list[int]
    refused: list[RefusedOut]


class SnoozeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    until: datetime | None = None
    """When it comes back by itself (with a time zone); empty: only when the customer writes."""
    until_customer: bool = False


class LabelController(Controller):
    path = "/api/v1/labels"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_labels(
        self, who: Principal, services: Services, queue_id: OptIntId = None
    ) -> list[LabelOut]:
        async with services.db.transaction() as session:
            rows = await labels.list_labels(session, who, queue_id=queue_id)
            return out_list([labels.label_dict(x) for x in rows], LabelOut)

    @post("/", responses=WRITE)
    async def create_label(self, who: Principal, services: Services, data: LabelCreate) -> LabelOut:
        async with services.db.transaction() as session:
            return out(
                labels.label_dict(await labels.check_create_label(session, who, given(data))), LabelOut
            )

    @patch("/{label_id:int}", responses=WRITE)
    async def update_label(
        self, who: Principal, services: Services, label_id: RowId, data: LabelUpdate
    ) -> LabelOut:
        async with services.db.transaction() as session:
            label = await labels.check_update_label(session, who, label_id, given(data))
            return out(labels.label_dict(label), LabelOut)

    @delete("/{label_id:int}", status_code=200, responses=REMOVE)
    async def delete_label(self, who: Principal, services: Services, label_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await labels.check_delete_label(session, who, label_id)
        return OK


class OrganiseConversationController(Controller):
    path = "/api/v1/conversations"
    dependencies = DEPS

    @post("/{conversation_id:int}/labels", status_code=200, responses=WRITE)
    async def set_labels(
        self, who: Principal, services: Services, conversation_id: Id, data: LabelsIn
    ) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await labels.check_set_labels(
                session, who, conversation_id, add=data.add, remove=data.remove
            )
            return await conversation_shown(session, who, conv)

    @post("/{conversation_id:int}/snooze", status_code=200, responses=WRITE)
    async def snooze(
        self, who: Principal, services: Services, conversation_id: Id, data: SnoozeIn
    ) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await snooze.check_snooze(
                session, who, conversation_id, until=data.until, until_customer=data.until_customer
            )
            return await conversation_shown(session, who, conv)

    @post("/{conversation_id:int}/unsnooze", status_code=200, responses=WRITE)
    async def unsnooze(self, who: Principal, services: Services, conversation_id: Id) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await snooze.check_unsnooze(session, who, conversation_id)
            return await conversation_shown(session, who, conv)

    @post("/bulk", status_code=200, responses=WRITE)
    async def bulk_action(self, who: Principal, services: Services, data: BulkIn) -> BulkOut:
        params = {
            "to_user_id": data.to_user_id,
            "to_queue_id": data.to_queue_id,
            "result_code_id": data.result_code_id,
            "note": data.note,
            "add": data.add,
            "remove": data.remove,
        }
        report = await bulk.check_bulk(services.db, who, data.conversation_ids, data.action, params)
        return BulkOut(
            action=report.action,
            done=report.done,
            refused=[RefusedOut(id=r.id, code=r.code, error=r.error) for r in report.refused],
        )


class ViewController(Controller):
    path = "/api/v1/views"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_views(
        self, who: Principal, services: Services, target: Name | None = None
    ) -> list[ViewOut]:
        async with services.db.transaction() as session:
            rows = await views.list_views(session, who, target=target)
            return out_list([views.view_dict(v) for v in rows], ViewOut)

    @post("/", responses=WRITE)
    async def create_view(self, who: Principal, services: Services, data: ViewCreate) -> ViewOut:
        async with services.db.transaction() as session:
            return out(views.view_dict(await views.check_create_view(session, who, given(data))), ViewOut)

    @patch("/{view_id:int}", responses=WRITE)
    async def update_view(
        self, who: Principal, services: Services, view_id: RowId, data: ViewUpdate
    ) -> ViewOut:
        async with services.db.transaction() as session:
            return out(
                views.view_dict(await views.check_update_view(session, who, view_id, given(data))), ViewOut
            )

    @delete("/{view_id:int}", status_code=200, responses=REMOVE)
    async def delete_view(self, who: Principal, services: Services, view_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await views.check_delete_view(session, who, view_id)
        return OK

    @get("/{view_id:int}/conversations", responses=READ)
    async def view_conversations(
        self, who: Principal, services: Services, view_id: RowId, limit: Count = 100
    ) -> list[ConversationOut]:
        async with services.db.transaction() as session:
            rows = await views.view_conversations(session, who, view_id, limit=limit)
            masker = await masker_for(session, who)
            return [conversation_out(c, masker) for c in rows]


CONTROLLERS = [LabelController, OrganiseConversationController, ViewController]
