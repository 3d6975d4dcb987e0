"""An HTTPS request over trio, with a unitls TLSBuffer wrapped as a trio Stream.

Run it (needs `pip install trio`):

    python docs/examples/trio_client.py [URL]

It connects to URL (default https://example.org/) with `trio.open_tcp_stream`,
verifies the server against the system trust store, offers ALPN "http/1.1", prints
the negotiated TLS version and ALPN protocol, sends one HTTP/1.1 GET with
"Connection: close", prints the status line and the body, and closes the
connection with close_notify.

`TLSBufferStream` is a `trio.abc.Stream`, like `trio.SSLStream`: code written for
trio streams can use it unchanged.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import trio

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

CHUNK = 64 * 1024  # the most bytes moved per call
CLOSE_TIMEOUT = 1.0  # how long aclose() waits for the server's close_notify


class TLSBufferStream(trio.abc.Stream):
    """A TLSBuffer over a trio stream: plaintext in and out, ciphertext underneath.

    One task may send while another receives. Ciphertext only goes out in
    `_flush`, under a lock, so it reaches the network in the order the buffer
    produced it.
    """

    def __init__(self, transport: trio.abc.Stream, buffer: unitls.TLSBuffer) -> None:
        self.transport = transport
        self.buffer = buffer
        self._send_lock = trio.Lock()

    # -- the pump -------------------------------------------------------------------

    async def _flush(self) -> None:
        """Send everything the buffer has queued."""
        async with self._send_lock:
            while data := self.buffer.process_outgoing(CHUNK):
                await self.transport.send_all(data)

    async def _fill(self) -> None:
        """Move one chunk of ciphertext (or the EOF, as b"") into the buffer."""
        data = await self.transport.receive_some(CHUNK)
        # The buffer refuses data (WantReadError) only while more than INCOMING_LIMIT
        # bytes wait to be decrypted. _fill() runs only when a read or the handshake
        # wants more, that is when no complete record waits, so it never refuses here.
        self.buffer.process_incoming(data)

    async def do_handshake(self) -> None:
        """Run the handshake to completion (certificate and hostname verified)."""
        while True:
            try:
                self.buffer.do_handshake()
                break
            except unitls.WantReadError:
                await self._flush()
                await self._fill()
            except unitls.TLSError:
                # A failed handshake queued an alert that says why: send it, briefly.
                with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
                    await self._flush()
                raise
        await self._flush()  # the client's last flight (its Finished)

    # -- trio.abc.Stream --------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                taken = self.buffer.write(view)
            except unitls.WantWriteError:
                taken = 0  # more than OUTGOING_LIMIT bytes wait: the flush makes room
            view = view[taken:]
            await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Plaintext; b"" after the server's close_notify.

        Raises `unitls.RaggedEOF` if the TCP connection ended without close_notify.
        """
        while True:
            try:
                data = self.buffer.read(max_bytes or CHUNK)
            except unitls.WantReadError:
                await self._flush()
                await self._fill()
                continue
            assert isinstance(data, bytes)  # read() without a target buffer returns bytes
            await self._flush()  # reading can queue answers (to a KeyUpdate, say)
            return data

    async def aclose(self) -> None:
        """Send close_notify, wait briefly for the server's, then close the transport."""
        try:
            with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
                try:
                    self.buffer.shutdown()  # queues our close_notify
                except unitls.WantReadError:
                    # The server has not closed yet: send ours and wait for its answer.
                    await self._flush()
                    while await self.receive_some():
                        pass  # data after our close_notify: discarded
                else:
                    await self._flush()  # the server's had arrived: nothing to wait for
        except (unitls.TLSError, trio.BrokenResourceError):
            pass  # the connection failed, or the server is gone: nothing clean to say
        finally:
            await self.transport.aclose()


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
    tcp = await trio.open_tcp_stream(host, port)
    async with TLSBufferStream(tcp, buffer) as stream:  # aclose() on the way out
        await stream.do_handshake()
        version = buffer.negotiated_tls_version
        alpn = buffer.negotiated_protocol()
        if isinstance(alpn, unitls.NextProtocol):
            alpn = alpn.value
        print("TLS version:", version.value if version else None)
        print("ALPN protocol:", alpn.decode() if alpn else "none")

        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        response = bytearray()
        ragged_eof: unitls.RaggedEOF | None = None
        try:
            while data := await stream.receive_some():
                response += data
        except unitls.RaggedEOF as exc:
            ragged_eof = exc  # no close_notify: only Content-Length can say it is complete

    head, _, body = bytes(response).partition(b"\r\n\r\n")
    if ragged_eof and not response_is_complete(head, body):
        raise ragged_eof  # truncated: the connection ended early
    print(head.split(b"\r\n", 1)[0].decode())  # the status line
    print(body.decode("utf-8", errors="replace"), end="")


async def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "https://example.org/"
    with trio.fail_after(30):
        await fetch(url)


if __name__ == "__main__":
    trio.run(main)
