"""Server-rendered pages: login, the role-based home redirect, and the helpers every page uses.

Pages authenticate with the session cookie only (never a bearer token), check the caller's
role, render Jinja2 with autoescaping, and protect every form POST with a CSRF token bound
to the session. Live modules (operator window, monitoring) get their boot data as JSON in a
``type="application/json"`` script tag and talk to Socket.IO; they never receive HTML.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template
from markupsafe import Markup

from omni.api.deps import SESSION_COOKIE, client_ip, services_of
from omni.db import models as m
from omni.domain import auth, grants, totp
from omni.domain.auth import Principal
from omni.domain.errors import DomainError
from omni.i18n import translate_func
from omni.web.i18n import LANGUAGES, pick_language, translator

LANG_COOKIE = "omni_lang"
LOGIN_CSRF_COOKIE = "omni_login_csrf"
"""A random value set with the login form; the form carries its HMAC (``login_csrf_for``).
Another site can neither read the cookie nor compute the HMAC, so it can't post the form to
log a browser into the attacker's account (login CSRF)."""
HOME_BY_ROLE = {
    m.Role.OPERATOR: "/app",
    m.Role.SUPERVISOR: "/supervisor",
    m.Role.ADMIN: "/admin",
    m.Role.AUDITOR: "/admin",
}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: data:; "
        "connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class LoginRequired(Exception):
    """No valid session: the page handler turns it into a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    def __init__(self, ctx: PageContext, message_key: str = "error.forbidden") -> None:
        super().__init__(message_key)
        self.ctx = ctx
        self.message_key = message_key


@dataclass
class PageContext:
    """Who is looking at the page and how to talk to them."""

    who: Principal
    display_name: str
    lang: str
    csrf: str
    t: Callable[..., str]
    path: str = "/"
    extra: dict[str, Any] = field(default_factory=dict)
    reports_link: bool = False
    """The header shows "Reports": the caller holds the reports grant (an admin may give it to
    operators, scoped to their own conversations), not merely a role that has it by default."""

    def require(self, *roles: m.Role) -> None:
        if self.who.role not in roles:
            raise PageForbidden(self)

    def template(self, name: str, *, status_code: int = 200, **values: Any) -> Template:
        context = {
            "ctx": self,
            "t": self.t,
            "_": translate_func(self.lang),  # plain gettext: {{ _("English text") }}
            "lang": self.lang,
            "who": self.who,
            "csrf": self.csrf,
            "request_path": self.path,
            **values,
        }
        return Template(template_name=name, context=context, status_code=status_code, headers=PAGE_HEADERS)


LOGIN_REFUSALS = {
    "directory_unavailable": "login.directory_down",
    "no_mapped_group": "login.no_mapped_group",
}
"""Refusals of the sign-in form told as they are (``omni.domain.ldap_auth``); any other one is
"wrong username or password"."""


def login_csrf_for(secret_key: str, nonce: str) -> str:
    """The login form's token for the pre-session cookie ``nonce`` (signed double submit)."""
    return hmac.new(secret_key.encode(), b"login-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()[:40]


def csrf_for(secret_key: str, session_token: str) -> str:
    """A per-session form token: a page on another site cannot read it, so cannot forge a POST."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()[:40]


async def page_context(request: Request[Any, Any, Any]) -> PageContext:
    """The logged-in caller of a page, or :class:`LoginRequired`."""
    services = services_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired(request.url.path)
    async with services.db.transaction() as session:
        user = await auth.user_for_session(session, token)
        if user is None:
            raise LoginRequired(request.url.path)
        who = Principal.of(user)
        lang = pick_language(request.cookies.get(LANG_COOKIE) or user.language)
        display = user.display_name or user.username
        reports_link = await grants.allowed(session, who, grants.PAGE_REPORTS)
    secret = services.settings.effective_secret_key()
    return PageContext(
        who=who,
        display_name=display,
        lang=lang,
        csrf=csrf_for(secret, token),
        t=translator(lang),
        path=request.url.path,
        reports_link=reports_link,
    )


async def read_form(request: Request[Any, Any, Any], ctx: PageContext) -> dict[str, Any]:
    """The posted form as a dict (repeated names become lists), after checking its CSRF token."""
    form = await request.form()
    data: dict[str, Any] = {}
    for key in form:
        values = form.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    sent = str(data.pop("_csrf", ""))
    if not hmac.compare_digest(sent, ctx.csrf):
        raise PageForbidden(ctx, "error.csrf")
    return data


def field_errors(exc: DomainError, lang: str = "en") -> dict[str, str]:
    """A domain validation error as ``{field: message}`` for showing next to form fields."""
    return {e.field or "_": e.localized(lang) for e in exc.errors or [exc]}


def login_required_handler(_request: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    return Redirect(path=f"/login?next={quote(exc.next_path)}")


def forbidden_handler(_request: Request[Any, Any, Any], exc: PageForbidden) -> Template:
    return exc.ctx.template("error.html", status_code=403, message=exc.ctx.t(exc.message_key))


def _safe_next(value: str | None) -> str | None:
    """Only local paths: a login link must not bounce the user to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


class PageController(Controller):
    """Login, logout, language choice and the home redirect."""

    @get("/", include_in_schema=False)
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        ctx = await page_context(request)
        return Redirect(path=HOME_BY_ROLE.get(ctx.who.role, "/app"))

    def _login_page(
        self,
        request: Request[Any, Any, Any],
        *,
        error: str = "",
        username: str = "",
        status_code: int = 200,
        step: str = "password",
        pending: str = "",
        enrolment: totp.Enrolment | None = None,
        next_path: str | None = None,
    ) -> Template:
        """The sign-in form; ``step`` ``code`` asks for the authenticator's code and ``enrol``
        shows the QR code and secret to add first (both carry the signed ``pending`` token)."""
        lang = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", ""))
        t = translator(lang)
        services = services_of(request)
        # One nonce per browser (kept while it is valid), so two open login tabs both work.
        nonce = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
        template = Template(
            template_name="login.html",
            context={
                "t": t,
                "lang": lang,
                "error": t(error) if error else "",
                "notice": t("login.reset_done") if request.query_params.get("reset") == "1" else "",
                "username": username,
                "next": next_path
                if next_path is not None
                else _safe_next(request.query_params.get("next")) or "",
                "csrf": login_csrf_for(services.settings.effective_secret_key(), nonce),
                "step": step,
                "pending": pending,
                "enrolment": enrolment,
                "qr": Markup(enrolment.qr_svg) if enrolment else "",  # noqa: S704 - segno's own SVG, no user text
            },
            status_code=status_code,
            headers=PAGE_HEADERS,
        )
        template.set_cookie(
            LOGIN_CSRF_COOKIE,
            nonce,
            path="/login",
            httponly=True,
            samesite="strict",
            secure=services.settings.public_base_url.startswith("https"),
            max_age=services.settings.session_max_age_seconds,
        )
        return template

    def _signed_in(
        self, request: Request[Any, Any, Any], user: m.User, token: str, next_value: str
    ) -> Response[Any]:
        services = services_of(request)
        home = HOME_BY_ROLE.get(m.Role(user.role), "/app")
        response = Redirect(path=_safe_next(next_value) or home)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=services.settings.public_base_url.startswith("https"),
            max_age=services.settings.session_max_age_seconds,
        )
        return response

    def _form_csrf_ok(self, request: Request[Any, Any, Any], sent: str) -> bool:
        services = services_of(request)
        nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        expected = login_csrf_for(services.settings.effective_secret_key(), nonce)
        return bool(nonce) and hmac.compare_digest(sent, expected)

    @get("/login", include_in_schema=False)
    async def login_form(self, request: Request[Any, Any, Any]) -> Template:
        return self._login_page(request)

    @post("/login", include_in_schema=False, status_code=200)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        services = services_of(request)
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        if not self._form_csrf_ok(request, str(form.get("_csrf") or "")):
            # Not from our form (another site posting it) or an old page: a fresh form, nothing done.
            return self._login_page(request, error="error.csrf", username=username, status_code=403)
        if not username or not password:
            return self._login_page(request, error="login.required", username=username, status_code=400)
        ip = client_ip(request)
        if await services.logins.blocked(username, ip):
            return self._login_page(request, error="login.throttled", username=username, status_code=429)
        secret_key = services.settings.effective_secret_key()
        enrolling: totp.Enrolment | None = None
        async with services.db.transaction() as session:
            result = await auth.do_login(
                session,
                username,
                password,
                ip=ip,
                max_age_seconds=services.settings.session_max_age_seconds,
                directory=services.settings.ldap,
            )
            if result.user is not None and result.second_factor == "enrol":
                enrolling = totp.do_begin_enrolment(secret_key, result.user)
            pending = totp.pending_token(secret_key, result.user) if result.user is not None else ""
        if result.user is None:
            await services.logins.failed(username, ip)
            code = result.refused.code if result.refused is not None else ""
            error = LOGIN_REFUSALS.get(code, "login.failed")
            return self._login_page(request, error=error, username=username, status_code=401)
        next_value = str(form.get("next") or "")
        if result.second_factor is not None:
            return self._login_page(
                request, step=result.second_factor, pending=pending, enrolment=enrolling,
                username=username, next_path=_safe_next(next_value) or "",
            )  # fmt: skip
        assert result.token is not None
        return self._signed_in(request, result.user, result.token, next_value)

    @post("/login/code", include_in_schema=False, status_code=200)
    async def login_code(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The second step: the authenticator's code (or the first code of a new enrolment)."""
        services = services_of(request)
        form = await request.form()
        pending = str(form.get("pending") or "")
        code = str(form.get("code") or "")
        next_value = _safe_next(str(form.get("next") or "")) or ""
        if not self._form_csrf_ok(request, str(form.get("_csrf") or "")):
            return self._login_page(request, error="error.csrf", status_code=403)
        secret_key = services.settings.effective_secret_key()
        ip = client_ip(request)
        async with services.db.transaction() as session:
            user = await totp.pending_user(session, secret_key, pending)
            if user is None:
                return self._login_page(request, error="login.code_expired", status_code=401)
            username = user.username
            if await services.logins.blocked(username, ip):
                return self._login_page(request, error="login.throttled", username=username, status_code=429)
            step = "code" if totp.enabled(user) else "enrol"
            try:
                if step == "code":
                    totp.check_code(user, code, secret_key)
                else:
                    totp.do_confirm_enrolment(session, user, code, secret_key, ip=ip)
            except DomainError:
                enrolment = totp.enrolment(secret_key, user) if step == "enrol" else None
                failed = True
            else:
                failed = False
                result = await auth.do_open_session(
                    session, user, ip=ip, max_age_seconds=services.settings.session_max_age_seconds
                )
        if failed:
            await services.logins.failed(username, ip)
            return self._login_page(
                request, error="login.code_wrong", step=step, pending=pending, enrolment=enrolment,
                username=username, next_path=next_value, status_code=401,
            )  # fmt: skip
        assert result.user is not None and result.token is not None
        return self._signed_in(request, result.user, result.token, next_value)

    @post("/logout", include_in_schema=False, status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        ctx = await page_context(request)
        await read_form(request, ctx)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            async with services_of(request).db.transaction() as session:
                await auth.do_end_session(session, token)
        response = Redirect(path="/login")
        response.delete_cookie(SESSION_COOKIE)
        return response

    @post("/language", include_in_schema=False, status_code=200)
    async def language(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Stores the user's language (pages and live modules follow it)."""
        ctx = await page_context(request)
        form = await read_form(request, ctx)
        lang = str(form.get("lang", ""))
        if lang in LANGUAGES:
            async with services_of(request).db.transaction() as session:
                user = await session.get(m.User, ctx.who.id)
                if user is not None:
                    user.language = lang
        response = Redirect(path=_safe_next(str(form.get("back") or "")) or "/")
        response.delete_cookie(LANG_COOKIE)
        return response


def boot_data(ctx: PageContext, **values: Any) -> Mapping[str, Any]:
    """What a live module reads from its page: who, language, strings; never HTML."""
    return {
        "user": {"id": ctx.who.id, "name": ctx.display_name, "role": ctx.who.role},
        "lang": ctx.lang,
        **values,
    }


async def require_grant(request: Request[Any, Any, Any], ctx: PageContext, name: str) -> None:
    """Refuse the page (403 page) unless the caller's role holds grant ``name`` (``omni.domain.grants``)."""
    from omni.domain import grants

    async with services_of(request).db.transaction() as session:
        if not await grants.allowed(session, ctx.who, name):
            raise PageForbidden(ctx)
