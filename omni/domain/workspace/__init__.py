"""The operator single window: what the operator reads and does beside the lifecycle actions.

One conversation's view (messages, customer card, the queue's script and result codes,
transfer targets), the contact's history across channels, canned replies with placeholders,
card edits, the blacklist, taking a waiting conversation by hand, and the panels of the window
(waiting line, missed/abandoned list). Every read goes through ``access_conversation`` or the
caller's visible queues, so an operator of another group gets "not found" whatever they ask.

History rule: the contact's other conversations are shown when the caller could open them on
their own (their queues, or ones they handled); the rest are only counted (``hidden``), because
another group's conversation may hold what this group must not read. Private notes of shown
conversations are included: they are staff-only, and the caller is staff of that queue.

Functions run inside the caller's transaction; actions emit their events there. One module
per part of the window; the shared canned replies and card fields that supervisors manage
live beside the operator's half (``canned``, ``cards``) and are re-exported by ``admin``.
"""

from __future__ import annotations

from omni.domain.workspace.blacklist import (
    check_set_blacklisted,
)
from omni.domain.workspace.canned import (
    MAX_CANNED_BODY,
    PLACEHOLDERS,
    access_canned_reply,
    canned_replies,
    canned_reply_dict,
    check_create_canned_reply,
    check_delete_canned_reply,
    check_delete_personal_canned,
    check_save_personal_canned,
    check_update_canned_reply,
    list_canned_replies,
    placeholder_values,
    render_placeholders,
)
from omni.domain.workspace.cards import (
    BUILTIN_FIELDS,
    CARD_FIELD_KINDS,
    MAX_TEXT_FIELD,
    access_card_field,
    card_dict,
    card_field_dict,
    card_fields_for,
    check_create_card_field,
    check_delete_card_field,
    check_field_value,
    check_update_card,
    check_update_card_field,
    list_card_fields,
    local_time,
)
from omni.domain.workspace.handback import (
    check_caller_can_move,
    check_hand_to_bot,
    published_scenarios,
)
from omni.domain.workspace.history import (
    HISTORY_CONVERSATIONS,
    HISTORY_MESSAGES,
    contact_history,
)
from omni.domain.workspace.panels import (
    WAITING_LIMIT,
    S,
    callbacks_panel,
    snapshot,
    waiting_panel,
)
from omni.domain.workspace.take import (
    check_take,
)
from omni.domain.workspace.view import (
    VIEW_MESSAGES,
    allowed_result_codes,
    call_dict,
    call_facts,
    call_state,
    conversation_view,
    transfer_targets,
)

__all__ = [
    "BUILTIN_FIELDS",
    "CARD_FIELD_KINDS",
    "HISTORY_CONVERSATIONS",
    "HISTORY_MESSAGES",
    "MAX_CANNED_BODY",
    "MAX_TEXT_FIELD",
    "PLACEHOLDERS",
    "VIEW_MESSAGES",
    "WAITING_LIMIT",
    "S",
    "access_canned_reply",
    "access_card_field",
    "allowed_result_codes",
    "call_dict",
    "call_facts",
    "call_state",
    "callbacks_panel",
    "canned_replies",
    "canned_reply_dict",
    "card_dict",
    "card_field_dict",
    "card_fields_for",
    "check_caller_can_move",
    "check_create_canned_reply",
    "check_create_card_field",
    "check_delete_canned_reply",
    "check_delete_card_field",
    "check_delete_personal_canned",
    "check_field_value",
    "check_hand_to_bot",
    "check_save_personal_canned",
    "check_set_blacklisted",
    "check_take",
    "check_update_canned_reply",
    "check_update_card",
    "check_update_card_field",
    "contact_history",
    "conversation_view",
    "list_canned_replies",
    "list_card_fields",
    "local_time",
    "placeholder_values",
    "published_scenarios",
    "render_placeholders",
    "snapshot",
    "transfer_targets",
    "waiting_panel",
]
