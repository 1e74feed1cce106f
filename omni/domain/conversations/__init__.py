"""Conversation lifecycle actions.

``bot → queued → offered → active ↔ on_hold → wrap_up → closed``, plus ``abandoned`` (the
customer left while waiting) and ``missed`` (nobody answered). ``do_*`` functions mutate and
emit events without permission checks; ``check_*`` functions validate the caller and input
first. Every function runs inside the caller's transaction.

The package is split by stage (``inbound``, ``queueing``, ``offers``, ``handling``,
``callbacks``); every name stays importable from here, which is where callers import it from.
"""

from __future__ import annotations

from omni.db.unit_of_work import BotGateway
from omni.domain.conversations._common import (
    MAX_BODY,
    REOPEN_WINDOW,
    S,
    _event,
    _message_event,
    bot_gateway,
    defer_message,
    insert_message,
)
from omni.domain.conversations.callbacks import (
    check_claim_callback,
    check_finish_callback,
    check_schedule_callback,
    list_callbacks,
)
from omni.domain.conversations.handling import (
    check_close,
    check_end,
    check_hold,
    check_send_message,
    check_transfer,
    do_close,
    do_customer_left,
    do_end,
    do_mark_deliveries,
    do_mark_delivery,
    do_wrap_up_expired,
)
from omni.domain.conversations.inbound import (
    Admission,
    InboundMessage,
    IngestResult,
    customer_language,
    do_edit_inbound,
    do_ingest_inbound,
    do_record_rating,
)
from omni.domain.conversations.offers import (
    check_accept_offer,
    check_decline_offer,
    do_accept_offer,
    do_offer_timeout,
    do_withdraw_offers,
)
from omni.domain.conversations.queueing import (
    MAX_OVERFLOW_HOPS,
    do_enqueue,
    do_escalation,
    do_queue_timeout,
    do_reopen,
)

__all__ = [
    "MAX_BODY",
    "MAX_OVERFLOW_HOPS",
    "REOPEN_WINDOW",
    "Admission",
    "BotGateway",
    "InboundMessage",
    "IngestResult",
    "S",
    "_event",
    "_message_event",
    "bot_gateway",
    "check_accept_offer",
    "check_claim_callback",
    "check_close",
    "check_decline_offer",
    "check_end",
    "check_finish_callback",
    "check_hold",
    "check_schedule_callback",
    "check_send_message",
    "check_transfer",
    "customer_language",
    "defer_message",
    "do_accept_offer",
    "do_close",
    "do_customer_left",
    "do_edit_inbound",
    "do_end",
    "do_enqueue",
    "do_escalation",
    "do_ingest_inbound",
    "do_mark_deliveries",
    "do_mark_delivery",
    "do_offer_timeout",
    "do_queue_timeout",
    "do_record_rating",
    "do_reopen",
    "do_withdraw_offers",
    "do_wrap_up_expired",
    "insert_message",
    "list_callbacks",
]
