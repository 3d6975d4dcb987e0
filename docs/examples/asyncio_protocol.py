"""An HTTPS request over asyncio, with a unitls TLSBuffer inside an asyncio.Protocol.

Run it:

    python docs/examples/asyncio_protocol.py [URL]

It connects to URL (default https://example.org/), verifies the server against the
system trust store, offers ALPN "http/1.1", prints the negotiated TLS version and
ALPN protocol, sends one HTTP/1.1 GET with "Connection: close", prints the status
line and the body, and answers the server's close_notify with its own.

asyncio moves the bytes (`data_received`, `eof_received`, `transport.write`); the
TLSBuffer does the TLS. The protocol below is the whole pump.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

CHUNK = 64 * 1024  # the most bytes taken from the buffer per call


class TLSClientProtocol(asyncio.Protocol):
    """Drives one client TLSBuffer over one asyncio transport.

    `handshake_done` resolves once the handshake (with certificate and hostname
    verification) is complete; `response` resolves with every byte of plaintext the
    server sent, once it has closed its side of the connection. An error goes to the
    one the application awaits: `handshake_done` until it has resolved, then
    `response`. `connection_closed` resolves when asyncio has closed the transport.
    """

    def __init__(self, buffer: unitls.TLSBuffer) -> None:
        self.buffer = buffer
        loop = asyncio.get_running_loop()
        self.handshake_done: asyncio.Future[None] = loop.create_future()
        self.response: asyncio.Future[bytes] = loop.create_future()
        self.connection_closed: asyncio.Future[None] = loop.create_future()
        #: Set if the TCP connection ended without the server's close_notify.
        self.ragged_eof: unitls.RaggedEOF | None = None
        self._finished = False  # the response ended, or the connection failed
        self._received = bytearray()
        self._transport: asyncio.Transport | None = None

    # -- asyncio's callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._advance()  # the first do_handshake() queues the ClientHello

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return  # nothing more is wanted from the network
        # process_incoming refuses data (WantReadError) only while more than
        # unitls.openssl.INCOMING_LIMIT bytes wait to be decrypted. _advance() decrypts
        # everything after every chunk, so at most one partial record ever waits here.
        # A protocol that stops reading plaintext must call transport.pause_reading()
        # rather than let ciphertext pile up, and must never drop refused bytes.
        self.buffer.process_incoming(data)
        self._advance()

    def eof_received(self) -> bool:
        if not self._finished:
            self.buffer.process_incoming(b"")  # the transport's EOF, as the buffer spells it
            self._advance()
        return False  # let asyncio close the transport once its write buffer is empty

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished:
            self._fail(exc or ConnectionError("the connection closed before the response ended"))
        self.connection_closed.set_result(None)

    # -- the pump -------------------------------------------------------------------

    def _advance(self) -> None:
        """Make all the progress the bytes received so far allow, then flush."""
        try:
            if not self.handshake_done.done():
                self.buffer.do_handshake()  # WantReadError until the server's flight is in
                self.handshake_done.set_result(None)
            self._read_plaintext()
        except unitls.WantReadError:
            pass  # nothing more to do until data_received() or eof_received()
        except unitls.TLSError as exc:  # verification failed, bad record, RaggedEOF, ...
            self._fail(exc)
        # Always flush: the handshake, reads (KeyUpdate answers), a
        # fatal error (its alert) and shutdown() all queue bytes for the server.
        self._flush()
        if self._finished and self._transport is not None:
            self._transport.close()

    def _read_plaintext(self) -> None:
        while True:
            try:
                data = self.buffer.read(CHUNK)
            except unitls.RaggedEOF as exc:
                # The TCP connection ended without close_notify. Everything received
                # before it was delivered; whether it is complete is for HTTP to say.
                self.ragged_eof = exc
                self._finish()
                return
            assert isinstance(data, bytes)  # read() without a target buffer returns bytes
            if not data:
                # The server's close_notify. Answer with ours: shutdown() queues it and
                # returns at once, as the server's has already arrived.
                self.buffer.shutdown()
                self._finish()
                return
            self._received += data

    def _flush(self) -> None:
        assert self._transport is not None
        while data := self.buffer.process_outgoing(CHUNK):
            self._transport.write(data)

    def _finish(self) -> None:
        self._finished = True
        if not self.response.done():  # done already: a timeout cancelled it
            self.response.set_result(bytes(self._received))

    def _fail(self, exc: Exception) -> None:
        self._finished = True
        future = self.handshake_done if not self.handshake_done.done() else self.response
        if not future.done():
            future.set_exception(exc)

    # -- for the application --------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Encrypt all of `data` and hand it to the transport (after the handshake)."""
        view = memoryview(data)
        while view:
            try:
                taken = self.buffer.write(view)
            except unitls.WantWriteError:
                taken = 0  # more than OUTGOING_LIMIT bytes wait: the flush makes room
            view = view[taken:]
            self._flush()

    def close(self) -> None:
        """Close the transport now, without close_notify (the application is done)."""
        self._finished = True
        if self._transport is not None:
            self._transport.close()


def response_is_complete(head: bytes, body: bytes) -> bool:
    """Whether the body is as long as the Content-Length header says."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) == int(value)
    return False  # no Content-Length: only the close_notify could have said "complete"


async def fetch(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise SystemExit(f"not an https:// URL: {url}")
    host, port = parts.hostname, parts.port or 443
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    config = unitls.TLSClientConfiguration(inner_protocols=[unitls.NextProtocol.HTTP1])
    buffer = OPENSSL_IMPLEMENTATION.client_context(config).create_buffer(host)
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: TLSClientProtocol(buffer), host, port)
    try:
        await protocol.handshake_done
        version = buffer.negotiated_tls_version
        alpn = buffer.negotiated_protocol()
        if isinstance(alpn, unitls.NextProtocol):
            alpn = alpn.value
        print("TLS version:", version.value if version else None)
        print("ALPN protocol:", alpn.decode() if alpn else "none")

        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        protocol.send(request.encode())
        response = await protocol.response
    finally:
        protocol.close()  # a no-op after the close_notify exchange, which closed it
        await protocol.connection_closed

    head, _, body = response.partition(b"\r\n\r\n")
    if protocol.ragged_eof and not response_is_complete(head, body):
        raise protocol.ragged_eof  # truncated: the connection ended early
    print(head.split(b"\r\n", 1)[0].decode())  # the status line
    print(body.decode("utf-8", errors="replace"), end="")


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "https://example.org/"
    asyncio.run(asyncio.wait_for(fetch(url), timeout=30))


if __name__ == "__main__":
    main()
