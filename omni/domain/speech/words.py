"""Numbers, dates, times, money and phone numbers written out in words (Russian, English).

A speech engine reads ``"1 500,50 ₽"`` or ``"01.12.2026"`` badly, and in Russian it cannot
know the gender and case a number takes (``одна тысяча``, ``двадцать одна копейка``,
``первое декабря``). :func:`spell` rewrites such tokens in a text before it is synthesised and
leaves every other word alone; :func:`format_value` is what a bot template's ``{{var:kind}}``
uses to write a variable so that it reads well on screen and :func:`spell` reads it right.

Cardinals and ordinals come from ``num2words`` (genders and cases in Russian); money is
composed here because its ``to_currency`` treats integers as cents and says "ноль копеек".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from num2words import num2words

__all__ = ["FORMATS", "format_value", "lang_of", "plural_ru", "spell"]

FORMATS = frozenset({"number", "money", "rub", "usd", "eur", "date", "time", "digits", "count"})
"""What ``{{variable:kind}}`` in a bot template may name (``docs/bots.md``); ``count`` takes
the noun counted: ``{{n:count(минута)}}``."""

# --- words of the two languages ----------------------------------------------------------

_MONTHS_RU = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
              "сентября", "октября", "ноября", "декабря")  # fmt: skip
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")  # fmt: skip

# currency → (ru unit forms one/few/many, gender, ru subunit forms, subunit gender,
#             en unit singular/plural, en subunit singular/plural)
_CURRENCIES: dict[str, tuple[tuple[str, str, str], str, tuple[str, str, str], str,
                             tuple[str, str], tuple[str, str]]] = {
    "RUB": (("рубль", "рубля", "рублей"), "m", ("копейка", "копейки", "копеек"), "f",
            ("ruble", "rubles"), ("kopeck", "kopecks")),
    "USD": (("доллар", "доллара", "долларов"), "m", ("цент", "цента", "центов"), "m",
            ("dollar", "dollars"), ("cent", "cents")),
    "EUR": (("евро", "евро", "евро"), "m", ("цент", "цента", "центов"), "m",
            ("euro", "euros"), ("cent", "cents")),
}  # fmt: skip

_SIGNS = {
    "₽": "RUB", "руб": "RUB", "руб.": "RUB", "рублей": "RUB", "рубля": "RUB", "рубль": "RUB",
    "р.": "RUB", "rub": "RUB", "rur": "RUB",
    "$": "USD", "usd": "USD", "долл.": "USD", "долларов": "USD", "доллара": "USD", "доллар": "USD",
    "€": "EUR", "eur": "EUR", "евро": "EUR",
}  # fmt: skip

_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€"}

_DIGITS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGITS_RU = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")

_GENITIVE_BEFORE = frozenset({"до", "с", "со", "от", "после", "около", "для", "из", "без", "у", "кроме"})
_DATIVE_BEFORE = frozenset({"к", "ко", "по"})


def lang_of(lang: str) -> str:
    """``ru`` for any Russian tag (``ru``, ``ru-RU``), else ``en``: the two languages spelled."""
    return "ru" if (lang or "").lower().startswith("ru") else "en"


def plural_ru(n: int, forms: tuple[str, str, str]) -> str:
    """The form of a noun after the number ``n``: ``(рубль, рубля, рублей)``."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


@dataclass(frozen=True)
class _Noun:
    forms: tuple[str, str, str]
    """After 1, 2–4, 5–20: ``(минута, минуты, минут)``."""
    gender: str
    """num2words' ``m``, ``f``, ``n``: the number agrees (``одна минута``, ``две недели``)."""
    accusative: str = ""
    """The accusative singular when it differs (``через 1 минуту`` → ``через одну минуту``)."""


