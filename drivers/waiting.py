"""Waiting for a long instrument operation without looking like a dead instrument."""

from __future__ import annotations


def ask_covering(instrument, command: str, estimate_s: float) -> str:
    """``instrument.ask(command)`` with the VISA timeout raised to cover ``estimate_s`` of
    instrument time (estimate x 1.5 + 5 s), restored afterwards; adapters without a timeout
    (in-process) are asked as they are."""
    connection = getattr(instrument.adapter, "connection", None)
    old = getattr(connection, "timeout", None)
    if isinstance(old, (int, float)):
        connection.timeout = max(old, 1000.0 * (1.5 * estimate_s + 5.0))
    try:
        return instrument.ask(command)
    finally:
        if isinstance(old, (int, float)):
            connection.timeout = old
