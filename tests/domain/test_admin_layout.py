"""The admin and workspace split: every name from the old single modules is still reachable,
whichever module loads first, and no part has outgrown one reader's head again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omni.domain import admin, workspace

ROOT = Path(__file__).resolve().parents[2]

OLD_ADMIN = [
    "ADMIN",
    "ADMIN_STATUS_KINDS",
    "AUDITOR",
    "CARD_FIELD_KINDS",
    "Checker",
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
    "Row",
    "SUPERVISOR",
    "SYSTEM_STATUS_EDITABLE",
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
OLD_WORKSPACE = [
    "BUILTIN_FIELDS",
    "HISTORY_CONVERSATIONS",
    "HISTORY_MESSAGES",
    "MAX_TEXT_FIELD",
    "S",
    "VIEW_MESSAGES",
    "WAITING_LIMIT",
    "allowed_result_codes",
    "call_dict",
    "call_facts",
    "call_state",
    "callbacks_panel",
    "canned_replies",
    "card_dict",
    "card_fields_for",
    "check_caller_can_move",
    "check_hand_to_bot",
    "check_take",
    "contact_history",
    "conversation_view",
    "delete_personal_canned",
    "local_time",
    "placeholder_values",
    "published_scenarios",
    "render_placeholders",
    "save_personal_canned",
    "set_blacklisted",
    "snapshot",
    "transfer_targets",
    "update_card",
    "validate_field_value",
    "waiting_panel",
]


def test_every_old_admin_and_workspace_name_is_importable() -> None:
    missing = [n for n in OLD_ADMIN if not hasattr(admin, n)]
    missing += [f"workspace.{n}" for n in OLD_WORKSPACE if not hasattr(workspace, n)]
    assert missing == []
    assert set(OLD_ADMIN) <= set(admin.__all__) and set(OLD_WORKSPACE) <= set(workspace.__all__)
    # Shared canned replies and card fields are one function under both names.
    assert admin.create_canned_reply is workspace.create_canned_reply
    assert admin.update_card_field is workspace.update_card_field


@pytest.mark.parametrize(
    "first",
    [
        "omni.domain.contacts",
        "omni.domain.webhooks",
        "omni.domain.workspace.cards",
        "omni.domain.workspace.canned",
        "omni.domain.admin.checks",
        "omni.domain.admin",
    ],
)
def test_admin_names_resolve_whichever_module_is_imported_first(first: str) -> None:
    """The parts administered beside their domain import ``admin.checks``; a fresh interpreter
    that starts from any of them must still see every admin name (no import cycle)."""
    code = (
        f"import {first}\n"
        "from omni.domain import admin\n"
        f"missing = [n for n in {OLD_ADMIN!r} if not hasattr(admin, n)]\n"
        "assert not missing, missing\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


def test_admin_and_workspace_modules_stay_under_600_lines() -> None:
    paths = [
        *sorted((ROOT / "omni/domain/admin").glob("*.py")),
        *sorted((ROOT / "omni/domain/workspace").glob("*.py")),
        ROOT / "omni/domain/contacts.py",
        ROOT / "omni/domain/webhooks.py",
    ]
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in paths}
    assert {p: n for p, n in sizes.items() if n > 600} == {}
