"""Text to speech rendered before the customer answers (docs/dialer.md, *Text to speech*).

espeak-ng and sox take about a second for a new text: rendered when the answered call first
needs it, the customer heard a second of silence before the message. A campaign call's texts
are known before it is answered — the drop and machine messages, the agentless scenario's
texts (static ones, and personal ones with this contact's variables) — so ``VoiceCampaign.place``
starts :func:`prerender` as it dials: the ring time covers the render and the answered call
plays from the cache (``omni.domain.speech.render``: a hit only touches ``last_used_at``; a
render still running when the call needs it is waited for, not repeated).

A text rendered here is the one the call will say only if it is written the same way, so the
scenario's templates are filled as the bot engine fills them (``bots.engine``: the voice
variant of the content, ``{{var}}`` / ``{{var:kind(arg)}}`` through ``format_value``) with the
variables the outbound start gives the scenario (``agentless.target_variables``). A template
naming anything else (a built-in such as ``contact.name``, a variable set later) is left to
the call: it can't be known yet.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.scenario import TEMPLATE_REF, Content, Scenario, ScenarioFormatError, load
from omni.db import models as m
from omni.db.models.outbound import DialMode
from omni.domain import speech
from omni.domain.outbound import agentless
from omni.services import Services

__all__ = ["Rendered", "campaign_texts", "prerender"]

log = logging.getLogger(__name__)

SCENARIO_LANG = "en"
"""The bot engine's language on an agentless call: its conversation has no ``lang`` variable
(``BotRunner``'s facts default), so the scenario's ``text`` is what it says."""


class Rendered:
    """Texts this process rendered or found cached lately: a campaign's static texts are
    checked once, not on every call (bounded, least recently used first out)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[str, str]) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


def _contents(scenario: Scenario) -> Iterator[Content]:
    for node in scenario.nodes:
        for name in ("content", "message", "retry_message", "question"):
            content = getattr(node, name, None)
            if isinstance(content, Content) and not content.prompt_id and not content.prompt:
                yield content


def _fill(template: str, variables: dict[str, Any], scenario: Scenario) -> str | None:
    """The template as ``bots.engine.Engine.render`` writes it; ``None`` when it names
    something only the call knows."""
    unknown = False

    def sub(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match.group(1)
        if name in variables:
            value = variables[name]
        else:
            var = scenario.variable(name)
            if var is None:
                unknown = True
                return ""
            value = var.default
        if match.group(2):
            return speech.format_value(value, match.group(2), SCENARIO_LANG, match.group(3) or "")
        return "" if value is None else str(value)

    text = TEMPLATE_REF.sub(sub, template or "")
    return None if unknown else text


async def campaign_texts(
    session: AsyncSession, campaign: m.Campaign, target: m.CampaignTarget | None
) -> list[str]:
    """What a call of ``campaign`` may say through text to speech: the drop and machine texts
    without a prompt, and for an agentless campaign the active scenario's texts without a
    prompt, filled with ``target``'s variables (static ones without a target)."""
    texts: list[str] = []
    if campaign.drop_prompt_id is None and campaign.drop_text.strip():
        texts.append(campaign.drop_text)
    machine = campaign.machine_action == "message" and campaign.machine_prompt_id is None
    if machine and campaign.machine_text.strip():
        texts.append(campaign.machine_text)
    if campaign.dial_mode == DialMode.AGENTLESS and campaign.scenario:
        row = await session.scalar(select(m.Scenario).where(m.Scenario.key == campaign.scenario))
        revision = (
            await session.get(m.ScenarioRevision, row.active_revision_id)
            if row is not None and row.active_revision_id is not None
            else None
        )
        if revision is not None:
            try:
                scenario = load(revision.document)
            except ScenarioFormatError:
                return texts
            variables = agentless.target_variables(target) if target is not None else {}
            for content in _contents(scenario):
                text = _fill(content.for_channel("voice", SCENARIO_LANG), variables, scenario)
                if text is not None and text.strip() and text != "…":
                    texts.append(text)
    return list(dict.fromkeys(texts))


async def prerender(services: Services, campaign_id: int, target_id: int, seen: Rendered) -> int:
    """Render (or find cached) every text a call of this campaign to this target may say, in
    the language the call will say it (``OMNI_DEFAULT_LANGUAGE``, as the IVR and the drop
    message do); returns how many were new to ``seen``. Only with engine ``espeak`` (the others
    render nothing). Failures are logged: the call renders on demand as before."""
    settings = services.settings
    if settings.speech.engine != "espeak":
        return 0
    lang = settings.default_language
    async with services.db.transaction() as session:
        campaign = await session.get(m.Campaign, campaign_id)
        target = await session.get(m.CampaignTarget, target_id)
        if campaign is None:
            return 0
        texts = [t for t in await campaign_texts(session, campaign, target) if (t, lang) not in seen]
    done = 0
    for text in texts:
        try:
            async with services.db.transaction() as session:
                await speech.render(session, settings, text, lang)
        except speech.TtsError as exc:
            log.warning("campaign %s: text to speech could not pre-render %r: %s", campaign_id, text[:60],
                        exc)  # fmt: skip
            continue
        seen.add((text, lang))
        done += 1
    return done
