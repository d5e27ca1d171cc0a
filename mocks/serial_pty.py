"""Serve a serial-link personality on a real pseudo-terminal.

The driver opens :attr:`PtySerialServer.port` (``/dev/pts/N``) with pyserial exactly as it would
open ``/dev/ttyUSB0``; a daemon thread reads what it writes from the master side and writes back
``personality.feed(...)``. The slave is put in raw mode (no echo, no CR/LF translation, 8-bit
clean) so bytes pass untranslated. Nothing is bound to the network.

Faults (:class:`~mocks.transports.TransportFaults`, shared with the other transports): a dropped
reply (the next non-empty answer is swallowed: the host times out), a garbage reply, and a lost
link (``disconnected``: the master side is closed, as when the USB cable is pulled — the host's
next read or write fails; a pseudo-terminal cannot be re-plugged, so the server ends there).
"""

from __future__ import annotations

import errno
import os
import select
import threading
import tty

from mocks.transports import TransportFaults

POLL_S = 0.02  # how often the thread looks at the stop flag and the faults


class PtySerialServer:
    """A personality with ``feed(bytes) -> bytes`` and ``reset_link()`` on a pseudo-terminal."""

    def __init__(self, personality, faults: TransportFaults | None = None):
        self.personality = personality
        self.faults = faults or TransportFaults()
        self.port: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # feed() is not re-entrant

    def start(self) -> PtySerialServer:
        master, slave = os.openpty()
        tty.setraw(slave)  # the host's pyserial re-applies its own raw settings on open
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self.personality.reset_link()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"sim-pty-{os.path.basename(self.port)}")
        self._thread.start()
        return self

    def _serve(self) -> None:
        master = self._master
        pending = bytearray()
        try:
            while not self._stop.is_set():
                if self.faults.disconnected:
                    return
                wanted_w = [master] if pending else []
                readable, writable, _ = select.select([master], wanted_w, [], POLL_S)
                if writable and pending:
                    try:
                        del pending[:os.write(master, pending)]
                    except BlockingIOError:  # the host is not reading yet: keep it for later
                        pass
                if not readable:
                    continue
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    continue
                with self._lock:
                    reply = self.personality.feed(data)
                if reply:
                    reply = self.faults.filter_reply(reply)
                    if reply:
                        pending += reply
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
        finally:
            self._close_master()

    def _close_master(self) -> None:
        master, self._master = self._master, None
        if master is not None:
            try:
                os.close(master)
            except OSError:
                pass

    def stop(self) -> None:
        """Stop serving and release the pseudo-terminal."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._close_master()
        slave, self._slave = self._slave, None
        if slave is not None:
            try:
                os.close(slave)
            except OSError:
                pass

    def __enter__(self) -> PtySerialServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<PtySerialServer {self.port} ({type(self.personality).__name__})>"
