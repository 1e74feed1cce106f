# ruff: noqa: E501  (tables read best one case per line)
"""``spell``: numbers, dates, times, money and phone numbers read out in Russian and English,
with the genders, cases and plural forms Russian needs (checked against what num2words gets
wrong: its ``to_currency`` reads an integer as kopecks and says "ноль копеек")."""

from __future__ import annotations

from datetime import date

import pytest

from omni.domain.speech import format_value, plural_ru, spell

RU = [
    ("0", "ноль"),
    ("1", "один"),
    ("2", "два"),
    ("5", "пять"),
    ("11", "одиннадцать"),
    ("21", "двадцать один"),
    ("1000", "одна тысяча"),
    ("2000", "две тысячи"),
    ("21 000", "двадцать одна тысяча"),
    ("1 000 000", "один миллион"),
    ("-5", "минус пять"),
    ("−12", "минус двенадцать"),
    ("1,5", "одна целая пять десятых"),
    ("1 500,50", "одна тысяча пятьсот целых пятьдесят сотых"),
    ("5%", "пять процентов"),
    ("22%", "двадцать два процента"),
    ("комнаты 5-7", "комнаты пять-семь"),
]

RU_MONEY = [
    ("1 500,50 ₽", "одна тысяча пятьсот рублей пятьдесят копеек"),
    ("0 ₽", "ноль рублей"),
    ("1 руб.", "один рубль"),
    ("2 руб.", "два рубля"),
    ("5 руб.", "пять рублей"),
    ("11 руб.", "одиннадцать рублей"),
    ("21 руб.", "двадцать один рубль"),
    ("1000 RUB", "одна тысяча рублей"),
    ("2 000 ₽", "две тысячи рублей"),
    ("1 000 000 руб.", "один миллион рублей"),
    ("0,01 ₽", "одна копейка"),
    ("0,21 ₽", "двадцать одна копейка"),
    ("21,21 руб.", "двадцать один рубль двадцать одна копейка"),
    ("15 руб. 22 коп.", "пятнадцать рублей двадцать две копейки"),
    ("11 коп.", "одиннадцать копеек"),
    ("-100 ₽", "минус сто рублей"),
    ("$1 500,50", "одна тысяча пятьсот долларов пятьдесят центов"),
    ("1 USD", "один доллар"),
    ("100 EUR", "сто евро"),
    ("3 €", "три евро"),
    ("1500 рублей", "одна тысяча пятьсот рублей"),
]

EN = [
    ("0", "zero"),
    ("1", "one"),
    ("21", "twenty-one"),
    ("1000", "one thousand"),
    ("1,500", "one thousand five hundred"),
    ("1,000,000", "one million"),
    ("-3", "minus three"),
    ("1.5", "one point five"),
    ("5%", "five percent"),
    ("We are open from 9 to 6, Monday to Friday", "We are open from nine to six, Monday to Friday"),
]

EN_MONEY = [
    ("$1,500.50", "one thousand five hundred dollars and fifty cents"),
    ("1,500.50 USD", "one thousand five hundred dollars and fifty cents"),
    ("$1", "one dollar"),
    ("$0.01", "one cent"),
    ("$2.21", "two dollars and twenty-one cents"),
    ("100 EUR", "one hundred euros"),
    ("1,500.50 RUB", "one thousand five hundred rubles and fifty kopecks"),
    ("1 ₽", "one ruble"),
]

