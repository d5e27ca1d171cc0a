"""Instrument personalities: one module per real instrument family, speaking its command set."""

from __future__ import annotations

PERSONALITIES = {
    "keithley2450": "mocks.instruments.keithley2450:Keithley2450Personality",
    "arcone": "mocks.instruments.arcone:ArcOnePersonality",
    "pyarc2": "mocks.instruments.pyarc2_sim:SimInstrument",
    "keysight-b2200": "mocks.instruments.keysight_b2200:KeysightB2200Personality",
    "keysight33500": "mocks.instruments.keysight33500:Keysight33500Personality",
    "infiniivision": "mocks.instruments.infiniivision:InfiniiVisionPersonality",
}
