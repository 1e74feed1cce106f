"""REST API of the administration: users, groups, skills, queues, statuses, result codes,
the audit log and API tokens here; contacts, inboxes, webhooks, canned replies and card fields
in ``omni.api.admin_channels``. ``CONTROLLERS`` lists them all for ``create_app``.

Handlers only translate HTTP to ``omni.domain.admin`` calls, which check roles, scope and
input and write the audit record; one transaction per request, so a refusal stores nothing.
What they accept is declared in ``omni.api.admin_bodies`` (bounded by the columns), what they
answer in ``omni.api.admin_responses`` (the serializers' JSON, typed); ``READ`` / ``WRITE``
document the refusals (``ErrorBody``) each route can answer.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post, put

from omni.api import admin_integrations
from omni.api.admin_bodies import (
    GroupIdsIn,
    Limit,
    MembersIn,
    NameCreate,
    NameUpdate,
    OptionalCursor,
    OptionalQuery,
    OptionalRowId,
    QueueCreate,
    QueueResultCodesIn,
    QueueSkillsIn,
    QueueUpdate,
    ResultCodeCreate,
    ResultCodeUpdate,
    RowId,
    ScopeIn,
    StatusCreate,
    StatusUpdate,
    UserCreate,
    UserSkillsIn,
    UserUpdate,
    given,
)
from omni.api.admin_channels import (
    CannedReplyController,
    CardFieldController,
    ContactController,
    InboxController,
    WebhookController,
    WebhookDeliveryController,
)
from omni.api.admin_integrations import TokenCreate, TokenCreatedOut
from omni.api.admin_responses import (
    OK,
    READ,
    REMOVE,
    WRITE,
    AuditOut,
    GroupOut,
    OkOut,
    PasswordResetOut,
    QueueOut,
    ResultCodeOut,
    SkillOut,
    StatusOut,
    TokenOut,
    UserDetailOut,
    UserOut,
    out,
    out_list,
)
from omni.api.core import DEPS
from omni.api.deps import client_ip
from omni.domain import admin, passwords, totp
from omni.domain.admin.tokens import check_create_token, list_audit, parse_instant
from omni.domain.auth import Principal
from omni.services import Services

# --- controllers --------------------------------------------------------------------------


class UserController(Controller):
    path = "/api/v1/users"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_users(self, who: Principal, services: Services, limit: Limit = 1000) -> list[UserOut]:
        async with services.db.transaction() as session:
            return out_list(
                [admin.user_dict(u) for u in await admin.list_users(session, who, limit=limit)], UserOut
            )

    @post("/", responses=WRITE)
    async def create_user(self, who: Principal, services: Services, data: UserCreate) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.check_create_user(session, who, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @get("/{user_id:int}", responses=READ)
    async def get_user(self, who: Principal, services: Services, user_id: RowId) -> UserDetailOut:
        async with services.db.transaction() as session:
            return out(
                await admin.user_detail(session, await admin.access_user(session, who, user_id)),
                UserDetailOut,
            )

    @patch("/{user_id:int}", responses=WRITE)
    async def update_user(
        self, who: Principal, services: Services, user_id: RowId, data: UserUpdate
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.check_update_user(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @delete("/{user_id:int}", status_code=200, responses=REMOVE)
    async def deactivate_user(self, who: Principal, services: Services, user_id: RowId) -> UserOut:
        async with services.db.transaction() as session:
            return out(admin.user_dict(await admin.check_deactivate_user(session, who, user_id)), UserOut)

    @put("/{user_id:int}/skills", responses=WRITE)
    async def set_skills(
        self, who: Principal, services: Services, user_id: RowId, data: UserSkillsIn
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.check_set_user_skills(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @put("/{user_id:int}/scope", responses=WRITE)
    async def set_scope(
        self, who: Principal, services: Services, user_id: RowId, data: ScopeIn
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.check_set_supervisor_scope(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @post("/{user_id:int}/totp/reset", status_code=200, responses=WRITE)
    async def reset_totp(
        self, request: Request[Any, Any, Any], who: Principal, services: Services, user_id: RowId
    ) -> UserDetailOut:
        """An admin clears a user's two-factor sign-in (a lost phone); audited."""
        async with services.db.transaction() as session:
            user = await totp.check_reset(session, who, user_id, ip=client_ip(request))
            return out(await admin.user_detail(session, user), UserDetailOut)

    @post("/{user_id:int}/password-reset", status_code=201, responses=WRITE)
    async def issue_password_reset(
        self, request: Request[Any, Any, Any], who: Principal, services: Services, user_id: RowId
    ) -> PasswordResetOut:
        """A one-time link for the user to choose a new password (24 h; voids earlier links)."""
        async with services.db.transaction() as session:
            issued = await passwords.check_issue_reset(session, who, user_id, ip=client_ip(request))
            return PasswordResetOut(
                user_id=user_id,
                url=issued.url(services.settings.public_base_url),
                expires_at=issued.row.expires_at.isoformat(),
            )

    @put("/{user_id:int}/groups", responses=WRITE)
    async def set_groups(
        self, who: Principal, services: Services, user_id: RowId, data: GroupIdsIn
    ) -> UserDetailOut:
        async with services.db.transaction() as session:
            user = await admin.check_set_user_groups(session, who, user_id, given(data))
            return out(await admin.user_detail(session, user), UserDetailOut)


