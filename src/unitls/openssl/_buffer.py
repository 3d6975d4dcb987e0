"""The sans-I/O TLS buffer: a pyOpenSSL memory-BIO connection with a thin data path.

Theory of operation:

1. Ciphertext from the network goes straight into OpenSSL's read BIO
   (`process_incoming`); ciphertext for the network is taken straight from its
   write BIO (`process_outgoing`). Whatever OpenSSL queues while handshaking,
   reading or writing (alerts, session tickets, KeyUpdate answers) is in that
   BIO at once, so "flush after every read" needs no extra work.
2. Both BIOs are bounded by unitls (OpenSSL's memory BIOs never push back):
   `process_incoming` refuses data with `WantReadError` while more than
   `INCOMING_LIMIT` bytes wait, and `write` stops taking plaintext (or raises
   `WantWriteError`) while more than `OUTGOING_LIMIT` bytes wait to be sent.
3. In the OPEN state `read`, `write`, `process_incoming` and `process_outgoing`
   call OpenSSL directly (`SSL_read`, `SSL_write`, `BIO_read`, `BIO_write`) and
   look at errors only when a call returns <= 0; everything else goes through
   pyOpenSSL's methods and the one translation point in `_errors.py`.
4. `process_incoming(b"")` means the transport reached EOF (h11's convention).
   Buffered plaintext is still delivered; then `read` returns `b""` if the peer
   sent close_notify and raises `RaggedEOF` otherwise.
5. A fatal error moves the buffer to FAILED: every later `read`, `write`,
   `do_handshake`, `shutdown` and `process_incoming` raises an error of the same
   type, with the same attributes, whose message names the state (never a Want*
   signal), while `process_outgoing` still hands out any alert OpenSSL queued.
6. One call at a time: a buffer refuses a call (with a `TLSError` naming the
   state "busy") while another thread is inside a call on it, instead of letting
   two threads into one `SSL` object (cffi releases the GIL around every OpenSSL
   call). The check is a test-and-set of a flag, not a lock, so it costs the
   data path a few bytecodes per call; callers that share a buffer between
   threads serialize their calls with their own lock, as the HTTP integrations
   do (they need one anyway, to keep the ciphertext they move in order).

Memory per connection (one buffer; pyOpenSSL 26.4 on OpenSSL 4.0.3, measured by
tests/openssl/test_resources.py): about 36 KiB idle after the handshake with the
default key exchange (the benchmark's P-256 figure is 60 KiB for a client and a
server end together). With both limits full, one buffer holds at most

    INCOMING_LIMIT + the largest chunk given to one process_incoming call
  + OUTGOING_LIMIT + one record (16 KiB + 261 bytes)
  + 64 KiB for OpenSSL's state, its two record buffers and the Python objects,

which is 656 KiB with 64 KiB chunks (620 KiB measured). OpenSSL's memory BIOs
never shrink, so a buffer that was once full keeps that memory until it is freed,
even after everything was drained (636 KiB measured).
"""

from __future__ import annotations

import enum
import threading
from typing import TYPE_CHECKING, Any, NoReturn

from OpenSSL import SSL, crypto
from typing_extensions import Buffer

from .._enums import CipherSuite, NextProtocol, TLSVersion
from .._errors import TLSError, WantReadError, WantWriteError
from ._ciphers import cipher_from_name
from ._errors import translate
from ._lowlevel import ffi, lib
from ._verify import PeerName, expect_peer, parse_server_hostname

if TYPE_CHECKING:
    from ._context import OpenSSLClientContext, OpenSSLServerContext

__all__ = ["OpenSSLTLSBuffer", "INCOMING_LIMIT", "OUTGOING_LIMIT"]

#: `process_incoming` raises `WantReadError` (and stores nothing) while more than
#: this many bytes of ciphertext wait unprocessed.
INCOMING_LIMIT = 256 * 1024
#: `write` takes no more plaintext while more than this many bytes of ciphertext
#: wait for `process_outgoing`; if nothing could be taken it raises `WantWriteError`.
OUTGOING_LIMIT = 256 * 1024

_SCRATCH_SIZE = 64 * 1024
_MAX_RECORD = 16 * 1024

