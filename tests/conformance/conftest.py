"""Fixtures of the conformance suite: ``venue`` (hedging account) and ``netting_venue``, parameterised over
the backends in ``MTROBOT_CONFORMANCE_BACKENDS`` (test ids show the backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mtrobot.broker.terminal import Terminal
from tests.conformance.venues import HEDGING, NETTING, VENUES, Venue, selected_backends


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "venue_backend" in metafunc.fixturenames:
        metafunc.parametrize("venue_backend", selected_backends(), scope="function")


@pytest.fixture
async def venue(venue_backend: str) -> AsyncIterator[Venue]:
    if venue_backend not in VENUES:
        pytest.skip(f"no venue registered for backend {venue_backend!r}")
    async with VENUES[venue_backend](HEDGING) as v:
        yield v


@pytest.fixture
async def netting_venue(venue_backend: str) -> AsyncIterator[Venue]:
    if venue_backend not in VENUES:
        pytest.skip(f"no venue registered for backend {venue_backend!r}")
    async with VENUES[venue_backend](NETTING) as v:
        if v.hedging:
            pytest.skip("this venue has no netting account")
        yield v


@pytest.fixture
async def term(venue: Venue) -> Terminal:
    return await venue.connected()


def need_admin(venue: Venue) -> object:
    if venue.admin is None:
        pytest.skip("needs the simulator's admin channel")
    return venue.admin
