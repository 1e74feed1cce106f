"""Two-factor sign-in with TOTP (RFC 6238: the six-digit codes of authenticator apps).

A user turns it on themselves (``/account/security``), or an admin makes it mandatory for
roles (install settings ``totp_roles``): a user of such a role who has not enrolled enrols at
their next sign-in, before any session exists. The secret is stored encrypted with the
settings key (``omni.crypto``), a code is accepted once (the last accepted 30-second step is
kept, so a code seen over a shoulder can't be replayed) and one step of clock drift either way
is tolerated. Between the password and the code the browser holds a signed, five-minute
"pending" token instead of a session; changing the password voids it. An admin resets the
factor of a user who lost their phone; every change is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import segno
from sqlalchemy.ext.asyncio import AsyncSession

from omni import crypto
from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from omni.domain.reports.config import locked_row

STEP_SECONDS = 30
DRIFT_STEPS = 1
"""Codes of the previous and the next step are accepted too (a phone's clock a little off)."""
PENDING_SECONDS = 300
ISSUER = "Omni"
_PENDING = "omni.login.totp.v1"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the enrolment page shows: the secret (to type in) and the same as a QR code."""

    secret: str
    uri: str
    qr_svg: str


def enabled(user: m.User) -> bool:
    return user.totp_enabled_at is not None


async def required_roles(session: AsyncSession) -> list[str]:
    row = await session.get(m.InstallSettings, 1)
    return [str(r) for r in (row.totp_roles or [])] if row is not None else []


async def required_for(session: AsyncSession, user: m.User) -> bool:
    return user.role in await required_roles(session)


async def second_factor(session: AsyncSession, user: m.User) -> str | None:
    """What a correct password still needs: ``code``, ``enrol``, or nothing."""
    if enabled(user):
        return "code"
    if await required_for(session, user):
        return "enrol"
    return None


# --- the pending token between the password and the code ----------------------------------


def _binding(user: m.User) -> str:
    """Changes when the password does: a pending token of an old password stops working."""
    return user.password_hash[-16:]


def pending_token(secret_key: str, user: m.User, now: float | None = None) -> str:
    expires = int((now or time.time()) + PENDING_SECONDS)
    return crypto.sign_value(secret_key, _PENDING, f"{user.id}:{expires}:{_binding(user)}")


async def pending_user(
    session: AsyncSession, secret_key: str, token: str, now: float | None = None
) -> m.User | None:
    """The user a pending token is for, while it is valid; ``None`` otherwise."""
    value = crypto.unsign_value(secret_key, _PENDING, token or "")
    if value is None:
        return None
    user_id, _, rest = value.partition(":")
    expires, _, binding = rest.partition(":")
    if not user_id.isdigit() or not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    user = await session.get(m.User, int(user_id))
    if user is None or not user.is_active or binding != _binding(user):
        return None
    return user


# --- codes --------------------------------------------------------------------------------


def _clean(code: str) -> str:
    return "".join(ch for ch in str(code or "") if not ch.isspace() and ch != "-")


def _accepted_step(secret: str, code: str, last_step: int | None, now: float) -> int | None:
    digits = _clean(code)
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue  # used already (or older than one that was): no replay
        if pyotp.utils.strings_equal(totp.at(step * STEP_SECONDS), digits):
            return step
    return None


def _secret(secret_key: str, user: m.User) -> str:
    if not user.totp_secret:
        raise InvalidInput("two-factor sign-in is not set up for this user")
    return crypto.decrypt(secret_key, user.totp_secret)


def check_code(user: m.User, code: str, secret_key: str, now: float | None = None) -> None:
    """Accept the code of an enrolled (or enrolling) user once, or refuse."""
    step = _accepted_step(_secret(secret_key, user), code, user.totp_last_step, now or time.time())
    if step is None:
        raise NotAuthenticated("wrong or expired two-factor code", field="code")
    user.totp_last_step = step


# --- enrolling, turning off, resetting ----------------------------------------------------


def enrolment(secret_key: str, user: m.User) -> Enrolment:
    secret = _secret(secret_key, user)
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=user.username, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, title=ISSUER)
    return Enrolment(secret=secret, uri=uri, qr_svg=svg)


def do_begin_enrolment(secret_key: str, user: m.User) -> Enrolment:
    """A new secret for a user who has none in force (the previous unconfirmed one is dropped)."""
    if enabled(user):
        raise InvalidInput("two-factor sign-in is already on")
    user.totp_secret = crypto.encrypt(secret_key, pyotp.random_base32())
    user.totp_last_step = None
    return enrolment(secret_key, user)


def do_confirm_enrolment(
    session: AsyncSession, user: m.User, code: str, secret_key: str, *, ip: str = "", now: float | None = None
) -> None:
    """The first code from the app proves it holds the secret: the factor is in force."""
    if enabled(user):
        raise InvalidInput("two-factor sign-in is already on")
    check_code(user, code, secret_key, now)
    user.totp_enabled_at = datetime.fromtimestamp(now or time.time(), UTC)
    audit.record(
        session, Principal.of(user), "auth.totp.enable", object_type="user", object_id=user.id, ip=ip
    )


async def do_turn_off(
    session: AsyncSession, user: m.User, code: str, secret_key: str, *, ip: str = "", now: float | None = None
) -> None:
    """The user turns the factor off with a current code, unless their role requires it."""
    if not enabled(user):
        raise InvalidInput("two-factor sign-in is already off")
    if await required_for(session, user):
        raise PermissionDenied("your role must sign in with a second factor; an admin sets that")
    check_code(user, code, secret_key, now)
    _clear(user)
    audit.record(
        session, Principal.of(user), "auth.totp.disable", object_type="user", object_id=user.id, ip=ip
    )


async def check_reset(session: AsyncSession, who: Principal, user_id: int, *, ip: str = "") -> m.User:
    """An admin clears a user's factor (a lost phone); they enrol again if their role needs it."""
    if not who.is_admin:
        raise PermissionDenied("only an admin resets another user's two-factor sign-in")
    user = await session.get(m.User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user {user_id} not found", user_id=user_id)
    _clear(user)
    audit.record(session, who, "auth.totp.reset", object_type="user", object_id=user.id, ip=ip)
    return user


def _clear(user: m.User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None


async def check_set_required_roles(session: AsyncSession, who: Principal, roles: list[str]) -> list[str]:
    """Admins choose the roles that must sign in with a second factor (install settings);
    audited. Their users who have not enrolled enrol at their next sign-in."""
    if not who.is_admin:
        raise PermissionDenied("only an admin changes the install settings")
    valid = {r.value for r in m.Role}
    unknown = [r for r in roles if r not in valid]
    if unknown:
        raise InvalidInput("unknown role {role}", field="totp_roles", role=unknown[0])
    clean = sorted(set(roles))
    row = await locked_row(session)
    if sorted(row.totp_roles or []) != clean:
        row.totp_roles = clean
        audit.record(
            session, who, "install.update", object_type="install", object_id=1, data={"totp_roles": clean}
        )
    await session.flush()
    return clean
