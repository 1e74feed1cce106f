"""One migrated SQLite file for the CRM tests, copied for each test (migrating is the slow part)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from omni.db.migrate import upgrade_async
from omni.settings import Settings


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("crm-template")
    asyncio.run(upgrade_async(Settings(data_dir=data_dir, secret_key="s" * 40).effective_database_url))
    return data_dir / "omni.sqlite3"


def sqlite_settings(tmp_path: Path, migrated: Path) -> Settings:
    """Settings of a fresh embedded database (a copy of the migrated one) under ``tmp_path``."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    shutil.copy(migrated, Path(settings.effective_database_url.removeprefix("sqlite+aiosqlite:///")))
    return settings
