"""The connections of the `ssl.SSLContext` facade: `SSLSocket` and `SSLObject`.

Both are public through `unitls_integrations.ssl_context` (their `__module__` says
so); they live here so that `ssl_context.py` holds the settings side and this module
the I/O side. `SSLSocket` is the hot path the benchmarks compare with the stdlib's
`ssl.SSLSocket`: `recv_into`, `recv` and `sendall` go straight to the
`_blocking.TLSStream` with no helper call in between on success.

Errors: a unitls error becomes the `ssl` exception urllib3, requests and http.client
catch (`_ssl_error`), chained from it on `__cause__`; see theory of operation rule 4
in `ssl_context.py`.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any, Literal, NoReturn, overload

import unitls

from ._blocking import TLSStream, deadline_after
from ._certdict import PeerCertificate, decode_certificate
from ._config import protocol_name
from ._ssl_options import cipher_table

if TYPE_CHECKING:
    from .ssl_context import SSLContext

__all__ = ["SSLObject", "SSLSocket", "closed_error"]

#: The sendall chunk that gets its own deadline: one TLS record, so a timeout bounds
#: each wait for progress, as it does for each `SSL_write` in the stdlib.
_SEND_CHUNK = 16 * 1024
_monotonic = time.monotonic


# -- errors ------------------------------------------------------------------------


def _ssl_error(exc: unitls.TLSError) -> ssl.SSLError:
    """The `ssl` exception for a unitls error (raise it `from exc`)."""
    error: ssl.SSLError
    if isinstance(exc, unitls.CertificateVerificationError):
        cert_error = ssl.SSLCertVerificationError(
            ssl.SSL_ERROR_SSL, f"[SSL: CERTIFICATE_VERIFY_FAILED] {exc}"
        )
        cert_error.verify_code = exc.verify_code
        cert_error.verify_message = exc.verify_message
        error, reason = cert_error, "CERTIFICATE_VERIFY_FAILED"
    elif isinstance(exc, unitls.RaggedEOF):
        error = ssl.SSLEOFError(ssl.SSL_ERROR_EOF, f"[SSL: UNEXPECTED_EOF_WHILE_READING] {exc}")
        reason = "UNEXPECTED_EOF_WHILE_READING"
    else:
        error, reason = ssl.SSLError(ssl.SSL_ERROR_SSL, f"[SSL] {exc}"), ""
    error.library = "SSL"
    error.reason = reason or None  # type: ignore[assignment]  # the stdlib sets None too
    return error


def closed_error() -> OSError:
    """What a closed socket raises, as `socket.socket` does."""
    return OSError(errno.EBADF, "Bad file descriptor")


def _want_read() -> ssl.SSLWantReadError:
    return ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)")


# -- connections ---------------------------------------------------------------------


class _Connection:
    """What `SSLSocket` and `SSLObject` share: the information methods."""

    __slots__ = ("_buffer", "_context", "_done", "_peercert", "_server_hostname", "_verified")

    _buffer: unitls.TLSBuffer
    _context: SSLContext
    _done: bool  # the handshake completed
    _peercert: PeerCertificate | None
    _server_hostname: str | None
    _verified: bool

    def _init(
        self,
        context: SSLContext,
        buffer: unitls.TLSBuffer,
        server_hostname: str | None,
        verified: bool,
    ) -> None:
        self._context = context
        self._buffer = buffer
        self._server_hostname = server_hostname
        self._verified = verified
        self._peercert = None
        self._done = False

    def _handshook(self) -> bool:
        if not self._done and self._buffer.negotiated_tls_version is not None:
            self._done = True
        return self._done

    @property
    def context(self) -> SSLContext:
        """The `SSLContext` this connection was created from."""
        return self._context

    @property
    def server_hostname(self) -> str | None:
        """The name given to `wrap_socket` / `wrap_bio` (verified and sent as SNI)."""
        return self._server_hostname

    @property
    def server_side(self) -> bool:
        """Always `False`: connections from this module are clients."""
        return False

    @property
    def session(self) -> None:
        """Always `None`: unitls resumes sessions itself, per server name."""
        return None

    @overload
    def getpeercert(self, binary_form: Literal[False] = ...) -> PeerCertificate | None: ...

    @overload
    def getpeercert(self, binary_form: Literal[True]) -> bytes | None: ...

    def getpeercert(self, binary_form: bool = False) -> PeerCertificate | bytes | None:
        """The server's certificate, as `ssl.SSLSocket.getpeercert` returns it.

        Args:
            binary_form: `True` for the DER bytes; `False` (default) for the
                dictionary CPython builds (`subject`, `issuer`, `version`,
                `serialNumber`, `notBefore`, `notAfter`, `subjectAltName`, ...).
                It is empty (`{}`) when the certificate was not verified
                (`verify_mode = CERT_NONE`), as in the stdlib.

        Returns:
            The certificate, or `None` if the server sent none.

        Raises:
            ValueError: Before the handshake.
        """
        if not self._handshook():
            raise ValueError("handshake not done yet")
        der = self._buffer.getpeercert()
        if der is None or binary_form:
            return der
        if not self._verified:
            return {}
        if self._peercert is None:
            self._peercert = decode_certificate(der)
        return self._peercert

    def version(self) -> str | None:
        """The negotiated TLS version (`"TLSv1.2"` or `"TLSv1.3"`), `None` before the handshake."""
        version = self._buffer.negotiated_tls_version
        return None if version is None else version.value

    def cipher(self) -> tuple[str, str, int | None] | None:
        """`(OpenSSL name, protocol, secret bits)` of the negotiated suite, or `None`."""
        suite = self._buffer.cipher()
        if suite is None:
            return None
        entry = cipher_table().get(int(suite))
        if entry is not None:
            return entry
        label = suite.name if isinstance(suite, unitls.CipherSuite) else f"0x{int(suite):04X}"
        return (label, self.version() or "", None)

    def shared_ciphers(self) -> None:
        """Always `None`: unitls does not report the suites both sides support."""
        return None

    def compression(self) -> None:
        """Always `None`: unitls never compresses."""
        return None

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN selected (e.g. `"h2"`, `"http/1.1"`), or `None`."""
        return protocol_name(self._buffer.negotiated_protocol())

    def selected_npn_protocol(self) -> None:
        """Always `None`: NPN is obsolete; see `selected_alpn_protocol`."""
        return None


