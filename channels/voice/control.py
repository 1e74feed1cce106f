"""AMI actions the voice adapter sends, built by pure functions (one place to read the
dialplan contract from; tests assert on them).

See ``docs/voice.md`` for the contexts these actions point at.
"""

from __future__ import annotations

from typing import Any

from omni.domain.errors import InvalidInput
from omni.settings import VoiceSettings

__all__ = [
    "SPY_OPTIONS",
    "amd_arguments",
    "bridge",
    "campaign_agent",
    "campaign_call",
    "chanspy",
    "click_to_call",
    "hangup",
    "mixmonitor",
    "originate_agent",
    "redirect",
    "setvar",
    "speak",
]

RING_GRACE_SECONDS = 5
"""Asterisk's own ring timeout is the queue's plus this: the core's offer deadline decides."""

SPY_OPTIONS = {"listen": "qE", "whisper": "qwE", "barge": "qBE"}
"""ChanSpy options: ``q`` quiet (no beep/name), ``E`` end when the spied channel hangs up;
``w`` whisper to the operator only; ``B`` barge: talk to both parties. Listen has neither."""


def _caller_id(name: str, number: str) -> str:
    clean = name.replace('"', "").strip()
    return f'"{clean}" <{number}>' if clean else f"<{number}>"


def originate_agent(
    s: VoiceSettings,
    extension: str,
    uniqueid: str,
    *,
    ring_seconds: int,
    caller_number: str,
    caller_name: str,
    conversation_id: int,
    offer_id: int,
) -> dict[str, Any]:
    """Ring an operator's phone for an offer. Answered, the leg waits in ``agent_context``
    until the adapter bridges it with the caller; the ``ChannelId`` lets events be matched
    to the offer before Asterisk names the channel."""
    return {
        "Action": "Originate",
        "Channel": s.endpoint_template.format(extension=extension),
        "Context": s.agent_context,
        "Exten": "s",
        "Priority": "1",
        # The core's offer deadline stops the ring (Hangup); this is only a safety net.
        "Timeout": str((max(1, ring_seconds) + RING_GRACE_SECONDS) * 1000),
        "CallerID": _caller_id(caller_name, caller_number or "anonymous"),
        "ChannelId": uniqueid,
        "Variable": [f"OMNI_CONVERSATION={conversation_id}", f"OMNI_OFFER={offer_id}"],
        "Async": "true",
    }


def click_to_call(
    s: VoiceSettings, extension: str, uniqueid: str, number: str, caller_id: str, conversation_id: int
) -> dict[str, Any]:
    """Operator first; once they answer the dialplan dials ``number`` with the queue's caller id."""
    return {
        "Action": "Originate",
        "Channel": s.endpoint_template.format(extension=extension),
        "Context": s.outbound_context,
        "Exten": number,
        "Priority": "1",
        "Timeout": "30000",
        "CallerID": caller_id or number,
        "ChannelId": uniqueid,
        "Variable": [f"OMNI_CONVERSATION={conversation_id}", f"OMNI_CALLERID={caller_id}"],
        "Async": "true",
    }


def campaign_call(
    s: VoiceSettings,
    *,
    number: str,
    context: str,
    caller_id: str,
    ring_seconds: int,
    action_id: str,
    uniqueid: str,
    attempt_id: int,
    campaign_id: int,
    amd: bool = False,
) -> dict[str, Any]:
    """A campaign call, customer first: a ``Local`` channel into the outbound context (the
    same dialplan that dials the trunk for click-to-call, with ``OMNI_CALLERID``) rings the
    number for ``ring_seconds``; answered, the customer waits with music in ``hold_context``
    until the operator's phone is bridged. ``ActionID`` (the attempt's ``external_id``) and
    ``ChannelId`` (the ``;1`` half's Uniqueid and the call's Linkedid) map every event back
    to the attempt, as do the channel variables after a restart.

    ``amd`` (the campaign's ``amd_enabled``): the answered ``;1`` half enters ``amd_context``
    instead, which runs ``AMD(${OMNI_AMD})`` with the settings' parameters, reports the result
    (``UserEvent: OmniAmd``) and goes on to ``hold_context`` (a machine waits for Omni)."""
    variables = [
        f"OMNI_CALLERID={caller_id}",
        f"OMNI_ATTEMPT={attempt_id}",
        f"OMNI_CAMPAIGN={campaign_id}",
    ]
    if amd:
        variables.append(f"OMNI_AMD={amd_arguments(s)}")
    return {
        "Action": "Originate",
        "ActionID": action_id,
        "Channel": f"Local/{number}@{context}",
        "Context": s.amd_context if amd else s.hold_context,
        "Exten": "s",
        "Priority": "1",
        "Timeout": str(max(1, ring_seconds) * 1000),
        "CallerID": caller_id or number,
        "ChannelId": uniqueid,
        "Variable": variables,
        "Async": "true",
    }


