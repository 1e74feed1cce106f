"""Listen / whisper / barge at group scope (issue 16): a supervisor whose listen grant is held
at ``group`` joins the calls of operators in the groups they supervise and is refused (403
with a message, no ChanSpy originated) on a call of another operator of the same queue —
against the loopback AMI emulator, over the real ``/supervisor`` socket."""

from __future__ import annotations

from sqlalchemy import select

from omni.db import models as m
from omni.domain import grants
from omni.domain.auth import Principal
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import (  # noqa: F401 (fixtures)
    actions,
    emulator,
    fresh_emulator,
    make_world,
    server,
)
from tests.conftest import LiveServer


def _spies(emu: AmiEmulator) -> list[dict[str, object]]:
    return [a for a in actions(emu, "Originate") if a.get("Application") == "ChanSpy"]


async def test_listen_at_group_scope_joins_calls_of_group_operators_only(
    server: LiveServer,  # noqa: F811
    emulator: AmiEmulator,  # noqa: F811
) -> None:
    async with make_world(server, ["op", "op2", "sup"], connect=["op", "op2", "sup"]) as w:
        async with server.services.db.transaction() as s:
            team = m.Group(name=f"team{w.queue_id}")
            s.add(team)
            await s.flush()
            s.add(m.GroupMember(group_id=team.id, user_id=w.ops["op"]))  # op2 is in no group of sup's
            s.add(m.SupervisorScope(supervisor_id=w.ops["sup"], group_id=team.id))
            admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
            assert admin is not None
            root = Principal(admin.id, admin.username, m.Role.ADMIN)
            await grants.check_set_role_grants(s, root, "supervisor", {}, {grants.CALL_LISTEN: grants.GROUP})
        emulator.phones[w.ext["op"]] = "answer"
        emulator.phones[w.ext["op2"]] = "answer"
        emulator.incoming_call("+79161230011", inbox=w.inbox_id)
        taken = await w.clients["op"].wait_for("conversation.accepted", assigned_user_id=w.ops["op"])
        ours = int(taken["data"]["id"])
        emulator.incoming_call("+79161230012", inbox=w.inbox_id)  # op is busy: op2 takes it
        taken = await w.clients["op2"].wait_for("conversation.accepted", assigned_user_id=w.ops["op2"])
        theirs = int(taken["data"]["id"])
        assert ours != theirs
        our_leg = emulator.agent_leg(w.ext["op"])
        assert our_leg is not None

        sup = w.clients["sup"]
        refused = await sup.call("call_spy", {"conversation_id": theirs, "mode": "listen"})
        assert not refused["ok"] and refused["error"] == "forbidden", refused
        assert refused["detail"] == "your role may listen to calls only of operators in your groups"
        assert _spies(emulator) == []  # nothing was originated

        allowed = await sup.call("call_spy", {"conversation_id": ours, "mode": "listen"})
        assert allowed["ok"], allowed
        spy = _spies(emulator)[-1]
        assert spy["Channel"] == f"PJSIP/{w.ext['sup']}"
        assert str(spy["Data"]).split(",")[0] == our_leg.name

        # Whisper was left at its default scope (every call the supervisor sees).
        whisper = await sup.call("call_spy", {"conversation_id": theirs, "mode": "whisper"})
        assert whisper["ok"], whisper
        assert len(_spies(emulator)) == 2

        async with server.services.db.transaction() as s:
            rights = await grants.spy_rights(s, Principal(w.ops["sup"], "sup", m.Role.SUPERVISOR))
        assert rights == {
            "modes": {"listen": "group", "whisper": "all", "barge": "all"},
            "group_user_ids": [w.ops["op"]],
        }
