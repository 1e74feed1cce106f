"""Macros, automation rules and operator scripts (issue 18): one action registry
(``actions``) shared by macros (run by an operator) and rules (run by the outbox relay)."""

from omni.domain.automation.actions import ACTIONS, ActionContext, ActionSpec, register_action
from omni.domain.automation.rules import TRIGGERS, RuleRunner, Trigger, register_trigger

__all__ = [
    "ACTIONS",
    "TRIGGERS",
    "ActionContext",
    "ActionSpec",
    "RuleRunner",
    "Trigger",
    "register_action",
    "register_trigger",
]