_NOUNS_RU = (
    _Noun(("секунда", "секунды", "секунд"), "f", "секунду"),
    _Noun(("минута", "минуты", "минут"), "f", "минуту"),
    _Noun(("час", "часа", "часов"), "m"),
    _Noun(("день", "дня", "дней"), "m"),
    _Noun(("неделя", "недели", "недель"), "f", "неделю"),
    _Noun(("месяц", "месяца", "месяцев"), "m"),
    _Noun(("год", "года", "лет"), "m"),
    _Noun(("раз", "раза", "раз"), "m"),
    _Noun(("звонок", "звонка", "звонков"), "m"),
    _Noun(("платёж", "платежа", "платежей"), "m"),
    _Noun(("платеж", "платежа", "платежей"), "m"),
    _Noun(("заказ", "заказа", "заказов"), "m"),
    _Noun(("штука", "штуки", "штук"), "f", "штуку"),
    _Noun(("попытка", "попытки", "попыток"), "f", "попытку"),
    _Noun(("позиция", "позиции", "позиций"), "f", "позицию"),
    _Noun(("балл", "балла", "баллов"), "m"),
    _Noun(("сообщение", "сообщения", "сообщений"), "n"),
    _Noun(("место", "места", "мест"), "n"),
    _Noun(("человек", "человека", "человек"), "m"),
)
_NOUN_FORMS_RU: dict[str, _Noun] = {}
for _noun in _NOUNS_RU:
    for _form in (*_noun.forms, _noun.accusative):
        if _form:
            _NOUN_FORMS_RU.setdefault(_form, _noun)


def _counted_ru(n: int, word: str) -> str | None:
    """``n`` and the noun after it in agreement (``1 минута`` → ``одна минута``, ``21 день`` →
    ``двадцать один день``, ``через 1 минуту`` → ``через одну минуту``): the number takes the
    noun's gender, the noun the form the number asks for. Nominative, or accusative when the
    noun was written in the accusative singular (inanimate nouns: the other forms are the
    nominative's); ``None`` for a noun this table does not know."""
    noun = _NOUN_FORMS_RU.get(word.lower())
    if noun is None:
        return None
    said = _cardinal(n, "ru", noun.gender)
    form = plural_ru(n, noun.forms)
    if noun.accusative and word.lower() == noun.accusative and form == noun.forms[0]:
        form = noun.accusative
        said = re.sub(r"одна$", "одну", said)
    if word[:1].isupper():
        form = form[:1].upper() + form[1:]
    return f"{said} {form}"


def _cardinal(n: int | Decimal, lang: str, gender: str = "m", case: str = "n") -> str:
    if lang == "ru":
        return str(num2words(n, lang="ru", gender=gender, case=case))
    # num2words' English puts commas inside ("one thousand, five hundred"): a speech engine
    # pauses at each, so they go.
    return str(num2words(n, lang="en")).replace(",", "")


# --- the pieces ---------------------------------------------------------------------------


def _number(raw: str, lang: str) -> str:
    value = _parse_number(raw, lang)
    if value is None:
        return raw
    fraction = any(c in raw for c in (",." if lang == "ru" else "."))
    return _cardinal(value if fraction else int(value), lang)