_SSL_ERROR_WANT_READ = lib.SSL_ERROR_WANT_READ
_SSL_ERROR_ZERO_RETURN = lib.SSL_ERROR_ZERO_RETURN
_SENT_SHUTDOWN = SSL.SENT_SHUTDOWN
_RECEIVED_SHUTDOWN = SSL.RECEIVED_SHUTDOWN
_NULL = ffi.NULL
_SSL_read = lib.SSL_read
_SSL_write = lib.SSL_write
_BIO_read = lib.BIO_read
_BIO_write = lib.BIO_write
_BIO_pending = lib.BIO_get_mem_data  # BIO_CTRL_INFO: bytes readable from a mem BIO
_unpack = ffi.unpack
_from_buffer = ffi.from_buffer


class _State(enum.Enum):
    #: Created; the handshake has not completed.
    HANDSHAKING = "handshaking"
    #: Handshake complete; data flows both ways.
    OPEN = "open"
    #: We sent close_notify; reading goes on until the peer's arrives.
    SHUTDOWN_SENT = "shutdown sent"
    #: The peer's close_notify arrived; reads return b"", writes are still allowed.
    PEER_CLOSED = "peer closed"
    #: Both close_notify alerts exchanged, or clean EOF after the peer's.
    CLOSED = "closed"
    #: A fatal error happened; every further operation raises it.
    FAILED = "failed"


_OPEN = _State.OPEN

# One scratch area per thread for copies out of OpenSSL: cffi releases the GIL
# during calls, so a shared area could be written by two threads at once.
_local = threading.local()


def _new_scratch() -> Any:
    _local.scratch = ffi.new("char[]", _SCRATCH_SIZE)
    return _local.scratch


def _writable(buffer: object) -> Any:
    """The caller's buffer as cffi memory, or `TypeError` as `socket.recv_into` says."""
    try:
        return _from_buffer(buffer, require_writable=True)
    except (BufferError, TypeError) as exc:  # read-only, not contiguous, not a buffer
        raise TypeError(
            f"read() needs a writable, contiguous buffer, not {type(buffer).__name__}: {exc}"
        ) from None


# _release_before_raising: a frame that holds a cffi view of the caller's buffer
# (`ffi.from_buffer`) drops it before anything can raise. A traceback keeps the
# frame alive, tracebacks easily end up in reference cycles (a failed buffer keeps
# its error), and when the garbage collector clears a memoryview whose buffer is
# still exported, CPython 3.11 later crashes freeing it (segfault in
# memory_dealloc). tests/openssl/test_misuse.py reproduces it.


def _readable(method: str, data: object) -> Any:
    """`data` as cffi memory, or a `TypeError` that names the method."""
    try:
        return _from_buffer(data)
    except (BufferError, TypeError) as exc:  # str, int, None, not contiguous
        raise TypeError(
            f"{method}() needs a contiguous bytes-like object, not {type(data).__name__}: {exc}"
        ) from None


def _check_int(method: str, name: str, value: object) -> None:
    """Raise a `TypeError` naming `name` unless `value` is an int.

    Only called on slow paths or after something raised `TypeError`, so the data
    path pays nothing. `from None`: the `TypeError` it replaces (cffi's, or its own
    from a nested check) adds nothing.
    """
    if not isinstance(value, int):
        raise TypeError(
            f"{method}() argument {name} must be an int, not {type(value).__name__}"
        ) from None


def _again(error: TLSError, operation: str) -> TLSError:
    """A new error of `error`'s type and attributes whose message names the state.

    Built without calling `__init__` (subclasses such as
    `CertificateVerificationError` take keyword-only arguments); a fresh object
    per call, so the original's traceback and context are never overwritten.
    """
    cls = type(error)
    again = cls.__new__(cls, f"Cannot {operation} in state failed: {error}")
    again.__dict__.update(error.__dict__)
    return again


