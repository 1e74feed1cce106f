"""Find anything (issue 18): word forms in Russian and English, ranking, filters, scope and
masking — on PostgreSQL (tsvector + GIN) and SQLite (FTS5), through the same ``search``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from omni.db import models as m
from omni.domain import grants
from omni.domain import search as s
from omni.domain.errors import InvalidInput, PermissionDenied
from omni.domain.recordings import find_recordings
from omni.services import Services
from tests import factories as f

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
async def world(svc: Services) -> dict[str, int]:
    """Two groups' queues; op_a in A, op_b in B, sup sees group A, admin everything."""
    async with svc.db.transaction() as db:
        op_a = await f.user(db, "op_a", display_name="Анна Оператор")
        op_b = await f.user(db, "op_b")
        sup = await f.user(db, "sup", m.Role.SUPERVISOR)
        admin = await f.user(db, "admin", m.Role.ADMIN)
        g_a, g_b = m.Group(name="A"), m.Group(name="B")
        db.add_all([g_a, g_b])
        await db.flush()
        db.add(m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id))
        q_a = await f.queue(db, "QA", [op_a], group_id=g_a.id)
        q_b = await f.queue(db, "QB", [op_b], group_id=g_b.id)
        code = await f.result_code(db, "sold", name="Sold")
        ivan = m.Contact(name="Иван Петров", phone="+79161234512", email="ivan.petrov@mail.ru")
        olga = m.Contact(name="Ольга", phone="+79035550011")
        db.add_all([ivan, olga])
        await db.flush()
        c1 = m.Conversation(
            contact_id=ivan.id,
            channel="telegram",
            queue_id=q_a.id,
            status="closed",
            assigned_user_id=op_a.id,
            result_code_id=code.id,
            created_at=T0,
        )
        c2 = m.Conversation(
            contact_id=olga.id,
            channel="widget",
            queue_id=q_b.id,
            status="active",
            assigned_user_id=op_b.id,
            created_at=T0 + timedelta(days=2),
        )
        c3 = m.Conversation(
            contact_id=ivan.id,
            channel="voice",
            medium="voice",
            queue_id=q_a.id,
            status="closed",
            assigned_user_id=op_a.id,
            created_at=T0 + timedelta(days=3),
        )
        db.add_all([c1, c2, c3])
        await db.flush()
        hit = m.Message(
            conversation_id=c1.id, direction="in", body="Где мой заказ? Номер 12345", created_at=T0
        )
        db.add_all(
            [
                m.Message(conversation_id=c1.id, direction="out", body="Добрый день!", created_at=T0),
                hit,
                m.Message(
                    conversation_id=c1.id, direction="note", body="клиент ждёт возврат денег", created_at=T0
                ),
                m.Message(
                    conversation_id=c2.id,
                    direction="in",
                    body="Статус заказа, пожалуйста",
                    created_at=T0 + timedelta(days=2),
                ),
                m.Message(
                    conversation_id=c2.id,
                    direction="in",
                    body="My orders are late, where are the orders?",
                    created_at=T0 + timedelta(days=2),
                ),
                m.Message(
                    conversation_id=c1.id,
                    direction="in",
                    body="the order was paid, order order",
                    created_at=T0,
                ),
                m.Call(
                    conversation_id=c3.id,
                    linkedid="l1",
                    caller_number="+7 916 123-45-12",
                    recording_path="c3.wav",
                    agent_user_id=op_a.id,
                    created_at=T0 + timedelta(days=3),
                ),
            ]
        )
        await db.flush()
        return {
            "op_a": op_a.id,
            "op_b": op_b.id,
            "sup": sup.id,
            "admin": admin.id,
            "q_a": q_a.id,
            "q_b": q_b.id,
            "c1": c1.id,
            "c2": c2.id,
            "c3": c3.id,
            "hit": hit.id,
            "ivan": ivan.id,
            "code": code.id,
        }


async def find(svc: Services, user_id: int, text: str = "", **kw: object) -> s.SearchPage:
    async with svc.db.transaction() as db:
        who = f.who(await db.get_one(m.User, user_id))
        return await s.search(db, who, s.SearchQuery(text=text, **kw))  # type: ignore[arg-type]


def convs(page: s.SearchPage, kind: str = "message") -> list[int | None]:
    return [h.conversation_id for h in page.hits if h.kind == kind]


async def test_a_russian_word_form_finds_the_message_and_highlights_it(
    svc: Services, world: dict[str, int]
) -> None:
    page = await find(svc, world["admin"], "заказа", kinds=("message",))
    assert set(convs(page)) == {world["c1"], world["c2"]}
    mine = next(h for h in page.hits if h.conversation_id == world["c1"])
    assert mine.message_id == world["hit"]
    assert [x.text.lower() for x in mine.snippet if x.hit] == ["заказ"]


