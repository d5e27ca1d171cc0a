"""Instrument personalities: one module per real instrument family, speaking its command set."""

from __future__ import annotations

PERSONALITIES = {
    "keithley2450": "mocks.instruments.keithley2450:Keithley2450Personality",
}