DATES_TIMES = [
    ("2026-12-01", "ru", "первое декабря две тысячи двадцать шестого года"),
    ("01.12.2026", "ru", "первое декабря две тысячи двадцать шестого года"),
    ("оплатите до 01.12.2026.", "ru", "оплатите до первого декабря две тысячи двадцать шестого года."),
    ("к 05.01.2027", "ru", "к пятому января две тысячи двадцать седьмого года"),
    ("2000-03-23", "ru", "двадцать третье марта двухтысячного года"),
    ("2026-12-01", "en", "first of December twenty twenty-six"),
    ("01.12.2026", "en", "first of December twenty twenty-six"),
    ("в 2026 году", "ru", "в две тысячи двадцать шестом году"),
    ("2026 год", "ru", "две тысячи двадцать шестой год"),
    ("до 2027 г.", "ru", "до две тысячи двадцать седьмого года"),
    ("в 1999 г.", "ru", "в тысяча девятьсот девяносто девятом году"),
    ("в 14:30", "ru", "в четырнадцать часов тридцать минут"),
    ("1:01", "ru", "один час одна минута"),
    ("9:00", "ru", "девять часов"),
    ("at 14:30", "en", "at fourteen thirty"),
    ("9:05", "en", "nine oh five"),
    ("9:00", "en", "nine o'clock"),
    ("25:99", "ru", "25:99"),
    ("2026-13-45", "ru", "2026-13-45"),
]

PHONES = [
    ("+7 495 123-45-67", "ru", "плюс семь, четыреста девяносто пять, сто двадцать три, сорок пять, шестьдесят семь"),
    ("+7 (495) 023-45-07", "ru", "плюс семь, четыреста девяносто пять, ноль два три, сорок пять, ноль семь"),
    ("+1 555 123 4567", "en", "plus one, five five five, one two three, four five six seven"),
    ("123-45-67", "en", "one two three, four five, six seven"),
    ("Звоните 8 800 555-35-35.", "ru", "Звоните восемь, восемьсот, пятьсот пятьдесят пять, тридцать пять, тридцать пять."),
    ("8 (800) 555-35-35", "en", "eight, eight zero zero, five five five, three five, three five"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "said"), RU)
def test_russian_numbers(text: str, said: str) -> None:
    assert spell(text, "ru") == said


@pytest.mark.parametrize(("text", "said"), RU_MONEY)
def test_russian_money_takes_the_gender_and_plural_of_its_unit(text: str, said: str) -> None:
    assert spell(text, "ru") == said


@pytest.mark.parametrize(("text", "said"), EN)
def test_english_numbers(text: str, said: str) -> None:
    assert spell(text, "en") == said


@pytest.mark.parametrize(("text", "said"), EN_MONEY)
def test_english_money(text: str, said: str) -> None:
    assert spell(text, "en-GB") == said


@pytest.mark.parametrize(("text", "lang", "said"), DATES_TIMES)
def test_dates_and_times(text: str, lang: str, said: str) -> None:
    assert spell(text, lang) == said


@pytest.mark.parametrize(("text", "lang", "said"), PHONES)
def test_phone_numbers_are_read_group_by_group(text: str, lang: str, said: str) -> None:
    assert spell(text, lang) == said


def test_a_whole_notification_in_russian() -> None:
    text = "Здравствуйте! Ваш долг 12 345,67 ₽, оплатите до 01.12.2026. Телефон +7 495 123-45-67."
    assert spell(text, "ru") == (
        "Здравствуйте! Ваш долг двенадцать тысяч триста сорок пять рублей шестьдесят семь копеек, "
        "оплатите до первого декабря две тысячи двадцать шестого года. Телефон плюс семь, "
        "четыреста девяносто пять, сто двадцать три, сорок пять, шестьдесят семь."
    )


def test_text_without_numbers_and_huge_numbers_are_left_as_written() -> None:
    assert spell("Нажмите один", "ru") == "Нажмите один"
    huge = "9" * 60
    assert spell(huge, "ru") == huge
    assert spell("", "en") == ""


def test_plural_forms() -> None:
    forms = ("рубль", "рубля", "рублей")
    assert [plural_ru(n, forms) for n in (0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111)] == [
        "рублей", "рубль", "рубля", "рубля", "рублей", "рублей", "рублей", "рублей",
        "рубль", "рубля", "рублей", "рубль", "рублей",
    ]  # fmt: skip


