"""The caller's own account page: two-factor sign-in on or off (``/account/security``).

Turning it on shows a QR code and the secret, and takes effect with the first code the app
shows; turning it off asks for a current code and is refused when the user's role must use it
(``omni.domain.totp``). Every staff role has this page.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Response, Template
from markupsafe import Markup

from omni.api.deps import client_ip, services_of
from omni.db import models as m
from omni.domain import passwords, totp
from omni.domain.errors import DomainError, NotFound
from omni.web.i18n import pick_language, translator
from omni.web.pages import LANG_COOKIE, PAGE_HEADERS, page_context, read_form


class AccountPage(Controller):
    path = "/account"

    async def _render(
        self,
        request: Request[Any, Any, Any],
        *,
        error: str = "",
        status_code: int = 200,
        enrol: str = "",
    ) -> Template:
        """The page; ``enrol`` ``new`` starts an enrolment with a fresh secret, ``again`` shows
        the one being confirmed (a wrong first code: the app already holds that secret)."""
        ctx = await page_context(request)
        services = services_of(request)
        secret_key = services.settings.effective_secret_key()
        async with services.db.transaction() as session:
            user = await session.get_one(m.User, ctx.who.id)
            enrolment = None
            if enrol == "new":
                enrolment = totp.do_begin_enrolment(secret_key, user)
            elif enrol == "again" and user.totp_secret:
                enrolment = totp.enrolment(secret_key, user)
            return ctx.template(
                "account.html",
                status_code=status_code,
                enabled=totp.enabled(user),
                required=await totp.required_for(session, user),
                enrolment=enrolment,
                qr=Markup(enrolment.qr_svg) if enrolment else "",  # noqa: S704 - segno's SVG, no user text
                error=error,
                saved="" if error else request.query_params.get("saved", ""),
            )

    @get("/security", include_in_schema=False)
    async def security_page(self, request: Request[Any, Any, Any]) -> Template:
        return await self._render(request)

    @post("/security", include_in_schema=False, status_code=200)
    async def change(self, request: Request[Any, Any, Any]) -> Response[Any]:
        ctx = await page_context(request)
        form = await read_form(request, ctx)
        action = str(form.get("action") or "")
        code = str(form.get("code") or "")
        services = services_of(request)
        secret_key = services.settings.effective_secret_key()
        ip = client_ip(request)
        if action == "begin":
            return await self._render(request, enrol="new")
        if action not in ("confirm", "off"):
            return await self._render(request, error=ctx.t("account.bad_action"), status_code=400)
        if await services.logins.blocked(ctx.who.username, ip):
            return await self._render(request, error=ctx.t("login.throttled"), status_code=429)
        try:
            async with services.db.transaction() as session:
                user = await session.get_one(m.User, ctx.who.id, with_for_update=True)
                if action == "confirm":
                    totp.do_confirm_enrolment(session, user, code, secret_key, ip=ip)
                else:
                    await totp.do_turn_off(session, user, code, secret_key, ip=ip)
        except DomainError as exc:
            await services.logins.failed(ctx.who.username, ip)
            again = "again" if action == "confirm" else ""
            return await self._render(request, error=exc.localized(ctx.lang), status_code=422, enrol=again)
        return Redirect(path=f"/account/security?saved={action}")


class ResetPage(Controller):
    """``/reset/<token>``: the page of an admin-issued one-time link (no session needed)."""

    path = "/reset"

    def _page(
        self,
        request: Request[Any, Any, Any],
        token: str,
        *,
        valid: bool,
        error: str = "",
        status_code: int = 200,
    ) -> Template:
        lang = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", ""))
        t = translator(lang)
        services = services_of(request)
        return Template(
            template_name="reset.html",
            context={
                "t": t,
                "lang": lang,
                "token": token,
                "valid": valid,
                "error": error,
                "csrf": reset_csrf_for(services.settings.effective_secret_key(), token),
                "min_length": passwords.MIN_LENGTH,
            },
            status_code=status_code,
            headers=PAGE_HEADERS,
        )

    @get("/{token:str}", include_in_schema=False)
    async def reset_form(self, request: Request[Any, Any, Any], token: str) -> Template:
        async with services_of(request).db.transaction() as session:
            valid = await passwords.reset_for(session, token) is not None
        return self._page(request, token, valid=valid, status_code=200 if valid else 404)

    @post("/{token:str}", include_in_schema=False, status_code=200)
    async def reset(self, request: Request[Any, Any, Any], token: str) -> Response[Any]:
        services = services_of(request)
        form = await request.form()
        expected = reset_csrf_for(services.settings.effective_secret_key(), token)
        if not hmac.compare_digest(str(form.get("_csrf") or ""), expected):
            return self._page(
                request, token, valid=True, error=translator("en")("error.csrf"), status_code=403
            )
        lang = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", ""))
        try:
            async with services.db.transaction() as session:
                await passwords.do_reset_password(
                    session, token, str(form.get("password") or ""), str(form.get("repeat") or ""),
                    ip=client_ip(request),
                )  # fmt: skip
        except NotFound:
            return self._page(request, token, valid=False, status_code=404)
        except DomainError as exc:
            return self._page(request, token, valid=True, error=exc.localized(lang), status_code=422)
        return Redirect(path="/login?reset=1")


def reset_csrf_for(secret_key: str, token: str) -> str:
    """The reset form's token: bound to the link, so another site can't post it for a visitor
    (it would need the link itself, which is the secret)."""
    return hmac.new(secret_key.encode(), b"reset-csrf:" + token.encode(), hashlib.sha256).hexdigest()[:40]


CONTROLLERS = [AccountPage, ResetPage]