async def test_english_forms_and_ranking_put_the_denser_message_first(
    svc: Services, world: dict[str, int]
) -> None:
    page = await find(svc, world["admin"], "orders", kinds=("message",))
    assert len(page.hits) == 2
    assert "order order" in "".join(x.text for x in page.hits[0].snippet)


async def test_an_operator_finds_only_their_queues_and_a_supervisor_their_groups(
    svc: Services, world: dict[str, int]
) -> None:
    assert convs(await find(svc, world["op_a"], "заказ")) == [world["c1"]]
    assert convs(await find(svc, world["op_b"], "заказ")) == [world["c2"]]
    assert convs(await find(svc, world["sup"], "заказ")) == [world["c1"]]
    assert [h.contact_id for h in (await find(svc, world["op_b"], "Иван")).hits] == []


async def test_notes_are_their_own_kind(svc: Services, world: dict[str, int]) -> None:
    page = await find(svc, world["op_a"], "возврат")
    assert [(h.kind, h.conversation_id) for h in page.hits] == [("note", world["c1"])]
    assert (await find(svc, world["op_a"], "возврат", kinds=("message",))).hits == []


async def test_filters_narrow_by_channel_queue_operator_status_code_and_date(
    svc: Services, world: dict[str, int]
) -> None:
    admin = world["admin"]
    assert convs(await find(svc, admin, "заказ", channel="widget")) == [world["c2"]]
    assert convs(await find(svc, admin, "заказ", queue_id=world["q_a"])) == [world["c1"]]
    assert convs(await find(svc, admin, "заказ", operator_id=world["op_b"])) == [world["c2"]]
    assert convs(await find(svc, admin, "заказ", status="closed")) == [world["c1"]]
    assert convs(await find(svc, admin, "заказ", result_code_id=world["code"])) == [world["c1"]]
    assert convs(await find(svc, admin, "заказ", date_from=T0 + timedelta(days=1))) == [world["c2"]]
    assert convs(await find(svc, admin, "заказ", date_to=T0 + timedelta(days=1))) == [world["c1"]]


async def test_phone_digits_find_the_contact_and_the_call_masked_without_pii_view(
    svc: Services, world: dict[str, int]
) -> None:
    async with svc.db.transaction() as db:
        db.add(m.RoleGrant(role=m.Role.OPERATOR.value, grant=grants.PII_VIEW, allowed=False))
    page = await find(svc, world["op_a"], "8 (916) 123")
    contact = next(h for h in page.hits if h.kind == "contact")
    assert contact.contact_id == world["ivan"]
    assert contact.conversation_id in (world["c1"], world["c3"])
    shown = "".join(x.text for x in contact.snippet)
    assert "+79161234512" not in shown and "12" in shown and "ivan.petrov" not in shown
    call = next(h for h in page.hits if h.kind == "call")
    assert call.conversation_id == world["c3"]
    assert "1234512" not in "".join(x.text for x in call.snippet)
    assert "+79161234512" in "".join(
        x.text for x in (await find(svc, world["admin"], "916123")).hits[0].snippet
    )


