"""The composition root: ``create_app(settings)`` wires everything, nothing else does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import socketio
from litestar import Litestar
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from bots import runner as bot_runner
from channels import telegram as telegram_channel
from channels import voice as voice_channel
from channels import widget as widget_channel
from omni import __version__, heap, realtime, web
from omni.aio import stop_tasks
from omni.api import (
    admin,
    admin_calendars,
    admin_grants,
    admin_ldap,
    admin_retention,
    admin_wallboard,
    campaign_stats,
    contacts_workspace,
    core,
    exports,
    health,
    my_stats,
    recordings,
    report_schedules,
    reports,
)
from omni.api import automation as automation_http
from omni.api import bots as bots_http
from omni.api import campaigns as campaigns_http
from omni.api import crm as crm_http
from omni.api import dnc as dnc_http
from omni.api import lists as lists_http
from omni.api import media as media_http
from omni.api import organise as organise_http
from omni.api import qa as qa_http
from omni.api import search as search_http
from omni.api import sla as sla_http
from omni.api.csrf import CsrfMiddleware
from omni.api.deps import domain_error_handler, http_error_handler, validation_error_handler
from omni.api.edge import document_errors, guard_input
from omni.channels import ChannelSetup, SetupChannel
from omni.db.migrate import upgrade_async
from omni.domain import crm, retention, webhooks
from omni.domain.automation import RuleRunner
from omni.domain.automation import safe_regex as automation_regex
from omni.domain.errors import DomainError
from omni.domain.outbound.scheduler import Scheduler as OutboundScheduler
from omni.domain.reports import driver as report_driver
from omni.domain.reports import mailing
from omni.metrics import ASSIGNMENTS, EVENTS_DISPATCHED
from omni.services import Services, build_services
from omni.settings import Settings
from omni.worker import EmbeddedWorker, configure, enqueue_deliveries

log = logging.getLogger(__name__)

WIDGET_DIST = Path(__file__).resolve().parents[1] / "widget" / "dist"
"""Built by the README's commands (npm ci + npm run build in widget/)."""

CHANNELS: list[SetupChannel] = [widget_channel.setup, telegram_channel.setup, voice_channel.setup]
"""The channel entry points, in the order their relay sinks run (``docs/adapters.md``)."""


def plug_channels(
    services: Services, sio: socketio.AsyncServer, entry_points: list[SetupChannel]
) -> list[ChannelSetup]:
    """Call each channel's ``setup`` and plug in what it returns; a channel that is off in
    these settings returns ``None`` and is skipped."""
    plugged: list[ChannelSetup] = []
    live = realtime.live_fanout(sio)
    for entry_point in entry_points:
        channel = entry_point(services, sio)
        if channel is None:
            continue
        services.adapters.register(channel.adapter)
        services.relay.post_commit_sinks.extend(channel.post_commit_sinks)
        for namespace in channel.namespaces:
            sio.register_namespace(namespace)
        if live is not None:
            live.replay_hooks.extend(channel.replay_sinks)
            live.sync_namespaces.extend(channel.sync_namespaces)
        plugged.append(channel)
    return plugged


async def _sweep_webhooks(services: Services) -> None:
    """Re-enqueue deliveries whose Celery message was lost (broker restart, crash)."""
    while True:
        await asyncio.sleep(5)
        try:
            ids = await webhooks.stale_due(services.db)
            if ids:
                log.info("re-enqueueing %d overdue webhook deliveries", len(ids))
                await asyncio.to_thread(enqueue_deliveries, ids)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook sweep failed")


async def _send_due_reports(services: Services) -> None:
    """Embedded mode's stand-in for Celery beat: mail the due report schedules in process."""
    settings = services.settings
    while True:
        await asyncio.sleep(settings.smtp.check_seconds)
        try:
            await mailing.send_due(services.db, settings.smtp, settings.public_base_url)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("report mailing round failed")


