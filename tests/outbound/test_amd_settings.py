"""``OMNI_VOICE_AMD_TOTAL_ANALYSIS_TIME`` is enforced under the ring deadline's margin: while
AMD listens only the ring deadline ends a call, so a longer analysis would end a call that is
still being listened to as "no answer reported" (docs/dialer.md, *Drops, AMD*)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from omni.domain.outbound.dialing import ANSWER_MARGIN_SECONDS
from omni.settings import Settings, VoiceSettings


def test_amd_total_analysis_time_over_the_ring_margin_fails_at_start_naming_both_values() -> None:
    assert ANSWER_MARGIN_SECONDS == 15
    for bad in (15000, 20000, 0):
        with pytest.raises(ValidationError) as info:
            Settings(voice=VoiceSettings(amd_total_analysis_time=bad))
        text = str(info.value)
        assert f"OMNI_VOICE_AMD_TOTAL_ANALYSIS_TIME ({bad} ms)" in text
        assert "ring deadline's margin (ANSWER_MARGIN_SECONDS = 15 s = 15000 ms)" in text


def test_amd_total_analysis_time_from_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_VOICE_AMD_TOTAL_ANALYSIS_TIME", "16000")
    with pytest.raises(ValidationError, match=r"OMNI_VOICE_AMD_TOTAL_ANALYSIS_TIME \(16000 ms\)"):
        VoiceSettings()
    monkeypatch.setenv("OMNI_VOICE_AMD_TOTAL_ANALYSIS_TIME", "14999")
    assert VoiceSettings().amd_total_analysis_time == 14999