async def test_phone_digits_are_read_through_their_trigram_indexes_on_postgresql(
    svc: Services, world: dict[str, int]
) -> None:
    """The digits of contacts' phones, phone identities and callers' numbers are matched through
    migration 0043's trigram indexes, not by reading every row (166,666 contacts: ~60–200 ms a
    search, bench/README.md): the search's expression must be the indexed one, character for
    character, or PostgreSQL scans."""
    async with svc.db.transaction() as db:
        if db.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite (embedded, small data) scans")
        # enough rows that an index over every row costs more than the trigram one
        await db.execute(
            text(
                "INSERT INTO contacts (name, phone, custom_fields, tags, blacklisted, created_at) "
                "SELECT 'n' || g, '+7 900 ' || g, '{}', '[]', false, now() FROM generate_series(1, 5000) g"
            )
        )
        await db.execute(
            text(
                "INSERT INTO contact_identities (contact_id, kind, value) "
                "SELECT id, 'phone', phone FROM contacts WHERE name LIKE 'n%'"
            )
        )
        # a call is one per conversation: 5,000 copies of the voice conversation, a call each
        last = (await db.execute(text("SELECT max(id) FROM conversations"))).scalar_one()
        names = [col.name for col in m.Conversation.__table__.columns if col.name != "id"]
        await db.execute(
            text(
                f"INSERT INTO conversations ({', '.join(names)}) SELECT {', '.join(names)} "
                "FROM conversations, generate_series(1, 5000) WHERE id = :c3"
            ),
            {"c3": world["c3"]},
        )
        names = [col.name for col in m.Call.__table__.columns if col.name != "id"]
        copied = {"caller_number": "'+7 900 ' || n.id", "conversation_id": "n.id"}
        await db.execute(
            text(
                f"INSERT INTO calls ({', '.join(names)}) "
                f"SELECT {', '.join(copied.get(x, 't.' + x) for x in names)} FROM calls t, conversations n "
                "WHERE t.conversation_id = :c3 AND n.id > :last"
            ),
            {"c3": world["c3"], "last": last},
        )
        await db.execute(text("ANALYZE contacts, contact_identities, conversations, calls"))
        for index in s.DIGITS_INDEXES:  # new rows wait in GIN's pending list until a vacuum
            await db.execute(text(f"SELECT gin_clean_pending_list('{index}'::regclass)"))
        # a scan of 5,000 rows still costs less than a trigram index's start: only scans are off,
        # a plain index read of every row (the phone btree) costs more than the trigram one
        await db.execute(text("SET LOCAL enable_seqscan = off"))
        await db.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        columns = (m.Contact.phone, m.ContactIdentity.value, m.Call.caller_number)
        for column, index in zip(columns, s.DIGITS_INDEXES, strict=True):
            for digits in ("916123", "8916123"):
                stmt = select(column).where(s._digits_match(column, digits))
                # as the search sends it: the pattern a parameter, the plan a generic one (what a
                # prepared statement gets after five runs)
                sql = stmt.compile(db.get_bind())
                name = f"digits_{index}_{digits}"
                await db.execute(text(f"PREPARE {name} AS {sql}"))
                values = ", ".join(f"'{sql.params[p]}'" for p in sql.positiontup or ())
                plan = "\n".join(await db.scalars(text(f"EXPLAIN EXECUTE {name}({values})")))
                assert index in plan, plan
    page = await find(svc, world["admin"], "916 123")
    assert [h.contact_id for h in page.hits if h.kind == "contact"] == [world["ivan"]]


async def test_calls_are_found_by_operator_and_result_code(svc: Services, world: dict[str, int]) -> None:
    assert convs(await find(svc, world["admin"], "Анна"), "call") == [world["c3"]]
    assert world["c1"] not in convs(await find(svc, world["admin"], "Анна"), "call")


async def test_paging_and_bad_input(svc: Services, world: dict[str, int]) -> None:
    first = await find(svc, world["admin"], "заказ", kinds=("message",), limit=1)
    second = await find(svc, world["admin"], "заказ", kinds=("message",), limit=1, offset=1)
    assert first.has_more and not second.has_more
    assert first.hits[0].message_id != second.hits[0].message_id
    for bad in (
        {"text": ""},
        {"text": "x" * 201},
        {"text": "a", "kinds": ("spam",)},
        {"text": "a", "limit": 0},
        {"text": "a", "extra": {"label": "vip"}},
    ):
        with pytest.raises(InvalidInput):
            await find(svc, world["admin"], **bad)  # type: ignore[arg-type]


async def test_a_registered_filter_narrows_the_hits(svc: Services, world: dict[str, int]) -> None:
    s.register_filter("only_conv", lambda v: [m.Conversation.id == int(v)])
    try:
        page = await find(svc, world["admin"], "заказ", extra={"only_conv": str(world["c2"])})
    finally:
        s._FILTERS.pop("only_conv")
    assert convs(page) == [world["c2"]]


async def test_the_label_filter_finds_only_labelled_conversations(
    svc: Services, world: dict[str, int]
) -> None:
    from omni.domain.labels import do_set_labels

    async with svc.db.transaction() as db:
        label = m.Label(name="vip", color="#aa0000")
        db.add(label)
        await db.flush()
        await do_set_labels(db, await db.get_one(m.Conversation, world["c2"]), add=[label.id])
        label_id = label.id
    page = await find(svc, world["admin"], "заказ", extra={"label": str(label_id)})
    assert convs(page) == [world["c2"]]
    assert convs(await find(svc, world["admin"], "заказ", extra={"label": str(label_id + 1)})) == []


