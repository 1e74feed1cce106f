"""Audio fixtures made at test time with sox (installed with libsox-fmt-mp3), so the prompt
manager converts real WAV and MP3 files, never canned bytes."""

from __future__ import annotations

import subprocess
from pathlib import Path


def tone(path: Path, *, rate: int = 44100, channels: int = 2, seconds: float = 1.5, bits: int = 16) -> bytes:
    """A sine tone in the format ``path``'s extension names (``.wav`` or ``.mp3``)."""
    args = ["sox", "-n", "-r", str(rate), "-c", str(channels)]
    if path.suffix == ".wav":
        args += ["-b", str(bits)]
    args += [str(path), "synth", str(seconds), "sine", "440"]
    subprocess.run(args, check=True, capture_output=True)
    return path.read_bytes()
