"""What the automation rules' regex worker process runs (``omni.domain.automation.safe_regex``).

A module of its own that imports nothing but ``re``: a spawned worker unpickles the function by
importing this module, so it starts in a fraction of a second instead of loading the domain.
"""

from __future__ import annotations

import re


def search(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None
