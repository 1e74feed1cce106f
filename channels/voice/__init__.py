"""Voice channel: Asterisk calls in the unified queue, over AMI (panoramisk).

* ``events`` normalises AMI events into ``CallEvent`` (pure functions);
* ``state.CallRegistry`` owns live call state and decides what must happen (effects);
* ``ami.AmiLink`` is the connection (login, backoff, resync hook);
* ``control`` builds the AMI actions;
* ``adapter.VoiceChannel`` is the adapter: lifecycle and the AMI event loop;
* ``effects`` performs effects in the core (``omni.domain.calls``) and on Asterisk and reacts
  to committed core events (offers); ``call_control`` implements ``omni.channels.CallControl``;
* ``agi`` is the FastAGI side: the wire protocol (``agi.wire``) and the IVR (``agi.ivr``).

How caller and operator are connected (``docs/voice.md``): the caller waits with music on
hold in ``wait_context``; when the router offers the call to an operator the adapter
originates that operator's phone (``ChannelId`` = ``omni-o<offer id>``) into
``agent_context`` with the queue's ring timeout; when the phone answers the offer is
accepted in the core and the two channels are joined with the AMI ``Bridge`` action.
"""

from __future__ import annotations

from channels.voice.adapter import VoiceChannel
from channels.voice.effects import KIND, OFFER_ENDED, WAITING
from omni.channels import ChannelSetup
from omni.services import Services

__all__ = ["KIND", "OFFER_ENDED", "WAITING", "VoiceChannel", "setup"]


def setup(services: Services, sio: object = None) -> ChannelSetup | None:
    """Voice's entry point (``omni.channels.SetupChannel``); ``None`` unless
    ``OMNI_VOICE_ENABLED`` is on (on every node: the ``voice:ami`` lease picks the one that
    runs the AMI link). The FastAGI server (the IVR) runs on every node, started and stopped
    with the adapter, and bot prompts on a call go to its sessions."""
    from channels.voice.agi import AgiServer  # the IVR pulls in the bot runner: only when voice is on

    if not services.settings.voice.enabled:
        return None
    channel = VoiceChannel(services)
    agi = AgiServer.from_settings(services, tts_app=services.settings.voice.tts_app)
    channel.prompt_sink = agi.prompt_sink
    channel.agi = agi
    return ChannelSetup(adapter=channel, post_commit_sinks=[channel.relay_sink])
