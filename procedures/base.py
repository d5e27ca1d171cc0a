"""Base of every labctl procedure: instruments by role, self-describing metadata, safe state."""

from __future__ import annotations

import logging

from pymeasure.experiment import Metadata, Procedure

import labctl
from labctl.safety import Limits

log = logging.getLogger(__name__)


class StationProcedure(Procedure):
    """A pymeasure Procedure that takes its instruments from a :class:`labctl.station.Station`.

    Subclasses list the roles they use in ``ROLES``, implement ``execute`` (emitting rows,
    progress, checking ``should_stop()`` at every point) and may override :meth:`preflight` to
    reject parameter combinations against the chip limits before anything is opened.
    ``shutdown`` always puts every instrument the run opened in its safe state.
    """

    ROLES: tuple[str, ...] = ()
    DEFAULT_SIM_STATION = "sim-rram-cell"
    X_AXIS = ""
    Y_AXIS = ""

    station = None  # set by the runner / GUI before the run starts

    labctl_version = Metadata("labctl version", default=labctl.__version__)
    station_description = Metadata("Station", fget="_station_text")
    instrument_identities = Metadata("Instruments", fget="_identities_text")
    bench_seed = Metadata("Seed", fget="_seed_text")

    def _station_text(self) -> str:
        return self.station.describe()

    def _identities_text(self) -> str:
        return "; ".join(f"{role}={self.station.identity(role)}" for role in self.ROLES)

    def _seed_text(self) -> str:
        return str(self.station.seed)

    LIMITED: dict[str, str] = {}  # parameter name -> quantity checked against the chip limits

    def limited_parameters(self) -> dict[str, str]:
        """The parameters that reach the device, by quantity (override if it depends on mode)."""
        return self.LIMITED

    def preflight(self, limits: Limits) -> list[str]:
        """Problems with this parameter set for a chip with ``limits`` (empty list: fine)."""
        checks = (limits.check(quantity, getattr(self, name), name)
                  for name, quantity in self.limited_parameters().items())
        return [problem for problem in checks if problem]

    def startup(self) -> None:
        if self.station is None:
            raise RuntimeError(f"{type(self).__name__}: no station attached to the procedure")
        problems = self.preflight(self.station.limits)
        if problems:
            raise ValueError("; ".join(problems))
        self.instruments = {}
        for role in self.ROLES:
            self.instruments[role] = self.station.instrument(role)

    def shutdown(self) -> None:
        for role, instrument in getattr(self, "instruments", {}).items():
            try:
                instrument.shutdown()
            except Exception:
                log.exception("could not put %s in its safe state", role)
        if self.station is not None and self.station.hardware_time is not None:
            log.info("simulated hardware time so far: %.6g s", self.station.hardware_time)


class SmuVoltageProcedure(StationProcedure):
    """A procedure that sources voltage and measures current with the ``smu`` under compliance.

    Subclasses define the ``compliance`` (A) and ``nplc`` parameters.
    """

    ROLES = ("smu",)

    def startup(self) -> None:
        super().startup()
        smu = self.instruments["smu"]
        smu.reset()
        smu.apply_voltage(compliance_current=self.compliance)
        smu.measure_current(nplc=self.nplc)
        smu.source_voltage = 0.0