FORMATTED = [
    (1500.5, "money", "ru", "1\u00a0500,50\u00a0₽", "одна тысяча пятьсот рублей пятьдесят копеек"),
    (1500, "money", "en", "1,500 RUB", "one thousand five hundred rubles"),
    ("20 USD", "money", "ru", "20\u00a0$", "двадцать долларов"),
    ("1 500,5", "usd", "en", "1,500.50 USD", "one thousand five hundred dollars and fifty cents"),
    (21, "eur", "ru", "21\u00a0€", "двадцать один евро"),
    ("2026-12-01", "date", "ru", "01.12.2026", "первое декабря две тысячи двадцать шестого года"),
    (date(2026, 12, 1), "date", "en", "2026-12-01", "first of December twenty twenty-six"),
    ("2026-12-01T10:00:00+03:00", "date", "ru", "01.12.2026", "первое декабря две тысячи двадцать шестого года"),
    ("9:05", "time", "ru", "09:05", "девять часов пять минут"),
    (1000000, "number", "ru", "1\u00a0000\u00a0000", "один миллион"),
    ("8 916 123", "digits", "ru", "8 9 1 6 1 2 3", "восемь девять один шесть один два три"),
    ("not a date", "date", "ru", "not a date", "not a date"),
    (None, "money", "ru", "", ""),
]  # fmt: skip


@pytest.mark.parametrize(("value", "kind", "lang", "shown", "said"), FORMATTED)
def test_template_formats_read_well_on_screen_and_are_spelled_on_a_call(
    value: object, kind: str, lang: str, shown: str, said: str
) -> None:
    assert format_value(value, kind, lang) == shown
    assert spell(shown, lang) == said


# A bare number used to be read "один минута" (masculine, the noun as written): Russian needs
# the number to agree with the noun's gender and the noun to take the number's form.
COUNTED_RU = [
    ("1 минута", "одна минута"),
    ("2 минуты", "две минуты"),
    ("5 минут", "пять минут"),
    ("11 минут", "одиннадцать минут"),
    ("21 минута", "двадцать одна минута"),
    ("21 день", "двадцать один день"),
    ("22 дня", "двадцать два дня"),
    ("1 неделя", "одна неделя"),
    ("Осталось 1 сообщение", "Осталось одно сообщение"),
    ("через 1 минуту", "через одну минуту"),
    ("через 2 минуты", "через две минуты"),
    ("1 500 минут", "одна тысяча пятьсот минут"),
    ("101 год", "сто один год"),
    ("5 комнаты", "пять комнаты"),  # a noun the table does not know: the number as before
    ("1,5 минуты", "одна целая пять десятых минуты"),
    ("5% скидки", "пять процентов скидки"),
    ("в 2026 году", "в две тысячи двадцать шестом году"),
]


@pytest.mark.parametrize(("written", "said"), COUNTED_RU)
def test_bare_number_agrees_with_the_noun_after_it_in_russian(written: str, said: str) -> None:
    assert spell(written, "ru") == said


def test_bare_number_before_a_word_in_english_is_unchanged() -> None:
    assert spell("1 minute, 5 minutes, 21 days", "en") == "one minute, five minutes, twenty-one days"


COUNT_FORMAT = [
    (1, "ru", "минута", "1 минута", "одна минута"),
    (2, "ru", "минута", "2 минуты", "две минуты"),
    (5, "ru", "минуты", "5 минут", "пять минут"),
    (21, "ru", "день", "21 день", "двадцать один день"),
    ("14", "ru", "день", "14 дней", "четырнадцать дней"),
    (1000, "ru", "минута", "1\u00a0000 минут", "одна тысяча минут"),
    (3, "ru", "отчёт|отчёта|отчётов", "3 отчёта", "три отчёта"),
    (1, "en", "minute", "1 minute", "one minute"),
    (5, "en", "minute", "5 minutes", "five minutes"),
    (2, "en", "person|people", "2 people", "two people"),
    (3, "en", "day", "3 days", "three days"),
    (1, "ru", "", "1", "один"),
]


@pytest.mark.parametrize(("value", "lang", "noun", "shown", "said"), COUNT_FORMAT)
def test_count_template_format_agrees_on_screen_and_on_a_call(
    value: object, lang: str, noun: str, shown: str, said: str
) -> None:
    assert format_value(value, "count", lang, noun) == shown
    assert spell(shown, lang) == said
