"""Shared parts of the RF spintronic procedures: biasing a junction, list-mode spectra,
spectrum windows, the calibration store and the array sidecar.

A spin-diode spectrum is taken with the generator in list mode: every (frequency, power) point
of the spectrum or map goes out in one list (:meth:`KeysightN5183B.load_list`), the SMU on the
junction's bias tee reads the DC voltage, and a ``*TRG`` moves the list on: two transactions per
point instead of three (frequency, power, read), and the generator switches at list speed.
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
from pymeasure.experiment import FloatParameter, Parameter

from labctl.arrayfile import ArrayFile, sidecar_path
from labctl.errors import ConfigError
from labctl.spectroscopy import FitError, fit_spin_diode
from procedures.base import StationProcedure

log = logging.getLogger(__name__)

LIST_POINTS = 3201  # the MXG's list length


def dbm_to_w(dbm):
    return 1e-3 * 10 ** (np.asarray(dbm, dtype=float) / 10)


def parse_floats(text: str, what: str) -> list[float]:
    """'1e6, 2e6' -> [1e6, 2e6]; a bad item raises ValueError naming ``what``."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        values = [float(t) for t in items]
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a comma-separated list of numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what}: {text!r} has a value that is not finite")
    return values


def numbered_roles(station, prefix: str) -> list[str]:
    """The station's roles ``prefix`` followed by a number (or nothing), in number order:
    ``bias0, bias1, …`` or ``rf_source, rf_source2, …``."""
    found = []
    for role in station.roles:
        m = re.fullmatch(re.escape(prefix) + r"(\d*)", role)
        if m:
            found.append((int(m.group(1) or 0), role))
    return [role for _, role in sorted(found)]


def design_frequencies(f_min: float, f_max: float, n: int) -> np.ndarray:
    """Input frequencies of a chain: geometric grid f_min·r^k, r = (f_max/f_min)^(1/(n−1))
    (Ross et al. arXiv 2211.03659 layer 2; Leroux et al. PRApplied 15, 034067 (2021))."""
    return np.geomspace(f_min, f_max, n) if n > 1 else np.array([f_min])


class RfProcedure(StationProcedure):
    """Base of the RF procedures: DC bias through an SMU, spin-diode spectra in list mode."""

    nplc = FloatParameter("Integration time", units="NPLC", default=0.1, minimum=0.01,
                          maximum=10)
    compliance_voltage = FloatParameter("Voltage limit of the bias", units="V", default=0.5,
                                        minimum=0.02, maximum=210)
    device_name = Parameter("Device (calibration name)", default="mtj0")

    # -- bias ---------------------------------------------------------------------------------
    def bias(self, smu, current: float) -> None:
        """Source ``current`` (A, within the chip limits) and sense voltage, output on."""
        smu.reset()
        smu.apply_current(compliance_voltage=self.compliance_voltage)
        smu.measure_voltage(nplc=self.nplc)
        smu.source_current = current
        smu.enable_source()

    # -- spectra ------------------------------------------------------------------------------
    def rf_points(self, gen, smu, freqs, powers_dbm, progress=None, on_point=None
                  ) -> np.ndarray | None:
        """DC voltage (V) at each (frequency Hz, power dBm) point, in list mode: the lists go
        out in chunks of at most 3201 points, one ``*TRG`` and one reading per point
        (``on_point(k)`` is called at each point, after the reading). None if a stop was
        requested."""
        freqs, powers = np.broadcast_arrays(np.asarray(freqs, dtype=float).ravel(),
                                            np.asarray(powers_dbm, dtype=float).ravel())
        volts = np.empty(freqs.size)
        gen.enable()
        for first in range(0, freqs.size, LIST_POINTS):
            last = min(first + LIST_POINTS, freqs.size)
            gen.load_list(freqs[first:last], powers[first:last], trigger="BUS")
            gen.start_list()
            for k in range(first, last):
                if self.should_stop():
                    return None
                volts[k] = float(smu.voltage)
                if on_point is not None:
                    on_point(k)
                if k + 1 < last:
                    gen.next_point()
                if progress is not None:
                    progress(k + 1)
        gen.stop_list()
        return volts

    def baseline(self, gen, smu) -> float:
        """The DC voltage (V) with the RF output off: I·R, subtracted from every spectrum."""
        gen.disable()
        return float(smu.voltage)

    def spectrum(self, gen, smu, freqs, power_dbm: float, progress=None):
        """(rectified voltages in V, fit or None) of one spectrum at ``power_dbm``."""
        v0 = self.baseline(gen, smu)
        volts = self.rf_points(gen, smu, freqs, power_dbm, progress)
        if volts is None:
            return None, None
        rect = volts - v0
        try:
            fit = fit_spin_diode(freqs, rect, float(dbm_to_w(power_dbm)))
        except FitError as exc:
            log.warning("no spin-diode fit: %s", exc)
            fit = None
        return rect, fit

    @staticmethod
    def window(centre: float, half_width: float, points: int) -> np.ndarray:
        return np.linspace(centre - half_width, centre + half_width, points)

    # -- results ------------------------------------------------------------------------------
    def save_calibration(self, device: str, model: str, parameters: dict, **extra):
        store = self.station.calibration
        return store.save(self.station.chip, device, model, parameters,
                          run=str(getattr(self, "results_path", "") or ""),
                          procedure=getattr(self, "NAME", type(self).__name__),
                          station=self.station.name, extra=extra)

    def write_arrays(self, maps: dict | None = None, traces: dict | None = None) -> None:
        """Write ``{name: (array, attrs)}`` maps and traces to the run's HDF5 sidecar beside
        the results file (nothing outside a runner, which names that file)."""
        path = getattr(self, "results_path", None)
        if not path:
            return
        with ArrayFile(sidecar_path(path), "w") as file:
            file.set_attrs(procedure=getattr(self, "NAME", type(self).__name__),
                           station=self.station.describe(), seed=str(self.station.seed),
                           results_file=str(path))
            for name, (values, attrs) in (maps or {}).items():
                file.write_map(name, values, **attrs)
            for name, (values, attrs) in (traces or {}).items():
                file.write_trace(name, values, **attrs)


class JunctionProcedure(RfProcedure):
    """An RF procedure on one junction: the generator, the coil, and the SMU on that junction's
    bias tee — ``smu`` on a one-junction station, ``bias<k>`` for junction k of a chain."""

    ROLES = ("rf_source", "smu", "field")
    smu_role = Parameter("SMU role of the junction", default="smu")

    def check_instruments(self, station) -> list[str]:
        try:
            station.instrument(self.smu_role)
        except ConfigError as exc:
            return [str(exc)]
        return []

    def startup(self) -> None:
        super().startup()
        self.instruments[self.smu_role] = self.station.instrument(self.smu_role)

    def junction_instruments(self):
        """(generator, the junction's SMU, coil)."""
        return (self.instruments["rf_source"], self.instruments[self.smu_role],
                self.instruments["field"])


def fit_row(fit) -> dict[str, float]:
    """Result columns of a spin-diode fit (NaN when there is none)."""
    names = {"f_r": "f_r (Hz)", "linewidth": "Linewidth (Hz)", "alpha": "alpha",
             "sensitivity": "Sensitivity (mV/mW)"}
    row = {}
    for key, column in names.items():
        row[column] = fit[key].value if fit else math.nan
        row[column.replace(" (", " err (") if "(" in column else column + " err"] = \
            fit[key].stderr if fit else math.nan
    return row

