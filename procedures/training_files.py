"""What the training procedures share: the files of a run that can be resumed (the results file
named by the runner or, on resume, the earlier run's, and the checkpoint beside it), and the
check of the station's instruments again at startup."""

from __future__ import annotations

from pathlib import Path

from labctl.training.checkpoint import checkpoint_path


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

    def startup(self) -> None:
        super().startup()
        problems = self.check_instruments(self.station)
        if problems:
            raise ValueError("; ".join(problems))
