"""Erlang C: how many operators an interval needs to answer a target share of contacts in time.

The model (M/M/N): contacts arrive at random (Poisson) at rate λ, each holds an operator for an
exponentially distributed handle time with mean ``aht``, ``N`` identical operators take them in
arrival order and nobody leaves the line. The offered traffic is ``A = λ · aht`` erlangs (the
average number of operators busy). With ``N > A``:

* Erlang B (all busy, no queue), by the recursion ``B(0) = 1``,
  ``B(n) = A·B(n−1) / (n + A·B(n−1))`` — each step is a ratio in [0, 1], so it is exact enough and
  never overflows, where the textbook ``A^N / N!`` form overflows a float past N ≈ 170;
* Erlang C (a contact has to wait): ``C = N·B / (N − A·(1 − B))``;
* service level for answer time ``t``: ``SL(t) = 1 − C · exp(−(N − A) · t / aht)``;
* average speed of answer: ``ASA = C · aht / (N − A)``;
* occupancy: ``A / N``.

With ``N ≤ A`` the queue grows without bound: every contact waits (``C = 1``), SL is 0 and the ASA
is infinite. No traffic needs no operator.

Chats (an operator works ``k`` chats at once) are modelled as ``k · N`` servers ("slots") with
the measured chat handle time as the service time, and the operators needed are the slots needed
divided by ``k``, rounded up. Why slots and not the other common approach (``N`` servers with an
effective handle time ``aht / k``): the chat handle time we measure is the elapsed time from
accept to close *while the operator shares their attention*, so it already contains the slowdown
of concurrency; what a waiting chat waits for is a free slot, not a free operator. Dividing the
AHT by ``k`` would count the concurrency twice and also shorten the predicted waits' decay
(``exp(−(N−A)·t/aht)``) ``k``-fold. The slot model assumes every logged-in operator keeps all
``k`` slots open; when operators cap themselves lower, pass the concurrency actually used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 100_000
"""A guard for ``agents_needed``: past this, the inputs are wrong, not the center big."""


def traffic(contacts: float, aht: float, interval_seconds: float) -> float:
    """Offered traffic in erlangs: ``contacts`` arriving over ``interval_seconds``, each ``aht`` s."""
    if interval_seconds <= 0:
        raise ValueError("interval_seconds must be positive")
    if contacts < 0 or aht < 0:
        raise ValueError("contacts and aht must not be negative")
    return contacts * aht / interval_seconds


def erlang_b(agents: int, a: float) -> float:
    """Blocking probability with ``agents`` servers and ``a`` erlangs, by the stable recursion."""
    if agents < 0 or a < 0:
        raise ValueError("agents and traffic must not be negative")
    b = 1.0
    for n in range(1, agents + 1):
        b = a * b / (n + a * b)
    return b


def erlang_c(agents: int, a: float) -> float:
    """Probability that a contact waits (``Pw``); 1 when the operators can't keep up (``N ≤ A``)."""
    if a <= 0:
        return 0.0
    if agents <= a:
        return 1.0
    b = erlang_b(agents, a)
    return agents * b / (agents - a * (1.0 - b))


def service_level(agents: int, a: float, aht: float, target_seconds: float) -> float:
    """Share (0…1) of contacts answered within ``target_seconds``."""
    if a <= 0:
        return 1.0
    if agents <= a:
        return 0.0
    c = erlang_c(agents, a)
    return max(0.0, 1.0 - c * math.exp(-(agents - a) * target_seconds / aht))


def asa(agents: int, a: float, aht: float) -> float:
    """Average speed of answer in seconds over all contacts (``inf`` when ``N ≤ A``)."""
    if a <= 0:
        return 0.0
    if agents <= a:
        return math.inf
    return erlang_c(agents, a) * aht / (agents - a)


def occupancy(agents: int, a: float) -> float:
    """Share (0…1) of the operators' time spent handling; capped at 1 when ``N ≤ A``."""
    if agents <= 0:
        return 0.0 if a <= 0 else 1.0
    return min(1.0, a / agents)


@dataclass(frozen=True, slots=True)
class Staffing:
    """The answer for one interval: operators needed and what they would achieve."""

    agents: int
    traffic: float
    """Erlangs offered (for chats: in chat slots)."""
    wait_probability: float
    service_level: float
    asa: float
    occupancy: float
    """Of the operators (for chats: of the slots)."""


def agents_needed(
    a: float,
    aht: float,
    target_sl: float,
    target_seconds: float,
    max_occupancy: float | None = None,
) -> Staffing:
    """The fewest operators for which SL(``target_seconds``) ≥ ``target_sl`` (0…1) and, when
    given, occupancy ≤ ``max_occupancy`` (0…1).

    Starts at the least that keeps up (``⌊A⌋ + 1``) and walks up; SL rises with every operator,
    so the first fit is the answer. For hundreds of agents this costs a few hundred recursion
    steps per candidate, far below a millisecond per interval.
    """
    if not 0 <= target_sl < 1:
        raise ValueError("target_sl must be in [0, 1)")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError("max_occupancy must be in (0, 1]")
    if a <= 0:
        return Staffing(0, 0.0, 0.0, 1.0, 0.0, 0.0)
    if aht <= 0:
        raise ValueError("aht must be positive when there is traffic")
    n = math.floor(a) + 1
    if max_occupancy is not None:
        n = max(n, math.ceil(a / max_occupancy - 1e-9))
    while n <= MAX_AGENTS:
        sl = service_level(n, a, aht, target_seconds)
        if sl >= target_sl:
            return Staffing(n, a, erlang_c(n, a), sl, asa(n, a, aht), occupancy(n, a))
        n += 1
    raise ValueError("traffic too large to staff")


def chat_agents_needed(
    a: float,
    aht: float,
    concurrency: int,
    target_sl: float,
    target_seconds: float,
    max_occupancy: float | None = None,
) -> Staffing:
    """Operators for chats when each works ``concurrency`` chats at once (``k·N`` slots).

    ``a`` is the chat traffic in erlangs of chat time (``chats · aht / interval``), ``aht`` the
    measured elapsed handle time of one chat. The SL, ASA and occupancy returned are those of
    the ``k · agents`` slots (a slot model fits whole operators, so it may exceed the target).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    slots = agents_needed(a, aht, target_sl, target_seconds, max_occupancy)
    agents = math.ceil(slots.agents / concurrency)
    n = agents * concurrency
    if a <= 0:
        return slots
    return Staffing(
        agents, a, erlang_c(n, a), service_level(n, a, aht, target_seconds), asa(n, a, aht), occupancy(n, a)
    )
