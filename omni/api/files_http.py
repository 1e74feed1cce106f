"""How stored files go out over HTTP, for staff and visitors alike."""

from __future__ import annotations

from pathlib import Path

from litestar.response import File

from omni.db import models as m


def serve(row: m.StoredFile) -> File:
    """Images inline, everything else as a download; never sniffed into HTML by a browser."""
    inline = row.content_type.startswith("image/")
    return File(
        path=Path(row.path),
        filename=row.name,
        media_type=row.content_type,
        content_disposition_type="inline" if inline else "attachment",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"},
    )
