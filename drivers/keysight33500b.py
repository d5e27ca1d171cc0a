"""Keysight/Agilent 33500B-series waveform generator: pymeasure's ``Agilent33500`` plus the
triggered pulse bursts, output load and safe state a neuron bench needs."""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.agilent.agilent33500 import Agilent33500
from pymeasure.instruments.validators import strict_range

from drivers.limits import LimitedControl

log = logging.getLogger(__name__)

HARDWARE_LIMITS = {"voltage_high": (-10.0, 10.0), "voltage_low": (-10.0, 10.0),
                   "pulse_width": (16e-9, 1e6)}


class Keysight33500B(Agilent33500):
    """Keysight 33500B (33522B) waveform generator: triggered pulse bursts on channel 1.

    The output load is set to high impedance, so every level is the EMF the device circuit
    sees.

    .. code-block:: python

        awg = Keysight33500B("TCPIP::192.168.1.30::5025::SOCKET")
        awg.configure_pulse_burst(high=2.0, low=0.0, width=1e-3, period=2e-3, cycles=1)
        awg.trigger_burst()            # *TRG: one burst now
        awg.shutdown()                 # output off, levels to 0 V
    """

    SOURCE_LIMITS = {"voltage_high": "voltage", "voltage_low": "voltage",
                     "pulse_width": "pulse_width"}

    voltage_high = LimitedControl(Instrument.control(
        "VOLT:HIGH?", "VOLT:HIGH %g",
        """Control the high level in V into the load setting (float strictly from -10 to 10 into
        high impedance; narrowed per instance by ``voltage_high_values``).""",
        validator=strict_range, values=HARDWARE_LIMITS["voltage_high"]))

    voltage_low = LimitedControl(Instrument.control(
        "VOLT:LOW?", "VOLT:LOW %g",
        """Control the low level in V into the load setting (float strictly from -10 to 10 into
        high impedance; narrowed per instance by ``voltage_low_values``).""",
        validator=strict_range, values=HARDWARE_LIMITS["voltage_low"]))

    pulse_width = LimitedControl(Instrument.control(
        "FUNC:PULS:WIDT?", "FUNC:PULS:WIDT %g",
        """Control the pulse width in s (float strictly from 16e-9 to 1e6, below the period;
        narrowed per instance by ``pulse_width_values``).""",
        validator=strict_range, values=HARDWARE_LIMITS["pulse_width"]))

    def __init__(self, adapter, name="Keysight 33500B waveform generator", **kwargs):
        super().__init__(adapter, name, **kwargs)

    def present_limits(self, prop: str) -> tuple[float, float]:
        """The (low, high) range source setter ``prop`` accepts now."""
        if prop not in self.SOURCE_LIMITS:
            raise KeyError(f"{prop!r} is not a source setter of {self.name}")
        low, high = self.__dict__.get(prop + "_values", HARDWARE_LIMITS[prop])
        return float(low), float(high)

    def check_levels(self, prop: str, levels) -> None:
        """Raise ValueError naming the first of ``levels`` outside the present limits of
        ``prop``; write nothing."""
        low, high = self.present_limits(prop)
        for level in np.atleast_1d(np.asarray(levels, dtype=float)):
            if not low <= level <= high:
                raise ValueError(f"{self.name}: {prop} value {level:g} is outside the limit "
                                 f"[{low:g}, {high:g}]")

    def configure_pulse_burst(self, high: float, low: float, width: float, period: float,
                              cycles: int) -> None:
        """Set channel 1 to bursts of ``cycles`` rectangular pulses (``high``/``low`` in V EMF,
        ``width`` and ``period`` in s), triggered by :meth:`trigger_burst`; output on.

        Every value is checked against the present limits before anything is written; then
        one write."""
        self.check_levels("voltage_high", high)
        self.check_levels("voltage_low", low)
        self.check_levels("pulse_width", width)
        if not width < period:
            raise ValueError(f"{self.name}: pulse width {width:g} s must be below the period "
                             f"{period:g} s")
        if isinstance(cycles, bool) or int(cycles) != cycles or not 1 <= cycles <= 100_000_000:
            raise ValueError(f"{self.name}: burst cycles {cycles!r} is not an int from 1 to 1e8")
        self.write(";".join([
            "OUTP OFF", "OUTP:LOAD INF", "FUNC PULS", "FUNC:PULS:WIDT 1e-06",
            f"FUNC:PULS:PER {period:g}", f"FUNC:PULS:WIDT {width:g}",
            f"VOLT:LOW {min(low, high - 1e-3):g}", f"VOLT:HIGH {high:g}", f"VOLT:LOW {low:g}",
            "BURS:MODE TRIG", f"BURS:NCYC {int(cycles)}", "BURS:STAT ON", "TRIG:SOUR BUS",
            "OUTP ON"]))

    def trigger_burst(self) -> None:
        """Start one burst now and wait until the generator has acted on it (``*TRG;*OPC?``),
        so an instrument triggered by its sync output sees the trigger before anything that
        follows."""
        self.ask("*TRG;*OPC?")

    def shutdown(self):
        """Leave the generator safe: output off, burst off, levels 0 V DC; returns once the
        generator has done it (``*OPC?``)."""
        log.info("Shutting down %s.", self.name)
        self.ask("OUTP OFF;BURS:STAT OFF;FUNC DC;VOLT:OFFS 0;*OPC?")
        super().shutdown()
