"""``/wallboard?token=…``: the wall screen, a Jinja2 shell around ``ui/src/wallboard.ts``.

No login: the page opens only with a live wallboard token (``omni.domain.wallboard.token_for``)
and hands it to the module, which connects to ``/wallboard`` with it. An unknown, revoked or
expired token gets a 403 page and no module. The language is ``?lang=`` (a TV has no cookie
to keep a choice in), else the browser's.

Boot data: ``strings`` (``wb.*``), ``token``, ``lang``; no user.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from omni.api.deps import services_of
from omni.domain import wallboard
from omni.web.i18n import messages, pick_language, translator
from omni.web.pages import PAGE_HEADERS

NO_STORE = {**PAGE_HEADERS, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
"""The token is in the address: keep it out of caches and of any Referer header."""


class WallboardPage(Controller):
    @get("/wallboard", include_in_schema=False)
    async def show(self, request: Request[Any, Any, Any], token: str = "", lang: str = "") -> Template:
        lang = pick_language(lang or None, request.headers.get("accept-language", ""))
        t = translator(lang)
        async with services_of(request).db.transaction() as session:
            row = await wallboard.token_for(session, token)
            name = row.name if row is not None else ""
        if row is None:
            return Template(
                template_name="wallboard.html",
                context={"t": t, "lang": lang, "refused": t("wb.refused"), "name": "", "boot": {}},
                status_code=403,
                headers=NO_STORE,
            )
        boot = {"lang": lang, "token": token, "strings": messages(lang, "wb.")}
        return Template(
            template_name="wallboard.html",
            context={"t": t, "lang": lang, "refused": "", "name": name, "boot": boot},
            headers=NO_STORE,
        )
