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
    check_create_group,
    check_create_skill,
    check_delete_group,
    check_delete_skill,
    check_update_group,
    check_update_skill,
    group_dicts,
    list_groups,
    list_skills,
    skill_dict,
)
from omni.domain.admin.inboxes import (
    access_inbox,
    check_create_inbox,
    check_delete_inbox,
    check_rotate_inbox_secret,
    check_update_inbox,
    inbox_dict,
    list_inboxes,
)
from omni.domain.admin.queues import (
    access_queue,
    check_create_queue,
    check_delete_queue,
    check_set_queue_members,
    check_set_queue_result_codes,
    check_set_queue_skills,
    check_update_queue,
    list_queues,
    queue_detail,
    queue_dicts,
)
from omni.domain.admin.result_codes import (
    check_create_result_code,
    check_deactivate_result_code,
    check_update_result_code,
    list_result_codes,
    result_code_dict,
)
from omni.domain.admin.statuses import (
    check_create_status,
    check_delete_status,
    check_update_status,
    list_statuses,
    status_dict,
)
from omni.domain.admin.tokens import (
    audit_dict,
    check_revoke_token,
    list_audit,
    list_tokens,
    token_dict,
)
from omni.domain.admin.users import (
    access_user,
    check_create_user,
    check_deactivate_user,
    check_set_supervisor_scope,
    check_set_user_groups,
    check_set_user_skills,
    check_update_user,
    list_users,
    user_detail,
    user_dict,
)

if TYPE_CHECKING:
    from omni.domain.contacts import (
        access_admin_contact,
        check_create_contact,
        check_update_contact,
        contact_detail,
        contact_dict,
        search_contacts,
    )
    from omni.domain.webhooks import (
        check_create_webhook,
        check_delete_webhook,
        check_replay_delivery,
        check_update_webhook,
        list_deliveries,
        list_webhooks,
        webhook_dict,
    )
    from omni.domain.workspace.canned import (
        MAX_CANNED_BODY,
        PLACEHOLDERS,
        access_canned_reply,
        canned_reply_dict,
        check_create_canned_reply,
        check_delete_canned_reply,
        check_update_canned_reply,
        list_canned_replies,
    )
    from omni.domain.workspace.cards import (
        CARD_FIELD_KINDS,
        access_card_field,
        card_field_dict,
        check_create_card_field,
        check_delete_card_field,
        check_update_card_field,
        list_card_fields,
    )

_ELSEWHERE: dict[str, str] = {
    "contact_dict": "omni.domain.contacts",
    "contact_detail": "omni.domain.contacts",
    "search_contacts": "omni.domain.contacts",
    "access_admin_contact": "omni.domain.contacts",
    "check_create_contact": "omni.domain.contacts",
    "check_update_contact": "omni.domain.contacts",
    "webhook_dict": "omni.domain.webhooks",
    "list_webhooks": "omni.domain.webhooks",
    "check_create_webhook": "omni.domain.webhooks",
    "check_update_webhook": "omni.domain.webhooks",
    "check_delete_webhook": "omni.domain.webhooks",
    "list_deliveries": "omni.domain.webhooks",
    "check_replay_delivery": "omni.domain.webhooks",
    "PLACEHOLDERS": "omni.domain.workspace.canned",
    "MAX_CANNED_BODY": "omni.domain.workspace.canned",
    "canned_reply_dict": "omni.domain.workspace.canned",
    "list_canned_replies": "omni.domain.workspace.canned",
    "access_canned_reply": "omni.domain.workspace.canned",
    "check_create_canned_reply": "omni.domain.workspace.canned",
    "check_update_canned_reply": "omni.domain.workspace.canned",
    "check_delete_canned_reply": "omni.domain.workspace.canned",
    "CARD_FIELD_KINDS": "omni.domain.workspace.cards",
    "card_field_dict": "omni.domain.workspace.cards",
    "list_card_fields": "omni.domain.workspace.cards",
    "access_card_field": "omni.domain.workspace.cards",
    "check_create_card_field": "omni.domain.workspace.cards",
    "check_update_card_field": "omni.domain.workspace.cards",
    "check_delete_card_field": "omni.domain.workspace.cards",
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
    "access_admin_contact",
    "access_canned_reply",
    "access_card_field",
    "access_inbox",
    "access_queue",
    "access_user",
    "audit_dict",
    "canned_reply_dict",
    "card_field_dict",
    "check_create_canned_reply",
    "check_create_card_field",
    "check_create_contact",
    "check_create_group",
    "check_create_inbox",
    "check_create_queue",
    "check_create_result_code",
    "check_create_skill",
    "check_create_status",
    "check_create_user",
    "check_create_webhook",
    "check_deactivate_result_code",
    "check_deactivate_user",
    "check_delete_canned_reply",
    "check_delete_card_field",
    "check_delete_group",
    "check_delete_inbox",
    "check_delete_queue",
    "check_delete_skill",
    "check_delete_status",
    "check_delete_webhook",
    "check_replay_delivery",
    "check_revoke_token",
    "check_rotate_inbox_secret",
    "check_set_queue_members",
    "check_set_queue_result_codes",
    "check_set_queue_skills",
    "check_set_supervisor_scope",
    "check_set_user_groups",
    "check_set_user_skills",
    "check_update_canned_reply",
    "check_update_card_field",
    "check_update_contact",
    "check_update_group",
    "check_update_inbox",
    "check_update_queue",
    "check_update_result_code",
    "check_update_skill",
    "check_update_status",
    "check_update_user",
    "check_update_webhook",
    "clamp_limit",
    "contact_detail",
    "contact_dict",
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
    "result_code_dict",
    "search_contacts",
    "skill_dict",
    "status_dict",
    "token_dict",
    "user_detail",
    "user_dict",
    "webhook_dict",
]