class SSLSocket(_Connection):
    """A client TLS connection over a socket, shaped like `ssl.SSLSocket`.

    Returned by `SSLContext.wrap_socket`; not constructed directly. Blocking with the
    `socket.socket` timeout model (`settimeout`, `gettimeout`, `setblocking`), and
    `makefile` works as on sockets: `close()` is deferred while a file made from the
    socket is open, so `http.client` responses can be read after the connection is
    closed. One thread may read while another writes.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_io_refs",
        "_raw",
        "_stream",
        "_suppress_ragged_eofs",
        "_timeout",
    )

    _raw: socket.socket
    _stream: TLSStream | None
    _timeout: float | None
    _suppress_ragged_eofs: bool
    _closed: bool
    _io_refs: int

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: sockets come from `SSLContext.wrap_socket()`."""
        raise TypeError("SSLSocket has no public constructor; use SSLContext.wrap_socket()")

    @classmethod
    def _create(
        cls,
        context: SSLContext,
        raw: socket.socket,
        stream: TLSStream,
        *,
        server_hostname: str | None,
        verified: bool,
        timeout: float | None,
        suppress_ragged_eofs: bool,
    ) -> SSLSocket:
        self = object.__new__(cls)
        self._init(context, stream.buffer, server_hostname, verified)
        self._raw = raw
        self._stream = stream
        self._timeout = timeout
        self._suppress_ragged_eofs = suppress_ragged_eofs
        self._closed = False
        self._io_refs = 0
        return self

    def _live(self) -> TLSStream:
        """The stream, for a first read or write: closed, or handshake still to do."""
        self.do_handshake()  # raises as a closed socket does when there is no stream
        stream = self._stream
        assert stream is not None  # a successful handshake leaves it in place
        return stream

    def do_handshake(self) -> None:
        """Complete the TLS handshake (done by `wrap_socket` unless told otherwise).

        On failure the connection is closed.

        Raises:
            ssl.SSLCertVerificationError: If the certificate fails verification.
            ssl.SSLError: If the handshake fails otherwise.
            TimeoutError: If it outlasts the socket's timeout.
            ssl.SSLWantReadError: In non-blocking mode, if the server has not
                answered yet: call again once the socket is readable.
            OSError: If the socket is closed or the transport fails.
        """
        stream = self._stream
        if stream is None:
            raise closed_error()
        timeout = self._timeout
        try:
            stream.handshake(deadline_after(timeout))
            self._done = True
        except unitls.TLSError as exc:
            self._abort()
            raise _ssl_error(exc) from exc
        except TimeoutError:
            if timeout == 0.0:
                raise _want_read() from None
            self._abort()
            raise
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    # -- reading -----------------------------------------------------------------------

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Read decrypted bytes into `buffer`; 0 at the end of the stream.

        Args:
            buffer: A writable buffer.
            nbytes: Read at most this many bytes (0: the buffer's size).
            flags: Must be 0.

        Raises:
            TimeoutError: If nothing arrives within the timeout (nothing is lost:
                call again).
            ssl.SSLWantReadError: In non-blocking mode, if no data is waiting.
            ssl.SSLEOFError: On a close without close_notify, if ragged EOFs are not
                suppressed.
            ssl.SSLError: If the connection fails.
            OSError: If the socket is closed or the transport fails.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv_into()")
        stream = self._stream
        if stream is None or not self._done:
            stream = self._live()
        view = buffer if type(buffer) is memoryview else memoryview(buffer)
        if view.itemsize != 1:
            view = view.cast("B")
        if nbytes:
            if nbytes > len(view):
                raise ValueError("nbytes is greater than the length of the buffer")
            view = view[:nbytes]
        timeout = self._timeout
        try:
            return stream.recv_into(view, None if timeout is None else _monotonic() + timeout)
        except unitls.TLSError as exc:
            return self._read_failed(exc)
        except TimeoutError:
            if timeout == 0.0:
                raise _want_read() from None
            raise

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Read up to `bufsize` decrypted bytes; `b""` at the end of the stream.

        Raises:
            TimeoutError: If nothing arrives within the timeout (nothing is lost:
                call again).
            ssl.SSLWantReadError: In non-blocking mode, if no data is waiting.
            ssl.SSLEOFError: On a close without close_notify, if ragged EOFs are not
                suppressed.
            ssl.SSLError: If the connection fails.
            OSError: If the socket is closed or the transport fails.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv()")
        stream = self._stream
        if stream is None or not self._done:
            stream = self._live()
        if bufsize <= 0:
            if bufsize < 0:
                raise ValueError("negative buffersize in recv")
            return b""
        timeout = self._timeout
        try:
            return stream.recv(bufsize, None if timeout is None else _monotonic() + timeout)
        except unitls.TLSError as exc:
            self._read_failed(exc)
            return b""
        except TimeoutError:
            if timeout == 0.0:
                raise _want_read() from None
            raise

    def read(self, len: int = 1024, buffer: Any = None) -> bytes | int:
        """`ssl.SSLSocket.read`: `recv_into(buffer, len)` if a buffer is given, else `recv(len)`."""
        if buffer is not None:
            return self.recv_into(buffer, len)
        return self.recv(len)

    def _read_failed(self, exc: unitls.TLSError) -> int:
        if isinstance(exc, unitls.RaggedEOF) and self._suppress_ragged_eofs:
            return 0
        raise _ssl_error(exc) from exc

    # -- writing -----------------------------------------------------------------------

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Encrypt and send all of `data`.

        The timeout bounds each wait for progress (every 16 KiB), as it bounds each
        write in the stdlib, not the whole call.

        Raises:
            TimeoutError: If the peer takes no data within the timeout. As with
                `socket.sendall`, how much was sent is then unknown: do not write
                to the connection again.
            ssl.SSLWantWriteError: In non-blocking mode, if the peer takes no data
                now (the same holds).
            ssl.SSLError: If the connection fails.
            OSError: If the socket is closed or the transport fails.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to sendall()")
        stream = self._stream
        if stream is None or not self._done:
            stream = self._live()
        if type(data) is not bytes:  # bytes take the stream's fast path as they are
            data = memoryview(data).cast("B")
        timeout = self._timeout
        try:
            if timeout is None or len(data) <= _SEND_CHUNK:
                stream.sendall(data, None if timeout is None else _monotonic() + timeout)
                return
            view = memoryview(data)
            for start in range(0, len(view), _SEND_CHUNK):
                stream.sendall(view[start : start + _SEND_CHUNK], _monotonic() + timeout)
        except unitls.TLSError as exc:
            raise _ssl_error(exc) from exc
        except TimeoutError:
            if timeout == 0.0:
                raise ssl.SSLWantWriteError(
                    ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write)"
                ) from None
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        """Send all of `data` (as `sendall`) and return its length."""
        view = memoryview(data).cast("B")
        self.sendall(view, flags)
        return len(view)

    def write(self, data: Any) -> int:
        """`ssl.SSLSocket.write`: send all of `data` and return its length."""
        return self.send(data)

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        """A file object reading and writing through the TLS connection (`socket.makefile`)."""
        # socket.makefile only needs recv_into, send/sendall and _io_refs from `self`.
        makefile: Any = socket.socket.makefile
        return makefile(self, mode, buffering, encoding=encoding, errors=errors, newline=newline)

    def _decref_socketios(self) -> None:
        # socket.SocketIO.close() calls this; the real close waits for the last file.
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    # -- the socket --------------------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        """Set the timeout of each blocking call (`None`: wait forever; 0: non-blocking)."""
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        """The timeout of each blocking call, as `socket.socket.gettimeout`."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """`settimeout(None)` if `flag`, else `settimeout(0.0)`."""
        self.settimeout(None if flag else 0.0)

    def fileno(self) -> int:
        """The underlying socket's file descriptor (-1 once closed)."""
        return self._raw.fileno()

    def getpeername(self) -> Any:
        """The remote address of the underlying socket."""
        return self._raw.getpeername()

    def getsockname(self) -> Any:
        """The local address of the underlying socket."""
        return self._raw.getsockname()

    def setsockopt(self, *args: Any) -> None:
        """`socket.socket.setsockopt` on the underlying socket."""
        self._raw.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        """`socket.socket.getsockopt` on the underlying socket."""
        return self._raw.getsockopt(*args)

    @property
    def family(self) -> socket.AddressFamily:
        """The underlying socket's address family."""
        return self._raw.family

    @property
    def type(self) -> socket.SocketKind:
        """The underlying socket's type (`SOCK_STREAM`)."""
        return self._raw.type

    @property
    def proto(self) -> int:
        """The underlying socket's protocol number."""
        return self._raw.proto

    def shutdown(self, how: int) -> None:
        """Shut the underlying TCP connection down (no close_notify), as the stdlib does."""
        self._raw.shutdown(how)

    def close(self) -> None:
        """Send close_notify (without waiting for the peer's) and close the socket.

        Deferred while a file from `makefile()` is open.
        """
        self._closed = True
        if self._io_refs <= 0:
            self._abort()

    def __enter__(self) -> SSLSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._stream is None else (self.version() or "handshaking")
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} fd={self.fileno()} "
            f"server_hostname={self._server_hostname!r} {state}>"
        )


