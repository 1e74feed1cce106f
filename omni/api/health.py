"""Liveness, readiness (database, Redis and the channel links that report it) and Prometheus metrics."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec
import redis.asyncio as aioredis
from litestar import Request, Response, get
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from omni.api.deps import services_of
from omni.db import models as m
from omni.lease import holders
from omni.metrics import CONVERSATIONS, LEASES_HELD, OPERATORS, REGISTRY, WEBHOOKS_PENDING


@runtime_checkable
class ReportsReadiness(Protocol):
    """A channel adapter whose link to the outside can be down while the app runs (the voice
    adapter's AMI link): ``readiness()`` is ``"ok"`` or ``"error: <why>"``."""

    kind: str

    def readiness(self) -> str: ...


class HealthOut(msgspec.Struct):
    status: str


class ReadyOut(msgspec.Struct):
    """``checks``: ``database``, ``redis`` and each adapter reporting readiness → ``"ok"``,
    ``"not configured …"`` or ``"error: <why>"``; 503 unless all are ok or not configured."""

    ready: bool
    checks: dict[str, str]


@get("/healthz", include_in_schema=False)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[ReadyOut]:
    services = services_of(request)
    checks: dict[str, str] = {}
    try:
        async with services.db.transaction() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if services.settings.redis_url:
        client = aioredis.from_url(services.settings.redis_url, socket_timeout=2)
        try:
            await client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        finally:
            await client.aclose()
    else:
        checks["redis"] = "not configured (embedded mode)"
    # Registered adapters only: voice is checked when it is enabled, so a node that must place
    # calls is not "ready" while Asterisk is unreachable (offers would ring no phone).
    for adapter in services.adapters.all():
        if isinstance(adapter, ReportsReadiness):
            checks[adapter.kind] = adapter.readiness()
    # A standby node (another node runs the AMI link) serves everything else: it is ready.
    ready = all(v == "ok" or v.startswith(("not configured", "standby")) for v in checks.values())
    return Response(
        ReadyOut(ready=ready, checks=checks), status_code=200 if ready else HTTP_503_SERVICE_UNAVAILABLE
    )


class LeaseOut(msgspec.Struct):
    held: bool
    """Whether this node holds it."""
    holder: str | None
    """The node that holds it now (``Services.node_id``), whichever it is; ``None``: nobody
    (its holder died and a standby is about to take it)."""


class LeasesOut(msgspec.Struct):
    node: str
    leases: dict[str, LeaseOut]


@get("/leases", include_in_schema=False)
async def leases(request: Request[Any, Any, Any]) -> LeasesOut:
    """What this node wants to own alone (``omni.lease``: ``voice:ami``,
    ``telegram:poll:<bot id>``), whether it holds each and who does: which node runs the AMI
    link or polls a bot, asked of any node."""
    services = services_of(request)
    wanted = services.leases.held() if services.leases is not None else {}
    if services.db.is_sqlite:
        who = {name: services.node_id if held else None for name, held in wanted.items()}
    else:
        async with services.db.transaction() as session:
            who = await holders(session, list(wanted))
    return LeasesOut(
        node=services.node_id,
        leases={name: LeaseOut(held=held, holder=who.get(name)) for name, held in wanted.items()},
    )


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = services_of(request)
    async with services.db.transaction() as session:
        CONVERSATIONS.clear()
        for status, count in (
            await session.execute(
                select(m.Conversation.status, func.count())
                .where(m.Conversation.status.in_(m.OPEN_STATUSES))
                .group_by(m.Conversation.status)
            )
        ).all():
            CONVERSATIONS.labels(status=status).set(count)
        OPERATORS.clear()
        for activity, count in (
            await session.execute(
                select(m.OperatorPresence.effective_code, func.count()).group_by(
                    m.OperatorPresence.effective_code
                )
            )
        ).all():
            OPERATORS.labels(activity=activity).set(count)
        pending = await session.scalar(
            select(func.count()).select_from(m.WebhookDelivery).where(m.WebhookDelivery.state == "pending")
        )
        WEBHOOKS_PENDING.set(pending or 0)
    LEASES_HELD.clear()
    for name, held in (services.leases.held() if services.leases is not None else {}).items():
        LEASES_HELD.labels(lease=name).set(1 if held else 0)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
