"""The customer's language enters the core in one place (``InboundMessage.language``, or the
inbox's ``config.language``) and is kept as ``conversation.variables["lang"]`` for the bot."""

from __future__ import annotations

from omni.domain import conversations as c
from omni.services import Services
from tests import factories as f


async def _lang(services: Services, inbox_id: int, who: str, language: str) -> object:
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=inbox_id, identity_kind="widget", identity_value=who, body="hi", language=language
            ),
        )
        return res.conversation.variables.get("lang")


async def test_bot_spoke_english_because_no_channel_passed_the_language(services: Services) -> None:
    async with services.db.transaction() as s:
        q = await f.queue(s, "web")
        chat = (await f.inbox(s, q, channel="widget")).id
        voice = await f.inbox(s, q, channel="voice")
        voice.config = {"language": "ru"}  # an inbox-wide default, e.g. a Russian phone line
        voice_id = voice.id
    assert await _lang(services, chat, "v:ru", "ru-RU") == "ru"
    assert await _lang(services, chat, "v:en", "en") == "en"
    assert await _lang(services, chat, "v:none", "") is None
    assert await _lang(services, chat, "v:junk", "--") is None
    assert await _lang(services, voice_id, "v:caller", "") == "ru", "the inbox's setting is the fallback"
    assert await _lang(services, voice_id, "v:caller2", "en_GB") == "en", "what the channel knows wins"
