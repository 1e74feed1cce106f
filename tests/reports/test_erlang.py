"""Erlang C against published tables and an independent exact computation.

Published source: Call Centre Helper, "Erlang C Formula – Made Simple With an Easy Worked
Example" (the classic worked example: 100 calls in 30 minutes, AHT 180 s, target 80 % answered
in 20 s; traffic 10 erlangs). Its table of results per number of agents:

    agents  Pw (Erlang C)  SL (20 s)
    11      68.21 %        39.0 %
    12      44.94 %        64.0 %
    13      28.53 %        79.6 %
    14      17.41 %        88.8 %
    15      10.20 %        94.1 %

so 80/20 needs 14 agents (13 fall just short at 79.6 %), with an ASA of 7.8 s and an occupancy
of 71.4 % — not "13 at 84.6 %": the 84.6 % belongs to the other classic example, "The Erlang-C
Formula" step-by-step page (Mitan Ltd's Erlang pages, widely reproduced): 360 calls per half
hour, 4-minute calls, 55 agents, 15-second target → traffic 48 erlangs, occupancy 0.873,
probability of waiting 0.239 (24 %), ASA 8.2 s, service level 84.6 %.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from omni.domain.reports import erlang


def exact_erlang_c(agents: int, a: Fraction) -> Fraction:
    """The textbook closed form with exact rationals and big-integer factorials (no floats)."""
    top = a**agents / math.factorial(agents) * Fraction(agents) / (agents - a)
    below = sum((a**k / math.factorial(k) for k in range(agents)), Fraction(0))
    return top / (below + top)


PUBLISHED = [
    (11, 0.6821, 0.390),
    (12, 0.4494, 0.640),
    (13, 0.2853, 0.796),
    (14, 0.1741, 0.888),
    (15, 0.1020, 0.941),
]


@pytest.mark.parametrize(("agents", "pw", "sl"), PUBLISHED)
def test_the_classic_100_calls_in_30_minutes_example_matches_the_published_table(
    agents: int, pw: float, sl: float
) -> None:
    a = erlang.traffic(100, 180, 1800)
    assert a == 10.0
    assert erlang.erlang_c(agents, a) == pytest.approx(pw, abs=5e-5)
    assert erlang.service_level(agents, a, 180, 20) == pytest.approx(sl, abs=5e-4)
    assert erlang.erlang_c(agents, a) == pytest.approx(float(exact_erlang_c(agents, Fraction(10))), rel=1e-12)


def test_the_360_calls_55_agents_example_matches_its_published_figures() -> None:
    a = erlang.traffic(360, 240, 1800)
    assert a == 48.0
    assert erlang.occupancy(55, a) == pytest.approx(0.873, abs=5e-4)
    assert erlang.erlang_c(55, a) == pytest.approx(0.239, abs=5e-4)
    assert erlang.asa(55, a, 240) == pytest.approx(8.2, abs=0.05)
    assert erlang.service_level(55, a, 240, 15) == pytest.approx(0.846, abs=5e-4)
    assert erlang.erlang_c(55, a) == pytest.approx(float(exact_erlang_c(55, Fraction(48))), rel=1e-12)


def test_80_in_20_seconds_for_the_classic_example_needs_14_agents() -> None:
    need = erlang.agents_needed(10.0, 180, 0.80, 20)
    assert need.agents == 14
    assert need.service_level == pytest.approx(0.888, abs=5e-4)
    assert need.asa == pytest.approx(7.8, abs=0.05)
    assert need.occupancy == pytest.approx(10 / 14)
    # One fewer falls short of the target: 79.6 %.
    assert erlang.service_level(13, 10.0, 180, 20) < 0.80


def test_a_maximum_occupancy_adds_agents_beyond_the_service_level() -> None:
    assert erlang.agents_needed(10.0, 180, 0.80, 20, max_occupancy=0.65).agents == 16  # 10/16 = 62.5 %
    assert erlang.agents_needed(10.0, 180, 0.80, 20, max_occupancy=0.90).agents == 14


@pytest.mark.parametrize(
    ("agents", "a"), [(200, Fraction(190)), (520, Fraction(500)), (700, Fraction(6805, 10))]
)
def test_hundreds_of_agents_stay_exact_where_factorials_overflow_floats(agents: int, a: Fraction) -> None:
    with pytest.raises(OverflowError):
        float(a) ** agents / math.factorial(agents)  # the naive float form cannot even start
    assert erlang.erlang_c(agents, float(a)) == pytest.approx(float(exact_erlang_c(agents, a)), rel=1e-9)


def test_agents_needed_for_500_erlangs_is_the_first_count_meeting_the_target() -> None:
    need = erlang.agents_needed(500.0, 180, 0.80, 20)
    assert need.service_level >= 0.80
    assert erlang.service_level(need.agents - 1, 500.0, 180, 20) < 0.80
    exact = exact_erlang_c(need.agents, Fraction(500))
    assert need.wait_probability == pytest.approx(float(exact), rel=1e-9)


def test_zero_traffic_needs_nobody_and_answers_everything() -> None:
    assert erlang.traffic(0, 180, 900) == 0.0
    need = erlang.agents_needed(0.0, 0.0, 0.80, 20)
    assert (need.agents, need.service_level, need.asa, need.wait_probability) == (0, 1.0, 0.0, 0.0)
    assert erlang.erlang_c(3, 0.0) == 0.0
    assert erlang.service_level(0, 0.0, 180, 20) == 1.0


def test_traffic_at_or_above_the_agents_means_everyone_waits_forever() -> None:
    for agents in (9, 10):
        assert erlang.erlang_c(agents, 10.0) == 1.0
        assert erlang.service_level(agents, 10.0, 180, 20) == 0.0
        assert erlang.asa(agents, 10.0, 180) == math.inf
        assert erlang.occupancy(agents, 10.0) == 1.0
    assert erlang.agents_needed(10.0, 180, 0.0, 20).agents == 11  # keeping up needs N > A


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        erlang.traffic(10, 180, 0)
    with pytest.raises(ValueError, match="target_sl"):
        erlang.agents_needed(1.0, 180, 1.0, 20)
    with pytest.raises(ValueError, match="max_occupancy"):
        erlang.agents_needed(1.0, 180, 0.8, 20, max_occupancy=0)
    with pytest.raises(ValueError, match="concurrency"):
        erlang.chat_agents_needed(1.0, 180, 0, 0.8, 20)


def test_chats_are_staffed_as_k_slots_per_operator() -> None:
    # 100 chats in 30 minutes, each 10 minutes of elapsed handling: 33.3 erlangs of chat time.
    a = erlang.traffic(100, 600, 1800)
    slots = erlang.agents_needed(a, 600, 0.80, 60)
    need = erlang.chat_agents_needed(a, 600, 3, 0.80, 60)
    assert need.agents == math.ceil(slots.agents / 3)
    assert need.service_level >= 0.80
    assert need.service_level == pytest.approx(erlang.service_level(need.agents * 3, a, 600, 60))
    # One operator fewer (three slots fewer) misses the target.
    assert erlang.service_level((need.agents - 1) * 3, a, 600, 60) < 0.80
    # A single chat at a time is plain Erlang C.
    assert erlang.chat_agents_needed(a, 600, 1, 0.80, 60).agents == slots.agents
