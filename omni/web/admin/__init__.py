"""Admin pages: server-rendered lists and forms over the admin domain services.

Every section (users, groups, queues, statuses, result codes, inboxes, canned replies, card
fields, operator scripts) is a :class:`Section` (``forms``): it lists rows, describes its form as
:class:`Field` objects, turns a posted form into the plain dict ``omni.domain.admin`` takes,
and calls it. Roles, scope and validation stay in the domain; a refusal comes back as a
:class:`DomainError` whose ``field`` puts the message next to the input it is about. A
successful POST redirects (POST-redirect-GET) and the page shows "Saved.". One module per
group of sections; ``pages`` holds the controller.
"""

from omni.web.admin.calendars import Calendars
from omni.web.admin.contacts import Contacts
from omni.web.admin.crm import Crm
from omni.web.admin.forms import Cell, Field, Outcome, Section, Table
from omni.web.admin.grants import Grants
from omni.web.admin.inboxes import Inboxes
from omni.web.admin.ldap import Ldap
from omni.web.admin.pages import CONTROLLERS, SECTIONS, AdminPages
from omni.web.admin.people import Groups, Users
from omni.web.admin.queues import Queues, ResultCodes, Statuses
from omni.web.admin.retention import Retention
from omni.web.admin.schedules import Escalation, Hours
from omni.web.admin.skills import Skills
from omni.web.admin.sla import SlaPolicies
from omni.web.admin.telegram_bots import TelegramBots
from omni.web.admin.voice_lines import VoiceLines
from omni.web.admin.wallboard import Install, Wallboards
from omni.web.admin.workspace import CannedReplies, CardFields, Scripts

__all__ = [
    "CONTROLLERS",
    "SECTIONS",
    "AdminPages",
    "Calendars",
    "CannedReplies",
    "CardFields",
    "Cell",
    "Contacts",
    "Crm",
    "Escalation",
    "Field",
    "Grants",
    "Groups",
    "Hours",
    "Inboxes",
    "Install",
    "Ldap",
    "Outcome",
    "Queues",
    "ResultCodes",
    "Retention",
    "Scripts",
    "Section",
    "Skills",
    "SlaPolicies",
    "Statuses",
    "Table",
    "TelegramBots",
    "Users",
    "VoiceLines",
    "Wallboards",
]