def _parse_number(raw: str, lang: str) -> Decimal | None:
    text = raw.replace("\u2212", "-").replace("\u00a0", " ").replace("\u202f", " ")
    text = text.replace(" ", "").replace(",", "." if lang == "ru" else "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def money_words(amount: Decimal, currency: str, lang: str) -> str:
    """``1500.5, RUB, ru`` → ``одна тысяча пятьсот рублей пятьдесят копеек``: units and
    subunits each in the gender and plural form their number takes; zero subunits unsaid."""
    ru_units, unit_gender, ru_subs, sub_gender, en_units, en_subs = _CURRENCIES[currency]
    minus = amount < 0
    cents_total = int((abs(amount) * 100).quantize(Decimal(1)))
    units, subs = divmod(cents_total, 100)
    parts: list[str] = []
    if lang == "ru":
        if units or not subs:
            parts.append(f"{_cardinal(units, 'ru', unit_gender)} {plural_ru(units, ru_units)}")
        if subs:
            parts.append(f"{_cardinal(subs, 'ru', sub_gender)} {plural_ru(subs, ru_subs)}")
        words = " ".join(parts)
        return f"минус {words}" if minus else words
    if units or not subs:
        parts.append(f"{_cardinal(units, 'en')} {en_units[0] if units == 1 else en_units[1]}")
    if subs:
        parts.append(f"{_cardinal(subs, 'en')} {en_subs[0] if subs == 1 else en_subs[1]}")
    words = " and ".join(parts)
    return f"minus {words}" if minus else words


def date_words(day: date, lang: str, case: str = "n") -> str:
    """``первое декабря две тысячи двадцать шестого года`` / ``first of December twenty
    twenty-six``; ``case`` (Russian: ``n``, ``genitive``, ``dative``) follows a preposition."""
    if lang == "ru":
        day_word = num2words(day.day, lang="ru", to="ordinal", gender="n", case=case)
        year_case = "genitive"
        year_word = num2words(day.year, lang="ru", to="ordinal", case=year_case)
        return f"{day_word} {_MONTHS_RU[day.month - 1]} {year_word} года"
    day_word = num2words(day.day, lang="en", to="ordinal")
    return f"{day_word} of {_MONTHS_EN[day.month - 1]} {num2words(day.year, lang='en', to='year')}"


def time_words(hours: int, minutes: int, lang: str) -> str:
    """``14:30`` → ``четырнадцать часов тридцать минут`` / ``fourteen thirty``."""
    if lang == "ru":
        said = f"{_cardinal(hours, 'ru')} {plural_ru(hours, ('час', 'часа', 'часов'))}"
        if minutes:
            said += f" {_cardinal(minutes, 'ru', 'f')} {plural_ru(minutes, ('минута', 'минуты', 'минут'))}"
        return said
    if not minutes:
        return f"{_cardinal(hours, 'en')} o'clock"
    if minutes < 10:
        return f"{_cardinal(hours, 'en')} oh {_cardinal(minutes, 'en')}"
    return f"{_cardinal(hours, 'en')} {_cardinal(minutes, 'en')}"


def phone_words(raw: str, lang: str) -> str:
    """A phone number group by group as written (``+7 495 123-45-67``): Russian reads each
    group as a number (a group with a leading zero or over three digits digit by digit),
    English digit by digit; groups are parted by commas, so the engine pauses between them."""
    groups = re.findall(r"\d+", raw)
    digits = _DIGITS_RU if lang == "ru" else _DIGITS_EN
    said: list[str] = []
    for group in groups:
        if lang == "ru" and not (group.startswith("0") and len(group) > 1) and len(group) <= 3:
            said.append(_cardinal(int(group), "ru"))
        else:
            said.append(" ".join(digits[int(c)] for c in group))
    plus = ("плюс " if lang == "ru" else "plus ") if raw.lstrip().startswith("+") else ""
    return plus + ", ".join(said)


# --- the scanner --------------------------------------------------------------------------

_SEP_RU = r"[ \u00a0\u202f]"
_NUM_RU = rf"\d{{1,3}}(?:{_SEP_RU}\d{{3}})+(?:[,.]\d+)?|\d+(?:[,.]\d+)?"
_NUM_EN = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CUR_BEFORE = r"(?P<cb>[$€₽])\s?"
_CUR_AFTER = (
    r"\s?(?P<ca>₽|\$|€|руб(?:лей|ля|ль|\.)?|р\.|rub\b|rur\b|usd\b|долл\.|доллар(?:ов|а)?|"
    r"eur\b|евро)(?![а-яёa-z])(?:\s?(?P<sub>\d{1,2})\s?(?:коп(?:еек|ейки|ейка|\.)?|ц\.|cents?\b))?"
)


def _scanner(lang: str) -> re.Pattern[str]:
    num = _NUM_RU if lang == "ru" else _NUM_EN
    return re.compile(
        # Dates before phone numbers: 2026-12-01 would also pass for a number written 202 6-12-01.
        r"(?P<iso>(?<![\w.-])(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2})(?![\w-]))"
        r"|(?P<dots>(?<![\w.])(?P<dd>\d{1,2})\.(?P<dm>\d{1,2})\.(?P<dy>\d{4})(?!\w|\.\d))"
        r"|(?P<phone>(?<![\w+])\+\d[\d \-()]{5,}\d(?!\d)"
        r"|(?<![\w+-])(?:\d{1,3}[ -]?)?(?:(?:\(\d{3,5}\)|\d{3,5})[ -]?)?\d{3}-\d{2}-\d{2}(?![\w-]))"
        r"|(?P<year>(?<![\w.,])(?P<yy>\d{4})\s?(?P<yw>г\.|год(?:ом|а|у)?)(?![а-яё]))"
        r"|(?P<kop>(?<![\w.,])(?P<ks>\d+)\s?(?:коп(?:еек|ейки|ейка|\.)?)(?![а-яё]))"
        r"|(?P<time>(?<![\w:.])(?P<th>\d{1,2}):(?P<tm>\d{2})(?![\w:]))"
        rf"|(?P<money>(?<![\w.,])(?P<ms>[-\u2212]?)(?:{_CUR_BEFORE}(?P<mb>{num})|(?P<ma>{num}){_CUR_AFTER}))"
        rf"|(?P<num>(?<![\w.,])(?:(?<![\d\-\u2212])[-\u2212](?=\d))?(?:{num})(?![\w]|[.,]\d))"
        # Russian: the word after a bare number, for agreement (``_counted_ru``).
        r"(?:(?P<pc>\s?%)"
        + (r"|(?P<sp>[ \u00a0]+)(?P<noun>[а-яё]+)(?![\w-])" if lang == "ru" else "")
        + ")?",
        re.IGNORECASE,
    )


_SCANNERS = {"ru": _scanner("ru"), "en": _scanner("en")}


def _case_before(text: str, start: int) -> str:
    word = re.search(r"(\w+)\s+$", text[:start])
    if word is None:
        return "n"
    low = word.group(1).lower()
    if low in _GENITIVE_BEFORE:
        return "genitive"
    if low in _DATIVE_BEFORE:
        return "dative"
    return "n"


_YEAR_WORDS = {"год": "n", "года": "genitive", "году": "prepositional", "годом": "instrumental"}
_YEAR_FORMS = {"n": "год", "genitive": "года", "dative": "году", "prepositional": "году",
               "instrumental": "годом"}  # fmt: skip


def _year(match: re.Match[str], lang: str) -> str:
    """``в 2026 году`` → ``в две тысячи двадцать шестом году``: a year before год is an
    ordinal in the case the word (or, for ``г.``, the preposition before it) asks for."""
    year, word = int(match.group("yy")), match.group("yw").lower()
    if lang != "ru":
        return f"{_cardinal(year, lang)} {match.group('yw')}"
    if word in _YEAR_WORDS:
        case = _YEAR_WORDS[word]
    else:
        before = re.search(r"(\w+)\s+$", match.string[: match.start()])
        prep = before.group(1).lower() if before else ""
        case = "prepositional" if prep in ("в", "во") else _case_before(match.string, match.start())
    return f"{num2words(year, lang='ru', to='ordinal', case=case)} {_YEAR_FORMS[case]}"


def _valid_date(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _replace(match: re.Match[str], lang: str) -> str:
    g = match.groupdict()
    raw = match.group(0)
    try:
        if g["phone"]:
            return phone_words(raw, lang)
        if g["iso"] or g["dots"]:
            when = (_valid_date(g["iy"], g["im"], g["id"]) if g["iso"]
                    else _valid_date(g["dy"], g["dm"], g["dd"]))  # fmt: skip
            if when is None:
                return raw
            case = _case_before(match.string, match.start()) if lang == "ru" else "n"
            return date_words(when, lang, case)
        if g["year"]:
            return _year(match, lang)
        if g["kop"]:
            count = int(g["ks"])
            if lang == "ru":
                return f"{_cardinal(count, 'ru', 'f')} {plural_ru(count, _CURRENCIES['RUB'][2])}"
            return f"{_cardinal(count, 'en')} {'kopeck' if count == 1 else 'kopecks'}"
        if g["time"]:
            hours, minutes = int(g["th"]), int(g["tm"])
            if hours > 23 or minutes > 59:
                return raw
            return time_words(hours, minutes, lang)
        if g["money"]:
            sign = (g["cb"] or g["ca"] or "").lower()
            currency = _SIGNS.get(sign) or _SIGNS.get(sign.rstrip(".")) or "RUB"
            amount = _parse_number(g["mb"] or g["ma"], lang)
            if amount is None:
                return raw
            if g["sub"]:
                amount += Decimal(int(g["sub"])) / 100
            if g["ms"]:
                amount = -amount
            return money_words(amount, currency, lang)
        if g.get("noun"):
            value = _parse_number(g["num"], lang)
            fraction = any(c in g["num"] for c in ",.")
            counted = _counted_ru(int(value), g["noun"]) if value is not None and not fraction else None
            if counted is not None:
                return counted
            return f"{_number(g['num'], lang)}{g['sp']}{g['noun']}"
        said = _number(g["num"], lang)
        if g["pc"]:
            value = _parse_number(g["num"], lang) or Decimal(0)
            if lang == "ru":
                whole = value == value.to_integral_value()
                form = plural_ru(int(value), ("процент", "процента", "процентов")) if whole else "процента"
                return f"{said} {form}"
            return f"{said} percent"
        return said
    except (ArithmeticError, KeyError, ValueError, OverflowError, NotImplementedError):
        # num2words has limits (very long numbers): such a token is read as written.
        return raw


def spell(text: str, lang: str) -> str:
    """``text`` with numbers, dates (``2026-12-01``, ``01.12.2026``), times (``14:30``), money
    (``1 500,50 ₽``, ``$1,500.50``, ``100 EUR``, ``15 руб. 20 коп.``), percentages and phone
    numbers (``+7 495 123-45-67``) written out in words of ``lang`` (``ru``; anything else is
    read as English). Thousands are grouped as the language writes them: ``1 500,50`` in
    Russian, ``1,500.50`` in English. Everything else is left as it is."""
    lang = lang_of(lang)
    return _SCANNERS[lang].sub(lambda match: _replace(match, lang), text or "")


# --- template formats ---------------------------------------------------------------------


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = str(value).strip()
    found = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?", raw)
    if found:
        return _valid_date(found.group(1), found.group(2), found.group(3))
    found = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", raw)
    if found:
        return _valid_date(found.group(3), found.group(2), found.group(1))
    return None


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    raw = re.sub(r"[\s\u00a0\u202f]", "", str(value))
    raw = re.sub(r"(?i)[₽$€]|руб\.?|rub|usd|eur|евро", "", raw)
    if raw.count(",") == 1 and "." not in raw:
        raw = raw.replace(",", ".")
    raw = raw.replace(",", "")
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def _grouped(amount: Decimal, lang: str, places: int | None) -> str:
    text = f"{amount:,.{places}f}" if places is not None else f"{amount:,}"
    if lang == "ru":
        return text.replace(",", "\u00a0").replace(".", ",")
    return text


def _count_en(n: Decimal, noun: str) -> str:
    one, _, many = noun.partition("|")
    if n == 1:
        return one
    if many:
        return many
    if re.search(r"(s|x|z|ch|sh)$", one):
        return one + "es"
    if re.search(r"[^aeiou]y$", one):
        return one[:-1] + "ies"
    return one + "s"


def _count_ru(n: Decimal, noun: str) -> str:
    forms = tuple(noun.split("|"))
    if len(forms) != 3:
        known = _NOUN_FORMS_RU.get(noun.lower())
        if known is None:
            return noun
        forms = known.forms
    if n != n.to_integral_value():
        return str(forms[1])  # 1,5 минуты: a fraction takes the genitive singular
    return plural_ru(int(n), (forms[0], forms[1], forms[2]))


def format_value(value: Any, kind: str, lang: str, arg: str = "") -> str:
    """A variable written for ``{{name:kind}}``: on screen as the language writes it
    (``1 500,50 ₽`` / ``$1,500.50``, ``01.12.2026`` / ``2026-12-01``), and so that
    :func:`spell` reads it as what it is on a call. ``money`` is roubles unless the value
    names its currency (``"20 USD"``); ``rub``/``usd``/``eur`` force one. A value that is not
    what the kind expects is written as it is."""
    lang = lang_of(lang)
    if value is None:
        return ""
    if kind == "date":
        day = _as_date(value)
        if day is None:
            return str(value)
        return day.strftime("%d.%m.%Y") if lang == "ru" else day.isoformat()
    if kind == "time":
        if isinstance(value, datetime):
            return value.strftime("%H:%M")
        found = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?", str(value).strip())
        return f"{int(found.group(1)):02d}:{found.group(2)}" if found else str(value)
    if kind == "digits":
        return " ".join(c for c in str(value) if c.isdigit())
    amount = _as_decimal(value)
    if amount is None:
        return str(value)
    if kind == "number":
        return _grouped(amount, lang, None)
    if kind == "count":
        # ``{{n:count(минута)}}``: the number and the noun in the form it asks for ("5 минут",
        # "21 день"; en "1 minute", "5 minutes"); the noun may list its forms
        # ("отчёт|отчёта|отчётов", "person|people") when it is not a known one.
        noun = arg.strip()
        if not noun:
            return _grouped(amount, lang, None)
        form = _count_ru(amount, noun) if lang == "ru" else _count_en(amount, noun)
        return f"{_grouped(amount, lang, None)} {form}"
    currency = {"rub": "RUB", "usd": "USD", "eur": "EUR"}.get(kind)
    if currency is None:
        named = re.search(r"(?i)[₽$€]|руб|rub|usd|eur|евро", str(value))
        currency = _SIGNS.get(named.group(0).lower(), "RUB") if named else "RUB"
    whole = amount == amount.to_integral_value()
    written = _grouped(amount, lang, 0 if whole else 2)
    if lang == "ru":
        return f"{written}\u00a0{_SYMBOLS[currency]}"
    return f"{written} {currency}"
