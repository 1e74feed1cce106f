"""How a campaign call ended, from what Asterisk says about it: pure functions.

A placed call reports its end three ways, in no fixed order and not always all of them
(``docs/voice.md``, *Voice dialing*): the ``Dial()`` towards the trunk ends with a
``DialStatus`` (the most specific: it is what the trunk answered), the trunk channel hangs up
with an ISDN ``Cause``, and the ``Originate`` ends with an ``OriginateResponse`` whose
``Reason`` is the last control frame the originated channel saw (through a ``Local`` channel
Asterisk 22 says 0 for busy, congestion, rejected alike). ``failure`` picks the most telling
signal seen (observed on Asterisk 22.10.1: ``docs/voice.md``).
"""

from __future__ import annotations

from omni.db.models.outbound import Outcome

__all__ = ["DIAL_STATUS", "HANGUP_CAUSE", "ORIGINATE_REASON", "failure", "specific_cause"]

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


_VAGUE_STATUSES = ("", "ANSWER", "NOANSWER", "CANCEL")
"""``DialStatus`` values that don't say why: a callee that hangs up with an ISDN cause Dial()
does not translate (unallocated number, call rejected) ends the Dial() as ``NOANSWER``."""


def specific_cause(cause: str) -> bool:
    """A hang-up cause that tells something (not 0 "unknown", not 16 "normal clearing", which
    every leg of a ``Local`` chain reports after ``Hangup()``)."""
    return cause.isdigit() and int(cause) not in (0, 16)


def failure(dial_status: str, hangup_cause: str, hangup_text: str, reason: str) -> tuple[Outcome, str]:
    """An unanswered call's outcome and the cause text stored on the attempt.

    The outcome comes from a telling ``DialStatus`` (busy, congestion, unavailable) first, then
    a telling hang-up cause, then a vague ``DialStatus`` (no answer, cancelled by our ring
    time), then the ``OriginateResponse`` reason (through a ``Local`` channel Asterisk 22
    reports Reason 0 for every failure it did not time out itself); nothing at all is no
    answer. The text keeps every signal seen (``"BUSY; cause 17 (User busy); reason 0"``)."""
    status = dial_status.upper()
    parts: list[str] = []
    if status and status != "ANSWER":
        parts.append(status)
    if specific_cause(hangup_cause):
        parts.append(
            f"cause {hangup_cause}"
            + (f" ({hangup_text})" if hangup_text and hangup_text != hangup_cause else "")
        )
    if reason:
        parts.append(f"reason {reason}")
    text = "; ".join(parts) or "hung up before answer"
    if status not in _VAGUE_STATUSES:
        return DIAL_STATUS.get(status, _O.CONGESTION), text
    if specific_cause(hangup_cause):
        return HANGUP_CAUSE.get(int(hangup_cause), _O.CONGESTION), text
    if status in DIAL_STATUS:
        return DIAL_STATUS[status], text
    if reason:
        return ORIGINATE_REASON.get(reason, (_O.CONGESTION, ""))[0], text
    return _O.NO_ANSWER, text
