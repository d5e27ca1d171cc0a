"""Errors that carry one clear line for the user: what went wrong and where."""


class LabctlError(Exception):
    """Base of labctl's user-facing errors; ``str()`` is the one line the CLI prints."""


class ConfigError(LabctlError):
    """A station file, bench file, parameter or resource is wrong.

    ``where`` names the file (and key) so the message points at the line to fix.
    """

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class LimitError(LabctlError, ValueError):
    """A requested value is outside the chip's safe operating area; nothing was applied."""
