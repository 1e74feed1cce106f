"""``omni.lease`` on a real PostgreSQL: one holder among contenders, a lost connection means a
lost lease (and a later re-acquire), a released lease moves at once; SQLite always holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from sqlalchemy.engine import make_url

from omni.lease import Lease, Leases
from tests.helpers import until

CHECK = 0.05


class Owner:
    """Records what a lease's hooks were told, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    async def acquired(self) -> None:
        self.log.append("acquired")

    async def lost(self) -> None:
        self.log.append("lost")


@asynccontextmanager
async def node(url: str, name: str) -> AsyncIterator[Leases]:
    leases = Leases(url, node=name, check_seconds=CHECK)
    await leases.start()
    try:
        yield leases
    finally:
        await leases.stop()


def want(leases: Leases, name: str, owner: Owner) -> Lease:
    return leases.lease(name, on_acquired=owner.acquired, on_lost=owner.lost)


async def kill_connection_of(url: str, node_name: str) -> int:
    """What a PostgreSQL restart or a broken network does to the node's lease connection.

    Only in this test's database: the other workers' tests run nodes of the same names on the
    same server, and killing theirs freed a lock under a test that had just seen it held."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1 AND datname = current_database()",
                f"omni-lease {node_name}",
            )
        )
    finally:
        await conn.close()


async def test_two_contenders_one_holder_and_release_moves_it_at_once(pg_url: str) -> None:
    a_owner, b_owner = Owner(), Owner()
    async with node(pg_url, "a") as a, node(pg_url, "b") as b:
        lease_a = want(a, "voice:ami", a_owner)
        await lease_a.start()
        lease_b = want(b, "voice:ami", b_owner)
        await lease_b.start()
        assert lease_a.held and not lease_b.held, "the first node owns it; the second stands by"
        assert a_owner.log == ["acquired"] and b_owner.log == []
        assert await b.holder("voice:ami") == "a"
        assert a.held() == {"voice:ami": True} and b.held() == {"voice:ami": False}
        # Another key is independent.
        other = Owner()
        lease_other = want(b, "telegram:poll:1", other)
        await lease_other.start()
        assert lease_other.held
        await lease_a.stop()
        assert a_owner.log == ["acquired", "lost"]
        await until(lambda: lease_b.held, what="the standby taking the released lease")
        assert b_owner.log == ["acquired"]
        assert await a.holder("voice:ami") == "b"


async def test_connection_lost_means_lease_lost_then_reacquired(pg_url: str) -> None:
    owner = Owner()
    async with node(pg_url, "solo") as leases:
        lease = want(leases, "voice:ami", owner)
        await lease.start()
        assert lease.held
        assert await kill_connection_of(pg_url, "solo") == 1
        await until(lambda: "lost" in owner.log, what="the holder noticing its connection is gone")
        await until(lambda: lease.held and lease.acquisitions == 2, what="the lease taken again")
        assert owner.log == ["acquired", "lost", "acquired"]


async def test_connection_lost_lets_the_standby_take_over(pg_url: str) -> None:
    a_owner, b_owner = Owner(), Owner()
    async with node(pg_url, "a") as a, node(pg_url, "b") as b:
        lease_a = want(a, "voice:ami", a_owner)
        await lease_a.start()
        lease_b = want(b, "voice:ami", b_owner)
        await lease_b.start()
        await kill_connection_of(pg_url, "a")
        await until(lambda: "lost" in a_owner.log, what="the old holder giving the lease up")
        await until(lambda: lease_a.held or lease_b.held, what="someone holding the lease again")
        assert not (lease_a.held and lease_b.held), "two holders at once"
        holder = await a.holder("voice:ami")
        assert holder == ("a" if lease_a.held else "b")


async def test_embedded_mode_always_holds(tmp_path: Path) -> None:
    owner = Owner()
    leases = Leases(f"sqlite+aiosqlite:///{tmp_path / 'omni.sqlite3'}", node="embedded")
    await leases.start()
    lease = want(leases, "voice:ami", owner)
    await lease.start()
    assert lease.held and owner.log == ["acquired"]
    assert await leases.holder("voice:ami") == "embedded"
    await leases.stop()
    assert owner.log == ["acquired", "lost"] and not lease.held
