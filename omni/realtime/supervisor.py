"""``/supervisor``: live monitoring and supervisor actions, scoped to the supervisor's groups."""

from __future__ import annotations

from typing import Any

from socketio.exceptions import ConnectionRefusedError as Refused

from omni.db import models as m
from omni.domain import presence
from omni.domain.auth import Principal
from omni.domain.errors import NotAuthenticated
from omni.realtime import BaseNamespace, _int, _ok, rooms


class SupervisorNamespace(BaseNamespace):
    roles = (m.Role.SUPERVISOR, m.Role.ADMIN)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        try:
            who = await self._authenticate(environ, auth_data)
        except NotAuthenticated as exc:
            raise Refused(exc.message, {"error": exc.code}) from exc
        await self.save_session(sid, {"who": who})
        queues, users = await self._visible(who)
        if queues is None:
            await self.enter_room(sid, rooms.ALL)
            return
        for qid in queues:
            await self.enter_room(sid, rooms.queue(qid))
        for uid in users or ():
            await self.enter_room(sid, rooms.user(uid))

    async def on_set_operator_status(self, sid: str, data: Any) -> dict[str, Any]:
        async def run(who: Principal) -> dict[str, Any]:
            _, users = await self._visible(who)
            async with self.services.db.transaction() as session:
                p = await presence.check_set_status(
                    session,
                    who.id,
                    who.role,
                    _int(data, "user_id"),
                    str(data.get("status", "")),
                    str(data.get("reason", "")),
                    supervised=users,
                )
                status = await session.get(m.OperatorStatus, p.status_id)
                assert status is not None
                return _ok(presence=presence.presence_dict(p, status))

        return await self._call(sid, run)
