"""Auth, conversations, offers, presence, callbacks and the event feed."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.di import Provide
from litestar.params import QueryParameter
from litestar.response import File
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.api import files_http
from omni.api.contracts import Count, Id, IntId, Name, OptIntId, Seq
from omni.api.deps import SESSION_COOKIE, client_ip, provide_principal, provide_services
from omni.api.edge import REFUSALS
from omni.api.schemas import (
    CallbackDoneIn,
    CallbackIn,
    CallbackOut,
    CloseIn,
    ConversationDetailOut,
    ConversationOut,
    EventOut,
    InboundIn,
    InboundOut,
    LoginIn,
    MessageIn,
    MessageOut,
    OkOut,
    PresenceOut,
    StatusIn,
    TokenIn,
    TokenOut,
    TransferIn,
    UserOut,
)
from omni.db import models as m
from omni.domain import audit, auth, conversations, files, presence
from omni.domain.admin import user_dict
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.errors import InvalidInput, NotFound, OtpRequired, PermissionDenied, TooManyRequests
from omni.domain.events import events_after
from omni.domain.masking import UNMASKED, Masker, masker_for
from omni.domain.routing import wait_info
from omni.domain.serialize import callback_dict, conversation_dict, message_dict
from omni.services import Services

DEPS = {"who": Provide(provide_principal), "services": Provide(provide_services)}


def conversation_out(c: m.Conversation, masker: Masker = UNMASKED) -> ConversationOut:
    return msgspec.convert(masker.payload(conversation_dict(c)), ConversationOut)


async def conversation_shown(session: AsyncSession, who: Principal, c: m.Conversation) -> ConversationOut:
    """The conversation as this reader may see it (bot variables masked without ``pii.view``)."""
    return conversation_out(c, await masker_for(session, who))


def callback_out(cb: m.Callback) -> CallbackOut:
    return msgspec.convert(callback_dict(cb), CallbackOut)


def presence_out(p: m.OperatorPresence, status: m.OperatorStatus) -> PresenceOut:
    return msgspec.convert(presence.presence_dict(p, status), PresenceOut)


class AuthController(Controller):
    path = "/api/v1/auth"
    dependencies = {"services": Provide(provide_services)}  # noqa: RUF012 - Litestar declares it mutable

    @post(
        "/login",
        status_code=200,
        opt={"csrf": "always"},  # it creates a session
        responses={401: REFUSALS[401], 403: REFUSALS[403], 429: REFUSALS[429]},
    )
    async def login(
        self, request: Request[Any, Any, Any], data: LoginIn, services: Services
    ) -> Response[UserOut]:
        ip = client_ip(request)
        if await services.logins.blocked(data.username, ip):
            raise TooManyRequests("too many failed logins; wait a minute and try again")
        async with services.db.transaction() as session:
            result = await auth.do_login(
                session,
                data.username,
                data.password,
                ip=ip,
                max_age_seconds=services.settings.session_max_age_seconds,
                otp=data.otp,
                secret_key=services.settings.effective_secret_key(),
                directory=services.settings.ldap,
            )
            body = msgspec.convert(user_dict(result.user), UserOut) if result.user is not None else None
        if result.refused is not None:  # raised after the commit: the "denied" audit row stays
            await services.logins.failed(data.username, ip)
            raise result.refused
        if result.second_factor == "code":
            raise OtpRequired("a two-factor code is required: send the authenticator app's code as otp")
        if result.second_factor == "enrol":
            raise PermissionDenied(
                "your role must sign in with a second factor: sign in once in the browser to set it up"
            )
        assert result.token is not None and body is not None
        token = result.token
        response = Response(body)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=services.settings.public_base_url.startswith("https"),
            max_age=services.settings.session_max_age_seconds,
        )
        return response

    @post("/logout", status_code=200)
    async def logout(self, request: Request[Any, Any, Any], services: Services) -> Response[OkOut]:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            async with services.db.transaction() as session:
                await auth.do_end_session(session, token)
        response = Response(OkOut(ok=True))
        response.delete_cookie(SESSION_COOKIE)
        return response


class MeController(Controller):
    path = "/api/v1/me"
    dependencies = DEPS

    @get("/")
    async def me(self, who: Principal, services: Services) -> UserOut:
        async with services.db.transaction() as session:
            return msgspec.convert(user_dict(await auth.access_user(session, who.id)), UserOut)

    @put("/status")
    async def set_status(self, who: Principal, services: Services, data: StatusIn) -> PresenceOut:
        async with services.db.transaction() as session:
            p = await presence.check_set_status(session, who.id, who.role, who.id, data.status, data.reason)
            status = await session.get(m.OperatorStatus, p.status_id)
            assert status is not None
            return presence_out(p, status)

    @post("/tokens")
    async def create_token(self, who: Principal, services: Services, data: TokenIn) -> TokenOut:
        if not data.name.strip():
            raise InvalidInput("give the token a name", field="name")
        async with services.db.transaction() as session:
            user = await auth.access_user(session, who.id)
            row, token = await auth.do_create_api_token(session, user, data.name.strip()[:128])
            audit.record(session, who, "token.create", object_type="api_token", object_id=row.id)
            return TokenOut(id=row.id, name=row.name, token=token)


class PresenceController(Controller):
    path = "/api/v1/presence"
    dependencies = DEPS

    @get("/")
    async def list_presence(self, who: Principal, services: Services) -> list[PresenceOut]:
        async with services.db.transaction() as session:
            users = await auth.visible_user_ids(session, who)
            stmt = select(m.OperatorPresence, m.OperatorStatus).join(
                m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id
            )
            if users is not None:
                stmt = stmt.where(m.OperatorPresence.user_id.in_(users))
            return [presence_out(p, s) for p, s in (await session.execute(stmt)).all()]

    @put("/{user_id:int}")
    async def set_operator_status(
        self, who: Principal, services: Services, user_id: IntId, data: StatusIn
    ) -> PresenceOut:
        async with services.db.transaction() as session:
            users = await auth.visible_user_ids(session, who)
            p = await presence.check_set_status(
                session, who.id, who.role, user_id, data.status, data.reason, supervised=users
            )
            status = await session.get(m.OperatorStatus, p.status_id)
            assert status is not None
            audit.record(
                session,
                who,
                "presence.set",
                object_type="user",
                object_id=user_id,
                data={"status": data.status, "reason": data.reason},
            )
            return presence_out(p, status)


class ConversationController(Controller):
    path = "/api/v1/conversations"
    dependencies = DEPS

    @get("/")
    async def list_conversations(
        self,
        who: Principal,
        services: Services,
        status: Name | None = None,
        queue_id: OptIntId = None,
        limit: Count = 100,
    ) -> list[ConversationOut]:
        if who.role == m.Role.AUDITOR:
            raise PermissionDenied("auditors can read the audit log only")
        if status is not None and status not in set(m.ConversationStatus):
            raise InvalidInput("unknown status '{status}'", status=status, field="status")
        async with services.db.transaction() as session:
            queues = await auth.visible_queue_ids(session, who)
            stmt = select(m.Conversation).where(*auth.conversation_scope_filter(queues, who))
            if status:
                stmt = stmt.where(m.Conversation.status == status)
            if queue_id is not None:
                stmt = stmt.where(m.Conversation.queue_id == queue_id)
            rows = await session.scalars(
                stmt.order_by(m.Conversation.id.desc()).limit(min(max(limit, 1), 1000))
            )
            masker = await masker_for(session, who)
            return [conversation_out(c, masker) for c in rows]

    @get("/{conversation_id:int}")
    async def get_conversation(
        self, who: Principal, services: Services, conversation_id: Id
    ) -> ConversationDetailOut:
        async with services.db.transaction() as session:
            conv = await auth.access_conversation(session, who, conversation_id)
            msgs = await session.scalars(
                select(m.Message).where(m.Message.conversation_id == conv.id).order_by(m.Message.id)
            )
            info = await wait_info(session, conv, window=services.settings.routing.handle_time_window)
            masker = await masker_for(session, who)
            body = masker.payload(conversation_dict(conv))
            body["messages"] = [masker.payload(message_dict(x)) for x in msgs]
            body["position"] = info.position
            body["estimated_wait_seconds"] = info.estimated_wait_seconds
            return msgspec.convert(body, ConversationDetailOut)

    @post("/{conversation_id:int}/messages")
    async def send_message(
        self, who: Principal, services: Services, conversation_id: Id, data: MessageIn
    ) -> MessageOut:
        async with services.db.transaction() as session:
            msg = await conversations.check_send_message(
                session, who, conversation_id, data.body, client_id=data.client_id, private=data.private
            )
            return msgspec.convert(message_dict(msg), MessageOut)

    @post("/{conversation_id:int}/hold", status_code=200)
    async def hold(self, who: Principal, services: Services, conversation_id: Id) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await conversations.check_hold(session, who, conversation_id, True)
            return await conversation_shown(session, who, conv)

    @post("/{conversation_id:int}/unhold", status_code=200)
    async def unhold(self, who: Principal, services: Services, conversation_id: Id) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await conversations.check_hold(session, who, conversation_id, False)
            return await conversation_shown(session, who, conv)

    @post("/{conversation_id:int}/end", status_code=200)
    async def end(self, who: Principal, services: Services, conversation_id: Id) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await conversations.check_end(session, who, conversation_id)
            return await conversation_shown(session, who, conv)

    @post("/{conversation_id:int}/close", status_code=200)
    async def close(
        self, who: Principal, services: Services, conversation_id: Id, data: CloseIn
    ) -> ConversationOut:
        async with services.db.transaction() as session:
            return await conversation_shown(
                session,
                who,
                await conversations.check_close(
                    session,
                    who,
                    conversation_id,
                    data.result_code_id,
                    callback_at=data.callback_at,
                    for_me=data.for_me,
                ),
            )

    @post("/{conversation_id:int}/transfer", status_code=200)
    async def transfer(
        self, who: Principal, services: Services, conversation_id: Id, data: TransferIn
    ) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await conversations.check_transfer(
                session,
                who,
                conversation_id,
                to_user_id=data.to_user_id,
                to_queue_id=data.to_queue_id,
                note=data.note,
            )
            return await conversation_shown(session, who, conv)

    @post("/{conversation_id:int}/callbacks")
    async def schedule_callback(
        self, who: Principal, services: Services, conversation_id: Id, data: CallbackIn
    ) -> CallbackOut:
        async with services.db.transaction() as session:
            cb = await conversations.check_schedule_callback(
                session,
                who,
                conversation_id,
                due_at=data.due_at,
                kind=data.kind,
                target_user_id=data.target_user_id,
                note=data.note,
            )
            return callback_out(cb)


class FileController(Controller):
    """Attachments for staff: readable by whoever may open the conversation they belong to."""

    path = "/api/v1/files"
    dependencies = DEPS

    @get("/{file_id:str}")
    async def download(self, who: Principal, services: Services, file_id: Name) -> File:
        async with services.db.transaction() as session:
            row = await files.get_file(session, file_id)
            if row.conversation_id is None:
                raise NotFound("file not found")
            await auth.access_conversation(session, who, row.conversation_id)
        return files_http.serve(row)


class InboxMessageController(Controller):
    """Inbound messages through the API, for CRM-driven or custom channels."""

    path = "/api/v1/inboxes/{inbox_id:int}/messages"
    dependencies = DEPS

    @post("/")
    async def inbound(
        self, who: Principal, services: Services, inbox_id: IntId, data: InboundIn
    ) -> Response[InboundOut]:
        auth.check_role(who, m.Role.ADMIN)
        if data.medium not in set(m.Medium):
            raise InvalidInput("medium must be chat or voice", field="medium")
        async with services.db.transaction() as session:
            result = await conversations.do_ingest_inbound(
                session,
                InboundMessage(
                    inbox_id=inbox_id,
                    identity_kind=data.identity_kind,
                    identity_value=data.identity_value,
                    body=data.body,
                    client_id=data.client_id,
                    external_id=data.external_id,
                    contact_name=data.contact_name,
                    contact_phone=data.contact_phone,
                    contact_email=data.contact_email,
                    subject=data.subject,
                    medium=data.medium,
                    priority=data.priority,
                ),
            )
            body = InboundOut(
                conversation=conversation_out(result.conversation),
                message=msgspec.convert(message_dict(result.message), MessageOut),
                duplicate=result.duplicate,
            )
        return Response(body, status_code=200 if result.duplicate else 201)


class OfferController(Controller):
    path = "/api/v1/offers"
    dependencies = DEPS

    @post("/{offer_id:int}/accept", status_code=200)
    async def accept(self, who: Principal, services: Services, offer_id: Id) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await conversations.check_accept_offer(session, who, offer_id)
            return await conversation_shown(session, who, conv)

    @post("/{offer_id:int}/decline", status_code=200)
    async def decline(self, who: Principal, services: Services, offer_id: Id) -> ConversationOut:
        async with services.db.transaction() as session:
            conv = await conversations.check_decline_offer(session, who, offer_id)
            return await conversation_shown(session, who, conv)


class CallbackController(Controller):
    path = "/api/v1/callbacks"
    dependencies = DEPS

    @get("/")
    async def list_callbacks(
        self,
        who: Principal,
        services: Services,
        callback_state: Annotated[str, QueryParameter(name="state", max_length=16)] = "open",
    ) -> list[CallbackOut]:
        if callback_state not in ("open", "claimed", "done"):
            raise InvalidInput("state must be open, claimed or done", field="state")
        async with services.db.transaction() as session:
            rows = await conversations.list_callbacks(session, who, state=callback_state)
            return [callback_out(c) for c in rows]

    @post("/{callback_id:int}/claim", status_code=200)
    async def claim(self, who: Principal, services: Services, callback_id: IntId) -> CallbackOut:
        async with services.db.transaction() as session:
            return callback_out(await conversations.check_claim_callback(session, who, callback_id))

    @post("/{callback_id:int}/done", status_code=200)
    async def done(
        self, who: Principal, services: Services, callback_id: IntId, data: CallbackDoneIn
    ) -> CallbackOut:
        async with services.db.transaction() as session:
            return callback_out(
                await conversations.check_finish_callback(
                    session, who, callback_id, done=True, note=data.note
                )
            )

    @post("/{callback_id:int}/release", status_code=200)
    async def release(self, who: Principal, services: Services, callback_id: IntId) -> CallbackOut:
        async with services.db.transaction() as session:
            return callback_out(
                await conversations.check_finish_callback(session, who, callback_id, done=False)
            )


class EventController(Controller):
    """The event feed by sequence number, for CRMs that poll instead of taking webhooks."""

    path = "/api/v1/events"
    dependencies = DEPS

    @get("/")
    async def list_events(
        self, who: Principal, services: Services, after: Seq = 0, limit: Count = 500
    ) -> list[EventOut]:
        if who.role == m.Role.AUDITOR:
            raise PermissionDenied("auditors can read the audit log only")
        async with services.db.transaction() as session:
            queues = await auth.visible_queue_ids(session, who)
            users = await auth.visible_user_ids(session, who)
            events = await events_after(session, after, limit=min(max(limit, 1), 1000))
            masker = await masker_for(session, who)
        return [
            msgspec.convert(masker.payload(e.to_wire()), EventOut)
            for e in events
            if auth.event_visible(e, who, queues, users)
        ]
