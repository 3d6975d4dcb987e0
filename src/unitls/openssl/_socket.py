"""The blocking TLS socket: an `OpenSSLTLSBuffer` plus a `socket.socket`.

There is one TLS code path, the buffer's; this module only moves bytes between
it and the OS socket. The OS socket keeps `socket.socket`'s own timeout model,
which the TLS socket exposes (`settimeout`, `gettimeout`, `setblocking`):

- blocking (the default): operations wait; with a timeout, each wait for the
  network is bounded and raises `TimeoutError` (`socket.timeout`);
- non-blocking (`settimeout(0.0)` / `setblocking(False)`): operations that would
  wait raise `WantReadError` / `WantWriteError`, as the PEP says. Ciphertext
  that could not be sent yet is kept and sent first by the next call, so
  nothing is lost.

Client `connect()` does the TCP connect and the whole handshake, so certificate
errors surface there. A blocking `accept()` completes the handshake before it
returns, within the listening socket's timeout (`ACCEPT_TIMEOUT` if it has none),
so one slow client cannot hold it forever. The handshake's timeout covers the
whole handshake, not each wait, so a peer that trickles bytes cannot stretch it.

Errors come in two kinds, as with the stdlib's `ssl` sockets:

1. TLS failures are `TLSError`s: a bad record, a failed verification, an alert
   from the peer, and a transport that ends without close_notify (`RaggedEOF`;
   during the handshake too). OpenSSL's fatal alert, if it queued one, is sent
   before the error is raised.
2. Transport failures are the `OSError` the OS socket raised, unchanged:
   `TimeoutError` (the handshake's is "The TLS handshake timed out"),
   `ConnectionResetError`, `BrokenPipeError`, ... A peer that resets the
   connection surfaces as one of these or, when the OS reports the reset as an
   end of stream, as `RaggedEOF`. Code that catches `OSError` for
   `socket.socket` keeps working.

Neither kind loses data that was already accepted: plaintext that `recv` has
decrypted is returned even if sending the TLS answers that came with it (a
KeyUpdate response, an alert) fails, and ciphertext that could not be sent stays
queued and goes out first on the next call, which also reports the failure if
it persists.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from typing_extensions import Buffer

from .._enums import CipherSuite, NextProtocol, TLSVersion
from .._errors import RaggedEOF, TLSError, WantReadError, WantWriteError
from ._buffer import OpenSSLTLSBuffer

if TYPE_CHECKING:
    from ._context import OpenSSLClientContext, OpenSSLServerContext

__all__ = ["OpenSSLTLSSocket", "ACCEPT_TIMEOUT", "CLOSE_TIMEOUT"]

#: Seconds a blocking `accept()` gives a client to finish the handshake when the
#: listening socket has no timeout of its own.
ACCEPT_TIMEOUT = 10.0
#: Seconds a blocking `close()` waits for the peer's close_notify when the socket
#: has no timeout of its own (TLS 1.3 peers need not answer it at all).
CLOSE_TIMEOUT = 2.0

_RECV_SIZE = 64 * 1024
_SEND_SIZE = 256 * 1024


class OpenSSLTLSSocket:
    """A TLS socket (PEP 748 `TLSSocket`) on OpenSSL.

    Created by `OpenSSLClientContext.connect` (connected, handshake complete),
    `OpenSSLServerContext.connect` (listening) and `accept` (connected, handshake
    complete); never constructed directly.
    """

    __slots__ = ("_buffer", "_closed", "_context", "_pending", "_sock")

    _context: OpenSSLClientContext | OpenSSLServerContext
    _sock: socket.socket
    _buffer: OpenSSLTLSBuffer | None
    _pending: bytes
    _closed: bool

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: sockets come from a context's `connect()`."""
        raise TypeError(
            f"{type(self).__name__} has no public constructor; use a context's connect()"
        )

    @classmethod
    def _wrap(
        cls,
        context: OpenSSLClientContext | OpenSSLServerContext,
        sock: socket.socket,
        buffer: OpenSSLTLSBuffer | None,
    ) -> OpenSSLTLSSocket:
        self = object.__new__(cls)
        self._context = context
        self._sock = sock
        self._buffer = buffer
        self._pending = b""
        self._closed = False
        return self

    @classmethod
    def _create_client(
        cls,
        context: OpenSSLClientContext,
        address: tuple[str | None, int],
        *,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> OpenSSLTLSSocket:
        host, port = _split_address(address)
        if host is None:
            raise ValueError("connect() needs a host: the server's name is what gets verified")
        if server_hostname is None:
            server_hostname = host
        buffer = context.create_buffer(server_hostname)
        if timeout is None:
            timeout = socket.getdefaulttimeout()
        sock = socket.create_connection((host, port), timeout=timeout)
        self = cls._wrap(context, sock, buffer)
        try:
            self._handshake(None if timeout is None else time.monotonic() + timeout)
        except BaseException:
            sock.close()
            self._closed = True
            raise
        return self

    @classmethod
    def _create_server(
        cls,
        context: OpenSSLServerContext,
        address: tuple[str | None, int],
        *,
        backlog: int | None = None,
    ) -> OpenSSLTLSSocket:
        host, port = _split_address(address)
        family = socket.AF_INET
        if host is not None and host != "":
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host or "", port), family=family, backlog=backlog)
        return cls._wrap(context, sock, None)

    # -- the byte pump -------------------------------------------------------------

    def _connected(self, operation: str) -> OpenSSLTLSBuffer:
        if self._closed:
            raise OSError(9, f"Cannot {operation} on a closed TLS socket")
        if self._buffer is None:
            raise OSError(107, f"Cannot {operation} on a listening TLS socket")
        return self._buffer

    def _flush(self) -> bool:
        """Send queued ciphertext; return whether everything went out.

        Never raises `BlockingIOError`: what the OS would not take is kept in
        `_pending` and sent first next time.
        """
        buffer = self._buffer
        assert buffer is not None
        data = self._pending or buffer.process_outgoing(_SEND_SIZE)
        while data:
            try:
                sent = self._sock.send(data)
            except BlockingIOError:
                self._pending = data
                return False
            except OSError:
                # Ciphertext is sequence-numbered: dropping it would corrupt the
                # stream for the peer (e.g. after a send timeout), so keep it.
                self._pending = data
                raise
            data = data[sent:]
            if not data:
                data = buffer.process_outgoing(_SEND_SIZE)
        self._pending = b""
        return True

    def _fill(self, deadline: float | None = None) -> None:
        """Receive ciphertext into the buffer, waiting as the socket's mode says.

        Raises `WantReadError` in non-blocking mode when nothing has arrived.
        """
        buffer = self._buffer
        assert buffer is not None
        if not self._flush() and self._sock.gettimeout() == 0.0:
            raise WantWriteError("The socket cannot take the outgoing TLS data yet")
        sock = self._sock
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("The TLS handshake timed out")
            saved = sock.gettimeout()
            sock.settimeout(remaining if saved is None else min(saved, remaining))
        try:
            data = sock.recv(_RECV_SIZE)
        except BlockingIOError:
            raise WantReadError("No TLS data has arrived yet") from None
        except TimeoutError as exc:
            if deadline is None:
                raise
            raise TimeoutError("The TLS handshake timed out") from exc
        finally:
            if deadline is not None:
                sock.settimeout(saved)
        buffer.process_incoming(data)

    def _handshake(self, deadline: float | None) -> None:
        buffer = self._buffer
        assert buffer is not None
        while True:
            try:
                buffer.do_handshake()
                break
            except WantReadError:
                self._fill(deadline)
            except TLSError:
                self._flush_quietly()  # let the alert reach the peer
                raise
        if not self._flush() and self._sock.gettimeout() == 0.0:  # pragma: no cover
            raise WantWriteError("The socket cannot take the outgoing TLS data yet")

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except OSError:
            pass

    def _flush_after_read(self, buffer: OpenSSLTLSBuffer) -> None:
        """Send what reading queued (KeyUpdate answers, alerts) without failing the read.

        The plaintext is already out of the buffer: a transport error here must not
        lose it. The unsent ciphertext stays in `_pending`, so the next call sends it
        or raises the error.
        """
        if self._pending or buffer.outgoing_bytes_buffered():
            self._flush_quietly()

    # -- PEP 748 TLSSocket -----------------------------------------------------------

    def do_handshake(self) -> None:
        """Complete the handshake (non-blocking sockets: call until it returns).

        Raises:
            WantReadError / WantWriteError: Non-blocking and the network is not ready.
            TLSError: The handshake failed (`RaggedEOF` if the transport ended).
            OSError: The transport failed (`TimeoutError`, `ConnectionResetError`, ...).
        """
        self._connected("do_handshake")
        self._handshake(None)

    def recv(self, bufsize: int) -> bytes:
        """Receive up to `bufsize` bytes of plaintext; `b""` after a clean close.

        Raises:
            WantReadError: Non-blocking and no data has arrived.
            RaggedEOF: The peer closed the transport without close_notify.
            TimeoutError: The socket's timeout expired (nothing is lost; call again).
            TLSError: The connection failed (OpenSSL's alert, if any, was sent).
            OSError: The transport failed (`ConnectionResetError`, ...).
        """
        buffer = self._connected("recv")
        while True:
            try:
                data = buffer.read(bufsize)
                break
            except WantReadError:
                self._fill()
            except TLSError:
                self._flush_quietly()  # let the alert reach the peer
                raise
        self._flush_after_read(buffer)
        return data  # type: ignore[return-value]

    def recv_into(self, target: Buffer, nbytes: int = 0) -> int:
        """Receive plaintext into `target` (at most `nbytes`, or its size if 0)."""
        buffer = self._connected("recv_into")
        size = memoryview(target).nbytes
        amount = size if nbytes <= 0 else min(nbytes, size)
        while True:
            try:
                n = buffer.read(amount, target)
                break
            except WantReadError:
                self._fill()
            except TLSError:
                self._flush_quietly()  # let the alert reach the peer
                raise
        self._flush_after_read(buffer)
        return n  # type: ignore[return-value]

    def send(self, bytes: Buffer) -> int:
        """Encrypt and send plaintext; return how many bytes were taken.

        Raises:
            WantWriteError: Non-blocking and the socket cannot take data now.
            TimeoutError: The socket's timeout expired before any of `bytes` was
                taken. If it expires after they were taken, `send` returns the count
                and the next call sends the rest of the ciphertext first.
            TLSError: The connection failed or was closed for writing.
            OSError: The transport failed (`BrokenPipeError`, ...).
        """
        buffer = self._connected("send")
        if self._pending and not self._flush():
            raise WantWriteError("The socket cannot take more data yet")
        while True:
            try:
                n = buffer.write(bytes)
                break
            except WantWriteError:
                if not self._flush():
                    raise
            except WantReadError:
                self._fill()
            except TLSError:
                self._flush_quietly()  # let the alert reach the peer
                raise
        try:
            self._flush()
        except OSError:
            # The n bytes were taken (raising would invite a duplicate resend);
            # their ciphertext waits in _pending and the next call sends it or
            # raises this error again.
            pass
        return n

    def sendall(self, data: Buffer) -> None:
        """Send all of `data` (blocking sockets).

        As with `socket.sendall`, an exception does not say how much was taken;
        whatever was taken is sent first by the next call, so the stream stays whole.
        """
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view) :]
        if self._pending:
            self._flush()  # blocking: raise now if the last ciphertext cannot go out

    def close(self, force: bool = False) -> None:
        """Send close_notify and close the socket.

        With `force=True` the socket closes right after close_notify is sent. With
        `force=False` a blocking socket waits for the peer's close_notify (or EOF)
        at most its timeout, or `CLOSE_TIMEOUT` without one; a non-blocking socket
        raises `WantReadError` until the peer's close_notify has arrived.

        Raises:
            WantWriteError: Non-blocking and close_notify cannot be sent yet.
            WantReadError: Non-blocking, `force=False`, and the peer has not closed.
        """
        if self._closed:
            return
        buffer = self._buffer
        if buffer is None:
            self._close_now()
            return
        peer_closed = False
        try:
            buffer.shutdown()
            peer_closed = True
        except WantReadError:
            pass
        except TLSError:
            self._close_now()  # failed connection: nothing clean to say
            return
        try:
            sent = self._flush()
        except OSError:
            self._close_now()
            return
        nonblocking = self._sock.gettimeout() == 0.0
        if not sent and nonblocking and not force:
            raise WantWriteError("close_notify cannot be sent yet")
        if force or peer_closed:
            self._close_now()
            return
        if nonblocking:
            self._drain_close_notify(None)
            self._close_now()
            return
        timeout = self._sock.gettimeout()
        deadline = time.monotonic() + (CLOSE_TIMEOUT if timeout is None else timeout)
        try:
            self._drain_close_notify(deadline)
        except (OSError, TLSError):
            pass
        self._close_now()

    def _drain_close_notify(self, deadline: float | None) -> None:
        """Read (and discard) until the peer's close_notify or EOF."""
        buffer = self._buffer
        assert buffer is not None
        while True:
            try:
                if buffer.read(_RECV_SIZE) == b"":
                    return
            except WantReadError:
                self._fill(deadline)
            except RaggedEOF:
                return

    def _close_now(self) -> None:
        self._closed = True
        self._sock.close()

    def listen(self, backlog: int = socket.SOMAXCONN) -> None:
        """Let a server socket accept connections (at most `backlog` waiting)."""
        self._sock.listen(backlog)

    def accept(self) -> tuple[OpenSSLTLSSocket, tuple[str | None, int]]:
        """Accept a connection and complete its handshake.

        The handshake is bounded by the listening socket's timeout, or by
        `ACCEPT_TIMEOUT` when it has none; the new socket gets the listening
        socket's timeout.

        Raises:
            TLSError: The client's handshake failed (the connection is closed).
            TimeoutError: No client, or the client was too slow.
            OSError: The client's connection failed (e.g. `ConnectionResetError`).
            WantReadError: Non-blocking and no client is waiting.
        """
        if self._buffer is not None or self._closed:
            raise OSError(22, "accept() needs a listening TLS socket")
        try:
            raw, address = self._sock.accept()
        except BlockingIOError:
            raise WantReadError("No connection is waiting to be accepted") from None
        timeout = self._sock.gettimeout()
        raw.settimeout(timeout)
        context = self._context
        buffer = context.create_buffer()  # type: ignore[call-arg]
        conn = self._wrap(context, raw, buffer)
        if timeout == 0.0:
            return conn, (address[0], address[1])  # handshake completes on first use
        try:
            conn._handshake(time.monotonic() + (ACCEPT_TIMEOUT if timeout is None else timeout))
        except BaseException:
            conn._close_now()
            raise
        return conn, (address[0], address[1])

    def getsockname(self) -> tuple[str | None, int]:
        """The local address (host, port)."""
        name = self._sock.getsockname()
        return (name[0], name[1])

    def getpeername(self) -> tuple[str | None, int]:
        """The remote address (host, port)."""
        name = self._sock.getpeername()
        return (name[0], name[1])

    def getpeercert(self) -> bytes | None:
        """The DER bytes of the peer's certificate, or `None` if it sent none."""
        return None if self._buffer is None else self._buffer.getpeercert()

    @property
    def context(self) -> OpenSSLClientContext | OpenSSLServerContext:
        """The context this socket was created from."""
        return self._context

    def cipher(self) -> CipherSuite | int | None:
        """The negotiated cipher suite (a raw id if not in `CipherSuite`), or `None`."""
        return None if self._buffer is None else self._buffer.cipher()

    def negotiated_protocol(self) -> NextProtocol | bytes | None:
        """The protocol ALPN selected, or `None`."""
        return None if self._buffer is None else self._buffer.negotiated_protocol()

    @property
    def negotiated_tls_version(self) -> TLSVersion | None:
        """The negotiated TLS version, or `None`."""
        return None if self._buffer is None else self._buffer.negotiated_tls_version

    # -- socket.socket extras --------------------------------------------------------

    def fileno(self) -> int:
        """The OS socket's file descriptor (-1 once closed)."""
        return self._sock.fileno()

    def settimeout(self, value: float | None) -> None:
        """Set the timeout like `socket.socket.settimeout` (None: blocking, 0: non-blocking)."""
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        """The timeout, as `socket.socket.gettimeout` reports it."""
        return self._sock.gettimeout()

    def setblocking(self, flag: bool) -> None:
        """`setblocking(True)` is `settimeout(None)`, `setblocking(False)` is `settimeout(0.0)`."""
        self._sock.setblocking(flag)

    def __enter__(self) -> OpenSSLTLSSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(force=True)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("listening" if self._buffer is None else "connected")
        return f"<{type(self).__name__} {state} fd={self._sock.fileno()}>"


def _split_address(address: object) -> tuple[str | None, int]:
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError(f"address must be a (host, port) tuple, not {address!r}")
    host, port = address[0], address[1]
    if host is not None and not isinstance(host, str):
        raise TypeError(f"address host must be a str or None, not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"address port must be an int, not {type(port).__name__}")
    return host, port
