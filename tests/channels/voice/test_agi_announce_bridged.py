"""The position announcement cut short because the caller was answered: Asterisk's AMI Bridge
pulls the channel out of the dialplan mid-file (``result=-1``, then ``HANGUP``). It logged
"sound file 'queue-youarenext' could not be played" as a warning on every answered call."""

from __future__ import annotations

import logging
from typing import Any

from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.test_agi_ivr import Ctx, ctx

__all__ = ["ctx"]


async def test_announcement_interrupted_by_the_answer_is_not_a_warning(ctx: Ctx, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="channels.voice.agi")
    call = ctx.call("1700000000.61", ["2"])
    await call.run()
    conversation = call.variables["OMNI_CONVERSATION"]
    answered = EmulatedCall("127.0.0.1", ctx.agi.port, script="announce", args=[conversation],
                            bridged_during={"queue-youarenext"})  # fmt: skip
    await answered.run()
    assert answered.played == ["queue-youarenext"], "nothing more is sent to a channel that left"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, [r.getMessage() for r in warnings]
    assert "interrupted" in caplog.text and "Traceback" not in caplog.text


async def test_a_missing_announcement_file_is_still_a_warning(ctx: Ctx, caplog: Any) -> None:
    call = ctx.call("1700000000.62", ["2"])
    await call.run()
    conversation = call.variables["OMNI_CONVERSATION"]
    missing = EmulatedCall("127.0.0.1", ctx.agi.port, script="announce", args=[conversation],
                           missing_files={"queue-youarenext"})  # fmt: skip
    await missing.run()
    assert "sound file 'queue-youarenext' could not be played" in caplog.text
    assert missing.played == ["queue-thankyou"], "the rest of the announcement still plays"
