"""The CRM tests run on a copy of the suite's migrated SQLite file (migrating is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni.settings import Settings
from tests.conftest import copy_sqlite


@pytest.fixture
def migrated(sqlite_template: Path) -> Path:
    return sqlite_template


def sqlite_settings(tmp_path: Path, migrated: Path) -> Settings:
    """Settings of a fresh embedded database (a copy of the migrated one) under ``tmp_path``."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(migrated, settings.data_dir)
    return settings
