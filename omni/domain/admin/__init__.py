"""Administration: people, queues, statuses, result codes, contacts, inboxes, webhooks.

Every function takes the caller and checks role and scope itself, so any transport (REST
today, a CLI or socket tomorrow) gets the same rules. Input is a plain dict holding only the
fields the caller gave, so one function serves both create and partial update. All of it is
validated, including references and uniqueness, before a row is touched, and every change
writes its audit record and its event (``changes``) in the caller's transaction: a refused
request stores and emits nothing.

One module per entity; contacts, webhooks, canned replies and card fields are administered
beside their own domain (``omni.domain.contacts``, ``omni.domain.webhooks``,
``omni.domain.workspace.canned`` / ``.cards``). Every name stays reachable here as
``admin.<name>``. Those four import ``checks`` from this package, so they are re-exported
lazily (module ``__getattr__``): an eager import would be a cycle whichever side loads first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from omni.domain.admin.changes import (
    ADMIN_CHANGED,
    QUEUE_MEMBERS_CHANGED,
)
from omni.domain.admin.checks import (
    ADMIN,
    ADMIN_STATUS_KINDS,
    AUDITOR,
    DELIVERY_STATES,
    INT_MAX,
    LANGUAGES,
    MAX_LIMIT,
    MAX_SKILL_LEVEL,
    MIN_SKILL_LEVEL,
    MIN_WEBHOOK_SECRET,
    OPERATOR,
    OVERFLOW_ACTIONS,
    SUPERVISOR,
    SYSTEM_STATUS_EDITABLE,
    Checker,
    Row,
    clamp_limit,
)
from omni.domain.admin.groups import (
    create_group,
    create_skill,
    delete_group,
    delete_skill,
    group_dicts,
    list_groups,
    list_skills,
    skill_dict,
    update_group,
    update_skill,
)
from omni.domain.admin.inboxes import (
    create_inbox,
    delete_inbox,
    get_inbox,
    inbox_dict,
    list_inboxes,
    rotate_inbox_secret,
    update_inbox,
)
from omni.domain.admin.queues import (
    create_queue,
    delete_queue,
    get_queue,
    list_queues,
    queue_detail,
    queue_dicts,
    set_queue_members,
    set_queue_result_codes,
    set_queue_skills,
    update_queue,
)
from omni.domain.admin.result_codes import (
    create_result_code,
    deactivate_result_code,
    list_result_codes,
    result_code_dict,
    update_result_code,
)
from omni.domain.admin.statuses import (
    create_status,
    delete_status,
    list_statuses,
    status_dict,
    update_status,
)
from omni.domain.admin.tokens import (
    audit_dict,
    list_audit,
    list_tokens,
    revoke_token,
    token_dict,
)
from omni.domain.admin.users import (
    create_user,
    deactivate_user,
    get_user,
    list_users,
    set_supervisor_scope,
    set_user_groups,
    set_user_skills,
    update_user,
    user_detail,
    user_dict,
)

if TYPE_CHECKING:
    from omni.domain.contacts import (
        contact_detail,
        contact_dict,
        create_contact,
        get_contact,
        search_contacts,
        update_contact,
    )
    from omni.domain.webhooks import (
        create_webhook,
        delete_webhook,
        list_deliveries,
        list_webhooks,
        replay_delivery,
        update_webhook,
        webhook_dict,
    )
    from omni.domain.workspace.canned import (
        MAX_CANNED_BODY,
        PLACEHOLDERS,
        canned_reply_dict,
        create_canned_reply,
        delete_canned_reply,
        get_canned_reply,
        list_canned_replies,
        update_canned_reply,
    )
    from omni.domain.workspace.cards import (
        CARD_FIELD_KINDS,
        card_field_dict,
        create_card_field,
        delete_card_field,
        get_card_field,
        list_card_fields,
        update_card_field,
    )

_ELSEWHERE: dict[str, str] = {
    "contact_dict": "omni.domain.contacts",
    "contact_detail": "omni.domain.contacts",
    "search_contacts": "omni.domain.contacts",
    "get_contact": "omni.domain.contacts",
    "create_contact": "omni.domain.contacts",
    "update_contact": "omni.domain.contacts",
    "webhook_dict": "omni.domain.webhooks",
    "list_webhooks": "omni.domain.webhooks",
    "create_webhook": "omni.domain.webhooks",
    "update_webhook": "omni.domain.webhooks",
    "delete_webhook": "omni.domain.webhooks",
    "list_deliveries": "omni.domain.webhooks",
    "replay_delivery": "omni.domain.webhooks",
    "PLACEHOLDERS": "omni.domain.workspace.canned",
    "MAX_CANNED_BODY": "omni.domain.workspace.canned",
    "canned_reply_dict": "omni.domain.workspace.canned",
    "list_canned_replies": "omni.domain.workspace.canned",
    "get_canned_reply": "omni.domain.workspace.canned",
    "create_canned_reply": "omni.domain.workspace.canned",
    "update_canned_reply": "omni.domain.workspace.canned",
    "delete_canned_reply": "omni.domain.workspace.canned",
    "CARD_FIELD_KINDS": "omni.domain.workspace.cards",
    "card_field_dict": "omni.domain.workspace.cards",
    "list_card_fields": "omni.domain.workspace.cards",
    "get_card_field": "omni.domain.workspace.cards",
    "create_card_field": "omni.domain.workspace.cards",
    "update_card_field": "omni.domain.workspace.cards",
    "delete_card_field": "omni.domain.workspace.cards",
}
"""Admin names that live beside their domain: name → module."""


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ADMIN",
    "ADMIN_CHANGED",
    "ADMIN_STATUS_KINDS",
    "AUDITOR",
    "CARD_FIELD_KINDS",
    "DELIVERY_STATES",
    "INT_MAX",
    "LANGUAGES",
    "MAX_CANNED_BODY",
    "MAX_LIMIT",
    "MAX_SKILL_LEVEL",
    "MIN_SKILL_LEVEL",
    "MIN_WEBHOOK_SECRET",
    "OPERATOR",
    "OVERFLOW_ACTIONS",
    "PLACEHOLDERS",
    "QUEUE_MEMBERS_CHANGED",
    "SUPERVISOR",
    "SYSTEM_STATUS_EDITABLE",
    "Checker",
    "Row",
    "audit_dict",
    "canned_reply_dict",
    "card_field_dict",
    "clamp_limit",
    "contact_detail",
    "contact_dict",
    "create_canned_reply",
    "create_card_field",
    "create_contact",
    "create_group",
    "create_inbox",
    "create_queue",
    "create_result_code",
    "create_skill",
    "create_status",
    "create_user",
    "create_webhook",
    "deactivate_result_code",
    "deactivate_user",
    "delete_canned_reply",
    "delete_card_field",
    "delete_group",
    "delete_inbox",
    "delete_queue",
    "delete_skill",
    "delete_status",
    "delete_webhook",
    "get_canned_reply",
    "get_card_field",
    "get_contact",
    "get_inbox",
    "get_queue",
    "get_user",
    "group_dicts",
    "inbox_dict",
    "list_audit",
    "list_canned_replies",
    "list_card_fields",
    "list_deliveries",
    "list_groups",
    "list_inboxes",
    "list_queues",
    "list_result_codes",
    "list_skills",
    "list_statuses",
    "list_tokens",
    "list_users",
    "list_webhooks",
    "queue_detail",
    "queue_dicts",
    "replay_delivery",
    "result_code_dict",
    "revoke_token",
    "rotate_inbox_secret",
    "search_contacts",
    "set_queue_members",
    "set_queue_result_codes",
    "set_queue_skills",
    "set_supervisor_scope",
    "set_user_groups",
    "set_user_skills",
    "skill_dict",
    "status_dict",
    "token_dict",
    "update_canned_reply",
    "update_card_field",
    "update_contact",
    "update_group",
    "update_inbox",
    "update_queue",
    "update_result_code",
    "update_skill",
    "update_status",
    "update_user",
    "update_webhook",
    "user_detail",
    "user_dict",
    "webhook_dict",
]
