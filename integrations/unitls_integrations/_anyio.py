"""The asynchronous httpcore streams of `unitls_integrations.httpcore`, on anyio.

The async mirror of the synchronous side: `AsyncTLSStream` is the engine, a unitls
`TLSBuffer` driven over an anyio byte stream (as `_blocking.TLSStream` is over a
blocking transport), and itself a byte stream, so TLS stacks in TLS (HTTPS
proxies). `AsyncStream` is what httpcore sees, one class before and after
`start_tls`: it runs over the anyio socket stream of a plain TCP connection, then
over the `AsyncTLSStream` that `start_tls` built. Everything here runs under
asyncio and trio alike.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import httpcore

import unitls

from ._blocking import CLOSE_NOTIFY_TIMEOUT, socket_readable
from ._stream_common import (
    SSLObjectView,
    connect_error,
    extra_info,
    read_error,
    write_error,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["ASYNC_IO_ERRORS", "AsyncStream", "AsyncTLSStream"]

_RECV_SIZE = 64 * 1024
_SEND_SIZE = 64 * 1024

#: Makes the unitls buffer for `start_tls(ssl_context, server_hostname)`.
BufferFactory = Callable[[object, "str | None"], unitls.TLSBuffer]

#: What anyio raises for a broken or closed connection (OSError on some backends).
ASYNC_IO_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


class _ByteStream(Protocol):
    """What the async TLS stream runs over: an anyio byte stream, or another TLS stream."""

    async def receive(self, max_bytes: int = 65536) -> bytes: ...
    async def send(self, item: bytes) -> None: ...
    async def aclose(self) -> None: ...


async def _start_tls(
    make_buffer: BufferFactory,
    transport: _ByteStream,
    sock: socket.socket,
    ssl_context: object,
    server_hostname: str | None,
    timeout: float | None,
) -> AsyncStream:
    try:
        buffer = make_buffer(ssl_context, server_hostname)
        tls = AsyncTLSStream(transport, buffer, sock)
        with anyio.fail_after(timeout):
            await tls._handshake()
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await transport.aclose()
        if isinstance(exc, (*ASYNC_IO_ERRORS, unitls.TLSError)):
            raise connect_error(exc, handshake=True) from exc
        raise
    assert server_hostname is not None
    return AsyncStream(make_buffer, tls, sock, SSLObjectView(buffer, server_hostname))


class AsyncStream(httpcore.AsyncNetworkStream):
    """An httpcore async stream: plain TCP (or Unix) before `start_tls`, unitls TLS after.

    It runs over an anyio socket stream, or over the `AsyncTLSStream` `start_tls`
    built (on the socket stream, or on another TLS stream for TLS in TLS).
    """

    def __init__(
        self,
        make_buffer: BufferFactory,
        transport: anyio.abc.SocketStream | AsyncTLSStream,
        sock: socket.socket,
        ssl_object: SSLObjectView | None = None,
    ) -> None:
        self._make_buffer = make_buffer
        self._transport = transport
        self._sock = sock
        self._ssl_object = ssl_object

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            with anyio.fail_after(timeout):
                return await self._transport.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except (*ASYNC_IO_ERRORS, unitls.TLSError) as exc:
            raise read_error(exc) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            with anyio.fail_after(timeout):
                await self._transport.send(buffer)
        except (*ASYNC_IO_ERRORS, unitls.TLSError) as exc:
            raise write_error(exc) from exc

    async def aclose(self) -> None:
        await self._transport.aclose()  # an AsyncTLSStream sends close_notify first

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await _start_tls(
            self._make_buffer, self._transport, self._sock, ssl_context, server_hostname, timeout
        )

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            transport = self._transport
            if isinstance(transport, AsyncTLSStream):
                return transport.readable()
            return socket_readable(self._sock)
        return extra_info(info, self._sock, self._ssl_object)


class AsyncTLSStream:
    """A unitls TLS stream over an anyio stream, or over another TLS stream.

    Tasks never interleave their ciphertext: whoever sends takes the bytes out of
    the buffer and sends them under `_send_lock`. Only one task reads at a time
    (httpcore's HTTP/2 connection has its own read lock; HTTP/1.1 is sequential).
    """

    def __init__(
        self, transport: _ByteStream, buffer: unitls.TLSBuffer, sock: socket.socket
    ) -> None:
        self._transport = transport
        self._buffer = buffer
        self._sock = sock
        self._send_lock = anyio.Lock()
        self._unread = b""
        self._closed = False
        # As in `_blocking.TLSStream`: whether a read could return without new
        # ciphertext (the last one filled its request, returned b"" or failed), and
        # whether the transport's EOF went to the buffer.
        self._maybe_more = False
        self._eof = False

    # -- the pump -------------------------------------------------------------------

    async def _flush(self) -> None:
        lock = self._send_lock
        try:
            lock.acquire_nowait()  # no scheduling point when nobody else is sending
        except anyio.WouldBlock:
            await lock.acquire()
        try:
            buffer = self._buffer
            while data := buffer.process_outgoing(_SEND_SIZE):
                await self._transport.send(data)
        finally:
            lock.release()

    async def _fill(self) -> None:
        try:
            data = await self._transport.receive(_RECV_SIZE)
        except anyio.EndOfStream:
            data = b""
            self._eof = True
        self._buffer.process_incoming(data)

    def _nothing_to_read(self) -> bool:
        """Whether a read is sure to raise WantReadError (a failed read costs an exception)."""
        return not (self._maybe_more or self._eof or self._buffer.incoming_bytes_buffered())

    async def _handshake(self) -> None:
        buffer = self._buffer
        while True:
            try:
                buffer.do_handshake()
                break
            except unitls.WantReadError:
                await self._flush()
                await self._fill()
            except unitls.TLSError:
                with anyio.move_on_after(CLOSE_NOTIFY_TIMEOUT, shield=True):
                    try:  # let the alert reach the peer
                        await self._flush()
                    except (*ASYNC_IO_ERRORS, unitls.TLSError):
                        pass
                raise
        await self._flush()

    async def _recv(self, max_bytes: int) -> bytes:
        if self._unread:
            data, self._unread = self._unread[:max_bytes], self._unread[max_bytes:]
            return data
        buffer = self._buffer
        if self._nothing_to_read():
            await self._fill()
        while True:
            try:
                data = buffer.read(max_bytes)  # type: ignore[assignment]  # no target: bytes
            except unitls.WantReadError:
                if buffer.outgoing_bytes_buffered():
                    await self._flush()
                await self._fill()
                continue
            except unitls.TLSError:
                self._maybe_more = True
                raise
            self._maybe_more = not data or len(data) == max_bytes
            if buffer.outgoing_bytes_buffered():
                await self._flush()
            return data

    # -- a byte stream, for TLS in TLS ---------------------------------------------

    async def receive(self, max_bytes: int = _RECV_SIZE) -> bytes:
        """Plaintext; raises `anyio.EndOfStream` after the peer's close_notify."""
        data = await self._recv(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Encrypt and send all of `item`."""
        buffer = self._buffer
        try:
            taken = buffer.write(item)
        except unitls.WantWriteError:
            taken = 0
        if taken < len(item):
            view = memoryview(item)[taken:]
            while view:
                await self._flush()
                try:
                    taken = buffer.write(view)
                except unitls.WantWriteError:
                    taken = 0
                view = view[taken:]
        await self._flush()

    def readable(self) -> bool:
        """Whether a read would return at once (plaintext, EOF or an error waiting)."""
        if self._unread or self._closed:
            return True
        if not self._nothing_to_read():
            try:
                data: bytes = self._buffer.read(_RECV_SIZE)  # type: ignore[assignment]
            except unitls.WantReadError:
                self._maybe_more = False
            except unitls.TLSError:
                self._maybe_more = True
                return True  # the next read raises it
            else:
                self._unread = data
                self._maybe_more = not data or len(data) == _RECV_SIZE
                return True  # plaintext, or b"" for close_notify
        transport = self._transport
        if isinstance(transport, AsyncTLSStream):
            return transport.readable()
        return socket_readable(self._sock)

    async def aclose(self) -> None:
        """Send close_notify (without waiting for the peer's) and close the transport."""
        if self._closed:
            return
        self._closed = True
        try:
            try:
                self._buffer.shutdown()
            except unitls.TLSError:
                pass  # WantReadError: the peer's close_notify, which we do not wait for
            if not self._send_lock.locked():
                with anyio.move_on_after(CLOSE_NOTIFY_TIMEOUT, shield=True):
                    try:
                        await self._flush()
                    except (*ASYNC_IO_ERRORS, unitls.TLSError):
                        pass
        finally:
            await self._transport.aclose()
