"""A unitls `TLSBuffer` driven over a blocking byte transport (the synchronous adapters' engine).

Theory of operation:

1. A `Transport` moves ciphertext: `recv(max_bytes, deadline)` (`b""` at EOF) and
   `sendall(data, deadline)`. `SocketTransport` is a connected socket kept in
   non-blocking mode and waited on with `poll`, so every call gets its own deadline
   and two threads never fight over `settimeout`. `TLSStream` is itself a
   `Transport`, so TLS can run inside TLS (HTTPS proxies) with no extra code.
2. Deadlines are absolute `time.monotonic()` values (`None`: wait forever); an
   expired one raises `TimeoutError`. `deadline_after(timeout)` converts.
3. Thread safety (httpcore's sync HTTP/2 reads and writes one stream from two
   threads): `_lock` guards every call into the buffer and is never held across
   I/O; `_send_lock` keeps ciphertext in the order the buffer produced it;
   `_recv_lock` lets one thread at a time read from the transport.
4. After the handshake, and after every read, whatever the buffer queued (alerts,
   KeyUpdate answers, the refusal of a renegotiation) is flushed at once: the peer
   may be waiting for it. `readable()` alone leaves it to the next read or write, as
   it never waits.
5. `readable()` answers "would a read return at once?": plaintext already
   decrypted (kept in `_unread` after a peek), an EOF, or ciphertext waiting on the
   transport. httpcore asks it before reusing an idle HTTP/1.1 connection.
6. A buffer read that can only raise `WantReadError` (no ciphertext waiting, and the
   last read neither filled its request nor ended the stream) is not attempted: the
   stream waits on the transport first, and `readable()` asks only the transport. A
   failed read costs an exception, twice per request otherwise.
"""

from __future__ import annotations

import math
import select
import socket
import sys
import threading
import time
from typing import Protocol

import unitls

__all__ = ["SocketTransport", "TLSStream", "Transport", "deadline_after", "socket_readable"]

_RECV_SIZE = 64 * 1024
_SEND_SIZE = 64 * 1024  # the buffer's fast path (no join of chunks)
_RECORD_HEADER = 5  # a buffer holding no more than this holds no complete record
#: How long `close()` may spend sending close_notify; the peer's answer is never awaited.
CLOSE_NOTIFY_TIMEOUT = 1.0


def deadline_after(timeout: float | None) -> float | None:
    """The absolute deadline for a relative `timeout` (`None` means no deadline)."""
    if timeout is None:
        return None
    return time.monotonic() + timeout


class Transport(Protocol):
    """A blocking, bidirectional byte pipe."""

    def recv(self, max_bytes: int, deadline: float | None) -> bytes:
        """Up to `max_bytes` bytes, `b""` at EOF; `TimeoutError` past `deadline`."""
        ...

    def sendall(self, data: bytes, deadline: float | None) -> None:
        """Send all of `data`; `TimeoutError` past `deadline`."""
        ...

    def readable(self) -> bool:
        """Whether `recv` would return without waiting."""
        ...

    def close(self) -> None: ...


def _wait(poller: select.poll, deadline: float | None) -> None:
    """Wait until `poller` reports its socket ready, or raise `TimeoutError`."""
    if deadline is None:
        poller.poll()  # without a timeout it returns only with an event (PEP 475)
        return
    while True:
        remaining = deadline - time.monotonic()
        if poller.poll(max(0, math.ceil(remaining * 1000))):
            return  # ready, even if the deadline has just passed
        if remaining <= 0:
            raise TimeoutError("timed out")


