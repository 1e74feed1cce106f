"""Celery: the webhook delivery task, the report rollups' catch-up and the in-process worker of
the embedded mode.

Run a worker process with ``celery -A omni.worker:celery_app worker``. Each task takes ids only
and runs one domain function (``webhooks.do_deliver``, ``reports.driver.catch_up``,
``reports.mailing.send_due``, ``retention.purge``). Periodic jobs (the rollup catch-up
``omni.reports.catch_up`` every minute, the report mailing round ``omni.reports.send_due``, the
hourly retention pass ``omni.retention.purge``) are put on the queue by
``celery -A omni.worker:celery_app beat``; the embedded mode runs them in process instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from celery import Celery
from celery._state import _set_task_join_will_block, task_join_will_block

from omni.db import Database
from omni.domain import retention, webhooks
from omni.domain.outbound import scheduler as outbound_scheduler
from omni.domain.reports import driver as report_driver
from omni.domain.reports import mailing
from omni.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _broker(settings: Settings) -> str:
    return settings.redis_url or "memory://"


celery_app = Celery("omni")


def configure(settings: Settings) -> Celery:
    """Point the Celery app at this install's broker (Redis, or memory when embedded)."""
    celery_app.conf.update(
        broker_url=_broker(settings),
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_default_queue=f"{settings.redis_prefix}.default",
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"global_keyprefix": f"{settings.redis_prefix}:celery:"},
    )
    celery_app.conf.beat_schedule = {
        **(celery_app.conf.beat_schedule or {}),
        "omni.reports.catch_up": {"task": "omni.reports.catch_up", "schedule": REPORTS_CATCH_UP_SECONDS},
        "omni.retention.purge": {
            "task": "omni.retention.purge",
            "schedule": retention.PURGE_SECONDS,
            "options": {"expires": retention.PURGE_SECONDS},
        },
        "omni.outbound.tick": {
            "task": "omni.outbound.tick",
            "schedule": OUTBOUND_TICK_SECONDS,
            "options": {"expires": OUTBOUND_TICK_SECONDS},
        },
    }
    # Celery caches the producer connection pool and the queue table on first use; without
    # this a second configure() in the same process (another app, a test) would keep
    # publishing to the first broker, key prefix and queue.
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)
    _Runtime.settings = settings
    _schedule_mailing(settings)
    return celery_app


class _Runtime:
    """Per worker thread: an event loop and a database engine bound to it."""

    settings: Settings | None = None
    local = threading.local()

    @classmethod
    def get(cls) -> tuple[asyncio.AbstractEventLoop, Database, Settings]:
        settings: Settings = cls.settings or get_settings()
        if getattr(cls.local, "loop", None) is None:
            cls.local.loop = asyncio.new_event_loop()
            cls.local.db = Database(settings.effective_database_url, pool_size=4)
        return cls.local.loop, cls.local.db, settings


@celery_app.task(name="omni.webhooks.deliver", acks_late=True)  # type: ignore[untyped-decorator]
def deliver_webhook(delivery_id: int) -> None:
    loop, db, settings = _Runtime.get()
    outcome = loop.run_until_complete(
        webhooks.do_deliver(db, delivery_id, settings.webhook, base_url=settings.public_base_url)
    )
    if outcome.retry_in is not None:
        deliver_webhook.apply_async((delivery_id,), countdown=max(0.0, outcome.retry_in))


@celery_app.task(name="omni.reports.send_due", ignore_result=True)  # type: ignore[untyped-decorator]
def send_due_reports() -> None:
    """Celery beat's entry: mail the report schedules that are due (safe on many nodes)."""
    loop, db, settings = _Runtime.get()
    loop.run_until_complete(mailing.send_due(db, settings.smtp, settings.public_base_url))


def _schedule_mailing(settings: Settings) -> None:
    """The beat entry for ``celery -A omni.worker:celery_app beat`` (embedded mode runs the
    same function in process, ``omni.app``)."""
    celery_app.conf.beat_schedule = {
        **(celery_app.conf.beat_schedule or {}),
        "omni.reports.send_due": {
            "task": "omni.reports.send_due",
            "schedule": settings.smtp.check_seconds,
            # A round nobody ran in time is dropped, not queued up behind a stopped worker.
            "options": {"expires": settings.smtp.check_seconds},
        },
    }


REPORTS_CATCH_UP_SECONDS = 60.0
"""Beat period of the rollup catch-up (app nodes also run it in process; passes never overlap)."""


@celery_app.task(name="omni.reports.catch_up", acks_late=True)  # type: ignore[untyped-decorator]
def reports_catch_up() -> int | None:
    """Bring the report rollups up to the event log (after downtime: everything since)."""
    loop, db, _ = _Runtime.get()
    result: int | None = loop.run_until_complete(report_driver.catch_up(db))
    return result


@celery_app.task(name="omni.retention.purge", ignore_result=True)  # type: ignore[untyped-decorator]
def purge_retention() -> dict[str, int]:
    """Beat's entry: purge what the retention policies no longer keep (safe on many nodes)."""
    loop, db, settings = _Runtime.get()
    result: dict[str, int] = loop.run_until_complete(retention.purge(db, settings))
    return result


OUTBOUND_TICK_SECONDS = 10.0
"""Beat period of the campaign scheduler's tick (app nodes run it in process, woken early by
freed operators; this one keeps preview campaigns moving when no node loop does)."""


@celery_app.task(name="omni.outbound.tick", ignore_result=True)  # type: ignore[untyped-decorator]
def outbound_tick() -> int:
    """One scheduler pass from the worker. It has no channel adapters, so it opens preview
    attempts only (they need no channel until the operator dials); the app nodes' loops place
    the rest (``omni.domain.outbound.scheduler``)."""
    loop, db, _ = _Runtime.get()
    result: int = loop.run_until_complete(outbound_scheduler.tick(db))
    return result


def enqueue_deliveries(ids: list[int]) -> None:
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)


class EmbeddedWorker:
    """A Celery worker in a thread with the in-memory broker (embedded mode only)."""

    def __init__(self) -> None:
        self._controller: Any = None
        self._thread: threading.Thread | None = None
        self._join_blocked = False

    def start(self) -> None:
        self._join_blocked = task_join_will_block()
        self._controller = celery_app.WorkController(
            pool_cls="solo",
            concurrency=1,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        self._thread = threading.Thread(target=self._controller.start, name="celery-embedded", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop(in_sighandler=False)
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Starting, the worker marks the whole process as one whose code must not wait for a task
        # result (celery's process-wide flag: "Never call result.get() within a task!"). Stopped,
        # this process is no worker any more: waiting for a result works again, as before start.
        _set_task_join_will_block(self._join_blocked)


configure(get_settings())
