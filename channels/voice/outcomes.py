"""How a campaign call ended, from what Asterisk says about it: pure functions.

A placed call reports its end three ways, in no fixed order and not always all of them
(``docs/voice.md``, *Voice dialing*): the ``Dial()`` towards the trunk ends with a
``DialStatus`` (the most specific: it is what the trunk answered), the trunk channel hangs up
with an ISDN ``Cause``, and the ``Originate`` ends with an ``OriginateResponse`` whose
``Reason`` is the last control frame the originated channel saw (through a ``Local`` channel
often only "hung up"). ``failure`` picks the most specific signal seen.
"""

from __future__ import annotations

from omni.db.models.outbound import Outcome

__all__ = ["DIAL_STATUS", "HANGUP_CAUSE", "ORIGINATE_REASON", "failure"]

_O = Outcome

ORIGINATE_REASON: dict[str, tuple[Outcome, str]] = {
    "0": (_O.CONGESTION, "no such extension or number"),
    "1": (_O.NO_ANSWER, "hung up before answer"),
    "3": (_O.NO_ANSWER, "ring timeout"),
    "5": (_O.BUSY, "busy"),
    "8": (_O.CONGESTION, "congestion"),
}
"""``OriginateResponse: Failure`` ``Reason`` (the ``AST_CONTROL_*`` frame) → outcome."""

DIAL_STATUS: dict[str, Outcome] = {
    "BUSY": _O.BUSY,
    "NOANSWER": _O.NO_ANSWER,
    "CANCEL": _O.NO_ANSWER,  # our Originate's ring time ran out and cancelled the Dial()
    "CONGESTION": _O.CONGESTION,
    "CHANUNAVAIL": _O.CONGESTION,
    "INVALIDARGS": _O.CONGESTION,
    "DONTCALL": _O.CONGESTION,
    "TORTURE": _O.CONGESTION,
}
"""``DialEnd`` ``DialStatus`` of a call that was not answered → outcome."""

HANGUP_CAUSE: dict[int, Outcome] = {
    16: _O.NO_ANSWER,  # normal clearing before an answer: nobody picked up
    17: _O.BUSY,
    18: _O.NO_ANSWER,
    19: _O.NO_ANSWER,
    21: _O.BUSY,  # call rejected: the customer declined it
    1: _O.CONGESTION,  # unallocated number
    3: _O.CONGESTION,  # no route to destination
    28: _O.CONGESTION,  # invalid number format
    34: _O.CONGESTION,  # no circuit available
    38: _O.CONGESTION,  # network out of order
    41: _O.CONGESTION,  # temporary failure
    42: _O.CONGESTION,  # switching equipment congestion
}
"""ISDN (Q.850) hang-up cause of an unanswered call → outcome; others count as congestion."""


def failure(dial_status: str, hangup_cause: str, hangup_text: str, reason: str) -> tuple[Outcome, str]:
    """An unanswered call's outcome and the cause text stored on the attempt.

    The outcome comes from ``DialStatus`` first, then the trunk's hang-up cause, then the
    ``OriginateResponse`` reason; nothing at all (only our own hang-up) is no answer. The text
    keeps every signal seen, most specific first (``"BUSY; cause 17 (User busy); reason 1"``)."""
    status = dial_status.upper()
    code = int(hangup_cause) if hangup_cause.isdigit() and int(hangup_cause) != 0 else None
    parts: list[str] = []
    outcome: Outcome | None = None
    if status and status != "ANSWER":
        outcome = DIAL_STATUS.get(status, _O.CONGESTION)
        parts.append(status)
    if code is not None:
        outcome = outcome or HANGUP_CAUSE.get(code, _O.CONGESTION)
        parts.append(
            f"cause {code}" + (f" ({hangup_text})" if hangup_text and hangup_text != hangup_cause else "")
        )
    if reason:
        outcome = outcome or ORIGINATE_REASON.get(reason, (_O.CONGESTION, ""))[0]
        parts.append(f"reason {reason}")
    return outcome or _O.NO_ANSWER, "; ".join(parts) or "hung up before answer"
