"""The importer's fast number path gives exactly what ``parse_number`` gives, or steps aside."""

from __future__ import annotations

import random

import pytest

from omni.domain.errors import InvalidInput
from omni.domain.outbound.numbers import Number, fast_number, normalise_number, parse_number

RU_CODES = [
    "495", "499", "812", "4012", "423", "4232", "343", "383", "391", "3952", "4212", "4152",
    "8452", "846", "863", "861", "4112", "3012", "3022", "4162", "4132", "4242", "8142", "8172",
    "3412", "3852", "3822", "3812", "8512", "8712", "4922", "4932", "4842", "4822", "3462",
    "3466", "3519", "8552", "8553", "4959", "800", "809", "803", "3439", "4012", "40153",
    "42351", "41531", "4217", "3513", "4725",
]  # fmt: skip
MOBILE = ["900", "901", "903", "916", "926", "977", "999", "958", "995", "904", "950", "966"]
KZ = ["727", "717", "7172", "701", "705", "747", "771", "775", "336", "3362", "310"]
FOREIGN = [
    ("1", "2125550123"), ("1", "4155550199"), ("44", "2079460958"), ("44", "7911123456"),
    ("49", "3012345678"), ("49", "15123456789"), ("380", "441234567"), ("380", "501234567"),
    ("375", "291234567"), ("998", "901234567"), ("86", "13812345678"), ("39", "0612345678"),
    ("39", "3123456789"), ("33", "612345678"), ("81", "312345678"), ("61", "212345678"),
    ("7", "8005553535"), ("374", "10123456"), ("995", "322123456"), ("90", "2121234567"),
]  # fmt: skip
REGIONS = ["RU", "RU", "RU", "KZ", "US", "GB", "DE", "IT", "UA", ""]


def _shape(rnd: random.Random, digits: str) -> str:
    """The digits written the ways people write them."""
    seps = [" ", "-", "", ".", " - "]
    out = []
    i = 0
    while i < len(digits):
        step = rnd.choice([1, 2, 3, 3, 4])
        out.append(digits[i : i + step])
        i += step
    text = rnd.choice(seps).join(out)
    if rnd.random() < 0.3 and len(out) > 2:
        text = f"{out[0]} ({out[1]}) {''.join(out[2:])}"
    return text


def _sample(n: int, seed: int = 13) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        roll = rnd.random()
        if roll < 0.35:
            code = rnd.choice(RU_CODES + MOBILE)
            national = code + "".join(rnd.choice("0123456789") for _ in range(10 - len(code)))
        elif roll < 0.45:
            code = rnd.choice(KZ)
            national = code + "".join(rnd.choice("0123456789") for _ in range(10 - len(code)))
        elif roll < 0.6:
            cc, nat = rnd.choice(FOREIGN)
            if rnd.random() < 0.5:
                nat = nat[:-4] + "".join(rnd.choice("0123456789") for _ in range(4))
            out.append(rnd.choice(["+", "+", "00", "810", ""]) + _shape(rnd, cc + nat))
            continue
        elif roll < 0.75:  # random digit strings of every length
            length = rnd.randint(1, 20)
            digits = "".join(rnd.choice("0123456789") for _ in range(length))
            out.append(rnd.choice(["", "", "+", "8", "7", "+7", "0", "00"]) + _shape(rnd, digits))
            continue
        elif roll < 0.8:  # garbage
            out.append(
                rnd.choice(
                    [
                        "",
                        " ",
                        "+",
                        "++79161234567",
                        "call me",
                        "8-800-FLOWERS",
                        "tel:+79161234567",
                        "+7 916 123 45 67 ext. 12",
                        "+7 916 123 45 67 #12",
                        "12-5",
                        "(+7) 916 123 45 67",
                        "+7/916/1234567",
                        "７９１６１２３４５６７",
                        "+7 916 123 45 67 x3",
                        "8 (916) 123-45-67, 8 (916) 765-43-21",
                        "+7 (916) 123-45-6",
                        "+7 (916) 123-45-678",
                        "79161234567890123456",
                        "--",
                        "()",
                        "+0 123 456 789",
                        "8 10 44 20 7946 0958",
                    ]
                )
            )
            continue
        else:
            national = rnd.choice(MOBILE) + "".join(rnd.choice("0123456789") for _ in range(7))
            if rnd.random() < 0.2:  # too short or too long
                national = national[: rnd.randint(3, 9)] if rnd.random() < 0.5 else national + "12"
        prefix = rnd.choice(["+7", "+7 ", "7", "8", "8 ", "", "+7-", "+ 7"])
        out.append(prefix + _shape(rnd, national))
    return out


def _slow(raw: str, region: str) -> Number | str:
    try:
        return parse_number(raw, region)
    except InvalidInput as exc:
        return f"refused: {exc.template}"


def test_fast_number_agrees_with_parse_number_over_a_varied_sample() -> None:
    rnd = random.Random(7)
    taken = 0
    for raw in _sample(40_000):
        region = rnd.choice(REGIONS)
        expected = _slow(raw, region)
        fast = fast_number(raw, region)
        if fast is not None:
            taken += 1
            assert fast == expected, (raw, region)
        got: Number | str
        try:
            got = normalise_number(raw, region)
        except InvalidInput as exc:
            got = f"refused: {exc.template}"
        assert got == expected, (raw, region)
    assert taken > 15_000  # the fast path is really the one taken for plain numbers


@pytest.mark.parametrize(
    ("raw", "e164", "region", "zone"),
    [
        ("8 (4012) 12-34-56", "+74012123456", "RU", "Europe/Kaliningrad"),
        ("+7 423 222-33-44", "+74232223344", "RU", "Asia/Vladivostok"),
        ("79161234567", "+79161234567", "RU", ""),
        ("8 916 123 45 67", "+79161234567", "RU", ""),
        ("+7 727 258 12 34", "+77272581234", "KZ", "Asia/Almaty"),
        ("+1 (212) 555-0123", "+12125550123", "US", "America/New_York"),
    ],
)
def test_fast_number_takes_plain_numbers(raw: str, e164: str, region: str, zone: str) -> None:
    assert fast_number(raw, "RU") == Number(e164, region, zone) == parse_number(raw, "RU")


@pytest.mark.parametrize(
    "raw", ["12-5", "", "call me", "8-800-FLOWERS", "+7 916 123 45 67 ext. 12", "+39 06 1234 5678"]
)
def test_fast_number_steps_aside_when_not_sure(raw: str) -> None:
    assert fast_number(raw, "RU") is None
