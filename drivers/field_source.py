"""A magnetic field from a Kepco BOP bipolar supply driving a coil: calibrated, ramped, never
stepped.

Extends pymeasure's :class:`~pymeasure.instruments.kepco.KepcoBOP3612` (output, mode, current
and voltage set points and read-backs are inherited unchanged) with the coil's calibration
``field_per_ampere`` (mT/A, from the station file), a current ramp that the supply itself times
through its LIST subsystem (steps of at most ``max_step`` A every ``max_step/ramp_rate`` s, so
the coil never sees a step and the driver never sleeps), and a tested :meth:`shutdown` that
ramps to zero before switching off. Reference: Kepco BIT 4886 operator manual (SCPI).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.kepco import KepcoBOP3612

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

LIST_MAX = 1002


class KepcoBopField(KepcoBOP3612):
    """Kepco BOP 36-12 in current mode on a field coil.

    :param field_per_ampere: the coil's calibrated field in mT per A (non-zero).
    :param ramp_rate: largest current slew in A/s (> 0).
    :param max_step: largest current step in A (> 0).
    :param compliance: voltage limit in V while in current mode (0 to 36).

    .. code-block:: python

        coil = KepcoBopField("TCPIP::192.168.1.50::5025::SOCKET", field_per_ampere=5.0)
        coil.ramp_to_field(20.0)     # mT, through the supply's list: no step, no sleep
        coil.shutdown()              # ramp to 0 A, output off
    """

    def __init__(self, adapter, name="Kepco BOP 36-12 field coil", field_per_ampere=5.0,
                 ramp_rate=1.0, max_step=0.05, compliance=20.0, **kwargs):
        for key in ("read_termination", "write_termination"):  # the BOP's are fixed: "\n"
            kwargs.pop(key, None)
        super().__init__(adapter, name, **kwargs)
        for what, value in (("field_per_ampere", field_per_ampere), ("ramp_rate", ramp_rate),
                            ("max_step", max_step)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value != 0
                    and (what == "field_per_ampere" or value > 0)):
                raise ValueError(f"{name}: {what} must be a non-zero finite number"
                                 f"{'' if what == 'field_per_ampere' else ' > 0'}, got {value!r}")
        if not 0 < compliance <= self._Vmax:
            raise ValueError(f"{name}: compliance must be in (0, {self._Vmax}] V")
        self.field_per_ampere = float(field_per_ampere)
        self.ramp_rate, self.max_step = float(ramp_rate), float(max_step)
        self.compliance = float(compliance)

    @property
    def field(self) -> float:
        """Get the field in mT from the measured coil current and the calibration."""
        return self.current * self.field_per_ampere

    def ramp_to_field(self, field_mt: float) -> None:
        """Ramp the coil to ``field_mt`` (mT) by :meth:`ramp_to_current`."""
        self.ramp_to_current(field_mt / self.field_per_ampere)

    def ramp_to_current(self, target: float) -> None:
        """Ramp the coil current from its set point to ``target`` A (within ±12) in steps of at
        most ``max_step`` A dwelling ``max_step/ramp_rate`` s each, run by the supply's LIST
        (chunks of at most 1002 points, each waited for with ``*OPC?``)."""
        if not (math.isfinite(target) and abs(target) <= self._Imax):
            raise ValueError(f"{self.name}: coil current {target!r} A is outside ±{self._Imax}")
        start = float(self.ask(f"FUNC:MODE CURR;VOLT {self.compliance:g};OUTP 1;CURR?"))
        count = max(1, math.ceil(abs(target - start) / self.max_step))
        levels = np.linspace(start, target, count + 1)[1:]
        dwell = max(self.max_step / self.ramp_rate, 5e-4)
        for first in range(0, levels.size, LIST_MAX):
            chunk = ",".join(f"{x:.6g}" for x in levels[first:first + LIST_MAX])
            self.ask(f"LIST:CLE;LIST:CURR {chunk};LIST:DWEL {dwell:.6g};LIST:COUN 1;"
                     "CURR:MODE LIST;*OPC?")
        self.write(f"CURR {target:.6g}")

    def shutdown(self):
        """Ramp the coil to 0 A, then switch the output off; a failing ramp is logged and the
        output is still switched off."""
        log.info("Shutting down %s.", self.name)
        try:
            self.ramp_to_current(0.0)
        except Exception:
            log.exception("%s: ramp to zero failed; switching the output off.", self.name)
        self.output_enabled = False
        Instrument.shutdown(self)
