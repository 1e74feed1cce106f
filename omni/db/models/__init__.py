"""The relational model: the database is the source of truth for everything routed.

Timestamps are aware UTC everywhere (``UTCDateTime`` restores the zone SQLite drops).
JSON columns hold small, schema-checked documents (business hours, filters, custom fields).
One module per area; every table, enum and type is importable from ``omni.db.models`` (what the
code and Alembic use: importing this package registers every table on ``Base.metadata``).
"""

from omni.db.models.automation import *  # noqa: F403
from omni.db.models.base import *  # noqa: F403
from omni.db.models.bots import *  # noqa: F403
from omni.db.models.calendars import *  # noqa: F403
from omni.db.models.calls import *  # noqa: F403
from omni.db.models.chat_reports import *  # noqa: F403
from omni.db.models.conversations import *  # noqa: F403
from omni.db.models.crm import *  # noqa: F403
from omni.db.models.exports import *  # noqa: F403
from omni.db.models.grants import *  # noqa: F403
from omni.db.models.mailing import *  # noqa: F403
from omni.db.models.media import *  # noqa: F403
from omni.db.models.operator_reports import *  # noqa: F403
from omni.db.models.organise import *  # noqa: F403
from omni.db.models.outbound import *  # noqa: F403
from omni.db.models.people import *  # noqa: F403
from omni.db.models.platform import *  # noqa: F403
from omni.db.models.qa import *  # noqa: F403
from omni.db.models.reports import *  # noqa: F403
from omni.db.models.sla import *  # noqa: F403
from omni.db.models.wallboard import *  # noqa: F403
