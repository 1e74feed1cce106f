"""Admin section for sign-in with LDAP / Active Directory at ``/admin/ldap/1`` (read-only).

The directory settings stay where the rest of the install's are — one settings object read from
``OMNI_LDAP_*`` (``omni.settings.LdapSettings``; nothing else reads the environment) — because
they decide who can sign in at all: a copy in the database could lock the admins out with no way
back but the database. So the page shows the effective settings, each with the variable that
sets it, the bind password only as "set" / "not set", and the group → role mapping; and it
checks them: "Check a user" looks a username up the way a sign-in would
(``ldap_auth.check_lookup_user``, the same as ``POST /api/v1/admin/ldap/check``), outside the
page's transaction, with the refusal next to the field."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain import ldap_auth
from omni.domain.errors import InvalidInput, NotFound
from omni.i18n import enum_label
from omni.settings import LdapSettings
from omni.web.admin.forms import ADMIN, Cell, Field, Outcome, Section, Table

ROW_ID = 1

SHOWN: tuple[tuple[str, str], ...] = (
    ("url", "adm.ldap.url"),
    ("start_tls", "adm.ldap.start_tls"),
    ("ca_file", "adm.ldap.ca_file"),
    ("bind_dn", "adm.ldap.bind_dn"),
    ("bind_password", "adm.ldap.bind_password"),
    ("user_base_dn", "adm.ldap.user_base_dn"),
    ("user_filter", "adm.ldap.user_filter"),
    ("username_attribute", "adm.ldap.username_attribute"),
    ("group_base_dn", "adm.ldap.group_base_dn"),
    ("group_filter", "adm.ldap.group_filter"),
    ("role_map", "adm.ldap.role_map"),
    ("default_role", "adm.ldap.default_role"),
    ("display_name_attribute", "adm.ldap.display_name_attribute"),
    ("email_attribute", "adm.ldap.email_attribute"),
    ("timeout_seconds", "adm.ldap.timeout_seconds"),
)
"""Each setting the page shows, in the order of docs/auth.md, with its label key."""


def env_name(setting: str) -> str:
    return f"OMNI_LDAP_{setting.upper()}"


class Ldap(Section):
    slug = "ldap"
    title = "adm.ldap"
    view_roles = (ADMIN,)
    edit_roles = (ADMIN,)
    """Only for the "check" action: the settings form itself is never editable here."""
    create_roles = ()
    can_delete = False
    form_template = "admin/ldap_form.html"

    @property
    def cfg(self) -> LdapSettings:
        return self.services.settings.ldap

    def heading(self, item: Any) -> str:
        return self.t("adm.ldap")

    def editable(self, item: Any | None) -> bool:
        return False  # the environment is the one place these are set

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        raise InvalidInput("the LDAP settings are read from the OMNI_LDAP_* environment variables")

    async def table(self, session: AsyncSession) -> Table:
        cfg = self.cfg
        state = (
            self.t("adm.ldap.on", hosts=", ".join(urlsplit(u).netloc or u for u in cfg.url.split()))
            if cfg.enabled
            else self.t("adm.ldap.off")
        )
        return Table(
            [self.t("adm.ldap.part"), self.t("adm.f.state")],
            [[Cell(self.t("adm.ldap"), self.href(ROW_ID)), Cell(state)]],
        )

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        if item_id != ROW_ID:
            raise NotFound("no LDAP settings {item_id}", item_id=item_id)
        return self.cfg

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        out: list[Field] = []
        for name, label in SHOWN:
            kind = "lines" if name == "role_map" else "text"
            out.append(Field(name, self.t(label), kind, readonly=True, help=env_name(name)))
        return out

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        cfg = self.cfg
        lang = self.ctx.lang
        values: dict[str, Any] = {}
        for name, _ in SHOWN:
            value = getattr(cfg, name)
            if name == "bind_password":  # never shown, not even masked
                value = self.t("adm.ldap.password_set") if value else self.t("adm.ldap.password_unset")
            elif name == "role_map":  # one line per group
                values[name] = [f"{dn} → {enum_label(lang, 'role', role)}" for dn, role in value.items()]
                continue
            elif name == "default_role":
                value = enum_label(lang, "role", value) if value else self.t("adm.ldap.no_default_role")
            elif isinstance(value, bool):
                value = self.t("adm.yes") if value else self.t("adm.no")
            values[name] = str(value)
        return values

    def extras(self, item: Any | None) -> dict[str, Any]:
        return {"env_hint": self.t("adm.ldap.env_hint"), "ldap_enabled": self.cfg.enabled}

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        if name != "check":
            return await super().action(session, item_id, name, form)
        username = str(form.get("username") or "")[:200]

        async def check() -> Outcome:  # after the page's transaction: the directory may be slow
            extras: dict[str, Any] = {**self.extras(None), "check_username": username}
            try:
                result = await ldap_auth.check_lookup_user(self.who, self.cfg, username)
            except InvalidInput as exc:
                extras["check_error"] = exc.localized(self.ctx.lang)
                extras["check_error_field"] = exc.field or "username"
                return Outcome(extras=extras)
            extras["check"] = self._check_view(result)
            return Outcome(extras=extras)

        return Outcome(after=check)

    def _check_view(self, result: ldap_auth.DirectoryCheck) -> dict[str, Any]:
        """What the check shows: unreachable (why), not found, or what a sign-in would give."""
        t, lang = self.t, self.ctx.lang
        if not result.reachable:
            return {
                "state": "unreachable",
                "text": t("adm.ldap.unreachable", detail=result.detail),
                "rows": [],
            }
        user = result.user
        if user is None:
            return {"state": "not_found", "text": t("adm.ldap.not_found"), "rows": []}
        role = enum_label(lang, "role", user.role.value) if user.role else t("adm.ldap.no_role")
        return {
            "state": "found",
            "text": t("adm.ldap.found", role=role),
            "rows": [
                (t("adm.ldap.dn"), user.dn),
                (t("adm.f.username"), user.username),
                (t("adm.ldap.display_name"), user.display_name or "—"),
                (t("adm.ldap.email"), user.email or "—"),
                (t("adm.ldap.groups"), ", ".join(user.groups) or "—"),
                (t("adm.f.role"), role),
            ],
        }
