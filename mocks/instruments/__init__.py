"""Instrument personalities: one module per real instrument family, speaking its command set."""

from __future__ import annotations

PERSONALITIES = {
    "keithley2450": "mocks.instruments.keithley2450:Keithley2450Personality",
    "arcone": "mocks.instruments.arcone:ArcOnePersonality",
    "pyarc2": "mocks.instruments.pyarc2_sim:SimInstrument",
    "keysight-b2200": "mocks.instruments.keysight_b2200:KeysightB2200Personality",
    "keysight-mxg": "mocks.instruments.rf_generator:KeysightMxgPersonality",
    "rs-smb100a": "mocks.instruments.rf_generator:RohdeSchwarzSmbPersonality",
    "keysight-xseries": "mocks.instruments.spectrum_analyzer:KeysightXSeriesPersonality",
    "rs-fsv": "mocks.instruments.spectrum_analyzer:RohdeSchwarzFsvPersonality",
    "kepco-bop": "mocks.instruments.kepco_bop:KepcoBopPersonality",
    "keysight-b2900": "mocks.instruments.keysight_b2900:KeysightB2900Personality",
    "synapse-array": "mocks.instruments.synapse_array:SynapseArraySim",
    "keysight-81160a": "mocks.instruments.keysight_81160a:Keysight81160APersonality",
    "keysight33500": "mocks.instruments.keysight33500:Keysight33500Personality",
    "infiniivision": "mocks.instruments.infiniivision:InfiniiVisionPersonality",
}
