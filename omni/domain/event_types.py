"""One typed definition per domain event: the payload (``data``) of every ``type``.

``emit()`` checks each payload against its definition, so a misspelt type or a payload that
grew, lost or retyped a key fails in the action that produced it (a bug, not bad input), not
in a browser or a CRM. The same definitions generate the reference part of docs/events.md
(``scripts/gen_event_docs.py``) and the TypeScript types of the console and the widget
(``scripts/gen_ts_types.py``); tests fail when either drifts from this module.

Payloads are checked after their JSON round trip: datetimes are ISO 8601 strings here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec


class Payload(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every event payload: unknown keys are refused (a payload is a contract)."""


class ConversationPayload(Payload):
    """A conversation as ``omni.domain.serialize.conversation_dict`` shapes it."""

    id: int
    contact_id: int
    inbox_id: int | None
    channel: str
    medium: str
    status: str
    queue_id: int | None
    extra_queue_ids: list[int]
    priority: int
    assigned_user_id: int | None
    subject: str
    variables: dict[str, Any]
    created_at: str | None
    enqueued_at: str | None
    first_enqueued_at: str | None
    offered_at: str | None
    accepted_at: str | None
    wrap_up_at: str | None
    closed_at: str | None
    hold_seconds: int
    result_code_id: int | None
    closed_by: str | None
    last_message_at: str | None
    label_ids: list[int]
    """Its labels (``omni.domain.labels``); webhooks and CRMs filter on them."""


class ConversationCreated(ConversationPayload):
    direction: Literal["out"] | None = None
    """``"out"`` when an operator started it (``omni.domain.outgoing``)."""


class ConversationOffered(ConversationPayload):
    offer_id: int
    expires_at: str
    timeout_seconds: int
    why: dict[str, Any] | None = None
    """Why it is offered to this operator (``omni.domain.place.offer_why``): ``rule`` =
    ``turn`` | ``callback`` | ``affinity`` | ``transfer`` | ``reoffered``, with ``priority``,
    ``since`` (first in line) and the rule's detail."""


class ConversationOfferEnded(ConversationPayload):
    offer_id: int


class ConversationAccepted(ConversationPayload):
    offer_id: int
    wait_seconds: float
    direction: Literal["out"] | None = None


class ConversationMissed(ConversationPayload):
    action: str
    reason: str


class ConversationOverflowed(ConversationPayload):
    action: str
    """``queue`` (moved on to ``to_queue_id``) or ``bot`` (handed to ``scenario``)."""
    reason: str
    from_queue_id: int | None = None
    to_queue_id: int | None = None
    scenario: str | None = None


class ConversationEscalated(ConversationPayload):
    step: int


class ConversationPlaceKept(ConversationPayload):
    mode: str
    """``callback``: the customer is called back when it is their turn; ``telegram``: the
    conversation goes on in Telegram."""
    via: str
    """Where they asked: ``ivr`` (a key while waiting), ``widget``, ``telegram``, ``api``."""


class ConversationAffinity(ConversationPayload):
    user_id: int
    """The operator handling the customer's other conversation, offered this one first."""
    other_conversation_id: int


class ConversationReoffered(ConversationPayload):
    from_user_id: int
    """The operator on a call the chat was taken from."""


class ConversationCallChanged(ConversationPayload):
    call_state: Literal["ringing", "talking"]
    """The call leg Omni placed for it (a callback, a click-to-call): ``ringing`` (dialling
    the customer), ``talking`` (the customer answered)."""


class ConversationWrapUp(ConversationPayload):
    wrap_up_seconds: int


class ConversationClosed(ConversationPayload):
    result_by: str


class ConversationAbandoned(ConversationPayload):
    wait_seconds: float


class ConversationTransferred(ConversationPayload):
    from_user_id: int | None
    to_user_id: int | None
    to_queue_id: int | None
    note: str


class ScriptPayload(Payload):
    """An operator script started or finished on a conversation (``omni.domain.automation``)."""

    script_id: int
    conversation_id: int
    queue_id: int | None
    user_id: int
    fields: dict[str, Any]
    """The card fields the script asks for, as filled in."""


class ConversationRated(ConversationPayload):
    rating: int
    scale: int


class ConversationHandedToBot(ConversationPayload):
    scenario: str
    by_user_id: int