async def test_recordings_by_phone_operator_and_date_in_scope(svc: Services, world: dict[str, int]) -> None:
    async with svc.db.transaction() as db:
        admin = f.who(await db.get_one(m.User, world["admin"]))
        op_b = f.who(await db.get_one(m.User, world["op_b"]))
        rows, more = await find_recordings(db, admin, phone="916 123")
        assert [r.conversation_id for r in rows] == [world["c3"]] and not more
        assert (await find_recordings(db, admin, operator_id=world["op_b"]))[0] == []
        assert (await find_recordings(db, admin, date_from=T0 + timedelta(days=4)))[0] == []
        assert (await find_recordings(db, op_b, phone="916"))[0] == []
        auditor = await f.user(db, "aud", m.Role.AUDITOR)
        with pytest.raises(PermissionDenied):
            await s.search(db, f.who(auditor), s.SearchQuery(text="x"))


async def test_a_transferred_conversation_is_found_in_its_new_queue_and_by_whom_it_is_kept_for(
    svc: Services, world: dict[str, int]
) -> None:
    """PostgreSQL narrows by a copy of the queue on each message (migration 0040_searchperf18's
    triggers): it follows a transfer, covers messages written afterwards, and an operator still
    finds a conversation assigned or kept for them outside their queues."""
    op_a, op_b, c1, c2 = world["op_a"], world["op_b"], world["c1"], world["c2"]
    async with svc.db.transaction() as db:
        (await db.get_one(m.Conversation, c2)).queue_id = world["q_a"]
    assert sorted(convs(await find(svc, op_a, "заказ"))) == [c1, c2]
    assert convs(await find(svc, op_b, "заказ")) == [c2]  # still its assignee
    async with svc.db.transaction() as db:
        conv = await db.get_one(m.Conversation, c2)
        conv.assigned_user_id, conv.preferred_user_id = None, op_b
    assert convs(await find(svc, op_b, "заказ")) == [c2]
    async with svc.db.transaction() as db:
        (await db.get_one(m.Conversation, c2)).preferred_user_id = None
        db.add(m.Message(conversation_id=c2, direction="in", body="ещё один заказ", created_at=T0))
    assert convs(await find(svc, op_b, "заказ")) == []
    assert convs(await find(svc, world["sup"], "заказ", queue_id=world["q_b"])) == []
    assert sorted(convs(await find(svc, op_a, "заказ", queue_id=world["q_a"]))) == [c1, c2, c2]


@pytest.mark.parametrize("matches", [1.0, 1e9], ids=["few-matches-gin", "many-matches-walk"])
async def test_both_ways_to_the_newest_matches_find_the_same_hits_in_scope(
    svc: Services, world: dict[str, int], monkeypatch: pytest.MonkeyPatch, matches: float
) -> None:
    """PostgreSQL reads every match through the GIN index when the planner expects few, and
    walks the newest messages per visible queue when it expects many (omni.domain.search_pg);
    scope, filters, the kept conversations and paging come out the same either way."""
    from omni.domain import search_pg

    async def guess(_session: object, _words: str) -> tuple[float, float]:
        return matches, 1e6

    monkeypatch.setattr(search_pg, "estimate", guess)
    op_a, op_b, c1, c2 = world["op_a"], world["op_b"], world["c1"], world["c2"]
    assert convs(await find(svc, op_a, "заказ")) == [c1]
    assert convs(await find(svc, world["sup"], "заказ", sort="newest")) == [c1]
    assert convs(await find(svc, op_b, "заказ", queue_id=world["q_a"])) == []
    assert sorted(convs(await find(svc, world["admin"], "заказ"))) == [c1, c2]
    assert convs(await find(svc, world["admin"], "заказ", queue_id=world["q_b"])) == [c2]
    # a date range in scope: each visible queue's range walked on its own
    day = timedelta(days=1)
    assert convs(await find(svc, op_a, "заказ", date_to=T0 + day)) == [c1]
    assert convs(await find(svc, op_a, "заказ", date_from=T0 + day)) == []
    assert convs(await find(svc, world["sup"], "заказ", date_from=T0 - day)) == [c1]
    assert sorted(convs(await find(svc, world["admin"], "заказ", date_from=T0 - day))) == [c1, c2]
    async with svc.db.transaction() as db:
        (await db.get_one(m.Conversation, c2)).preferred_user_id = op_a
    assert sorted(convs(await find(svc, op_a, "заказ"))) == [c1, c2]
    assert convs(await find(svc, op_a, "заказ", date_from=T0 + day)) == [c2]
    assert sorted(convs(await find(svc, op_a, "заказ", date_from=T0 - day))) == [c1, c2]
    assert convs(await find(svc, op_a, "заказ", queue_id=world["q_b"])) == [c2]
    first = await find(svc, world["admin"], "order", kinds=("message",), limit=1)
    second = await find(svc, world["admin"], "order", kinds=("message",), limit=1, offset=1)
    assert first.has_more and first.hits[0].message_id != second.hits[0].message_id
