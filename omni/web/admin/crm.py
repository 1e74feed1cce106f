"""Admin section for the CRM integration (``omni.domain.crm``) at ``/admin/crm/1``: where the
operator's card comes from (URL template, secret, timeout, cache), where closed conversations
are pushed, and the Bitrix24 connector. Secrets are never shown (left empty they are kept);
the Bitrix24 URL is shown with its token hidden. The list says what is on and links the
push subscriptions, whose delivery log is the webhooks'."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import crm
from omni.domain.errors import NotFound
from omni.web.admin.forms import ADMIN, Cell, Field, Section, Table


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


class Crm(Section):
    slug = "crm"
    title = "adm.crm"
    view_roles = (ADMIN,)
    create_roles = ()
    can_delete = False

    def heading(self, item: Any) -> str:
        return self.t("adm.crm")

    async def table(self, session: AsyncSession) -> Table:
        row = await crm.get_settings(session)
        off = self.t("adm.crm.off")
        href = self.href(crm.ROW_ID)
        rows = [
            [Cell(self.t("adm.crm.fetch"), href), Cell(_host(row.fetch_url) if row.fetch_url else off)],
            [Cell(self.t("adm.crm.push"), href), Cell(_host(row.push_url) if row.push_url else off)],
            [Cell(self.t("adm.crm.bitrix"), href), Cell(_host(row.bitrix_url) if row.bitrix_url else off)],
        ]
        return Table([self.t("adm.crm.part"), self.t("adm.crm.target")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        if item_id != crm.ROW_ID:
            raise NotFound("no CRM settings {item_id}", item_id=item_id)
        return await crm.get_settings(session)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        keep = t("adm.crm.secret_keep")
        fetch_help = t("adm.crm.fetch_url_help", placeholders=", ".join(f"{{{p}}}" for p in crm.PLACEHOLDERS))
        return [
            Field("fetch_url", t("adm.crm.fetch_url"), help=fetch_help),
            Field("fetch_secret", t("adm.crm.fetch_secret"), "password", omit_empty=True, help=keep),
            Field("fetch_timeout_ms", t("adm.crm.fetch_timeout_ms"), "number"),
            Field("fetch_cache_seconds", t("adm.crm.fetch_cache_seconds"), "number"),
            Field("push_url", t("adm.crm.push_url"), help=t("adm.crm.push_url_help")),
            Field("push_secret", t("adm.crm.push_secret"), "password", omit_empty=True, help=keep),
            Field("bitrix_url", t("adm.crm.bitrix_url"), help=t("adm.crm.bitrix_url_help")),
            Field("bitrix_entity", t("adm.crm.bitrix_entity"), "select",
                  [("lead", t("adm.crm.lead")), ("deal", t("adm.crm.deal"))]),
            Field("bitrix_user_id", t("adm.crm.bitrix_user_id"), "number"),
        ]  # fmt: skip

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        row = item if isinstance(item, m.CrmSettings) else await crm.get_settings(session)
        shown = crm.settings_dict(row)
        return {
            "fetch_url": row.fetch_url,
            "fetch_secret": "",
            "fetch_timeout_ms": row.fetch_timeout_ms,
            "fetch_cache_seconds": row.fetch_cache_seconds,
            "push_url": row.push_url,
            "push_secret": "",
            "bitrix_url": shown["bitrix_url"],
            "bitrix_entity": row.bitrix_entity,
            "bitrix_user_id": row.bitrix_user_id,
        }

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        await crm.check_update_settings(session, self.who, data)
        return crm.ROW_ID
