"""labctl: instrument control and hardware-in-the-loop suite for neuromorphic-device labs.

From Python::

    import labctl
    df = labctl.run("iv-sweep", sim=True, v_max=1.5)     # results as a pandas DataFrame
"""

__version__ = "0.1.0"


def run(procedure, station=None, sim=False, **kwargs):
    """Run a procedure headless and return its results as a pandas DataFrame.

    See :func:`labctl.runner.run` for the arguments.
    """
    from labctl.runner import run as _run

    return _run(procedure, station=station, sim=sim, **kwargs)