def create_app(settings: Settings | None = None) -> socketio.ASGIApp:
    """Build the ASGI app: Litestar (REST, pages) wrapped by the Socket.IO server."""
    settings = settings or Settings()
    settings.effective_secret_key()  # fail at start, with the variable's name, if missing
    services = build_services(settings)
    sio = realtime.build_server(settings)
    realtime.register(sio, services)
    bot_runner.install(services.db)
    channels = plug_channels(services, sio, CHANNELS)
    configure(settings)

    in_flight: set[asyncio.Future[None]] = set()

    def enqueue_soon(ids: list[int]) -> None:
        # The broker call blocks (Redis round trip); keep it off the event loop.
        future = asyncio.get_running_loop().run_in_executor(None, enqueue_deliveries, ids)
        in_flight.add(future)
        future.add_done_callback(in_flight.discard)

    services.relay.tx_sinks.append(webhooks.fanout_sink(enqueue_soon))
    services.relay.tx_sinks.append(RuleRunner(enqueue_soon))  # automation rules (docs/automation.md)
    services.relay.post_commit_sinks.append(crm.OfferPrefetch(services.db))

    async def count_events(events: Any) -> None:
        EVENTS_DISPATCHED.inc(len(events))

    services.relay.sinks.append(count_events)
    services.engine.on_assigned = lambda assigned: ASSIGNMENTS.inc(len(assigned))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.embedded:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            await upgrade_async(settings.effective_database_url)
        worker = EmbeddedWorker() if settings.embedded else None
        if worker:
            worker.start()
        await services.start()
        live = realtime.live_fanout(sio)  # replays what a Redis outage kept from this node
        if live is not None:
            await live.start()
        sweeper = asyncio.create_task(_sweep_webhooks(services))
        mailer = asyncio.create_task(_send_due_reports(services)) if settings.embedded else None
        # Embedded mode's stand-in for beat's omni.retention.purge (docs/retention.md).
        purger = (
            asyncio.create_task(retention.run_loop(services.db, settings), name="retention")
            if settings.embedded
            else None
        )
        # Every node runs it; the cursor row lets one pass run at a time (docs/reports.md).
        rollups = asyncio.create_task(report_driver.run_loop(services.db), name="report-rollups")
        # Every node runs it too; target and operator row locks keep the nodes apart (docs/outbound.md).
        outbound = OutboundScheduler(services, poll_seconds=settings.routing.outbound_seconds)
        if settings.routing.outbound_seconds > 0:
            await outbound.start()
        heap.freeze_startup_heap()
        try:
            yield
        finally:
            heap.thaw_heap()
            await outbound.stop()
            # Bounded: a loop that swallows its cancellation must not keep the node (and the
            # relay, stopped below with the services) running after SIGTERM.
            await stop_tasks(sweeper, rollups, mailer, purger)
            if live is not None:
                await live.stop()
            imports_running = app.state.get("import_runner")
            if imports_running is not None:  # their jobs end as failed ("interrupted"), not stuck
                await imports_running.stop()
            await services.stop()
            automation_regex.shutdown()  # the rules' regex worker process, if one was started
            if worker:
                await asyncio.to_thread(worker.stop)

    litestar_app = Litestar(
        route_handlers=[
            health.healthz,
            health.readyz,
            health.leases,
            health.metrics,
            core.AuthController,
            core.MeController,
            core.PresenceController,
            core.ConversationController,
            core.InboxMessageController,
            core.FileController,
            recordings.RecordingController,
            *(route for channel in channels for route in channel.routes),
            create_static_files_router(path="/widget", directories=[WIDGET_DIST], name="widget"),
            core.OfferController,
            core.CallbackController,
            core.EventController,
            *admin.CONTROLLERS,
            *automation_http.CONTROLLERS,
            *bots_http.CONTROLLERS,
            *reports.CONTROLLERS,
            *exports.CONTROLLERS,
            *lists_http.CONTROLLERS,
            *report_schedules.CONTROLLERS,
            *admin_wallboard.CONTROLLERS,
            *admin_ldap.CONTROLLERS,
            *admin_retention.CONTROLLERS,
            *admin_calendars.CONTROLLERS,
            *crm_http.CONTROLLERS,
            *contacts_workspace.CONTROLLERS,
            *admin_grants.CONTROLLERS,
            *my_stats.CONTROLLERS,
            *campaigns_http.CONTROLLERS,
            *campaign_stats.CONTROLLERS,
            *dnc_http.CONTROLLERS,
            *media_http.CONTROLLERS,
            *sla_http.CONTROLLERS,
            *search_http.CONTROLLERS,
            *organise_http.CONTROLLERS,
            *qa_http.CONTROLLERS,
            *web.route_handlers(),
        ],
        template_config=web.template_config(),
        exception_handlers={
            **web.EXCEPTION_HANDLERS,
            DomainError: domain_error_handler,
            ValidationException: validation_error_handler,
            HTTPException: http_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Omni", version=__version__, path="/schema", render_plugins=[SwaggerRenderPlugin()]
        ),
        lifespan=[lifespan],
        before_request=guard_input,  # NUL and runaway JSON nesting: a 400, never a 500
        middleware=[CsrfMiddleware],
        request_max_body_size=settings.widget.max_upload_bytes + 1024 * 1024,
        debug=settings.debug,
    )
    document_errors(litestar_app)  # every /api/ operation lists the refusals it can answer
    litestar_app.state.services = services
    litestar_app.state.settings = settings
    litestar_app.state.sio = sio
    return socketio.ASGIApp(sio, other_asgi_app=litestar_app, socketio_path="socket.io")
