"""In-situ (hardware-in-the-loop) training: the forward pass is measured on the chip, loss,
gradients and optimizer run in numpy, updates are applied as device operations.

- :mod:`~labctl.training.data` — datasets (scikit-learn digits, synthetic, a user's file), the
  stratified split, the logistic-regression baseline;
- :mod:`~labctl.training.optim` — softmax cross-entropy, Adam;
- :mod:`~labctl.training.layers` — :class:`~labctl.training.layers.HardwareLayer`, the layer
  whose ``forward`` is a measurement and ``apply_update`` is device operations (the Python API
  for a user's own loop), and its software twin;
- :mod:`~labctl.training.rram` — binary weights on differential pairs of RRAM crossbars;
- :mod:`~labctl.training.bnn` — the binarized network, Majumdar's Adam-to-pulses rule and
  Laborieux's metaplasticity;
- :mod:`~labctl.training.checkpoint`, :mod:`~labctl.training.engine` — epochs and batches, rows,
  atomic checkpoints with a write-ahead record of each update, resume against the pulse log.

Another kind of synapse plugs in with a network object (``step``, ``accuracy``, ``lr_scale``,
``state``/``load_state``, ``layers``) and a device object with the interface of
:class:`~labctl.training.rram.CrossbarPairs` (``plan``/``apply``/``set_plan``/``energy``/
``measure``, ``arrays``, ``roles``, ``transactions``); the trainer, the checkpoints and the resume
stay as they are as long as the device operations are pulses in the arrays' pulse logs.
"""