def socket_readable(sock: socket.socket) -> bool:
    """Whether `sock` has data or an EOF waiting (or is closed: a read fails at once).

    Polls with a poll object of its own: a reading thread may be waiting on the
    transport's.
    """
    if sock.fileno() < 0:
        return True
    if sys.platform == "win32":  # pragma: no cover - no poll() on Windows
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class SocketTransport:
    """A connected socket, switched to non-blocking mode and waited on with `poll`."""

    __slots__ = ("_in", "_out", "sock")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        # One poll object per direction, registered once (not per wait): the reading
        # and the writing thread each wait on their own, as a poll object refuses
        # concurrent poll() calls.
        self._in = select.poll()
        self._in.register(sock, select.POLLIN)
        self._out = select.poll()
        self._out.register(sock, select.POLLOUT)

    def recv(self, max_bytes: int, deadline: float | None) -> bytes:
        # Wait first: callers come here once the TLS buffer needs more, and the data
        # is usually not there yet (a request/response wait), so trying recv first
        # would mostly cost an EAGAIN exception.
        while True:
            _wait(self._in, deadline)
            try:
                return self.sock.recv(max_bytes)
            except (BlockingIOError, InterruptedError):
                pass

    def sendall(self, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            _wait(self._out, deadline)

    def readable(self) -> bool:
        return socket_readable(self.sock)

    def close(self) -> None:
        self.sock.close()


class TLSStream:
    """A `TLSBuffer` over a `Transport`; itself a `Transport` (for TLS inside TLS)."""

    def __init__(self, transport: Transport, buffer: unitls.TLSBuffer) -> None:
        self.transport = transport
        self.buffer = buffer
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._unread = b""
        self._closed = False
        # Whether a read could return without new ciphertext even when none waits:
        # the last read filled its request (the rest of that record is still in the
        # buffer), returned b"" (close_notify) or failed (it fails again). Otherwise
        # a read with no ciphertext waiting would only raise WantReadError, so
        # `recv` waits for the transport first and `readable()` does not look.
        self._maybe_more = False
        self._eof = False  # the transport's EOF went to the buffer

    # -- the pump -------------------------------------------------------------

    def _flush(self, deadline: float | None) -> None:
        """Send everything the buffer has queued, in order."""
        buffer = self.buffer
        with self._send_lock:
            while True:
                with self._lock:
                    data = buffer.process_outgoing(_SEND_SIZE)
                if not data:
                    return
                self.transport.sendall(data, deadline)
                if len(data) < _SEND_SIZE:
                    return  # drained (a thread that writes more flushes it itself)

    def _fill(self, deadline: float | None) -> None:
        """Move one chunk of ciphertext (or the EOF) from the transport to the buffer."""
        data = self.transport.recv(_RECV_SIZE, deadline)
        with self._lock:
            self.buffer.process_incoming(data)
        if not data:
            self._eof = True

    def _nothing_to_read(self) -> bool:
        """Whether a read is sure to raise WantReadError (a failed read costs an exception)."""
        if self._maybe_more or self._eof:
            return False
        with self._lock:
            return not self.buffer.incoming_bytes_buffered()

    def handshake(self, deadline: float | None) -> None:
        """Run the handshake to completion, or raise `TLSError` / `TimeoutError` / `OSError`."""
        buffer = self.buffer
        with self._recv_lock:
            while True:
                try:
                    with self._lock:
                        buffer.do_handshake()
                    break
                except unitls.WantReadError:
                    self._flush(deadline)
                    self._fill(deadline)
                except unitls.TLSError:
                    self._flush_quietly()  # let the alert reach the peer
                    raise
        self._flush(deadline)

    def _flush_quietly(self) -> None:
        try:
            self._flush(deadline_after(CLOSE_NOTIFY_TIMEOUT))
        except (OSError, unitls.TLSError):
            pass

    # -- plaintext --------------------------------------------------------------

    def recv(self, max_bytes: int, deadline: float | None) -> bytes:
        """Up to `max_bytes` of plaintext; `b""` after the peer's close_notify.

        Raises `RaggedEOF` if the transport ends without close_notify.
        """
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        buffer = self.buffer
        with self._recv_lock:
            if self._unread:
                data, self._unread = self._unread[:max_bytes], self._unread[max_bytes:]
                return data
            if self._nothing_to_read():
                self._fill(deadline)
            while True:
                with self._lock:
                    try:
                        data = buffer.read(max_bytes)  # type: ignore[assignment]
                    except unitls.WantReadError:
                        data = None  # type: ignore[assignment]
                    except unitls.TLSError:
                        self._maybe_more = True
                        raise
                    queued = buffer.outgoing_bytes_buffered()
                if queued:
                    self._flush(deadline)
                if data is not None:
                    self._maybe_more = not data or len(data) == max_bytes
                    return data
                self._fill(deadline)

    def recv_into(self, target: memoryview, deadline: float | None) -> int:
        """Read plaintext into `target`; 0 after the peer's close_notify.

        Decrypts straight into `target` (no intermediate `bytes`): this is the path
        `socket.makefile()` readers (http.client, urllib3) take for every read.
        """
        size = len(target)
        if size == 0:
            return 0
        buffer = self.buffer
        with self._recv_lock:
            if self._unread:
                data, self._unread = self._unread[:size], self._unread[size:]
                target[: len(data)] = data
                return len(data)
            if self._nothing_to_read():
                self._fill(deadline)
            while True:
                with self._lock:
                    try:
                        n = buffer.read(size, target)
                    except unitls.WantReadError:
                        n = -1
                    except unitls.TLSError:
                        self._maybe_more = True
                        raise
                    queued = buffer.outgoing_bytes_buffered()
                if queued:
                    self._flush(deadline)
                if n >= 0:  # type: ignore[operator]  # read() with a buffer returns a count
                    self._maybe_more = n == 0 or n == size
                    if 0 < n < size and not queued:  # type: ignore[operator]
                        n = self._read_more(target, n, size, deadline)  # type: ignore[arg-type]
                    return n  # type: ignore[return-value]
                self._fill(deadline)

    def _read_more(self, target: memoryview, n: int, size: int, deadline: float | None) -> int:
        """Add records that already wait in the buffer to a successful read.

        A read returns one TLS record (16 KiB at most); a large `recv_into` would
        otherwise go back through every layer above (SocketIO, BufferedReader,
        http.client) once per record. A read that fails after data was read leaves
        its error to the next call, so the data read so far is returned intact.
        """
        buffer = self.buffer
        while n < size:
            with self._lock:
                if buffer.incoming_bytes_buffered() <= _RECORD_HEADER:
                    break  # no complete record waits
                try:
                    more: int = buffer.read(size - n, target[n:])  # type: ignore[assignment]
                except unitls.WantReadError:  # no application data after what was read
                    more = -1
                except unitls.TLSError:
                    self._maybe_more = True  # the next call raises it
                    break
                queued = buffer.outgoing_bytes_buffered()
            if queued:  # rule 4: the peer may be waiting for it
                self._flush(deadline)
            if more <= 0:
                if more == 0:
                    self._maybe_more = True  # close_notify: the next call returns 0
                break
            n += more
        self._maybe_more = self._maybe_more or n == size
        return n

    def sendall(self, data: bytes | memoryview, deadline: float | None) -> None:
        """Encrypt and send all of `data`."""
        buffer = self.buffer
        if type(data) is bytes:  # the common case: no memoryview (the buffer's fast path)
            with self._lock:
                try:
                    n = buffer.write(data)
                except unitls.WantWriteError:
                    n = 0
            self._flush(deadline)
            if n == len(data):
                return
            view = memoryview(data)[n:]
        else:
            view = memoryview(data).cast("B")
        while view:
            with self._lock:
                try:
                    n = buffer.write(view)
                except unitls.WantWriteError:
                    n = 0  # the buffer is full: the flush below makes room
            view = view[n:]
            self._flush(deadline)

    def readable(self) -> bool:
        """Whether a read would return at once (data, EOF or an error)."""
        if self._unread or self._closed:
            return True
        buffer = self.buffer
        if not self._recv_lock.acquire(blocking=False):
            # Another thread is reading: leave the buffer to it and answer for the
            # transport alone (as a plain socket would). Saying True here would tell
            # httpcore's pool that a connection in use was dropped: it checks an
            # "idle" connection that another thread is just starting to use, and
            # closes it if readable.
            return self.transport.readable()
        try:
            if not self._nothing_to_read():
                with self._lock:
                    try:
                        data = buffer.read(_RECV_SIZE)
                    except unitls.WantReadError:
                        self._maybe_more = False
                    except unitls.TLSError:
                        self._maybe_more = True
                        return True  # the next read raises it
                    else:
                        self._unread = data  # type: ignore[assignment]
                        self._maybe_more = not data or len(data) == _RECV_SIZE  # type: ignore[arg-type]
                        return True  # plaintext, or b"" for close_notify
        finally:
            self._recv_lock.release()
        return self.transport.readable()

    def close(self) -> None:
        """Send close_notify (without waiting for the peer's) and close the transport."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                self.buffer.shutdown()
        except unitls.TLSError:
            pass  # WantReadError: the peer has not closed yet, which we do not wait for
        self._flush_quietly()
        self.transport.close()
