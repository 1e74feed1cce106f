"""``/supervisor``: live monitoring and supervisor actions, scoped to the supervisor's groups.

The page asks ``monitor`` for a snapshot, then applies the ``event``s pushed to its rooms and
asks again (debounced) when an event changes the numbers; nothing polls.

Acks: ``{"ok": true, ...}`` or ``{"ok": false, "error": "forbidden" | "not_found" |
"invalid" | "conflict", "detail": ...}``.

* ``monitor`` {} → ``{queues: [...], operators: [...], now, day_start, timezone, last_seq}``
* ``set_operator_status`` {user_id, status, reason} → ``{presence}``
* ``message_operator`` {user_id, text} → ``{message}`` (a ``supervisor.message`` event)
* ``whisper`` {conversation_id, text} → ``{message}`` (a private note)
* ``take_over`` {conversation_id} → ``{conversation}``
* ``call_spy`` {conversation_id, mode: listen|whisper|barge} → ``{conversation_id, mode}``
* ``call_force_end`` {conversation_id} → ``{conversation_id}``
* ``campaigns`` {} → ``{campaigns: [...]}`` (running and paused campaigns with live figures)
* ``campaign_state`` {campaign_id, state: running|paused} → ``{campaign}``
* ``campaign_contacts`` {campaign_id} → ``{contacts: [...]}`` (an agentless campaign's
  per-contact results, ``omni.domain.outbound.agentless.contact_results``)
"""

from __future__ import annotations

from typing import Any

from socketio.exceptions import ConnectionRefusedError as Refused

from omni.db import models as m
from omni.db.models.outbound import CampaignState
from omni.domain import grants, monitoring, presence, softphone
from omni.domain.auth import Principal, access_conversation
from omni.domain.errors import NotAuthenticated
from omni.domain.outbound import agentless, campaigns
from omni.domain.outbound import stats as outbound_stats
from omni.domain.serialize import conversation_dict, message_dict
from omni.realtime import BaseNamespace, _ok, rooms
from omni.realtime import payloads as p
from omni.realtime.operator import _pbx, call_control
from omni.realtime.payloads import decode


class SupervisorNamespace(BaseNamespace):
    roles = (m.Role.SUPERVISOR, m.Role.ADMIN)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        try:
            who = await self._authenticate(environ, auth_data)
        except NotAuthenticated as exc:
            raise Refused(exc.message, {"error": exc.code}) from exc
        async with self.services.db.transaction() as session:
            if not await grants.allowed(session, who, grants.PAGE_SUPERVISOR):
                raise Refused("your role has no permission to use the live monitor", {"error": "forbidden"})
        await self.save_session(sid, {"who": who, "masked": await self._reads_masked(who)})
        await self.enter_room(sid, rooms.exports(who.id))
        queues, users = await self._visible(who)
        # Their own user room: about themselves, e.g. their phone changed.
        names = [rooms.user(who.id)]
        if queues is None:
            names.append(rooms.ALL)
        else:
            names += [rooms.queue(q) for q in queues] + [rooms.user(u) for u in users or ()]
        await self._enter_event_rooms(sid, names)

    async def on_monitor(self, sid: str, data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                return _ok(**await monitoring.snapshot(session, who))

        return await self._call(sid, run)

    async def on_set_operator_status(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.OperatorStatusIn)
            async with self.services.db.transaction() as session:
                pr = await monitoring.check_set_operator_status(
                    session, who, req.user_id, req.status, req.reason
                )
                status = await session.get(m.OperatorStatus, pr.status_id)
                assert status is not None
                return _ok(presence=presence.presence_dict(pr, status))

        return await self._call(sid, run)

    async def on_message_operator(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.MessageOperatorIn)
            async with self.services.db.transaction() as session:
                sent = await monitoring.check_message_operator(session, who, req.user_id, req.text)
                return _ok(message=sent)

        return await self._call(sid, run)

    async def on_whisper(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.WhisperIn)
            async with self.services.db.transaction() as session:
                note = await monitoring.check_whisper(session, who, req.conversation_id, req.text)
                return _ok(message=message_dict(note))

        return await self._call(sid, run)

    async def on_take_over(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            async with self.services.db.transaction() as session:
                conv = await monitoring.check_take_over(
                    session, who, decode(data, p.ConversationIn).conversation_id
                )
                return _ok(conversation=conversation_dict(conv))

        return await self._call(sid, run)

    # --- calls: listen / whisper / barge (ChanSpy) and force-end ---------------------------

    async def on_call_spy(self, sid: str, data: Any) -> dict[str, Any]:
        """``{conversation_id, mode: listen|whisper|barge}``: the supervisor's phone rings and
        joins the call (listen hears both, whisper talks to the operator, barge to both)."""

        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.CallSpyIn)
            voice = call_control(self.services)
            mode = req.mode or "listen"
            async with self.services.db.transaction() as session:
                conv = await access_conversation(session, who, req.conversation_id)
                await grants.check_spy(session, who, conv, mode)
            await _pbx(voice.spy(who.id, conv.id, mode))
            return _ok(conversation_id=conv.id, mode=mode)

        return await self._call(sid, run)

    async def on_softphone(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The supervisor's own phone endpoint and, for the browser one, the SIP credentials
        (``omni.domain.softphone``), as the operator window asks for them: listen, whisper and
        barge ring the supervisor's browser when it is their phone."""

        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                user = await session.get(m.User, who.id)
                if user is None:
                    raise NotAuthenticated("log in first")
                return _ok(**softphone.credentials(user, self.services.settings))

        return await self._call(sid, run)

    async def on_call_force_end(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            conv_id = decode(data, p.ConversationIn).conversation_id
            voice = call_control(self.services)
            async with self.services.db.transaction() as session:
                conv = await access_conversation(session, who, conv_id)
            await _pbx(voice.force_end(conv.id, who.id))
            return _ok(conversation_id=conv.id)

        return await self._call(sid, run)

    # --- outbound campaigns: the live view, start / pause --------------------------------

    async def on_campaigns(self, sid: str, data: Any = None) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            decode(data, p.Empty)
            async with self.services.db.transaction() as session:
                return _ok(campaigns=await outbound_stats.live_campaigns(session, who))

        return await self._call(sid, run)

    async def on_campaign_state(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.CampaignStateIn)
            async with self.services.db.transaction() as session:
                campaign = await campaigns.check_set_state(
                    session, who, req.campaign_id, CampaignState(req.state)
                )
                return _ok(campaign=campaigns.campaign_dict(campaign))

        return await self._call(sid, run)

    async def on_campaign_contacts(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            req = decode(data, p.CampaignIn)
            async with self.services.db.transaction() as session:
                return _ok(contacts=await agentless.contact_results(session, who, req.campaign_id))

        return await self._call(sid, run)
