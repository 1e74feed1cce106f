"""The operator single window page: a Jinja2 shell around the live module (``ui/src/operator.ts``).

The page hands the module its boot data (who, language, the ``op.*`` strings, the shared
statuses); everything else comes over the ``/operator`` Socket.IO namespace.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.runner import TECHNICAL_VARIABLES
from omni.api.deps import services_of
from omni.db import models as m
from omni.domain.auth import Principal, visible_queue_ids
from omni.web.i18n import messages, register
from omni.web.pages import boot_data, page_context


class OperatorPage(Controller):
    @get("/app", include_in_schema=False)
    async def window(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.OPERATOR, m.Role.SUPERVISOR, m.Role.ADMIN)
        async with services_of(request).db.transaction() as session:
            rows = (await session.scalars(select(m.OperatorStatus).order_by(m.OperatorStatus.id))).all()
            statuses = [
                {
                    "code": s.code,
                    "name": (s.name_ru if ctx.lang == "ru" and s.name_ru else s.name),
                    "colour": s.colour,
                    "kind": s.kind,
                    "selectable": s.selectable
                    and s.kind not in (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP),
                    "receives_chats": s.receives_chats,
                    "receives_voice": s.receives_voice,
                    "max_duration_seconds": s.max_duration_seconds,
                }
                for s in rows
            ]
            voice_on = services_of(request).settings.voice.enabled
            dial_queues = await _dial_queues(session, ctx.who) if voice_on else []
        return ctx.template(
            "live.html",
            module="operator",
            boot=boot_data(
                ctx,
                strings=messages(ctx.lang, "op."),
                statuses=statuses,
                dial_queues=dial_queues,
                technical_variables=sorted(TECHNICAL_VARIABLES),
            ),
        )


async def _dial_queues(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """Queues the caller may place calls from (click-to-call): theirs, with an active voice line."""
    visible = await visible_queue_ids(session, who)
    stmt = (
        select(m.Queue.id, m.Queue.name)
        .join(m.Inbox, m.Inbox.queue_id == m.Queue.id)
        .where(m.Inbox.channel == "voice", m.Inbox.active.is_(True))
        .distinct()
        .order_by(m.Queue.name)
    )
    if visible is not None:
        stmt = stmt.where(m.Queue.id.in_(visible))
    return [{"id": qid, "name": name} for qid, name in (await session.execute(stmt)).all()]


_STATES = ("bot", "queued", "offered", "active", "on_hold", "wrap_up", "closed", "abandoned", "missed")

register(
    en={
        "op.status": "Status",
        "op.activity.offline": "Offline",
        "op.activity.available": "Available",
        "op.activity.ringing": "Ringing",
        "op.activity.talking": "In conversation",
        "op.activity.wrap_up": "Wrap-up",
        "op.activity.pause": "Pause",
        "op.activity.dnd": "Do not disturb",
        "op.offers": "Incoming",
        "op.new_offer": "New conversation",
        "op.accept": "Accept",
        "op.decline": "Decline",
        "op.mine": "My conversations",
        "op.unread": "New messages",
        "op.none": "Nothing here.",
        "op.queue": "Queue",
        "op.queue_empty": "Nobody is waiting.",
        "op.position": "#{n} in line",
        "op.take": "Take",
        "op.callbacks": "Missed and callbacks",
        "op.take_callback": "Take callback",
        "op.done": "Done",
        "op.release": "Release",
        "op.reason.abandoned": "left while waiting",
        "op.reason.missed": "missed",
        "op.reason.requested": "asked for a callback",
        "op.reason.scheduled": "scheduled",
        "op.customer": "Customer",
        "op.customer_n": "Customer {id}",
        "op.operator": "Operator",
        "op.system": "System",
        "op.bot": "Bot",
        "op.bot_offered": "Offered choices:",
        "op.bot_chosen": "Pressed",
        "op.bot_keypad": "Pressed on the keypad",
        "op.bot_prompt": "Voice prompt",
        "op.take_no_capacity": "No free capacity: finish a conversation to take another.",
        "op.take_status_chats": "Your status “{status}” does not take chats.",
        "op.take_status_calls": "Your status “{status}” does not take calls.",
        "op.pick_conversation": "Pick a conversation on the left.",
        "op.composer_hint": "Reply… (Enter sends, Shift+Enter new line, / for canned replies)",
        "op.private_note": "Private note",
        "op.note_label": "Note",
        "op.send": "Send",
        "op.customer_typing": "Customer is typing…",
        "op.canned_none": "No canned reply matches.",
        "op.scope.global": "shared",
        "op.scope.queue": "queue",
        "op.scope.personal": "mine",
        "op.my_canned": "My canned replies",
        "op.shortcut": "Shortcut",
        "op.title": "Title",
        "op.canned_body": "Text",
        "op.placeholders_hint": "Placeholders: {{contact.name}}, {{contact.email}}, {{contact.phone}}, "
        "{{operator.name}}, {{queue.name}}",
        "op.save": "Save",
        "op.saved": "Saved.",
        "op.delete": "Delete",
        "op.history": "Contact history",
        "op.history_empty": "No earlier conversations.",
        "op.history_hidden": "{n} more in other groups' queues (not shown).",
        "op.card": "Customer",
        "op.local_time": "Local time",
        "op.unknown": "unknown",
        "op.name": "Name",
        "op.email": "Email",
        "op.phone": "Phone",
        "op.blacklisted": "Blacklisted",
        "op.script": "Script",
        "op.actions": "Actions",
        "op.end": "End",
        "op.hold": "Hold",
        "op.unhold": "Resume",
        "op.wrap_up": "Wrap-up",
        "op.result_code": "Result…",
        "op.pick_result_code": "Choose a result code first.",
        "op.close": "Close",
        "op.transfer": "Transfer",
        "op.bot_data": "Bot data",
        "op.hand_to_bot": "Hand to a bot scenario (e.g. a survey)",
        "op.hand_to_bot_submit": "Start the scenario",
        "op.hand_to_bot_confirm": "Your handling ends and the scenario takes the conversation. Continue?",
        "op.handed_to_bot": "The conversation is with the bot now.",
        "op.to_queue": "to queue",
        "op.to_operator": "to operator",
        "op.to_ivr": "to IVR",
        "op.transfer_note": "Note for the next operator",
        "op.transferred": "Transferred.",
        "op.schedule_callback": "Schedule a callback",
        "op.callback_note": "What to do",
        "op.callback_mine": "I will do it myself",
        "op.schedule": "Schedule",
        "op.callback_scheduled": "Callback scheduled.",
        "op.blacklist": "Add to blacklist",
        "op.blacklist_confirm": "Add this customer to the blacklist?",
        "op.error": "Error",
        "op.reconnecting": "Connection lost, reconnecting…",
        "op.call": "Call",
        "op.call_ringing": "Incoming call",
        "op.call_dialling": "Calling…",
        "op.call_talking": "Talking",
        "op.call_on_hold": "On hold",
        "op.call_ended": "Call ended",
        "op.answer_on_phone": "Answer on your phone",
        "op.talk_time": "Talk time",
        "op.ring_time": "Ringing",
        "op.hold_time": "On hold",
        "op.hang_up": "Hang up",
        "op.attended": "Attended (talk to them first)",
        "op.click_to_call": "Call this number",
        "op.dial": "Dial",
        "op.dial_number": "Phone number",
        "op.dial_call": "Call",
        "op.calling": "Your phone rings first, then the customer's.",
        "op.recording": "Recording",
        "op.speed": "Speed",
        "op.download": "Download",
        "op.notes_only": "A call has no text channel: notes only.",
        **{f"op.st.{s}": s.replace("_", " ").capitalize() for s in _STATES},
    },
    ru={
        "op.status": "Статус",
        "op.activity.offline": "Не в сети",
        "op.activity.available": "Доступен",
        "op.activity.ringing": "Входящее",
        "op.activity.talking": "В разговоре",
        "op.activity.wrap_up": "Постобработка",
        "op.activity.pause": "Пауза",
        "op.activity.dnd": "Не беспокоить",
        "op.offers": "Входящие",
        "op.new_offer": "Новое обращение",
        "op.accept": "Принять",
        "op.decline": "Отклонить",
        "op.mine": "Мои обращения",
        "op.unread": "Новые сообщения",
        "op.none": "Пусто.",
        "op.queue": "Очередь",
        "op.queue_empty": "Никто не ждёт.",
        "op.position": "{n}-й в очереди",
        "op.take": "Взять",
        "op.callbacks": "Пропущенные и перезвоны",
        "op.take_callback": "Взять перезвон",
        "op.done": "Готово",
        "op.release": "Вернуть",
        "op.reason.abandoned": "ушёл, не дождавшись",
        "op.reason.missed": "пропущено",
        "op.reason.requested": "просил перезвонить",
        "op.reason.scheduled": "запланировано",
        "op.customer": "Клиент",
        "op.customer_n": "Клиент {id}",
        "op.operator": "Оператор",
        "op.system": "Система",
        "op.bot": "Бот",
        "op.bot_offered": "Предложенные варианты:",
        "op.bot_chosen": "Нажата кнопка",
        "op.bot_keypad": "Нажато на телефоне",
        "op.bot_prompt": "Голосовая подсказка",
        "op.take_no_capacity": "Нет свободной ёмкости: завершите обращение, чтобы взять новое.",
        "op.take_status_chats": "В статусе «{status}» чаты не поступают.",
        "op.take_status_calls": "В статусе «{status}» звонки не поступают.",
        "op.pick_conversation": "Выберите обращение слева.",
        "op.composer_hint": "Ответ… (Enter — отправить, Shift+Enter — новая строка, / — шаблоны)",
        "op.private_note": "Заметка",
        "op.note_label": "Заметка",
        "op.send": "Отправить",
        "op.customer_typing": "Клиент печатает…",
        "op.canned_none": "Нет подходящих шаблонов.",
        "op.scope.global": "общий",
        "op.scope.queue": "очередь",
        "op.scope.personal": "мой",
        "op.my_canned": "Мои шаблоны",
        "op.shortcut": "Сокращение",
        "op.title": "Название",
        "op.canned_body": "Текст",
        "op.placeholders_hint": "Подстановки: {{contact.name}}, {{contact.email}}, {{contact.phone}}, "
        "{{operator.name}}, {{queue.name}}",
        "op.save": "Сохранить",
        "op.saved": "Сохранено.",
        "op.delete": "Удалить",
        "op.history": "История клиента",
        "op.history_empty": "Ранее обращений не было.",
        "op.history_hidden": "Ещё {n} в очередях других групп (не показаны).",
        "op.card": "Клиент",
        "op.local_time": "Местное время",
        "op.unknown": "неизвестно",
        "op.name": "Имя",
        "op.email": "Email",
        "op.phone": "Телефон",
        "op.blacklisted": "В чёрном списке",
        "op.script": "Скрипт",
        "op.actions": "Действия",
        "op.end": "Завершить",
        "op.hold": "Удержание",
        "op.unhold": "Продолжить",
        "op.wrap_up": "Постобработка",
        "op.result_code": "Результат…",
        "op.pick_result_code": "Сначала выберите результат.",
        "op.close": "Закрыть",
        "op.transfer": "Перевести",
        "op.bot_data": "Данные бота",
        "op.hand_to_bot": "Передать сценарию бота (например, опросу)",
        "op.hand_to_bot_submit": "Запустить сценарий",
        "op.hand_to_bot_confirm": "Ваша обработка завершится, обращение перейдёт к сценарию. Продолжить?",
        "op.handed_to_bot": "Обращение передано боту.",
        "op.to_queue": "в очередь",
        "op.to_operator": "оператору",
        "op.to_ivr": "в IVR",
        "op.transfer_note": "Заметка для следующего оператора",
        "op.transferred": "Переведено.",
        "op.schedule_callback": "Запланировать перезвон",
        "op.callback_note": "Что сделать",
        "op.callback_mine": "Сделаю сам",
        "op.schedule": "Запланировать",
        "op.callback_scheduled": "Перезвон запланирован.",
        "op.blacklist": "В чёрный список",
        "op.blacklist_confirm": "Добавить клиента в чёрный список?",
        "op.error": "Ошибка",
        "op.reconnecting": "Связь потеряна, переподключаемся…",
        "op.call": "Звонок",
        "op.call_ringing": "Входящий звонок",
        "op.call_dialling": "Вызов…",
        "op.call_talking": "Разговор",
        "op.call_on_hold": "На удержании",
        "op.call_ended": "Звонок завершён",
        "op.answer_on_phone": "Ответьте на телефоне",
        "op.talk_time": "Время разговора",
        "op.ring_time": "Звонок",
        "op.hold_time": "Удержание",
        "op.hang_up": "Положить трубку",
        "op.attended": "С консультацией (сначала поговорить)",
        "op.click_to_call": "Позвонить на этот номер",
        "op.dial": "Набор номера",
        "op.dial_number": "Номер телефона",
        "op.dial_call": "Позвонить",
        "op.calling": "Сначала зазвонит ваш телефон, затем телефон клиента.",
        "op.recording": "Запись",
        "op.speed": "Скорость",
        "op.download": "Скачать",
        "op.notes_only": "У звонка нет текстового канала: только заметки.",
        "op.st.bot": "Бот",
        "op.st.queued": "В очереди",
        "op.st.offered": "Предложено",
        "op.st.active": "Активно",
        "op.st.on_hold": "На удержании",
        "op.st.wrap_up": "Постобработка",
        "op.st.closed": "Закрыто",
        "op.st.abandoned": "Брошено",
        "op.st.missed": "Пропущено",
    },
)
