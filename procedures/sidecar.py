"""The run's HDF5 array file (waveforms, maps, pulse logs) for procedures that are not array
procedures: opened beside the results file at startup, closed at shutdown."""

from __future__ import annotations

import logging
import tempfile

from pymeasure.experiment import Metadata

from labctl.arrayfile import ArrayFile, sidecar_path

log = logging.getLogger(__name__)


class SidecarPath:
    """Where the run's array file goes (beside the results file, or beside a temporary name
    outside a runner), named in the results header; ``file`` is the procedure's to open."""

    results_path: str | None = None  # set by the runner / GUI: the array file goes beside it
    file: ArrayFile | None = None
    array_file = Metadata("Array file", fget="_sidecar_text")

    def _sidecar_text(self) -> str:
        return str(self._sidecar())

    def _sidecar(self):
        if self.results_path is None:
            self.results_path = tempfile.mktemp(prefix=f"{self.NAME}_", suffix=".csv")
        return sidecar_path(self.results_path)


class SidecarMixin(SidecarPath):
    """Mix into a :class:`~procedures.base.StationProcedure` before it: ``self.file`` is the
    open :class:`~labctl.arrayfile.ArrayFile` from startup (after the instruments) to
    shutdown."""

    def startup(self) -> None:
        super().startup()
        self.file = ArrayFile(self._sidecar(), "w")
        self.file.set_attrs(procedure=self.NAME, station=self.station.describe(),
                            seed=str(self.station.seed), results_file=str(self.results_path))

    def shutdown(self) -> None:
        super().shutdown()
        close_array_file(self.file)


def close_array_file(file: ArrayFile | None) -> None:
    """Close the run's array file if it was opened; a failure is logged, not raised (shutdown
    goes on)."""
    if file is not None:
        try:
            file.close()
        except Exception:
            log.exception("could not close the array file")
