"""The supervisor's live monitoring page: a Jinja2 shell around ``ui/src/supervisor.ts``.

Boot data: ``strings`` (``sv.*``) and ``statuses`` — every operator status with its localised
name and colour; ``settable`` marks the ones a supervisor may choose (not the derived
ringing / talking / wrap-up).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.web.i18n import messages, register
from omni.web.pages import boot_data, page_context

DERIVED = (m.StatusKind.RINGING, m.StatusKind.TALKING, m.StatusKind.WRAP_UP)


class SupervisorPage(Controller):
    @get("/supervisor", include_in_schema=False)
    async def monitor(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(m.Role.SUPERVISOR, m.Role.ADMIN)
        async with services_of(request).db.transaction() as session:
            rows = (await session.scalars(select(m.OperatorStatus).order_by(m.OperatorStatus.id))).all()
            statuses = [
                {
                    "code": s.code,
                    "name": (s.name_ru or s.name) if ctx.lang == "ru" else s.name,
                    "colour": s.colour,
                    "settable": s.kind not in DERIVED,
                    "max_duration_seconds": s.max_duration_seconds,
                }
                for s in rows
            ]
        return ctx.template(
            "live.html",
            module="supervisor",
            boot=boot_data(ctx, strings=messages(ctx.lang, "sv."), statuses=statuses),
        )


register(
    en={
        "sv.title": "Live monitoring",
        "sv.link.live": "Live",
        "sv.link.lost": "Reconnecting…",
        "sv.queues": "Queues",
        "sv.operators": "Operators",
        "sv.day_note": (
            "Today = since {time} UTC. SL = answered within the queue's SLA / offered "
            "(customers who left within {grace} s are not counted)."
        ),
        "sv.no_queues": "No queues in your scope.",
        "sv.no_operators": "No operators in your scope.",
        "sv.col.queue": "Queue",
        "sv.col.waiting": "Waiting",
        "sv.col.longest": "Longest wait",
        "sv.col.in_service": "In service",
        "sv.col.sl": "Service level",
        "sv.col.answered": "Answered / offered",
        "sv.col.abandoned": "Abandoned",
        "sv.col.asa": "Avg wait (ASA)",
        "sv.col.aht": "Avg handle (AHT)",
        "sv.col.operator": "Operator",
        "sv.col.status": "Status",
        "sv.col.time": "Time in status",
        "sv.col.activity": "Activity",
        "sv.col.conversations": "Current conversations",
        "sv.col.handled": "Handled today",
        "sv.col.actions": "Actions",
        "sv.sla_hint": "SLA {sla} s: amber from {amber} s, red from {red} s",
        "sv.not_connected": "not connected",
        "sv.over_limit": "over the limit",
        "sv.limit": "limit {time}",
        "sv.none": "—",
        "sv.change_status": "Change status",
        "sv.message": "Message",
        "sv.whisper": "Join (whisper)",
        "sv.take_over": "Take over",
        "sv.panel.status": "Change the status of {name}",
        "sv.panel.message": "Message to {name}",
        "sv.panel.whisper": "Note in conversation #{id} (visible to {name} only, never to the customer)",
        "sv.panel.take_over": "Take over conversation #{id} from {name}? You become its handler.",
        "sv.field.status": "Status",
        "sv.field.reason": "Reason",
        "sv.field.text": "Text",
        "sv.apply": "Apply",
        "sv.send": "Send",
        "sv.confirm": "Take over",
        "sv.close": "Close",
        "sv.done": "Done.",
        "sv.sent": "Sent.",
        "sv.failed": "Failed: {detail}",
        "sv.conversation": "#{id} {channel}",
        "sv.conv_status.active": "active",
        "sv.conv_status.on_hold": "on hold",
        "sv.conv_status.wrap_up": "wrap-up",
        "sv.call.listen": "Listen",
        "sv.call.whisper": "Whisper",
        "sv.call.barge": "Barge",
        "sv.call.force_end": "Force end",
        "sv.call.recording": "Recording",
        "sv.call.speed": "Speed",
        "sv.call.download": "Download",
        "sv.panel.call": "Call #{id} of {name}",
        "sv.call.ringing.listen": "Your phone rings: pick it up to listen.",
        "sv.call.ringing.whisper": "Your phone rings: pick it up to talk to the operator only.",
        "sv.call.ringing.barge": "Your phone rings: pick it up to join the call.",
        "sv.call.force_end_confirm": "End call #{id} of {name} now?",
        "sv.call.ended": "The call was ended.",
    },
    ru={
        "sv.title": "Мониторинг",
        "sv.link.live": "Онлайн",
        "sv.link.lost": "Переподключение…",
        "sv.queues": "Очереди",
        "sv.operators": "Операторы",
        "sv.day_note": (
            "Сегодня = с {time} UTC. SL = отвеченные в пределах SLA очереди / поступившие "
            "(ушедшие в первые {grace} с не учитываются)."
        ),
        "sv.no_queues": "Нет очередей в вашей зоне.",
        "sv.no_operators": "Нет операторов в вашей зоне.",
        "sv.col.queue": "Очередь",
        "sv.col.waiting": "Ожидают",
        "sv.col.longest": "Дольше всех",
        "sv.col.in_service": "Обслуживаются",
        "sv.col.sl": "Уровень сервиса",
        "sv.col.answered": "Отвечено / поступило",
        "sv.col.abandoned": "Потеряно",
        "sv.col.asa": "Ср. ожидание (ASA)",
        "sv.col.aht": "Ср. обработка (AHT)",
        "sv.col.operator": "Оператор",
        "sv.col.status": "Статус",
        "sv.col.time": "В статусе",
        "sv.col.activity": "Занятость",
        "sv.col.conversations": "Текущие обращения",
        "sv.col.handled": "Обработано сегодня",
        "sv.col.actions": "Действия",
        "sv.sla_hint": "SLA {sla} с: жёлтый с {amber} с, красный с {red} с",
        "sv.not_connected": "не подключён",
        "sv.over_limit": "превышен лимит",
        "sv.limit": "лимит {time}",
        "sv.none": "—",
        "sv.change_status": "Сменить статус",
        "sv.message": "Написать",
        "sv.whisper": "Подключиться (подсказка)",
        "sv.take_over": "Перехватить",
        "sv.panel.status": "Смена статуса: {name}",
        "sv.panel.message": "Сообщение для {name}",
        "sv.panel.whisper": "Заметка в обращении #{id} (видит только {name}, клиент — никогда)",
        "sv.panel.take_over": "Перехватить обращение #{id} у {name}? Вы станете его обработчиком.",
        "sv.field.status": "Статус",
        "sv.field.reason": "Причина",
        "sv.field.text": "Текст",
        "sv.apply": "Применить",
        "sv.send": "Отправить",
        "sv.confirm": "Перехватить",
        "sv.close": "Закрыть",
        "sv.done": "Готово.",
        "sv.sent": "Отправлено.",
        "sv.failed": "Ошибка: {detail}",
        "sv.conversation": "#{id} {channel}",
        "sv.conv_status.active": "в работе",
        "sv.conv_status.on_hold": "на удержании",
        "sv.conv_status.wrap_up": "постобработка",
        "sv.call.listen": "Прослушать",
        "sv.call.whisper": "Суфлёр",
        "sv.call.barge": "Вмешаться",
        "sv.call.force_end": "Завершить звонок",
        "sv.call.recording": "Запись",
        "sv.call.speed": "Скорость",
        "sv.call.download": "Скачать",
        "sv.panel.call": "Звонок #{id}, оператор {name}",
        "sv.call.ringing.listen": "Звонит ваш телефон: снимите трубку, чтобы слушать.",
        "sv.call.ringing.whisper": "Звонит ваш телефон: снимите трубку, вас услышит только оператор.",
        "sv.call.ringing.barge": "Звонит ваш телефон: снимите трубку, чтобы войти в разговор.",
        "sv.call.force_end_confirm": "Завершить звонок #{id} оператора {name}?",
        "sv.call.ended": "Звонок завершён.",
    },
)