class OpenSSLTLSBuffer:
    """An in-memory TLS connection (PEP 748 `TLSBuffer`) on OpenSSL.

    Created by `OpenSSLClientContext.create_buffer` and
    `OpenSSLServerContext.create_buffer`; not constructed directly.

    Threads: the context may be shared freely, and a buffer may move from thread
    to thread, but it serves one call at a time. A call made while another thread
    is inside a call on the same buffer raises `TLSError` ("Cannot read in state
    busy: ...") and changes nothing; serialize calls with a lock if several threads
    use one buffer (a buffer call never blocks, so the lock is held only briefly).
    `incoming_bytes_buffered`, `outgoing_bytes_buffered` and `context` may be read
    at any time. The check is exact on CPython with the GIL; on free-threaded
    builds it is best effort, so there the lock is required.
    """

    __slots__ = (
        "__weakref__",
        "_busy",
        "_client",
        "_conn",
        "_context",
        "_eof",
        "_error",
        "_handshook",
        "_names",
        "_peer",
        "_rbio",
        "_session_key",
        "_ssl",
        "_state",
        "_wbio",
    )

    _context: OpenSSLClientContext | OpenSSLServerContext
    _conn: SSL.Connection
    # cffi handles: SSL* and the read/write memory BIOs of _conn
    _ssl: Any
    _rbio: Any
    _wbio: Any
    _state: _State
    _error: TLSError | None
    _eof: bool
    _peer: PeerName | None
    _session_key: str | None
    _names: dict[str, int]
    _client: bool
    _handshook: bool
    # Whether a call is running inside this buffer (theory of operation, rule 6).
    _busy: bool

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: buffers come from a context's `create_buffer()`."""
        raise TypeError(
            f"{type(self).__name__} has no public constructor; use a context's create_buffer()"
        )

    @classmethod
    def _new(
        cls,
        context: OpenSSLClientContext | OpenSSLServerContext,
        ssl_context: SSL.Context,
    ) -> OpenSSLTLSBuffer:
        self = object.__new__(cls)
        conn = SSL.Connection(ssl_context, None)
        self._context = context
        self._conn = conn
        self._ssl = conn._ssl
        self._rbio = conn._into_ssl
        self._wbio = conn._from_ssl
        self._state = _State.HANDSHAKING
        self._error = None
        self._eof = False
        self._peer = None
        self._session_key = None
        self._handshook = False
        self._busy = False
        return self

    @classmethod
    def _create_client(
        cls,
        context: OpenSSLClientContext,
        server_hostname: str | None,
        *,
        check_name: bool = True,
    ) -> OpenSSLTLSBuffer:
        self = cls._new(context, context._ssl_context)
        self._client = True
        self._names = context._plan.names
        conn = self._conn
        if server_hostname is not None:
            peer = parse_server_hostname(server_hostname)
            self._peer = peer
            expect_peer(conn, peer, check_name=check_name and context._check_hostname)
            session = context._get_session(peer.key)
            if session is not None:
                conn.set_session(session)
            self._session_key = peer.key
        conn.set_connect_state()
        return self

    @classmethod
    def _create_server(cls, context: OpenSSLServerContext) -> OpenSSLTLSBuffer:
        self = cls._new(context, context._contexts.default)
        self._client = False
        self._names = context._contexts.plan.names
        self._conn.set_accept_state()
        return self

    # Every public method below that reaches OpenSSL has the same frame:
    #
    #     busy, self._busy = self._busy, True
    #     if busy:
    #         raise self._refuse(...)
    #     try:
    #         ...
    #     finally:
    #         self._busy = False
    #
    # The first line is a test-and-set: one line with no call and no backward
    # jump, so under the GIL no other thread runs between its read and its write
    # (and no line-tracing hook either). A refused call leaves the flag alone: it
    # belongs to the call that is running. Internal helpers never call public
    # methods, so a call never refuses itself.

    # -- data path ---------------------------------------------------------------

    def read(self, amt: int, buffer: Buffer | None = None) -> bytes | int:
        """Read up to `amt` bytes of decrypted data.

        Reads at most one TLS record per call, so it may return fewer bytes than
        asked for even when more are buffered; call again. Before the handshake
        has completed, `read` drives it (verifying the peer) and raises
        `WantReadError` until it is done, as `do_handshake` would.

        Args:
            amt: The most bytes to return.
            buffer: If given, data is written into it (at most `amt` bytes and never
                more than it holds) and the count is returned.

        Returns:
            The data (or a count); `b""` (or 0) once the peer closed cleanly.

        Raises:
            WantReadError: More ciphertext is needed: feed `process_incoming`, then
                call again. Drain `process_outgoing` as well: reading can queue
                answers for the peer.
            RaggedEOF: The transport ended (`process_incoming(b"")`) without
                close_notify, after all buffered data was delivered.
            TLSError: The connection failed (and stays failed), or another thread
                is inside a call on this buffer.
            TypeError: If `amt` is not an int or `buffer` is not a writable,
                contiguous buffer.
            ValueError: If `amt` is negative.
        """
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("read")
        try:
            if self._state is _OPEN and amt > 0:
                if buffer is not None:
                    return self._read_into(amt, buffer)
                try:
                    scratch = _local.scratch
                except AttributeError:
                    scratch = _new_scratch()
                n = _SSL_read(self._ssl, scratch, amt if amt < _SCRATCH_SIZE else _SCRATCH_SIZE)
                if n > 0:
                    if self._session_key is not None:
                        self._store_session()
                    return _unpack(scratch, n)  # type: ignore[no-any-return]
                return self._read_failed(n, None)
            return self._read_slow(amt, buffer)
        except TypeError:
            _check_int("read", "amt", amt)
            raise
        finally:
            self._busy = False

    def _read_into(self, amt: int, buffer: Buffer) -> int:
        dest = _writable(buffer)
        size = len(dest)
        try:
            if amt > size:
                _check_int("read", "amt", amt)  # a float must not pass by being clamped
                amt = size
            if amt == 0:  # SSL_read(…, 0) would read as an EOF
                return 0
            n = _SSL_read(self._ssl, dest, amt)
        except TypeError:  # amt is not an int (read() names it)
            del dest  # see _release_before_raising
            raise
        if n > 0:
            if self._session_key is not None:
                self._store_session()
            return n  # type: ignore[no-any-return]
        del dest  # before anything raises: see _release_before_raising
        return self._read_failed(n, buffer)  # type: ignore[return-value]

    def write(self, buf: Buffer) -> int:
        """Encrypt `buf` and queue the ciphertext for `process_outgoing`.

        Before the handshake has completed, `write` drives it (verifying the peer)
        and raises `WantReadError` until it is done; no plaintext is ever queued
        before that.

        Returns:
            How many bytes of `buf` were taken: all of it unless more than
            `OUTGOING_LIMIT` bytes wait to be sent, in which case call again with
            the rest after draining `process_outgoing`. `write(b"")` returns 0.

        Raises:
            WantWriteError: Nothing could be taken: drain `process_outgoing`, then
                call again with the same data.
            WantReadError: The handshake has not completed: feed
                `process_incoming` (and drain `process_outgoing`), then call again.
            TLSError: The connection failed, was shut down for writing
                (`shutdown` was called), or another thread is inside a call on
                this buffer.
            TypeError: If `buf` is not a contiguous bytes-like object.
        """
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("write")
        try:
            if self._state is not _OPEN:
                return self._write_slow(buf)
            if type(buf) is bytes:
                length = len(buf)
                if length <= _MAX_RECORD:
                    if length == 0:
                        return 0
                    if _BIO_pending(self._wbio, _NULL) > OUTGOING_LIMIT:
                        raise WantWriteError(
                            "More than OUTGOING_LIMIT bytes wait for process_outgoing"
                        )
                    n = _SSL_write(self._ssl, buf, length)
                    if n > 0:
                        return n  # type: ignore[no-any-return]
                    return self._write_failed(n)
            return self._write_many(buf)
        finally:
            self._busy = False

    def _write_many(self, buf: Buffer) -> int:
        source = _readable("write", buf)
        length = len(source)
        if length == 0:
            return 0
        ssl, wbio = self._ssl, self._wbio
        if _BIO_pending(wbio, _NULL) > OUTGOING_LIMIT:
            del source  # see _release_before_raising
            raise WantWriteError("More than OUTGOING_LIMIT bytes wait for process_outgoing")
        written: int = 0
        while True:
            n = _SSL_write(ssl, source + written, length - written)
            if n <= 0:
                if written:
                    return written
                del source  # see _release_before_raising
                return self._write_failed(n)
            written += int(n)
            if written >= length or _BIO_pending(wbio, _NULL) > OUTGOING_LIMIT:
                return written

    def process_incoming(self, data_from_network: Buffer) -> None:
        """Hand ciphertext received from the network to the TLS engine.

        `process_incoming(b"")` signals that the transport reached EOF.

        Raises:
            WantReadError: More than `INCOMING_LIMIT` bytes already wait; nothing
                was stored. Call `read` (or `do_handshake`) to consume some first.
            TLSError: Called after EOF was signalled, on a failed buffer, or while
                another thread is inside a call on this buffer.
            TypeError: If `data_from_network` is not a contiguous bytes-like object.
        """
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("process_incoming")
        try:
            if self._eof or self._state is _State.FAILED:
                self._raise_state("process_incoming")
            rbio = self._rbio
            if type(data_from_network) is bytes:
                length = len(data_from_network)
                data: object = data_from_network
            else:
                data = _readable("process_incoming", data_from_network)
                length = len(data)  # type: ignore[arg-type]
            if length == 0:
                self._eof = True
                self._conn.bio_shutdown()
                return
            if _BIO_pending(rbio, _NULL) > INCOMING_LIMIT:
                del data  # see _release_before_raising
                raise WantReadError("More than INCOMING_LIMIT bytes wait to be read")
            _BIO_write(rbio, data, length)
        finally:
            self._busy = False

    def process_outgoing(self, amount_bytes_for_network: int) -> bytes:
        """Remove and return up to `amount_bytes_for_network` bytes of ciphertext.

        Returns `b""` when nothing waits. Still works after a fatal error, so the
        alert that explains it reaches the peer.

        Raises:
            TLSError: Another thread is inside a call on this buffer.
            TypeError: If `amount_bytes_for_network` is not an int.
            ValueError: If `amount_bytes_for_network` is negative.
        """
        amount = amount_bytes_for_network
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("process_outgoing")
        try:
            if 0 < amount <= _SCRATCH_SIZE:
                try:
                    scratch = _local.scratch
                except AttributeError:
                    scratch = _new_scratch()
                n = _BIO_read(self._wbio, scratch, amount)
                return _unpack(scratch, n) if n > 0 else b""
            return self._outgoing_slow(amount)
        except TypeError:
            _check_int("process_outgoing", "amount_bytes_for_network", amount)
            raise
        finally:
            self._busy = False

    def _outgoing_slow(self, amount: int) -> bytes:
        # Before any BIO_read: a float found out in the loop would lose what was read.
        _check_int("process_outgoing", "amount_bytes_for_network", amount)
        if amount < 0:
            raise ValueError(
                f"process_outgoing() argument amount_bytes_for_network must be >= 0, not {amount}"
            )
        try:
            scratch = _local.scratch
        except AttributeError:
            scratch = _new_scratch()
        chunks = []
        while amount > 0:
            n = _BIO_read(self._wbio, scratch, amount if amount < _SCRATCH_SIZE else _SCRATCH_SIZE)
            if n <= 0:
                break
            chunks.append(_unpack(scratch, n))
            amount -= n
        return b"".join(chunks)

    def incoming_bytes_buffered(self) -> int:
        """How many bytes of ciphertext wait inside OpenSSL to be processed."""
        return int(_BIO_pending(self._rbio, _NULL))

    def outgoing_bytes_buffered(self) -> int:
        """How many bytes of ciphertext wait to be taken by `process_outgoing`."""
        return int(_BIO_pending(self._wbio, _NULL))

    # -- handshake and shutdown -----------------------------------------------------

    def do_handshake(self) -> None:
        """Run the TLS handshake, verifying the peer's certificate and name.

        Returns once the handshake is complete, and at once whenever it already
        is, also after either side shut down: like `ssl.SSLObject.do_handshake`,
        it means "make sure the handshake is done" and changes nothing then.

        Raises:
            WantReadError: The peer's next flight is needed: drain
                `process_outgoing` to the network, feed what arrives to
                `process_incoming`, then call again.
            CertificateVerificationError: The peer's certificate failed verification.
            TLSError: The handshake failed otherwise, now or earlier (state
                "failed"), or another thread is inside a call on this buffer.
        """
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("do_handshake")
        try:
            self._handshake()
        finally:
            self._busy = False

    def _handshake(self) -> None:
        state = self._state
        if state is not _State.HANDSHAKING:
            if state is _State.FAILED:
                self._raise_state("do_handshake")
            return
        ssl = self._ssl
        result = lib.SSL_do_handshake(ssl)
        if result != 1:
            if lib.SSL_get_error(ssl, result) == _SSL_ERROR_WANT_READ:
                raise WantReadError("The handshake needs more data from the peer")
            try:
                self._conn._raise_ssl_error(ssl, result)
            except Exception as exc:
                self._fail(exc)
            self._fail(TLSError(f"OpenSSL failed the handshake without an error ({result})"))
        self._handshook = True
        self._state = _OPEN

    def shutdown(self) -> None:
        """Close the TLS connection cleanly: queue close_notify for the peer.

        Returns once the peer's close_notify has also arrived.

        Raises:
            WantReadError: The peer has not closed yet. Send `process_outgoing`, then
                `read` until it returns `b""`; `shutdown` then returns.
            TLSError: Before the handshake has completed (state "handshaking"), on
                a failed buffer, or while another thread is inside a call on this
                buffer.
        """
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("shutdown")
        try:
            state = self._state
            if state is _State.FAILED:
                self._raise_state("shutdown")
            if state is _State.CLOSED:
                return
            if state is _State.HANDSHAKING:
                raise TLSError(
                    "Cannot shutdown in state handshaking: complete or abandon the handshake"
                )
            if state is not _State.SHUTDOWN_SENT:
                try:
                    self._conn.shutdown()
                except SSL.Error as exc:
                    self._fail(exc)
                if state is _State.PEER_CLOSED:
                    self._state = _State.CLOSED
                    return
                self._state = _State.SHUTDOWN_SENT
            raise WantReadError("Waiting for the peer's close_notify: read() until it returns b''")
        finally:
            self._busy = False

    # -- information ---------------------------------------------------------------

    @property
    def context(self) -> OpenSSLClientContext | OpenSSLServerContext:
        """The context this buffer was created from."""
        return self._context

    def cipher(self) -> CipherSuite | int | None:
        """The negotiated cipher suite; a raw 16-bit id if it is not in `CipherSuite`;
        `None` until the handshake completes."""
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("cipher")
        try:
            if not self._handshook:
                return None
            name = self._conn.get_cipher_name()
            return cipher_from_name(name, self._names) if name is not None else None
        finally:
            self._busy = False

    def negotiated_protocol(self) -> NextProtocol | bytes | None:
        """The protocol ALPN selected (a `NextProtocol`, or raw bytes for others);
        `None` if none was, or until the handshake completes."""
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("negotiated_protocol")
        try:
            if not self._handshook:
                return None
            proto = self._conn.get_alpn_proto_negotiated()
        finally:
            self._busy = False
        if not proto:
            return None
        try:
            return NextProtocol(proto)
        except ValueError:
            return proto

    @property
    def negotiated_tls_version(self) -> TLSVersion | None:
        """The negotiated TLS version; `None` until the handshake completes."""
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("negotiated_tls_version")
        try:
            if not self._handshook:
                return None
            name = self._conn.get_protocol_version_name()
        finally:
            self._busy = False
        try:
            return TLSVersion(name)
        except ValueError:  # pragma: no cover - only TLS 1.2/1.3 can be negotiated
            return None

    def getpeercert(self) -> bytes | None:
        """The DER bytes of the peer's leaf certificate, or `None` (no handshake yet,
        or a server that did not ask for a client certificate)."""
        busy, self._busy = self._busy, True
        if busy:
            raise self._refuse("getpeercert")
        try:
            if not self._handshook:
                return None
            # The DER as OpenSSL holds it: no round trip through cryptography, whose
            # strict parser refuses certificates OpenSSL accepted (an insecure
            # connection may have any certificate at all).
            cert = self._conn.get_peer_certificate()
        finally:
            self._busy = False
        return None if cert is None else crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)

    def __repr__(self) -> str:
        side = "client" if self._client else "server"
        return f"<{type(self).__name__} {side} state={self._state.value}>"

    # -- slow paths --------------------------------------------------------------

    def _read_slow(self, amt: int, buffer: Buffer | None) -> bytes | int:
        _check_int("read", "amt", amt)
        if amt < 0:
            raise ValueError(f"read() argument amt must be >= 0, not {amt}")
        state = self._state
        if state is _State.FAILED:
            self._raise_state("read")
        if buffer is not None:
            _writable(buffer)  # a bad buffer is refused before anything happens
        if state is _State.PEER_CLOSED or state is _State.CLOSED:
            return 0 if buffer is not None else b""
        if state is _State.HANDSHAKING:
            self._handshake()
        if buffer is not None:
            return self._read_into(amt, buffer)
        if amt == 0:
            return b""
        # The same read as read()'s inlined fast path, for the other live states.
        try:
            scratch = _local.scratch
        except AttributeError:
            scratch = _new_scratch()
        n = _SSL_read(self._ssl, scratch, amt if amt < _SCRATCH_SIZE else _SCRATCH_SIZE)
        if n > 0:
            return _unpack(scratch, n)  # type: ignore[no-any-return]
        return self._read_failed(n, None)

    def _read_failed(self, n: int, buffer: Buffer | None) -> bytes | int:
        code = lib.SSL_get_error(self._ssl, n)
        if code == _SSL_ERROR_WANT_READ:
            raise WantReadError("More TLS data is needed from the peer")
        if code == _SSL_ERROR_ZERO_RETURN:
            if self._session_key is not None:
                self._store_session()
            self._state = (
                _State.CLOSED if self._state is _State.SHUTDOWN_SENT else _State.PEER_CLOSED
            )
            return 0 if buffer is not None else b""
        try:
            self._conn._raise_ssl_error(self._ssl, n)
        except Exception as exc:
            self._fail(exc)
        self._fail(TLSError(f"OpenSSL failed a read without an error (code {code})"))

    def _write_slow(self, buf: Buffer) -> int:
        state = self._state
        if state is _State.HANDSHAKING:
            if not len(_readable("write", buf)):
                return 0
            self._handshake()
            return self._write_many(buf)
        if state is _State.PEER_CLOSED:
            return self._write_many(buf)
        self._raise_state("write")

    def _write_failed(self, n: int) -> int:
        try:
            self._conn._raise_ssl_error(self._ssl, n)
        except SSL.WantReadError:
            raise WantReadError("The peer must send data before this write can proceed") from None
        except SSL.WantWriteError:  # pragma: no cover - memory BIOs never push back
            raise WantWriteError("Outgoing TLS data must be sent first") from None
        except Exception as exc:
            self._fail(exc)
        self._fail(TLSError(f"OpenSSL failed a write without an error (result {n})"))

    def _fail(self, exc: BaseException) -> NoReturn:
        error = translate(
            exc,
            self._conn,
            eof=self._eof,
            peer=self._peer,
            handshaking=self._state is _State.HANDSHAKING,
        )
        if isinstance(error, (WantReadError, WantWriteError)):
            raise error from exc
        self._state = _State.FAILED
        self._error = error
        raise error from exc

    def _raise_state(self, operation: str) -> NoReturn:
        error = self._error
        if error is not None:
            raise _again(error, operation) from error
        if self._eof and operation == "process_incoming":
            raise TLSError("Cannot process_incoming after transport EOF (process_incoming(b''))")
        raise TLSError(f"Cannot {operation} in state {self._state.value}")

    def _refuse(self, operation: str) -> TLSError:
        return TLSError(
            f"Cannot {operation} in state busy: another thread is inside a call on this "
            "buffer; a TLS buffer serves one call at a time (serialize calls with a lock)"
        )

    def _store_session(self) -> None:
        # TLS 1.3 tickets arrive after the handshake, ahead of the server's first
        # data, so the first successful read is the moment to keep the session.
        key = self._session_key
        self._session_key = None
        session = self._conn.get_session()
        if session is not None and key is not None:
            self._context._put_session(key, session)  # type: ignore[union-attr]
