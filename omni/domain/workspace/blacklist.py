"""The blacklist (do-not-contact) from the operator window."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import (
    Principal,
    access_conversation,
)
from omni.domain.errors import PermissionDenied
from omni.domain.workspace.cards import _locked_contact


async def check_set_blacklisted(
    session: AsyncSession, who: Principal, conv_id: int, *, blacklisted: bool = True, reason: str = ""
) -> m.Contact:
    """Add the conversation's contact to the blacklist (do-not-contact); audit-logged.

    Operators may only add; taking a contact off the list is for supervisors and admins.
    """
    if not blacklisted and who.role not in (m.Role.SUPERVISOR, m.Role.ADMIN):
        raise PermissionDenied("only supervisors take a contact off the blacklist")
    conv = await access_conversation(session, who, conv_id)
    contact = await _locked_contact(session, conv.contact_id)
    contact.blacklisted = blacklisted
    audit.record(
        session,
        who,
        "contact.blacklist" if blacklisted else "contact.unblacklist",
        object_type="contact",
        object_id=contact.id,
        data={"conversation_id": conv.id, "reason": reason[:256]},
    )
    return contact