class ConversationTakenOver(ConversationPayload):
    from_user_id: int | None
    to_user_id: int
    by_name: str


class MessagePayload(Payload):
    """A message as ``omni.domain.serialize.message_dict`` shapes it, plus its channel."""

    id: int
    conversation_id: int
    direction: Literal["in", "out", "note", "system"]
    """``note`` is private: staff only."""
    author_user_id: int | None
    body: str
    attachments: list[Any]
    client_id: str | None
    external_id: str | None
    delivery: str
    created_at: str | None
    channel: str


class MessageEdited(MessagePayload):
    previous_body: str


class MessageDelivery(Payload):
    message_id: int
    delivery: str
    error: str


class PresencePayload(Payload):
    """An operator's presence as ``omni.domain.presence.presence_dict`` shapes it."""

    user_id: int
    status: str
    status_name: str
    colour: str
    since: str
    reason: str
    activity: str
    activity_since: str
    over_limit: bool
    connected: bool


class PresenceOverLimit(PresencePayload):
    limit_seconds: int | None


class CallbackPayload(Payload):
    """A callback as ``omni.domain.serialize.callback_dict`` shapes it."""

    id: int
    conversation_id: int | None
    contact_id: int
    queue_id: int | None
    kind: str
    reason: str
    target_user_id: int | None
    state: str
    claimed_by_id: int | None
    claimed_at: str | None
    due_at: str | None
    note: str
    created_at: str | None


class SupervisorMessage(Payload):
    from_user_id: int
    from_name: str
    to_user_id: int
    text: str
    sent_at: str


class QueueMembersChanged(Payload):
    queue_id: int
    user_ids: list[int]
    """Every member after the change (not the difference)."""


class GrantsChanged(Payload):
    role: str
    grants: list[str]
    """Every grant the role holds after the change (not the difference)."""


class SlaPayload(Payload):
    """A wait for an operator's reply as ``omni.domain.sla.target_dict`` shapes it."""

    id: int
    conversation_id: int
    queue_id: int | None
    user_id: int | None
    kind: Literal["first", "next"]
    started_at: str | None
    warning_at: str | None
    due_at: str | None
    breached_at: str | None
    replied_at: str | None
    ended_at: str | None
    state: str


class ConversationLabelsChanged(ConversationPayload):
    added: list[int]
    removed: list[int]
    labels: list[dict[str, Any]]
    """Every label it has now: ``id``, ``name``, ``color``, ``queue_id``."""
    by_user_id: int | None


class ConversationSnoozed(ConversationPayload):
    until: str | None
    """When it comes back by itself (ISO 8601); ``None``: only when the customer writes."""
    until_customer: bool
    user_id: int


class ConversationWoken(ConversationPayload):
    reason: Literal["time", "customer", "operator"]
    to_user_id: int | None
    """The snoozing operator when they were free to take it back, else ``None`` (the queue)."""


class AdminChanged(Payload):
    entity: str
    id: int
    action: Literal["created", "updated", "deleted"]


class CampaignPayload(Payload):
    id: int
    name: str
    state: str
    previous_state: str | None = None
    user_id: int | None = None


class CampaignAttemptPayload(Payload):
    """An attempt as ``omni.domain.outbound.lifecycle.attempt_dict`` shapes it."""

    id: int
    campaign_id: int
    target_id: int
    number: int
    phone: str
    caller_id: str
    channel: str
    operator_id: int | None
    conversation_id: int | None
    outcome: str | None
    cause: str
    created_at: str | None
    started_at: str | None
    answered_at: str | None
    ended_at: str | None


class CampaignAttemptEnded(CampaignAttemptPayload):
    target_state: str
    next_due_at: str | None


class CampaignTargetResult(Payload):
    campaign_id: int
    target_id: int
    state: str
    result_code_id: int | None
    action: str
    next_due_at: str | None
    callback_user_id: int | None
    user_id: int | None


class QaEvaluationPayload(Payload):
    """A quality evaluation as ``omni.domain.qa.evaluation_dict`` shapes it."""

    id: int
    scorecard_id: int
    conversation_id: int
    grader_id: int | None
    operator_id: int | None
    queue_id: int | None
    mode: Literal["history", "live"]
    answers: dict[str, Any]
    score: float
    critical_failed: bool
    comment: str
    operator_comment: str
    acknowledged_at: str | None
    created_at: str | None


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    payload: type[Payload]
    doc: str
    private: bool = False
    """May carry staff-only content: fanned out to the handling operator and supervisors,
    never to a whole queue room of operators (see ``omni.realtime.event_rooms``)."""
    personal: bool = False
    """About one operator (``user_id``), never the team's news: with its queue (for supervisors'
    rooms and queue-filtered webhooks) but never sent to the queue's room of operators."""