def amd_arguments(s: VoiceSettings) -> str:
    """``AMD()``'s positional arguments (``apps/app_amd.c``: initialSilence, greeting,
    afterGreetingSilence, totalAnalysisTime, minimumWordLength, betweenWordsSilence,
    maximumNumberOfWords, silenceThreshold, maximumWordLength), all in milliseconds but the
    word count and the threshold. ``|`` separates them: a ``,`` inside an ``Originate``
    ``Variable`` would split it into several variables, and the dialplan turns them back."""
    values = (
        s.amd_initial_silence,
        s.amd_greeting,
        s.amd_after_greeting_silence,
        s.amd_total_analysis_time,
        s.amd_min_word_length,
        s.amd_between_words_silence,
        s.amd_maximum_number_of_words,
        s.amd_silence_threshold,
        s.amd_maximum_word_length,
    )
    return "|".join(str(max(0, int(v))) for v in values)


def setvar(channel: str, name: str, value: str) -> dict[str, Any]:
    """Set a channel variable (the sound a drop or machine message plays) before a Redirect."""
    return {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}


def speak(app: str, text: str) -> str:
    """``${OMNI_SPEAK}`` for ``Exec()``: the TTS dialplan application (``OMNI_TTS_APP`` /
    ``OMNI_VOICE_TTS_APP``) with the text as its one argument (``,`` ``(`` ``)`` ``|`` escaped so
    it stays one: checked on Asterisk 22); empty without an application or a text."""
    if not app or not text.strip():
        return ""
    clean = text.replace("\\", " ").replace("\n", " ")
    for ch in ",()|":
        clean = clean.replace(ch, "\\" + ch)
    return f"{app}({clean})"


def campaign_agent(
    s: VoiceSettings,
    extension: str,
    uniqueid: str,
    *,
    ring_seconds: int,
    caller_number: str,
    caller_name: str,
    conversation_id: int,
    attempt_id: int,
) -> dict[str, Any]:
    """The reserved operator's phone for an answered campaign call: it waits in
    ``agent_context`` once answered and is bridged with the customer."""
    return {
        "Action": "Originate",
        "Channel": s.endpoint_template.format(extension=extension),
        "Context": s.agent_context,
        "Exten": "s",
        "Priority": "1",
        "Timeout": str(max(1, ring_seconds) * 1000),
        "CallerID": _caller_id(caller_name, caller_number or "anonymous"),
        "ChannelId": uniqueid,
        "Variable": [f"OMNI_CONVERSATION={conversation_id}", f"OMNI_ATTEMPT={attempt_id}"],
        "Async": "true",
    }


def bridge(caller_channel: str, agent_channel: str) -> dict[str, Any]:
    return {"Action": "Bridge", "Channel1": caller_channel, "Channel2": agent_channel, "Tone": "no"}


def redirect(
    channel: str,
    context: str,
    exten: str = "s",
    *,
    extra_channel: str = "",
    extra_context: str = "",
) -> dict[str, Any]:
    """Send ``channel`` to ``context,exten,1``. With ``extra_channel`` both parties of a
    bridge move in one action (to ``extra_context,s,1``): Asterisk then moves them together,
    and the other party doesn't run on to the next priority of its dialplan (after ``Dial()``
    or ``Wait()`` that is a ``Hangup()``)."""
    action = {"Action": "Redirect", "Channel": channel, "Context": context, "Exten": exten, "Priority": "1"}
    if extra_channel:
        action |= {
            "ExtraChannel": extra_channel,
            "ExtraContext": extra_context,
            "ExtraExten": "s",
            "ExtraPriority": "1",
        }
    return action


def hangup(channel: str, cause: int = 16) -> dict[str, Any]:
    return {"Action": "Hangup", "Channel": channel, "Cause": str(cause)}


def mixmonitor(channel: str, path: str) -> dict[str, Any]:
    """Record both directions mixed (``b``: only while bridged, so hold music is not kept)."""
    return {"Action": "MixMonitor", "Channel": channel, "File": path, "Options": "b"}


def chanspy(
    s: VoiceSettings, supervisor_extension: str, spied_channel: str, mode: str, uniqueid: str
) -> dict[str, Any]:
    if mode not in SPY_OPTIONS:
        raise InvalidInput("mode must be listen, whisper or barge", field="mode")
    return {
        "Action": "Originate",
        "Channel": s.endpoint_template.format(extension=supervisor_extension),
        "Application": "ChanSpy",
        "Data": f"{spied_channel},{SPY_OPTIONS[mode]}",
        "CallerID": f'"{mode}" <spy>',
        "ChannelId": uniqueid,
        "Timeout": "30000",
        "Async": "true",
    }
