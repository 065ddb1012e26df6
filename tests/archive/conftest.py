"""Archive test fixtures: the exchange's world (departments, a catalogue, a clock) and a sealing department."""

from __future__ import annotations

from tests.exchange.conftest import catalogue, clock, world

__all__ = ["catalogue", "clock", "world"]