def _types(*defs: EventType) -> dict[str, EventType]:
    return {d.name: d for d in defs}


EVENT_TYPES: dict[str, EventType] = _types(
    EventType(
        "conversation.created",
        ConversationCreated,
        "A new conversation (inbound, or started by an operator).",
    ),
    EventType(
        "conversation.blocked",
        ConversationPayload,
        "A blacklisted contact wrote: stored, closed at once, never routed.",
    ),
    EventType("conversation.queued", ConversationPayload, "Waiting in its queue for an operator."),
    EventType(
        "conversation.reopened",
        ConversationPayload,
        "A closed conversation came back (the customer wrote again).",
    ),
    EventType("conversation.offered", ConversationOffered, "Offered to one operator until `expires_at`."),
    EventType(
        "conversation.accepted",
        ConversationAccepted,
        "An operator accepted the offer (`wait_seconds` in the line).",
    ),
    EventType("conversation.offer_declined", ConversationOfferEnded, "The operator declined the offer."),
    EventType("conversation.offer_timeout", ConversationOfferEnded, "The offer expired unanswered."),
    EventType(
        "conversation.offer_cancelled",
        ConversationOfferEnded,
        "The offer was withdrawn (someone else took it, the customer left).",
    ),
    EventType("conversation.on_hold", ConversationPayload, "The operator put it on hold."),
    EventType("conversation.resumed", ConversationPayload, "Back from hold."),
    EventType("conversation.wrap_up", ConversationWrapUp, "Handling ended; wrap-up time runs."),
    EventType(
        "conversation.closed", ConversationClosed, "Closed with a result code (`result_by`: who closed it)."
    ),
    EventType("conversation.abandoned", ConversationAbandoned, "The customer left while waiting."),
    EventType(
        "conversation.missed", ConversationMissed, "Nobody could take it (queue timeout, queue closed)."
    ),
    EventType(
        "conversation.overflowed",
        ConversationOverflowed,
        "Moved to the overflow queue or handed to the overflow scenario.",
    ),
    EventType(
        "conversation.escalated",
        ConversationEscalated,
        "Waited long enough to reach the next escalation step.",
    ),
    EventType("conversation.transferred", ConversationTransferred, "Transferred to an operator or a queue."),
    EventType(
        "conversation.place_kept",
        ConversationPlaceKept,
        "The customer changed channel while waiting (a callback) and kept their place in line.",
    ),
    EventType(
        "conversation.affinity",
        ConversationAffinity,
        "Offered first to the operator already handling the same customer.",
    ),
    EventType(
        "conversation.reoffered",
        ConversationReoffered,
        "A chat waited too long for an operator on a call and went back in line at its place.",
    ),
    EventType(
        "conversation.call_changed",
        ConversationCallChanged,
        "The call Omni placed for it (a callback, a click-to-call) is dialling or was answered.",
    ),
    EventType("conversation.rated", ConversationRated, "A CSAT answer."),
    EventType(
        "conversation.priority_changed",
        ConversationPayload,
        "An automation rule raised the conversation's priority.",
    ),
    EventType("script.started", ScriptPayload, "An operator started the queue's script on a conversation."),
    EventType("script.closed", ScriptPayload, "An operator finished the script (the filled fields)."),
    EventType(
        "conversation.handed_to_bot",
        ConversationHandedToBot,
        "An operator passed it to a published scenario.",
    ),
    EventType("conversation.taken_over", ConversationTakenOver, "A supervisor took the chat over."),
    EventType(
        "conversation.labels_changed",
        ConversationLabelsChanged,
        "Labels were applied or removed (`labels`: all it has now).",
    ),
    EventType(
        "conversation.snoozed",
        ConversationSnoozed,
        "Its operator set it aside until a time or the customer's next message.",
    ),
    EventType(
        "conversation.woken",
        ConversationWoken,
        "A snoozed conversation came back (time, customer message, operator) to its operator or queue.",
    ),
    EventType(
        "message.created",
        MessagePayload,
        "A message was stored (a `note` is private: staff only).",
        private=True,
    ),
    EventType(
        "message.edited", MessageEdited, "A customer edited a message in their messenger.", private=True
    ),
    EventType("message.delivery", MessageDelivery, "The channel reported sent / delivered / read / failed."),
    EventType("presence.changed", PresencePayload, "An operator's status or activity changed."),
    EventType("presence.over_limit", PresenceOverLimit, "A status lasted longer than its limit."),
    EventType(
        "callback.created", CallbackPayload, "A callback was scheduled (or a missed contact left one)."
    ),
    EventType("callback.claimed", CallbackPayload, "An operator took a callback."),
    EventType("callback.done", CallbackPayload, "A taken callback is done."),
    EventType("callback.released", CallbackPayload, "A taken callback went back to the shared list."),
    EventType("supervisor.message", SupervisorMessage, "A supervisor's private message to one operator."),
    EventType(
        "queue.members_changed",
        QueueMembersChanged,
        "An admin changed who is in a queue; live sockets follow.",
    ),
    EventType(
        "grants.changed",
        GrantsChanged,
        "An admin changed a role's grants; live sockets of the role move between masked and plain rooms.",
    ),
    EventType(
        "campaign.state_changed",
        CampaignPayload,
        "A campaign was started, paused, resumed or finished (`user_id`: who; none = its end date).",
    ),
    EventType(
        "campaign.attempt_started",
        CampaignAttemptPayload,
        "An outbound attempt opened (a preview card, a call being placed, a message being sent).",
        private=True,
    ),
    EventType(
        "campaign.attempt_ended",
        CampaignAttemptEnded,
        "An outbound attempt ended with its outcome; `target_state`/`next_due_at`: what follows.",
        private=True,
    ),
    EventType(
        "campaign.target_result",
        CampaignTargetResult,
        "An operator's result code was applied to a campaign contact (`action`: what it did).",
    ),
    EventType(
        "sla.changed",
        SlaPayload,
        "A chat's reply clock started, changed hands or stopped (`ended_at`): the lists re-sort.",
    ),
    EventType("sla.breached", SlaPayload, "A chat's reply deadline passed unanswered (once per wait)."),
    EventType(
        "qa.evaluation_created",
        QaEvaluationPayload,
        "A grader scored a conversation with a scorecard (`critical_failed`: a critical item zeroed it).",
        personal=True,
    ),
    EventType("admin.changed", AdminChanged, "An admin created, updated or deleted a configuration entity."),
)


