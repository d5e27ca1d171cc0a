"""The hardware-layer abstraction of in-situ training.

A :class:`HardwareLayer` is a weight matrix (inputs × outputs) that lives on devices: its
:meth:`~HardwareLayer.forward` is a *measurement* through the station's instruments and its
:meth:`~HardwareLayer.apply_update` turns an update into *device operations*. Loss, gradients and
the optimizer stay in software (numpy), in the user's loop or in :mod:`labctl.training.engine`.
Implementations: :class:`labctl.training.rram.PairLayer` (binary weights on differential pairs of
an RRAM crossbar) and :class:`SoftwareBinaryLayer` (the same layer with a float hidden weight, the
software reference).
"""

from __future__ import annotations

import numpy as np


class HardwareLayer:
    """A weight matrix on devices (module docstring). Subclasses implement :meth:`weights`,
    :meth:`hidden`, :meth:`apply_update` and :meth:`operation_counts`."""

    n_in: int
    n_out: int

    def weights(self) -> np.ndarray:
        """The weights the devices hold now, (n_in, n_out), measured."""
        raise NotImplementedError

    def hidden(self) -> np.ndarray:
        """The analog quantity behind the weights (e.g. a resistance difference), (n_in, n_out)."""
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (batch, n_in) through the layer: x @ W with W as measured."""
        return np.asarray(x, dtype=float) @ self.weights()

    def apply_update(self, update: np.ndarray) -> int:
        """Apply ``update`` (n_in, n_out; its unit is the layer's) as device operations; returns
        the number of operations applied."""
        raise NotImplementedError

    def operation_counts(self) -> np.ndarray:
        """Device operations applied so far to each synapse, (n_in, n_out)."""
        raise NotImplementedError


class SoftwareBinaryLayer(HardwareLayer):
    """Binary weights sign(W_h) on a float hidden weight W_h: the software twin of a pair layer.

    ``apply_update(u)``: u in pulses (float, not rounded), W_h += ``slope``·u, so W_h has the
    unit of the hardware's hidden weight (ln R per pulse × pulses) when ``slope`` is the
    devices' nominal ln R per pulse.
    """

    def __init__(self, hidden: np.ndarray, slope: float):
        self._w = np.array(hidden, dtype=float)
        self.n_in, self.n_out = self._w.shape
        self.slope = float(slope)
        self._ops = np.zeros(self._w.shape, dtype=np.int64)

    def weights(self) -> np.ndarray:
        return np.where(self._w >= 0, 1.0, -1.0)

    def hidden(self) -> np.ndarray:
        return self._w.copy()

    def apply_update(self, update: np.ndarray) -> int:
        update = np.asarray(update, dtype=float)
        self._w += self.slope * update
        n = np.abs(np.rint(update)).astype(np.int64)
        self._ops += n
        return int(n.sum())

    def operation_counts(self) -> np.ndarray:
        return self._ops.copy()
