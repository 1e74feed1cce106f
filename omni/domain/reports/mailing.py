"""Sending scheduled reports by e-mail: render with the owner's scope, attach, mail, plan next.

``send_due`` is what the Celery beat task (``omni.reports.send_due``) and the embedded mode's
in-process loop call. Several nodes may run it at once: a runner *claims* each due schedule
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two runners never pick the same row; SQLite is
one process with serialised transactions), commits the claim, and only then renders and talks
to the mail server, so no database lock is held during network I/O. The result is written in a
second transaction: on success the next slot is planned from the slot just sent (never from
"now", so a retry doesn't shift the calendar); on failure the error is kept and the same slot
is retried later with a doubling delay, so each slot is mailed once. A runner that dies after
the mail server accepted the message but before recording it leaves a claim that expires and
the slot is sent again: at least once, never twice by two healthy runners.

The report's "now" is the slot, also on a retry: "yesterday" in a mail retried after midnight
is still the day the schedule meant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from omni.db import Database
from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal
from omni.domain.errors import DomainError, InvalidInput
from omni.domain.reports.config import get_config
from omni.domain.reports.filters import READERS, FilterParams, check_report_in_reach, resolve_scope
from omni.domain.reports.period import Period
from omni.domain.reports.registry import get
from omni.domain.reports.schedules import Timing, access_schedule, latest_slot, next_slot
from omni.domain.reports.writers import CONTENT_TYPES, Format, finish, open_writer
from omni.i18n import _l, gettext, keyed
from omni.settings import SmtpSettings

log = logging.getLogger(__name__)

BATCH = 20
"""Schedules claimed per round; the rest wait for the next round (a few seconds)."""
ERROR_MAX = 500
FILENAME_UNSAFE = re.compile(r"[^\w\-. ]+")
BODY = _l(
    'The report "{title}" for {period} (time zone {zone}) is attached.\n\n'
    "This mail is sent on a schedule; change or stop it at {url}"
)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str
    title: str
    period: str


@dataclass(frozen=True, slots=True)
class Outcome:
    schedule_id: int
    sent: bool
    error: str | None = None


def period_text(period: Period) -> str:
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    return first if first == last else f"{first} – {last}"


def _filename(title: str, period: Period, fmt: Format) -> str:
    span = period.first_day.isoformat()
    if period.last_day != period.first_day:
        span = f"{span}_{period.last_day.isoformat()}"
    stem = FILENAME_UNSAFE.sub("_", f"{title} {span}").strip(" ._") or "report"
    return f"{stem}.{fmt.value}"


async def render(
    session: AsyncSession,
    who: Principal,
    key: str,
    params: FilterParams,
    fmt: Format,
    lang: str,
    at: datetime,
) -> Attachment:
    """The report as ``who`` may see it at ``at``, written to CSV/XLSX by ``writers``."""
    spec = get(key)
    config = await get_config(session)
    who = dataclasses.replace(who, language=lang)  # reports that label rows read the mail's language
    scope = await resolve_scope(session, who, params.resolve(config.tz, at), config, at)
    check_report_in_reach(spec.key, scope.reach, who, spec.roles)  # as the page and the export
    table = await spec.run(session, scope)
    title = keyed(lang, f"rpt.{key}") or key
    with tempfile.TemporaryDirectory(prefix="omni-mail-") as tmp:
        path = Path(tmp) / f"report.{fmt.value}"
        writer, handle = open_writer(fmt, path, table.columns, lang, config.tz, title)
        try:
            if spec.stream is not None:  # paginated (contact history): every row, not one page
                async for row in spec.stream(session, scope):
                    writer.append(row)
            else:
                for row in table.rows:
                    writer.append(row)
            if table.totals is not None:
                writer.append(table.totals)
        finally:
            finish(writer, handle)
        content = path.read_bytes()
    return Attachment(
        filename=_filename(title, scope.period, fmt),
        content=content,
        content_type=CONTENT_TYPES[fmt],
        title=title,
        period=period_text(scope.period),
    )


def build_message(
    smtp: SmtpSettings, recipients: list[str], lang: str, attachment: Attachment, zone: str, url: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"{attachment.title}: {attachment.period}"
    msg["From"] = smtp.from_address
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=smtp.from_address.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(gettext(lang, BODY, title=attachment.title, period=attachment.period, zone=zone, url=url))
    maintype, _, subtype = attachment.content_type.partition(";")[0].partition("/")
    msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return msg


def deliver(smtp: SmtpSettings, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
    """One SMTP session (blocking: run it in a thread). Returns the refused recipients when
    only some were refused; raises when the message was not accepted for anyone."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password)
        return client.send_message(msg)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.message[:ERROR_MAX]
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"SMTP {exc.smtp_code}: {detail}"[:ERROR_MAX]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"every recipient was refused: {', '.join(exc.recipients)}"[:ERROR_MAX]
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX]


def _refused_text(refused: dict[str, tuple[int, bytes]]) -> str | None:
    if not refused:
        return None
    return ("refused: " + ", ".join(f"{addr} ({code})" for addr, (code, _) in refused.items()))[:ERROR_MAX]


async def _owner(session: AsyncSession, owner_id: int) -> Principal | None:
    user = await session.get(m.User, owner_id)
    if user is None or not user.is_active or m.Role(user.role) not in READERS:
        return None
    return Principal.of(user)