class SSLObject(_Connection):
    """A client TLS connection over two `ssl.MemoryBIO`s, shaped like `ssl.SSLObject`.

    Returned by `SSLContext.wrap_bio`; not constructed directly. Each call moves what
    is waiting in `incoming` into the unitls buffer and what the buffer produced into
    `outgoing`; when more data from the peer is needed it raises
    `ssl.SSLWantReadError`, as the stdlib does.
    """

    __slots__ = ("__weakref__", "_backlog", "_eof_fed", "_incoming", "_outgoing")

    _incoming: ssl.MemoryBIO
    _outgoing: ssl.MemoryBIO
    _backlog: bytes
    _eof_fed: bool

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: objects come from `SSLContext.wrap_bio()`."""
        raise TypeError("SSLObject has no public constructor; use SSLContext.wrap_bio()")

    @classmethod
    def _create(
        cls,
        context: SSLContext,
        buffer: unitls.TLSBuffer,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        *,
        server_hostname: str | None,
        verified: bool,
    ) -> SSLObject:
        self = object.__new__(cls)
        self._init(context, buffer, server_hostname, verified)
        self._incoming = incoming
        self._outgoing = outgoing
        self._backlog = b""
        self._eof_fed = False
        return self

    def _feed(self) -> None:
        data = self._backlog + self._incoming.read()
        if data:
            try:
                self._buffer.process_incoming(data)
            except unitls.WantReadError:
                self._backlog = data  # the buffer is full: kept for the next call
            else:
                self._backlog = b""
        elif self._incoming.eof and not self._eof_fed:
            self._eof_fed = True
            self._buffer.process_incoming(b"")

    def _drain(self) -> None:
        while data := self._buffer.process_outgoing(65536):
            self._outgoing.write(data)

    def _failed(self, exc: unitls.TLSError) -> NoReturn:
        self._drain()  # an alert explains the failure to the peer
        if isinstance(exc, unitls.WantReadError):
            raise _want_read() from None
        raise _ssl_error(exc) from exc

    def do_handshake(self) -> None:
        """Advance the handshake.

        Raises:
            ssl.SSLWantReadError: More data from the peer is needed: send what
                `outgoing` holds, put the peer's bytes into `incoming`, call again.
            ssl.SSLCertVerificationError: If the certificate fails verification.
            ssl.SSLError: If the handshake fails otherwise.
        """
        try:
            self._feed()
            self._buffer.do_handshake()
        except unitls.TLSError as exc:
            self._failed(exc)
        self._drain()

    def read(self, len: int = 1024, buffer: Any = None) -> bytes | int:
        """Read up to `len` decrypted bytes (into `buffer` if given: the count).

        Returns `b""` (or 0) after the peer's close_notify.

        Raises:
            ssl.SSLWantReadError: As `do_handshake`.
            ssl.SSLEOFError: If `incoming` reached EOF without close_notify.
            ssl.SSLError: If the connection fails.
        """
        try:
            self._feed()
            result = self._buffer.read(len, buffer)
        except unitls.TLSError as exc:
            self._failed(exc)
        self._drain()
        return result

    def write(self, data: Any) -> int:
        """Encrypt all of `data` into `outgoing` and return its length.

        Raises:
            ssl.SSLWantReadError: Before the handshake completed.
            ssl.SSLError: If the connection fails.
        """
        view = memoryview(data).cast("B")
        total = len(view)
        try:
            while view:
                try:
                    taken = self._buffer.write(view)
                except unitls.WantWriteError:
                    taken = 0
                self._drain()
                view = view[taken:]
        except unitls.TLSError as exc:
            self._failed(exc)
        return total

    def unwrap(self) -> None:
        """Send close_notify and wait (by `ssl.SSLWantReadError`) for the peer's.

        Application data arriving meanwhile is discarded, as OpenSSL does.
        """
        buffer = self._buffer
        try:
            self._feed()
            while True:
                try:
                    buffer.shutdown()
                    break
                except unitls.WantReadError:
                    self._drain()
                    buffer.read(65536)  # data before the peer's close_notify is dropped
        except unitls.TLSError as exc:
            self._failed(exc)
        self._drain()

    def pending(self) -> int:
        """Always 0: decrypted data is not held outside the TLS engine."""
        return 0
