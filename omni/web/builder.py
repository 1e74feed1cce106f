"""The supervisor's bot scenario pages: ``/supervisor/bots`` (list, create, import) and
``/supervisor/bots/{id}`` (the visual builder), Jinja2 shells around ``ui/src/builder.ts``.

The pages only hand the module its boot data; everything else goes through the scenarios
REST API (``bots.http``), which checks roles again. Supervisors and admins edit; auditors
get the same pages read-only (they may still test-run a scenario).

Boot data: ``view`` (``list`` or ``edit``), ``scenario_id``, ``readonly``, ``channels``,
``queues`` (``[{id, name}]`` for hand-off nodes), ``result_codes`` (codes for close nodes),
``scenario_keys`` (for goto nodes) and ``strings`` (``bld.*``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select

from omni.api.deps import services_of
from omni.db import models as m
from omni.web.i18n import messages, register
from omni.web.pages import PageContext, boot_data, page_context

CHANNELS = ("widget", "telegram", "voice", "api")
VIEWERS = (m.Role.SUPERVISOR, m.Role.ADMIN, m.Role.AUDITOR)


class BuilderPage(Controller):
    async def _page(self, request: Request[Any, Any, Any], ctx: PageContext, **values: Any) -> Template:
        async with services_of(request).db.transaction() as session:
            queues = [
                {"id": q.id, "name": q.name}
                for q in await session.scalars(select(m.Queue).order_by(m.Queue.name))
            ]
            codes = list(
                await session.scalars(
                    select(m.ResultCode.code).where(m.ResultCode.active.is_(True)).order_by(m.ResultCode.code)
                )
            )
            keys = list(await session.scalars(select(m.Scenario.key).order_by(m.Scenario.key)))
        boot = boot_data(
            ctx,
            strings=messages(ctx.lang, "bld."),
            readonly=ctx.who.role == m.Role.AUDITOR,
            channels=list(CHANNELS),
            queues=queues,
            result_codes=codes,
            scenario_keys=keys,
            **values,
        )
        return ctx.template("live.html", module="builder", boot=boot)

    @get("/supervisor/bots", include_in_schema=False)
    async def scenarios(self, request: Request[Any, Any, Any]) -> Template:
        ctx = await page_context(request)
        ctx.require(*VIEWERS)
        return await self._page(request, ctx, view="list")

    @get("/supervisor/bots/{scenario_id:int}", include_in_schema=False)
    async def builder(self, request: Request[Any, Any, Any], scenario_id: int) -> Template:
        ctx = await page_context(request)
        ctx.require(*VIEWERS)
        async with services_of(request).db.transaction() as session:
            exists = await session.get(m.Scenario, scenario_id) is not None
        if not exists:
            return ctx.template("error.html", status_code=404, message=ctx.t("bld.not_found"))
        return await self._page(request, ctx, view="edit", scenario_id=scenario_id)


_PORTS = {
    "next": ("next", "далее"),
    "on_invalid": ("invalid answer", "неверный ответ"),
    "on_no_input": ("no input", "нет ответа"),
    "on_max_retries": ("out of retries", "попытки исчерпаны"),
    "true": ("yes", "да"),
    "false": ("no", "нет"),
    "on_error": ("error", "ошибка"),
    "on_no_agents": ("no agents", "нет операторов"),
    "on_closed": ("closed", "не рабочее время"),
}
_KINDS = {
    "message": ("Message", "Сообщение"),
    "menu": ("Menu", "Меню"),
    "ask": ("Ask", "Вопрос"),
    "condition": ("Condition", "Условие"),
    "set": ("Set variable", "Переменная"),
    "http": ("HTTP request", "HTTP-запрос"),
    "handoff": ("Hand off", "Оператору"),
    "goto_scenario": ("Go to scenario", "Другой сценарий"),
    "close": ("Close", "Завершить"),
    "survey": ("Survey", "Опрос"),
    "wait": ("Wait", "Пауза"),
}
_FACTS = {
    "channel": ("channel", "канал"),
    "time": ("time (HH:MM)", "время (ЧЧ:ММ)"),
    "weekday": ("weekday (1–7)", "день недели (1–7)"),
    "business_hours_open": ("business hours open", "рабочее время"),
    "agents_online": ("agents online", "операторов в сети"),
}
_OPS = {
    "eq": ("=", "="),
    "ne": ("≠", "≠"),
    "lt": ("<", "<"),
    "le": ("≤", "≤"),
    "gt": (">", ">"),
    "ge": ("≥", "≥"),
    "contains": ("contains", "содержит"),
    "in": ("in list", "в списке"),
    "empty": ("is empty", "пусто"),
    "not_empty": ("is not empty", "не пусто"),
    "matches": ("matches regex", "регулярное выражение"),
}
_INPUTS = {
    "text": ("text", "текст"),
    "number": ("number", "число"),
    "email": ("email", "e-mail"),
    "phone": ("phone", "телефон"),
    "date": ("date", "дата"),
    "choice": ("choice", "выбор"),
}
_STRINGS: dict[str, tuple[str, str]] = {
    **{f"bld.port.{k}": v for k, v in _PORTS.items()},
    **{f"bld.kind.{k}": v for k, v in _KINDS.items()},
    **{f"bld.fact.{k}": v for k, v in _FACTS.items()},
    **{f"bld.op.{k}": v for k, v in _OPS.items()},
    **{f"bld.input.{k}": v for k, v in _INPUTS.items()},
    "nav.bots": ("Bots", "Боты"),
    "bld.title": ("Bot scenarios", "Сценарии ботов"),
    "bld.intro": (
        "A scenario runs first on an inbox that names it, then hands the customer to a queue.",
        "Сценарий запускается первым в канале, где он выбран, и передаёт клиента в очередь.",
    ),
    "bld.not_found": ("This scenario does not exist.", "Такого сценария нет."),
    "bld.no_scenarios": ("No scenarios yet.", "Сценариев пока нет."),
    "bld.col.name": ("Name", "Название"),
    "bld.col.key": ("Key", "Ключ"),
    "bld.col.state": ("State", "Состояние"),
    "bld.col.updated": ("Updated", "Изменён"),
    "bld.state.published": ("published", "опубликован"),
    "bld.state.draft": ("draft only", "только черновик"),
    "bld.create": ("Create scenario", "Создать сценарий"),
    "bld.key_help": (
        "Lowercase letters, digits, '-' and '_'; inboxes refer to the scenario by it.",
        "Строчные латинские буквы, цифры, '-' и '_'; по ключу сценарий выбирают в канале.",
    ),
    "bld.import": ("Import", "Импорт"),
    "bld.import_help": (
        "An exported scenario file: a new scenario, or a new draft of the one with the same key.",
        "Файл экспорта: новый сценарий или новый черновик сценария с тем же ключом.",
    ),
    "bld.imported": ("Imported into the editor — save to keep it.", "Загружено в редактор — сохраните."),
    "bld.export": ("Export", "Экспорт"),
    "bld.back": ("← Scenarios", "← Сценарии"),
    "bld.readonly": ("read only", "только просмотр"),
    "bld.published_n": ("published: revision {n}", "опубликована версия {n}"),
    "bld.not_published": ("not published", "не опубликован"),
    "bld.save": ("Save draft", "Сохранить черновик"),
    "bld.saving": ("Saving…", "Сохранение…"),
    "bld.saved": ("Draft saved, ready to publish.", "Черновик сохранён, можно публиковать."),
    "bld.saved_problems": (
        "Draft saved; {n} problem(s) stop publishing.",
        "Черновик сохранён; проблем, мешающих публикации: {n}.",
    ),
    "bld.save_refused": ("Not saved: {detail}", "Не сохранено: {detail}"),
    "bld.unsaved": ("Unsaved changes", "Есть несохранённые изменения"),
    "bld.publish": ("Publish", "Опубликовать"),
    "bld.published": ("Published revision {n}.", "Опубликована версия {n}."),
    "bld.publish_refused": ("Not published: {detail}", "Не опубликовано: {detail}"),
    "bld.failed": ("Failed: {detail}", "Ошибка: {detail}"),
    "bld.publish_blocked": (
        "Not published: fix {n} problem(s) first, on {nodes} (see the red nodes).",
        "Не опубликовано: сначала исправьте проблемы ({n}) в узлах {nodes} (отмечены красным).",
    ),
    "bld.err.key": (
        "The key: a lowercase Latin letter first, then letters, digits, '-' or '_' (up to 64).",
        "Ключ: сначала строчная латинская буква, затем буквы, цифры, '-' или '_' (до 64).",
    ),
    "bld.palette": ("Add a node", "Добавить узел"),
    "bld.variables": ("Variables", "Переменные"),
    "bld.new_variable": ("new_variable", "new_variable"),
    "bld.add": ("Add", "Добавить"),
    "bld.remove": ("Remove", "Удалить"),
    "bld.scope.conversation": ("this conversation", "это обращение"),
    "bld.scope.contact": ("the contact (kept)", "контакт (сохраняется)"),
    "bld.tab.node": ("Node", "Узел"),
    "bld.tab.problems": ("Problems ({n})", "Проблемы ({n})"),
    "bld.tab.test": ("Test run", "Тест"),
    "bld.tab.versions": ("Versions", "Версии"),
    "bld.tab.stats": ("Statistics", "Статистика"),
    "bld.pick_node": (
        "Click a node to edit it, or add one from the palette. Drag from a port's dot to a node "
        "to connect them.",
        "Щёлкните узел, чтобы изменить его, или добавьте узел из палитры. Чтобы соединить, "
        "протяните от точки выхода к узлу.",
    ),
    "bld.start_mark": ("▶ start", "▶ старт"),
    "bld.is_start": ("start", "старт"),
    "bld.make_start": ("Make start", "Сделать стартовым"),
    "bld.delete_node": ("Delete node", "Удалить узел"),
    "bld.arrow": ("Arrow", "Стрелка"),
    "bld.arrow_text": ("From {from} ({port}) to {to}", "Из {from} ({port}) в {to}"),
    "bld.delete_arrow": ("Delete arrow", "Удалить стрелку"),
    "bld.ports": ("Where to go next", "Куда дальше"),
    "bld.options": ("Options", "Варианты"),
    "bld.option_n": ("Option {n}", "Вариант {n}"),
    "bld.add_option": ("Add option", "Добавить вариант"),
    "bld.assignments": ("Assignments", "Присваивания"),
    "bld.add_assignment": ("Add assignment", "Добавить присваивание"),
    "bld.condition": ("Condition", "Условие"),
    "bld.condition_complex": (
        "This condition is too complex for the rule editor; edit it as JSON.",
        "Условие слишком сложное для редактора правил; измените его как JSON.",
    ),
    "bld.as_json": ("Edit as JSON", "Изменить как JSON"),
    "bld.add_rule": ("Add rule", "Добавить правило"),
    "bld.match.all": ("all rules hold", "все правила"),
    "bld.match.any": ("any rule holds", "любое правило"),
    "bld.side.var": ("variable", "переменная"),
    "bld.side.fact": ("fact", "факт"),
    "bld.inbox_queue": ("the inbox's queue", "очередь канала"),
    "bld.none": ("— none —", "— нет —"),
    "bld.f.id": ("Node id", "Идентификатор узла"),
    "bld.f.title": ("Title", "Заголовок"),
    "bld.f.text": ("Text", "Текст"),
    "bld.f.text_ru": ("Text (Russian)", "Текст (русский)"),
    "bld.f.voice_text": ("Voice prompt (instead of the text on calls)", "Для звонков (вместо текста)"),
    "bld.f.message": ("Message", "Сообщение"),
    "bld.f.prompt": ("Prompt", "Приглашение"),
    "bld.f.question": ("Question", "Вопрос"),
    "bld.f.retry_message": ("Retry message (optional)", "Сообщение при повторе (необязательно)"),
    "bld.f.close_message": ("Goodbye message (optional)", "Прощальное сообщение (необязательно)"),
    "bld.f.option_id": ("Id", "Id"),
    "bld.f.label": ("Label", "Надпись"),
    "bld.f.label_ru": ("Label (Russian)", "Надпись (русская)"),
    "bld.f.dtmf": ("Key (voice)", "Клавиша (звонок)"),
    "bld.f.retries": ("Retries", "Повторов"),
    "bld.f.timeout": ("No-input timeout, s (0 = wait)", "Ожидание ответа, с (0 = ждать)"),
    "bld.f.input": ("Answer type", "Тип ответа"),
    "bld.f.choices": ("Choices (one a line)", "Варианты (по одному в строке)"),
    "bld.f.variable": ("Variable", "Переменная"),
    "bld.f.value": ("Value", "Значение"),
    "bld.f.match": ("Go to 'yes' when", "Ветка «да», если выполнены"),
    "bld.f.side": ("Compare", "Сравнить"),
    "bld.f.name": ("Name", "Имя"),
    "bld.f.op": ("Operator", "Оператор сравнения"),
    "bld.f.when_json": ("Condition (JSON)", "Условие (JSON)"),
    "bld.f.method": ("Method", "Метод"),
    "bld.f.url": ("URL", "URL"),
    "bld.f.headers": ("Headers (Name: value)", "Заголовки (Имя: значение)"),
    "bld.f.body": ("Body", "Тело запроса"),
    "bld.f.http_timeout": ("Timeout, s", "Тайм-аут, с"),
    "bld.f.response_map": (
        "Response → variables (variable = path.in.json)",
        "Ответ → переменные (переменная = путь.в.json)",
    ),
    "bld.f.queue": ("Queue", "Очередь"),
    "bld.f.priority": ("Priority", "Приоритет"),
    "bld.f.skills": ("Skills (comma-separated)", "Навыки (через запятую)"),
    "bld.f.note": ("Note for the operator", "Заметка для оператора"),
    "bld.f.scenario": ("Scenario key", "Ключ сценария"),
    "bld.f.result_code": ("Result code", "Результат"),
    "bld.f.survey_kind": ("Answer", "Ответ"),
    "bld.f.seconds": ("Seconds", "Секунд"),
    "bld.f.type": ("Type", "Тип"),
    "bld.f.scope": ("Kept for", "Хранится для"),
    "bld.survey.single": ("one choice", "один вариант"),
    "bld.survey.multiple": ("several choices", "несколько вариантов"),
    "bld.survey.text": ("free text", "свободный текст"),
    "bld.err.number": ("Enter a number.", "Введите число."),
    "bld.err.range": ("From {min} to {max}.", "От {min} до {max}."),
    "bld.err.var_name": (
        "Lowercase letters, digits and '_', starting with a letter.",
        "Строчные латинские буквы, цифры и '_', начиная с буквы.",
    ),
    "bld.err.node_id": (
        "Letters, digits, '-' and '_', starting with a letter.",
        "Латинские буквы, цифры, '-' и '_', начиная с буквы.",
    ),
    "bld.err.option_id": (
        "Lowercase letters, digits, '-' and '_'.",
        "Строчные латинские буквы, цифры, '-' и '_'.",
    ),
    "bld.err.unique": ("Already used.", "Уже используется."),
    "bld.err.dtmf": ("One key: 0–9, * or #.", "Одна клавиша: 0–9, * или #."),
    "bld.err.label": ("1 to 64 characters.", "От 1 до 64 символов."),
    "bld.err.url": (
        "Starts with http://, https:// or {{variable}}.",
        "Начинается с http://, https:// или {{переменной}}.",
    ),
    "bld.err.pairs": ("One per line, with '{sep}'.", "По одному в строке, через '{sep}'."),
    "bld.err.json": ("Not valid JSON.", "Некорректный JSON."),
    "bld.err.choices": ("At least one choice.", "Нужен хотя бы один вариант."),
    "bld.err.required": ("Required.", "Обязательное поле."),
    "bld.err.too_long": ("Too long.", "Слишком длинно."),
    "bld.err.import": ("That file is not an exported scenario.", "Этот файл не является экспортом сценария."),
    "bld.no_problems": (
        "No problems: the draft can be published.",
        "Проблем нет: черновик можно публиковать.",
    ),
    "bld.no_revisions": ("Nothing published yet.", "Ещё ничего не опубликовано."),
    "bld.active": ("active", "активна"),
    "bld.rollback": ("Make active", "Сделать активной"),
    "bld.rolled_back": (
        "Revision {n} is active for new conversations.",
        "Версия {n} активна для новых обращений.",
    ),
    "bld.diff_previous": ("Changes", "Изменения"),
    "bld.compare": ("Compare", "Сравнить"),
    "bld.show_diff": ("Show", "Показать"),
    "bld.diff_title": ("From {a} to {b}", "От {a} к {b}"),
    "bld.diff.start": ("Start node: {from} → {to}", "Стартовый узел: {from} → {to}"),
    "bld.diff.added": ("Nodes added", "Добавлены узлы"),
    "bld.diff.removed": ("Nodes removed", "Удалены узлы"),
    "bld.diff.changed": ("Node {node} changed", "Изменён узел {node}"),
    "bld.diff.field": ("Field", "Поле"),
    "bld.diff.before": ("Before", "Было"),
    "bld.diff.after": ("After", "Стало"),
    "bld.diff.vars_added": ("Variables added", "Добавлены переменные"),
    "bld.diff.vars_removed": ("Variables removed", "Удалены переменные"),
    "bld.diff.vars_changed": ("Variables changed", "Изменены переменные"),
    "bld.diff.none": (
        "No changes in the logic (only the layout).",
        "Логика не менялась (только расположение).",
    ),
    "bld.all_channels": ("all channels", "все каналы"),
    "bld.stats.revision": ("Revision", "Версия"),
    "bld.stats.channel": ("Channel", "Канал"),
    "bld.stats.show": ("Show on the canvas", "Показать на схеме"),
    "bld.stats.hide": ("Hide", "Скрыть"),
    "bld.stats.empty": (
        "No conversations went through this revision yet.",
        "Через эту версию ещё не прошло обращений.",
    ),
    "bld.stats.none": ("not reached", "не достигнут"),
    "bld.stats.line": (
        "in {entered} · out {left} · dropped {dropped} · here {waiting} · invalid {invalid}%",
        "вошли {entered} · вышли {left} · ушли {dropped} · сейчас {waiting} · ошибки {invalid}%",
    ),
    "bld.stats.queued": ("queued: {n}", "в очередь: {n}"),
    "bld.stats.node": ("Node", "Узел"),
    "bld.stats.entered": ("Entered", "Вошли"),
    "bld.stats.left": ("Left", "Вышли"),
    "bld.stats.waiting": ("Here now", "Сейчас здесь"),
    "bld.stats.dropped": ("Dropped", "Ушли"),
    "bld.stats.invalid": ("Invalid", "Ошибки ввода"),
    "bld.stats.ports": ("By exit", "По выходам"),
    "bld.sim.settings": ("Test settings", "Настройки теста"),
    "bld.sim.channel": ("Channel", "Канал"),
    "bld.sim.lang": ("Language", "Язык"),
    "bld.sim.handoff": ("Hand-off result", "Результат передачи"),
    "bld.sim.handoff.queued": ("queued", "в очереди"),
    "bld.sim.handoff.no_agents": ("no agents", "нет операторов"),
    "bld.sim.handoff.closed": ("closed", "не рабочее время"),
    "bld.sim.open": ("Business hours open", "Рабочее время"),
    "bld.sim.agents": ("Agents online", "Операторов в сети"),
    "bld.sim.http": ("HTTP answers (JSON list)", "Ответы HTTP (JSON-список)"),
    "bld.sim.preset": ("Preset variables (JSON)", "Заданные переменные (JSON)"),
    "bld.sim.start": ("Start over", "Начать заново"),
    "bld.sim.undo": ("Undo last input", "Отменить последний ввод"),
    "bld.sim.type": ("Customer's message", "Сообщение клиента"),
    "bld.sim.send": ("Send", "Отправить"),
    "bld.sim.no_input": ("No input", "Нет ответа"),
    "bld.sim.timeout": ("Timer fires", "Таймер истёк"),
    "bld.sim.pressed": ("pressed {digit}", "нажата {digit}"),
    "bld.sim.variables": ("Variables", "Переменные"),
    "bld.sim.no_variables": ("No variables set.", "Переменные не заданы."),
    "bld.sim.path": ("Path: {path}", "Путь: {path}"),
    "bld.sim.failed": ("Can't run: {detail}", "Не удалось запустить: {detail}"),
    "bld.sim.error": ("Stopped with an error: {detail}", "Остановлено с ошибкой: {detail}"),
    "bld.sim.goto": ("Goes on in scenario {key}.", "Продолжается в сценарии {key}."),
    "bld.sim.closed": ("Closed with result {code}.", "Завершено с результатом {code}."),
    "bld.sim.handed_off": ("Handed to an operator ({queue}).", "Передано оператору ({queue})."),
    "bld.sim.handoff_back": (
        "Hand-off to {queue}: {outcome}; the scenario goes on.",
        "Передача в {queue}: {outcome}; сценарий продолжается.",
    ),
    "bld.sim.waiting": ("Waiting for the customer at {node}.", "Ждёт клиента в узле {node}."),
    "bld.sim.ended": ("Ended ({status}).", "Завершено ({status})."),
}
register(
    en={k: v[0] for k, v in _STRINGS.items()},
    ru={k: v[1] for k, v in _STRINGS.items()},
)