async def _send_one(
    db: Database, smtp: SmtpSettings, base_url: str, row: m.ReportSchedule, at: datetime
) -> tuple[dict[str, tuple[int, bytes]] | None, str | None, bool]:
    """Render and mail one schedule as of ``at``: (refused recipients, error, permanent)."""
    async with db.transaction() as session:
        owner = await _owner(session, row.owner_id)
        if owner is None:
            return None, "the owner may no longer read reports", True
        try:
            attachment = await render(
                session,
                owner,
                row.report_key,
                FilterParams.from_json(row.filters),
                Format(row.format),
                row.language,
                at,
            )
        except DomainError as exc:  # the report is gone, the filter no longer valid
            return None, _error_text(exc), True
        except Exception as exc:  # a report's bug: kept on the schedule, retried like a failed send
            log.exception("report schedule %s: the report failed to render", row.id)
            return None, _error_text(exc), False
        zone = (await get_config(session)).timezone
    msg = build_message(
        smtp, list(row.recipients), row.language, attachment, zone, f"{base_url}/reports/schedules"
    )
    try:
        refused = await asyncio.to_thread(deliver, smtp, msg)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("report schedule %s: mail not sent: %s", row.id, _error_text(exc))
        return None, _error_text(exc), False
    return refused, _refused_text(refused), False


def _due(now: datetime) -> ColumnElement[bool]:
    s = m.ReportSchedule
    return and_(
        s.active.is_(True),
        s.next_run_at <= now,
        or_(s.retry_at.is_(None), s.retry_at <= now),
        or_(s.claimed_until.is_(None), s.claimed_until <= now),
    )


async def _claim(
    db: Database, smtp: SmtpSettings, now: datetime
) -> list[tuple[m.ReportSchedule, datetime, str]]:
    """Due schedules taken by this runner: (row, slot to send, claim token)."""
    lease = timedelta(seconds=max(300.0, smtp.timeout_seconds * 10))
    claimed: list[tuple[m.ReportSchedule, datetime, str]] = []
    async with db.transaction() as session:
        rows = list(
            await session.scalars(
                select(m.ReportSchedule)
                .where(_due(now))
                .order_by(m.ReportSchedule.next_run_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return []
        tz = (await get_config(session)).tz
        for row in rows:
            assert row.next_run_at is not None
            slot = latest_slot(Timing.of(row), tz, row.next_run_at, now)
            if slot != row.next_run_at:  # an outage skipped slots: the latest one is sent
                row.next_run_at, row.failures, row.retry_at = slot, 0, None
            token = secrets.token_hex(16)
            row.claimed_until, row.claim_token = now + lease, token
            claimed.append((row, slot, token))
    return claimed


async def _record(
    db: Database,
    smtp: SmtpSettings,
    schedule_id: int,
    token: str,
    slot: datetime,
    result: tuple[dict[str, tuple[int, bytes]] | None, str | None, bool],
    now: datetime,
) -> Outcome:
    refused, error, permanent = result
    sent = refused is not None
    async with db.transaction() as session:
        row = await session.get(m.ReportSchedule, schedule_id, with_for_update=True)
        if row is None:  # deleted while it was being sent
            return Outcome(schedule_id, sent, error)
        if row.claim_token == token:
            row.claimed_until, row.claim_token = None, None
        row.last_error = error
        if row.next_run_at != slot:  # re-planned (edited) while it was being sent: keep the new plan
            pass
        elif sent or permanent or row.failures + 1 >= smtp.max_attempts:
            tz = (await get_config(session)).tz
            row.next_run_at = next_slot(Timing.of(row), tz, slot)
            row.failures, row.retry_at = 0, None
        else:
            row.failures += 1
            delay = min(smtp.retry_seconds * 2 ** (row.failures - 1), 6 * 3600.0)
            row.retry_at = now + timedelta(seconds=delay)
        if sent:
            row.last_sent_at = now
        audit.record(
            session,
            None,
            "report_schedule.sent" if sent else "report_schedule.failed",
            object_type="report_schedule",
            object_id=schedule_id,
            data={"slot": slot.isoformat(), "recipients": len(row.recipients), "error": error},
            result="ok" if sent else "error",
        )
    return Outcome(schedule_id, sent, error)


async def send_due(
    db: Database, smtp: SmtpSettings, base_url: str, now: datetime | None = None
) -> list[Outcome]:
    """Send every schedule due at ``now`` (default: the clock), one round of ``BATCH``.

    Does nothing without ``OMNI_SMTP_HOST``: schedules stay due and go out once mail is set up.
    """
    if not smtp.host:
        return []
    now = now or datetime.now(UTC)
    outcomes: list[Outcome] = []
    for row, slot, token in await _claim(db, smtp, now):
        result = await _send_one(db, smtp, base_url, row, slot)
        outcomes.append(await _record(db, smtp, row.id, token, slot, result, now))
    return outcomes


async def check_send_now(
    db: Database,
    smtp: SmtpSettings,
    base_url: str,
    who: Principal,
    schedule_id: int,
    now: datetime | None = None,
) -> Outcome:
    """Mail the report as of now, outside the calendar (the next slot is unchanged).

    Runs with the owner's scope like a scheduled send, so an admin pressing the button on a
    supervisor's schedule mails what the supervisor would see.
    """
    now = now or datetime.now(UTC)
    async with db.transaction() as session:
        row = await access_schedule(session, who, schedule_id, write=True)
        if not smtp.host:
            raise InvalidInput("mail is not set up on this server (OMNI_SMTP_HOST)")
        session.expunge(row)
    refused, error, _ = await _send_one(db, smtp, base_url, row, now)
    sent = refused is not None
    async with db.transaction() as session:
        current = await session.get(m.ReportSchedule, schedule_id, with_for_update=True)
        if current is not None:
            current.last_error = error
            if sent:
                current.last_sent_at = now
        audit.record(
            session,
            who,
            "report_schedule.send_now",
            object_type="report_schedule",
            object_id=schedule_id,
            data={"error": error},
            result="ok" if sent else "error",
        )
    return Outcome(schedule_id, sent, error)