class EventContractError(TypeError):
    """An action emitted an event its definition does not allow: a bug in the action."""


def check_payload(type_: str, payload: dict[str, Any]) -> Payload:
    """The payload as its typed definition, or ``EventContractError`` naming the problem."""
    definition = EVENT_TYPES.get(type_)
    if definition is None:
        raise EventContractError(f"unknown event type {type_!r}: add it to omni.domain.event_types")
    try:
        return msgspec.convert(payload, definition.payload, strict=True)
    except msgspec.ValidationError as exc:
        raise EventContractError(
            f"{type_} payload does not match {definition.payload.__name__}: {exc}"
        ) from exc


def check_encoded(type_: str, document: str) -> None:
    """:func:`check_payload` for a payload already encoded as JSON: the document decoded against
    the type's definition (``EventContractError`` naming the problem), without building it as
    Python objects first."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        definition = EVENT_TYPES.get(type_)
        if definition is None:
            raise EventContractError(f"unknown event type {type_!r}: add it to omni.domain.event_types")
        decoder = _DECODERS[type_] = msgspec.json.Decoder(definition.payload, strict=True)
    try:
        decoder.decode(document)
    except msgspec.ValidationError as exc:
        raise EventContractError(
            f"{type_} payload does not match {EVENT_TYPES[type_].payload.__name__}: {exc}"
        ) from exc


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {}


def is_private(type_: str, payload: dict[str, Any]) -> bool:
    """Staff-only content (a private note or a supervisor's whisper) or one operator's news (a
    QA grade) that a queue room of operators must not receive."""
    definition = EVENT_TYPES.get(type_)
    if definition is None:
        return False
    return definition.personal or (definition.private and payload.get("direction") == "note")
