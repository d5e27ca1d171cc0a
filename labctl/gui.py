"""The pymeasure ManagedWindow for any labctl procedure: inputs, queue, abort, live plot."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from labctl.errors import LabctlError

log = logging.getLogger(__name__)


def make_window(procedure_cls, station, out: str | Path = "results"):
    """A ManagedWindow bound to ``station``; every queued procedure runs on it."""
    from pymeasure.display.windows import ManagedImageWindow, ManagedWindow
    from pymeasure.experiment import Results, unique_filename

    from labctl.runner import preflight

    image = getattr(procedure_cls, "IMAGE", None)  # (x, y, z) columns: a heat map
    base = ManagedImageWindow if image else ManagedWindow

    class LabctlWindow(base):
        def __init__(self):
            names = list(procedure_cls().parameter_objects())
            axes = ({"x_axis": image[0], "y_axis": image[1], "z_axis": image[2]} if image else
                    {"x_axis": procedure_cls.X_AXIS or procedure_cls.DATA_COLUMNS[0],
                     "y_axis": procedure_cls.Y_AXIS or procedure_cls.DATA_COLUMNS[1]})
            super().__init__(
                procedure_class=procedure_cls,
                inputs=names,
                displays=getattr(procedure_cls, "DISPLAYS", names[:4]),
                **axes,
            )
            self.station = station
            self.directory = str(Path(out).resolve())
            self.file_input.filename = getattr(procedure_cls, "NAME", procedure_cls.__name__)
            self.setWindowTitle(f"labctl — {self.file_input.filename_base} on "
                                f"{station.describe()}")

        def make_procedure(self):
            procedure = super().make_procedure()
            procedure.station = self.station
            return procedure

        def queue(self, procedure=None):
            if procedure is None:
                procedure = self.make_procedure()
            try:
                preflight(procedure, self.station)
            except LabctlError as exc:
                log.error("not queued: %s", exc)
                self.statusBar().showMessage(f"Not queued: {exc}")
                return
            # Not super().queue(): pymeasure fills filename placeholders from every Metadata,
            # and the station metadata only has a value once the run has started.
            if self.store_measurement:
                filename = unique_filename(self.directory, prefix=self.file_input.filename_base,
                                           datetimeformat="",
                                           ext=self.file_input.filename_extension)
            else:
                filename = tempfile.mktemp(prefix="TempFile_", suffix=".csv")
            procedure.results_path = filename
            self.manager.queue(self.new_experiment(Results(procedure, filename)))

    return LabctlWindow()


def run_gui(procedure_cls, station, out: str | Path = "results") -> int:
    from pymeasure.display.Qt import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = make_window(procedure_cls, station, out)
    window.show()
    return app.exec()
