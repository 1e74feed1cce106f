"""AMI events → call events: pure functions, no I/O, tested on captured payloads.

Asterisk speaks in channels (``Uniqueid``), grouped into a call by ``Linkedid``. What the
voice adapter needs of the dozens of AMI events is a handful of facts, normalised here into
``CallEvent`` values so the state owner (``channels.voice.state``) never reads raw headers.
Unknown or irrelevant events map to ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["CallEvent", "ChannelSnapshot", "Kind", "ami_event_to_call_event", "snapshot_from_core_show"]


class Kind(StrEnum):
    NEW_CHANNEL = "new_channel"
    STATE = "state"
    ENQUEUE = "enqueue"
    """The dialplan put a caller in the waiting context (``UserEvent: OmniEnqueue``)."""
    DIAL_BEGIN = "dial_begin"
    DIAL_END = "dial_end"
    BRIDGE_ENTER = "bridge_enter"
    BRIDGE_LEAVE = "bridge_leave"
    HOLD = "hold"
    UNHOLD = "unhold"
    MOH_START = "moh_start"
    HANGUP = "hangup"
    ATTENDED_TRANSFER = "attended_transfer"
    BLIND_TRANSFER = "blind_transfer"
    ORIGINATE_RESPONSE = "originate_response"
    AMD = "amd"
    """The outbound dialplan's ``AMD()`` finished (``UserEvent: OmniAmd``, ``Status`` =
    ``AMDSTATUS``, ``Cause`` = ``AMDCAUSE``): ``extra["status"]``, ``extra["cause"]``."""
    CLAIM = "claim"
    """Not from Asterisk: the adapter's own nudge to look for a free operator again for an
    answered predictive call (an operator may have become free, or its drop time is up:
    ``extra["deadline"]``). Queued with the AMI events so it is applied in order with them."""


# Asterisk ``ChannelState`` numbers (``ast_channel_state``).
CHANNEL_STATES = {
    "0": "down",
    "1": "reserved",
    "2": "offhook",
    "3": "dialing",
    "4": "ring",
    "5": "ringing",
    "6": "up",
    "7": "busy",
}


@dataclass(frozen=True, slots=True)
class CallEvent:
    kind: Kind
    uniqueid: str
    linkedid: str = ""
    channel: str = ""
    state: str = ""
    """down | ring | ringing | up | busy ... (``ChannelState`` normalised)."""
    caller_number: str = ""
    caller_name: str = ""
    context: str = ""
    exten: str = ""
    bridge_id: str = ""
    peer_uniqueid: str = ""
    """DialBegin/End: the dialled channel; transfers: the channel now talking to the caller."""
    peer_channel: str = ""
    dial_status: str = ""
    cause: str = ""
    success: bool = True
    """Transfers and originate responses: whether it worked."""
    inbox: str = ""
    """``OmniEnqueue``: the inbox id (or DID) the dialplan tagged the call with."""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """One live channel as ``CoreShowChannels`` lists it (resync after a reconnect)."""

    uniqueid: str
    linkedid: str
    channel: str
    state: str
    context: str
    exten: str
    caller_number: str
    caller_name: str
    bridge_id: str
    application: str


USED_EVENTS = frozenset(
    {
        "Newchannel",
        "Newstate",
        "UserEvent",
        "DialBegin",
        "DialEnd",
        "BridgeEnter",
        "BridgeLeave",
        "Hold",
        "Unhold",
        "MusicOnHoldStart",
        "Hangup",
        "AttendedTransfer",
        "BlindTransfer",
        "OriginateResponse",
    }
)
"""The AMI events ``ami_event_to_call_event`` maps; every other name is ``None`` at once."""


def _h(msg: Mapping[str, Any], key: str) -> str:
    """A header as text. panoramisk messages are case-insensitive; plain dicts use AMI casing."""
    value = msg.get(key)
    if value is None:
        return ""
    if isinstance(value, list):
        return str(value[-1])
    return str(value)


def _state(msg: Mapping[str, Any]) -> str:
    num = _h(msg, "ChannelState")
    if num in CHANNEL_STATES:
        return CHANNEL_STATES[num]
    return _h(msg, "ChannelStateDesc").lower()


def _base(kind: Kind, msg: Mapping[str, Any], **kw: Any) -> CallEvent:
    caller_number = _h(msg, "CallerIDNum")
    return CallEvent(
        kind=kind,
        uniqueid=_h(msg, "Uniqueid"),
        linkedid=_h(msg, "Linkedid") or _h(msg, "Uniqueid"),
        channel=_h(msg, "Channel"),
        state=_state(msg),
        caller_number="" if caller_number == "<unknown>" else caller_number,
        caller_name="" if _h(msg, "CallerIDName") == "<unknown>" else _h(msg, "CallerIDName"),
        context=_h(msg, "Context"),
        exten=_h(msg, "Exten"),
        **kw,
    )


def ami_event_to_call_event(msg: Mapping[str, Any]) -> CallEvent | None:
    """Normalise one AMI event; ``None`` for events the voice channel does not use."""
    name = _h(msg, "Event")
    if name not in USED_EVENTS:
        return None  # the cheap common case: most of a PBX's events are none of ours
    match name:
        case "Newchannel":
            return _base(Kind.NEW_CHANNEL, msg)
        case "Newstate":
            return _base(Kind.STATE, msg)
        case "UserEvent" if _h(msg, "UserEvent") == "OmniEnqueue":
            return _base(Kind.ENQUEUE, msg, inbox=_h(msg, "Inbox") or _h(msg, "DID"))
        case "UserEvent" if _h(msg, "UserEvent") == "OmniAmd":
            status = _h(msg, "Status").strip().upper()
            return _base(Kind.AMD, msg, extra={"status": status, "cause": _h(msg, "Cause").strip()})
        case "DialBegin":
            return _base(
                Kind.DIAL_BEGIN,
                msg,
                peer_uniqueid=_h(msg, "DestUniqueid"),
                peer_channel=_h(msg, "DestChannel"),
            )
        case "DialEnd":
            return _base(
                Kind.DIAL_END,
                msg,
                peer_uniqueid=_h(msg, "DestUniqueid"),
                peer_channel=_h(msg, "DestChannel"),
                dial_status=_h(msg, "DialStatus"),
            )
        case "BridgeEnter":
            return _base(Kind.BRIDGE_ENTER, msg, bridge_id=_h(msg, "BridgeUniqueid"))
        case "BridgeLeave":
            return _base(Kind.BRIDGE_LEAVE, msg, bridge_id=_h(msg, "BridgeUniqueid"))
        case "Hold":
            return _base(Kind.HOLD, msg)
        case "Unhold":
            return _base(Kind.UNHOLD, msg)
        case "MusicOnHoldStart":
            return _base(Kind.MOH_START, msg)
        case "Hangup":
            return _base(
                Kind.HANGUP,
                msg,
                cause=_h(msg, "Cause-txt") or _h(msg, "Cause"),
                extra={"cause": _h(msg, "Cause")},
            )
        case "AttendedTransfer":
            # The caller (transferee) now talks to the transfer target.
            return CallEvent(
                kind=Kind.ATTENDED_TRANSFER,
                uniqueid=_h(msg, "OrigTransfererUniqueid"),
                linkedid=_h(msg, "OrigTransfererLinkedid"),
                channel=_h(msg, "OrigTransfererChannel"),
                peer_uniqueid=_h(msg, "TransferTargetUniqueid") or _h(msg, "SecondTransfererUniqueid"),
                peer_channel=_h(msg, "TransferTargetChannel") or _h(msg, "SecondTransfererChannel"),
                success=_h(msg, "Result") == "Success",
                extra={"transferee_uniqueid": _h(msg, "TransfereeUniqueid")},
            )
        case "BlindTransfer":
            return CallEvent(
                kind=Kind.BLIND_TRANSFER,
                uniqueid=_h(msg, "TransfererUniqueid"),
                linkedid=_h(msg, "TransfererLinkedid"),
                channel=_h(msg, "TransfererChannel"),
                exten=_h(msg, "Extension"),
                context=_h(msg, "Context"),
                success=_h(msg, "Result") == "Success",
                extra={"transferee_uniqueid": _h(msg, "TransfereeUniqueid")},
            )
        case "OriginateResponse":
            return CallEvent(
                kind=Kind.ORIGINATE_RESPONSE,
                uniqueid=_h(msg, "Uniqueid"),
                channel=_h(msg, "Channel"),
                success=_h(msg, "Response") == "Success",
                cause=_h(msg, "Reason"),
                # Campaign calls map back to their attempt by it (``channels.voice.campaign``).
                extra={"action_id": _h(msg, "ActionID")},
            )
    return None


def snapshot_from_core_show(msg: Mapping[str, Any]) -> ChannelSnapshot | None:
    """One ``CoreShowChannel`` list item; ``None`` for anything else in the list."""
    if _h(msg, "Event") != "CoreShowChannel":
        return None
    return ChannelSnapshot(
        uniqueid=_h(msg, "Uniqueid"),
        linkedid=_h(msg, "Linkedid") or _h(msg, "Uniqueid"),
        channel=_h(msg, "Channel"),
        state=_state(msg),
        context=_h(msg, "Context"),
        exten=_h(msg, "Exten"),
        caller_number=_h(msg, "CallerIDNum"),
        caller_name=_h(msg, "CallerIDName"),
        bridge_id=_h(msg, "BridgeId"),
        application=_h(msg, "Application"),
    )
