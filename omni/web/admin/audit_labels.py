"""The audit log viewer's labels: actions, entity types and results in the reader's language.

An action code is ``<entity>.<verb>`` (``queue.update``, ``auth.totp.enable``); a few have a
label of their own (``enum.audit_action.<code>``), the others read as "entity: verb" from the
two parts (``enum.audit_object.<entity>``, ``enum.audit_verb.<verb>``), so a new action shows
sensibly before anyone translates it. The code itself stays on the page beside the label: it is
what the action filter takes (``user.*``)."""

from __future__ import annotations

from omni.i18n import keyed


def object_label(lang: str, object_type: str) -> str:
    return keyed(lang, f"enum.audit_object.{object_type}") or object_type


def result_label(lang: str, result: str) -> str:
    return keyed(lang, f"enum.audit_result.{result}") or result


def action_label(lang: str, action: str) -> str:
    own = keyed(lang, f"enum.audit_action.{action}")
    if own:
        return own
    entity, _, verb = action.rpartition(".")
    if not entity:
        return action
    verb_text = keyed(lang, f"enum.audit_verb.{verb}") or verb.replace("_", " ")
    return f"{object_label(lang, entity)}: {verb_text}"


def entity_ref(lang: str, object_type: str, object_id: str | None) -> tuple[str, bool]:
    """How the row names its entity, and whether that is a real row id worth a link: a failed
    sign-in records the name that was typed (``user`` / ``admin``), which is no user's id."""
    label = object_label(lang, object_type)
    if not object_id:
        return label, False
    if object_id.isdigit():
        return f"{label} #{object_id}", True
    return f"{label}: {object_id}", False
