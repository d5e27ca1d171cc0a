"""What the training procedures share: the files of a run that can be resumed (the results file
named by the runner or, on resume, the earlier run's, and the checkpoint beside it), and the
check of the station's instruments again at startup."""

from __future__ import annotations

from pathlib import Path

from pymeasure.experiment import BooleanParameter, Parameter

from labctl.arrayfile import ArrayFile, sidecar_path
from labctl.training.checkpoint import checkpoint_path

RESUME = Parameter("Resume the run of this results file", default="")
"""An earlier run's results file: its array file and checkpoint are continued."""
REPLAY_SIM = BooleanParameter("On resume, replay the log onto a fresh simulated chip",
                              default=True)


class TrainingRunFiles:
    """Mixin of the training procedures (``NAME``, ``resume``, ``results_path`` and
    ``check_instruments``), before their :class:`~procedures.base.StationProcedure` base."""

    results_path: str | None = None  # set by the runner / GUI

    def _run_file(self) -> Path:
        """The results file whose array file and checkpoint this run writes."""
        if self.resume:
            return Path(self.resume)
        if self.results_path is None:
            raise RuntimeError(f"{self.NAME}: no results path (set by the runner or GUI)")
        return Path(self.results_path)

    def _checkpoint_text(self) -> str:
        return str(checkpoint_path(self._run_file()))

    def _array_file_text(self) -> str:
        return str(sidecar_path(self._run_file()))

    def open_array_file(self) -> ArrayFile:
        """The run's array file: appended to on resume, else new with the run's attributes."""
        file = ArrayFile(sidecar_path(self._run_file()), "a" if self.resume else "w")
        if not self.resume:
            file.set_attrs(procedure=self.NAME, station=self.station.describe(),
                           seed=str(self.station.seed), results_file=str(self.results_path))
        return file

    def startup(self) -> None:
        super().startup()
        problems = self.check_instruments(self.station)
        if problems:
            raise ValueError("; ".join(problems))
