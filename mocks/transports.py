"""Transports that carry bytes between a driver and a personality.

* :class:`InProcessAdapter` — a pymeasure ``Adapter`` that hands each message straight to the
  personality (fast, for tests and ``--sim``).
* :class:`TcpInstrumentServer` — a raw-socket LAN instrument (like port 5025 of a real one) on
  127.0.0.1, reached by pyvisa-py as ``TCPIP::127.0.0.1::PORT::SOCKET``.

Both honour :class:`TransportFaults` so reliability can be tested: a reply that never comes
(timeout), a garbage reply, a dropped connection.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from dataclasses import dataclass

from pymeasure.adapters import Adapter
from pyvisa import constants
from pyvisa.errors import VisaIOError

from mocks.scpi import ScpiPersonality

ENCODING = "latin-1"  # byte-transparent: binary blocks travel inside response strings


@dataclass
class TransportFaults:
    """Faults to inject on a transport. Counters are consumed one reply at a time."""

    drop_replies: int = 0        # the next N replies are swallowed: the client times out
    garbage_replies: int = 0     # the next N replies are replaced by non-SCPI bytes
    disconnected: bool = False   # the link is down: the next operation fails, connection dropped

    GARBAGE = b"\xff\xfe#garbage\x00\x13"

    def filter_reply(self, reply: bytes) -> bytes | None:
        if self.drop_replies > 0:
            self.drop_replies -= 1
            return None
        if self.garbage_replies > 0:
            self.garbage_replies -= 1
            return self.GARBAGE + b"\n"
        return reply


class InProcessAdapter(Adapter):
    """pymeasure adapter that talks to a personality in the same process.

    A read with no pending reply raises the same ``VisaIOError`` (timeout) that pyvisa raises on
    hardware, at once: the mock would never answer, so there is nothing to wait for.
    """

    def __init__(self, personality: ScpiPersonality, faults: TransportFaults | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.personality = personality
        self.faults = faults or TransportFaults()
        self.connection = self  # pymeasure expects an attribute; there is no resource
        self._pending = bytearray()

    def _check_link(self) -> None:
        if self.faults.disconnected:
            raise VisaIOError(constants.StatusCode.error_connection_lost)

    def _write(self, command: str, **kwargs) -> None:
        self._check_link()
        reply = self.personality.handle_message(command)
        if reply is not None:
            out = self.faults.filter_reply(reply.encode(ENCODING) + b"\n")
            if out is not None:
                self._pending += out

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        self._write(content.decode(ENCODING).rstrip("\r\n"))

    def _read_bytes(self, count: int, break_on_termchar: bool, **kwargs) -> bytes:
        self._check_link()
        if not self._pending:
            raise VisaIOError(constants.StatusCode.error_timeout)
        if count < 0:
            if break_on_termchar:
                end = self._pending.find(b"\n")
                count = len(self._pending) if end < 0 else end + 1
            else:
                count = len(self._pending)
        out = bytes(self._pending[:count])
        del self._pending[:count]
        return out

    def _read(self, **kwargs) -> str:
        self._check_link()
        if not self._pending:
            raise VisaIOError(constants.StatusCode.error_timeout)
        end = self._pending.find(b"\n")
        if end < 0:
            end = len(self._pending)
        out = bytes(self._pending[:end])
        del self._pending[: end + 1]
        return out.decode(ENCODING)

    def flush_read_buffer(self) -> None:
        self._pending.clear()

    def close(self) -> None:
        self._pending.clear()

    def __repr__(self) -> str:
        return f"<InProcessAdapter({self.personality.__class__.__name__})>"


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _Handler(socketserver.StreamRequestHandler):
    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def handle(self) -> None:
        server: TcpInstrumentServer = self.server.owner  # type: ignore[attr-defined]
        server.connections.add(self.request)
        try:
            while True:
                if server.faults.disconnected:
                    return
                line = self.rfile.readline(server.max_message_bytes)
                if not line:
                    return
                if server.faults.disconnected:
                    return
                text = line.decode(ENCODING).rstrip("\r\n")
                reply = server.personality.handle_message(text)
                out = None if reply is None else server.faults.filter_reply(
                    reply.encode(ENCODING) + b"\n")
                if out is not None:
                    self.wfile.write(out)
                elif _QUICKACK is not None:
                    # No reply to carry the ACK: send it now, or a client with Nagle on (pyvisa-py)
                    # holds its next message up to the 40 ms delayed-ACK timeout.
                    self.request.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except (ConnectionError, OSError):
            return
        finally:
            server.connections.discard(self.request)


class _ThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class TcpInstrumentServer:
    """Serve one personality as a raw-socket instrument on ``host:port`` (port 0 picks a free one).

    Binds to 127.0.0.1 unless told otherwise. ``resource`` is the VISA resource string.
    """

    max_message_bytes = 16 * 1024 * 1024

    def __init__(self, personality: ScpiPersonality, port: int = 0, host: str = "127.0.0.1",
                 faults: TransportFaults | None = None):
        self.personality = personality
        self.faults = faults or TransportFaults()
        self.connections: set[socket.socket] = set()
        self._server = _ThreadingServer((host, port), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"sim-tcp-{self.port}")

    @property
    def resource(self) -> str:
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    def start(self) -> TcpInstrumentServer:
        self._thread.start()
        return self

    def drop_connections(self) -> None:
        """Fault: close every open client connection now (the server keeps listening)."""
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.drop_connections()
        self._server.shutdown()
        self._server.server_close()