class GroupController(Controller):
    path = "/api/v1/groups"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_groups(self, who: Principal, services: Services, limit: Limit = 1000) -> list[GroupOut]:
        async with services.db.transaction() as session:
            groups = await admin.list_groups(session, who, limit=limit)
            return out_list(await admin.group_dicts(session, groups), GroupOut)

    @post("/", responses=WRITE)
    async def create_group(self, who: Principal, services: Services, data: NameCreate) -> GroupOut:
        async with services.db.transaction() as session:
            group = await admin.check_create_group(session, who, given(data))
            return out((await admin.group_dicts(session, [group]))[0], GroupOut)

    @patch("/{group_id:int}", responses=WRITE)
    async def update_group(
        self, who: Principal, services: Services, group_id: RowId, data: NameUpdate
    ) -> GroupOut:
        async with services.db.transaction() as session:
            group = await admin.check_update_group(session, who, group_id, given(data))
            return out((await admin.group_dicts(session, [group]))[0], GroupOut)

    @delete("/{group_id:int}", status_code=200, responses=REMOVE)
    async def delete_group(self, who: Principal, services: Services, group_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_group(session, who, group_id)
        return OK


class SkillController(Controller):
    path = "/api/v1/skills"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_skills(self, who: Principal, services: Services, limit: Limit = 1000) -> list[SkillOut]:
        async with services.db.transaction() as session:
            return out_list(
                [admin.skill_dict(s) for s in await admin.list_skills(session, who, limit=limit)], SkillOut
            )

    @post("/", responses=WRITE)
    async def create_skill(self, who: Principal, services: Services, data: NameCreate) -> SkillOut:
        async with services.db.transaction() as session:
            return out(admin.skill_dict(await admin.check_create_skill(session, who, given(data))), SkillOut)

    @patch("/{skill_id:int}", responses=WRITE)
    async def update_skill(
        self, who: Principal, services: Services, skill_id: RowId, data: NameUpdate
    ) -> SkillOut:
        async with services.db.transaction() as session:
            return out(
                admin.skill_dict(await admin.check_update_skill(session, who, skill_id, given(data))),
                SkillOut,
            )

    @delete("/{skill_id:int}", status_code=200, responses=REMOVE)
    async def delete_skill(self, who: Principal, services: Services, skill_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_skill(session, who, skill_id)
        return OK


class QueueController(Controller):
    path = "/api/v1/queues"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_queues(self, who: Principal, services: Services, limit: Limit = 1000) -> list[QueueOut]:
        async with services.db.transaction() as session:
            queues = await admin.list_queues(session, who, limit=limit)
            return out_list(await admin.queue_dicts(session, queues), QueueOut)

    @post("/", responses=WRITE)
    async def create_queue(self, who: Principal, services: Services, data: QueueCreate) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.check_create_queue(session, who, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @get("/{queue_id:int}", responses=READ)
    async def get_queue(self, who: Principal, services: Services, queue_id: RowId) -> QueueOut:
        async with services.db.transaction() as session:
            return out(
                await admin.queue_detail(session, await admin.access_queue(session, who, queue_id)), QueueOut
            )

    @patch("/{queue_id:int}", responses=WRITE)
    async def update_queue(
        self, who: Principal, services: Services, queue_id: RowId, data: QueueUpdate
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.check_update_queue(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @delete("/{queue_id:int}", status_code=200, responses=REMOVE)
    async def delete_queue(self, who: Principal, services: Services, queue_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_queue(session, who, queue_id)
        return OK

    @put("/{queue_id:int}/members", responses=WRITE)
    async def set_members(
        self, who: Principal, services: Services, queue_id: RowId, data: MembersIn
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.check_set_queue_members(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @put("/{queue_id:int}/skills", responses=WRITE)
    async def set_skills(
        self, who: Principal, services: Services, queue_id: RowId, data: QueueSkillsIn
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.check_set_queue_skills(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)

    @put("/{queue_id:int}/result-codes", responses=WRITE)
    async def set_result_codes(
        self, who: Principal, services: Services, queue_id: RowId, data: QueueResultCodesIn
    ) -> QueueOut:
        async with services.db.transaction() as session:
            queue = await admin.check_set_queue_result_codes(session, who, queue_id, given(data))
            return out(await admin.queue_detail(session, queue), QueueOut)


class StatusController(Controller):
    path = "/api/v1/statuses"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_statuses(self, who: Principal, services: Services, limit: Limit = 1000) -> list[StatusOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_statuses(session, who, limit=limit)
            return out_list([admin.status_dict(s) for s in rows], StatusOut)

    @post("/", responses=WRITE)
    async def create_status(self, who: Principal, services: Services, data: StatusCreate) -> StatusOut:
        async with services.db.transaction() as session:
            return out(
                admin.status_dict(await admin.check_create_status(session, who, given(data))), StatusOut
            )

    @patch("/{status_id:int}", responses=WRITE)
    async def update_status(
        self, who: Principal, services: Services, status_id: RowId, data: StatusUpdate
    ) -> StatusOut:
        async with services.db.transaction() as session:
            status = await admin.check_update_status(session, who, status_id, given(data))
            return out(admin.status_dict(status), StatusOut)

    @delete("/{status_id:int}", status_code=200, responses=REMOVE)
    async def delete_status(self, who: Principal, services: Services, status_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await admin.check_delete_status(session, who, status_id)
        return OK


class ResultCodeController(Controller):
    path = "/api/v1/result-codes"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_result_codes(
        self, who: Principal, services: Services, limit: Limit = 1000
    ) -> list[ResultCodeOut]:
        async with services.db.transaction() as session:
            rows = await admin.list_result_codes(session, who, limit=limit)
            return out_list([admin.result_code_dict(c) for c in rows], ResultCodeOut)

    @post("/", responses=WRITE)
    async def create_result_code(
        self, who: Principal, services: Services, data: ResultCodeCreate
    ) -> ResultCodeOut:
        async with services.db.transaction() as session:
            return out(
                admin.result_code_dict(await admin.check_create_result_code(session, who, given(data))),
                ResultCodeOut,
            )

    @patch("/{code_id:int}", responses=WRITE)
    async def update_result_code(
        self, who: Principal, services: Services, code_id: RowId, data: ResultCodeUpdate
    ) -> ResultCodeOut:
        async with services.db.transaction() as session:
            code = await admin.check_update_result_code(session, who, code_id, given(data))
            return out(admin.result_code_dict(code), ResultCodeOut)

    @delete("/{code_id:int}", status_code=200, responses=REMOVE)
    async def deactivate_result_code(
        self, who: Principal, services: Services, code_id: RowId
    ) -> ResultCodeOut:
        async with services.db.transaction() as session:
            return out(
                admin.result_code_dict(await admin.check_deactivate_result_code(session, who, code_id)),
                ResultCodeOut,
            )


class AuditController(Controller):
    path = "/api/v1/audit"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_audit(
        self,
        who: Principal,
        services: Services,
        user_id: OptionalRowId = None,
        action: OptionalQuery = None,
        before_id: OptionalCursor = None,
        object_type: OptionalQuery = None,
        object_id: OptionalQuery = None,
        since: OptionalQuery = None,
        until: OptionalQuery = None,
        limit: Limit = 100,
    ) -> list[AuditOut]:
        """Newest first, paged back with ``before_id``; ``since``/``until``: ISO 8601 with an offset."""
        async with services.db.transaction() as session:
            rows = await list_audit(
                session,
                who,
                user_id=user_id,
                action=action,
                before_id=before_id,
                object_type=object_type,
                object_id=object_id,
                since=parse_instant("since", since),
                until=parse_instant("until", until),
                limit=limit,
            )
            return out_list([admin.audit_dict(a) for a in rows], AuditOut)


class TokenController(Controller):
    """Listing, admin-issued creation and revoking; anyone makes their own at ``POST /api/v1/me/tokens``."""

    path = "/api/v1/tokens"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_tokens(self, who: Principal, services: Services, limit: Limit = 1000) -> list[TokenOut]:
        async with services.db.transaction() as session:
            return out_list(
                [admin.token_dict(t) for t in await admin.list_tokens(session, who, limit=limit)], TokenOut
            )

    @post("/", responses=WRITE)
    async def create_token(self, who: Principal, services: Services, data: TokenCreate) -> TokenCreatedOut:
        """Admins issue a token for a user (an integration account); the token is in this body only."""
        async with services.db.transaction() as session:
            row, secret = await check_create_token(session, who, given(data))
            return out({**admin.token_dict(row), "token": secret}, TokenCreatedOut)

    @delete("/{token_id:int}", status_code=200, responses=REMOVE)
    async def revoke_token(self, who: Principal, services: Services, token_id: RowId) -> TokenOut:
        async with services.db.transaction() as session:
            return out(admin.token_dict(await admin.check_revoke_token(session, who, token_id)), TokenOut)


CONTROLLERS: list[type[Controller]] = [
    UserController,
    GroupController,
    SkillController,
    QueueController,
    StatusController,
    ResultCodeController,
    ContactController,
    InboxController,
    WebhookController,
    WebhookDeliveryController,
    AuditController,
    TokenController,
    CannedReplyController,
    CardFieldController,
    *admin_integrations.CONTROLLERS,
]
