"""The PDF of a chat transcript: what ``omni.domain.transcript.collect`` read, laid out on A4.

fpdf2 (pure Python) with the DejaVu Sans face vendored in ``omni/fonts`` (Bitstream Vera
licence, ``omni/fonts/LICENSE``): one TrueType face that covers Latin and Cyrillic, embedded
as a subset, so the file reads the same on any machine and the server needs no system fonts
or headless browser. Customer text is only ever drawn as text. Rendering is CPU work (tens of
milliseconds for a long chat, a few hundred to parse the face): callers run ``render`` in a
thread. One face only (no bold): each face costs that parse on every render.

Who may have the PDF, and how, is decided by the callers here:

* ``check_staff_pdf``: staff who may see the conversation (``access_conversation``);
* ``visitor_pdf``: a widget visitor or a Telegram customer, for a conversation of their own;
  ``do_send_pdf`` then stores it and sends it into the chat as a bot message with the file
  (Telegram's ``/transcript``), delivered by the channel like any reply.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, automated, files, identities
from omni.domain.auth import Principal, access_conversation
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.transcript import Transcript, collect, customer_language
from omni.i18n import _l, gettext, normalize

__all__ = ["FONT_DIR", "check_staff_pdf", "do_send_pdf", "filename", "render", "visitor_pdf"]

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
FACE = "DejaVuSans"
TIMES_IN = _l("Times are in {zone}.")
NOTHING_SAID = _l("No messages.")
PAGE = _l("Page {n}")
MAX_LINES = 5000
"""Messages in one PDF; a longer chat ends with a line saying how many were left out."""
MORE = _l("… and {count} more messages.")
HERE_IT_IS = _l("Here is the transcript of our conversation.")


def filename(conversation_id: int) -> str:
    return f"transcript-{conversation_id}.pdf"


class _Page(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FACE, size=8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 6, self.footer_text.format(n=self.page_no()), align="C")


def render(t: Transcript) -> bytes:
    """The transcript as PDF bytes (pure: no I/O but reading the font files)."""
    pdf = _Page(format="A4")
    pdf.footer_text = gettext(t.lang, PAGE, n="{n}")
    pdf.add_font(FACE, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.set_title(t.subject)
    pdf.set_creator("Omni")
    pdf.set_lang(t.lang)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font(FACE, size=15)
    pdf.multi_cell(0, 8, t.subject, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FACE, size=10)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(
        0, 5, f"{t.intro} {gettext(t.lang, TIMES_IN, zone=t.zone)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(4)
    if not t.lines:
        pdf.multi_cell(0, 5, gettext(t.lang, NOTHING_SAID), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for said in t.lines[:MAX_LINES]:
        pdf.set_text_color(90, 90, 90)
        pdf.set_font(FACE, size=8.5)
        header = f"{t.stamp(said)}  {said.who}"
        pdf.multi_cell(0, 5, header, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0) if said.customer else pdf.set_text_color(20, 60, 120)
        pdf.set_font(FACE, size=10)
        if said.body:
            pdf.multi_cell(0, 5, said.body, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if said.files:
            pdf.set_text_color(90, 90, 90)
            pdf.set_font(FACE, size=9)
            pdf.multi_cell(0, 5, t.attached(said), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2.5)
    if len(t.lines) > MAX_LINES:
        pdf.multi_cell(
            0, 5, gettext(t.lang, MORE, count=len(t.lines) - MAX_LINES), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    return bytes(pdf.output())


def _chat(conv: m.Conversation | None) -> m.Conversation:
    if conv is None:
        raise NotFound("conversation not found")
    if conv.medium != m.Medium.CHAT:
        raise InvalidInput("only a chat has a transcript", field="conversation_id")
    return conv


async def check_staff_pdf(session: AsyncSession, who: Principal, conversation_id: int) -> Transcript:
    """The transcript of a conversation the caller may see, in the customer's language (it is
    a document for them); audited as ``transcript.download``. Render it with ``render``."""
    conv = _chat(await access_conversation(session, who, conversation_id))
    audit.record(session, who, "transcript.download", object_type="conversation", object_id=conv.id)
    return await collect(session, conv, customer_language(conv))


async def visitor_pdf(
    session: AsyncSession, kind: str, identity: str, inbox_id: int, conversation_id: int | None, lang: str
) -> Transcript:
    """A customer's own transcript: ``conversation_id`` must be a conversation of this inbox
    whose customer has this identity (``None``: their latest one here); anything else is
    "not found", whether it exists or not."""
    if conversation_id is None:
        conversation_id = await identities.latest_conversation_id(session, kind, identity, inbox_id)
        if conversation_id is None:
            raise NotFound("there is no conversation yet")
    conv = await session.get(m.Conversation, conversation_id)
    if (
        conv is None
        or conv.inbox_id != inbox_id
        or not await identities.identity_in_conversation(session, conv.id, identity)
    ):
        raise NotFound("conversation not found")
    return await collect(session, _chat(conv), normalize(lang))


async def do_send_pdf(
    session: AsyncSession, conversation_id: int, pdf: bytes, *, data_dir: Path, lang: str
) -> m.Message:
    """The rendered PDF stored with the conversation (staff see it in the history) and sent to
    the customer as an automated message carrying it."""
    conv = _chat(await session.get(m.Conversation, conversation_id))
    row = await files.do_store_upload(
        session,
        data_dir=data_dir,
        inbox_id=conv.inbox_id,
        owner="transcript",
        name=filename(conv.id),
        content_type="application/pdf",
        data=pdf,
        max_bytes=len(pdf),
        allowed=["application/pdf"],
    )
    files.do_link_uploads([row], conv.id)
    return await automated.do_send_automated(
        session, conv.id, gettext(normalize(lang), HERE_IT_IS), attachments=[files.descriptor(row)]
    )
