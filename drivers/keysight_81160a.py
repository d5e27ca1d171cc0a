"""Keysight 81160A pulse generator: pymeasure's stock ``Keysight81160A`` with the chip limits
and a safe ``shutdown``.

The stock driver's channel controls are dynamic (``<prop>_values``), so the chip limits narrow
them per instrument. Levels are set as across a 50 Ω load (``:OUTP:LOAD 50``, the default), so
the open-circuit level — what a high-impedance device can see — is twice the set one: the high
and low levels and the offset are narrowed to ±(voltage limit)/2, the amplitude to the voltage
limit, the pulse width to the pulse-width limit. The generator's own hardware output limits
(``:VOLT:LIM``) are set to the same ±(voltage limit)/2 and switched on, so the instrument also
refuses what the software would.
"""

from __future__ import annotations

import logging

from pymeasure.instruments.keysight import Keysight81160A as StockKeysight81160A

from labctl.safety import Limits, narrowed

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

LEVEL_PROPS = ("voltage_high", "voltage_low", "offset")


class Keysight81160A(StockKeysight81160A):
    """pymeasure's Keysight 81160A with chip limits and a safe shutdown."""

    def apply_chip_limits(self, limits: Limits) -> None:
        """Narrow both channels' levels and pulse width to the chip limits and set the
        generator's hardware output limits to half the voltage limit (state ON)."""
        v = limits.voltage / 2  # set levels: the open-circuit level is twice as high
        for channel in (self.ch_1, self.ch_2):
            hardware = type(channel)  # the stock ranges (dynamic values are write-only)
            for prop in LEVEL_PROPS:
                setattr(channel, f"{prop}_values",
                        narrowed(getattr(hardware, f"{prop}_values"), v))
            lo, hi = hardware.amplitude_values
            channel.amplitude_values = [lo, min(hi, 2 * v)]  # peak to peak
            if limits.pulse_width is not None:
                lo, hi = hardware.pulse_width_values
                channel.pulse_width_values = [lo, min(hi, limits.pulse_width)]
            channel.limit_high = min(v, 10.0)
            channel.limit_low = max(-v, -10.0)
            channel.limit_state_enabled = True

    def shutdown(self) -> None:
        """Safe state: both outputs off (then the levels no longer reach the device)."""
        log.info("Shutting down %s.", self.name)
        for channel in (self.ch_1, self.ch_2):
            channel.output = False
        super().shutdown()
