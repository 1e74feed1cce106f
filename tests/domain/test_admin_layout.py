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
    "access_canned_reply",
    "access_card_field",
    "access_admin_contact",
    "access_inbox",
    "access_queue",
    "access_user",
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
    "check_replay_delivery",
    "result_code_dict",
    "check_revoke_token",
    "check_rotate_inbox_secret",
    "search_contacts",
    "check_set_queue_members",
    "check_set_queue_result_codes",
    "check_set_queue_skills",
    "check_set_supervisor_scope",
    "check_set_user_groups",
    "check_set_user_skills",
    "skill_dict",
    "status_dict",
    "token_dict",
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
    "check_delete_personal_canned",
    "local_time",
    "placeholder_values",
    "published_scenarios",
    "render_placeholders",
    "check_save_personal_canned",
    "check_set_blacklisted",
    "snapshot",
    "transfer_targets",
    "check_update_card",
    "check_field_value",
    "waiting_panel",
]


def test_every_old_admin_and_workspace_name_is_importable() -> None:
    missing = [n for n in OLD_ADMIN if not hasattr(admin, n)]
    missing += [f"workspace.{n}" for n in OLD_WORKSPACE if not hasattr(workspace, n)]
    assert missing == []
    assert set(OLD_ADMIN) <= set(admin.__all__) and set(OLD_WORKSPACE) <= set(workspace.__all__)
    # Shared canned replies and card fields are one function under both names.
    assert admin.check_create_canned_reply is workspace.check_create_canned_reply
    assert admin.check_update_card_field is workspace.check_update_card_field


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
