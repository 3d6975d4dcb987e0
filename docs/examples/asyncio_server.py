"""A TLS echo server on asyncio, with one unitls TLSBuffer per connection.

Run it:

    python docs/examples/asyncio_server.py [--cert server.crt] [--key server.key]
                                           [--host 127.0.0.1] [--port 0]
                                           [--self-test [--cafile CA]]

It loads the certificate chain and private key (PEM files), listens (port 0: a free
port, printed), and echoes back whatever each client sends, until the client closes
with close_notify, which it answers with its own. Stop it with Ctrl-C.

With --self-test it instead connects one unitls client (a blocking `TLSSocket`, run
in a thread) to itself, echoes one message, closes the client and exits. The client
verifies the server's certificate against the system trust store, or against --cafile;
the certificate must name 127.0.0.1 (or whatever --host is).
"""

from __future__ import annotations

import argparse
import asyncio

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

CHUNK = 64 * 1024  # the most bytes moved per call


class TLSEchoProtocol(asyncio.Protocol):
    """One connection: a server-side TLSBuffer of its own, echoing plaintext back."""

    def __init__(self, context: unitls.ServerContext) -> None:
        self.buffer = context.create_buffer()  # one buffer per connection, never shared
        self.handshake_complete = False
        self.closing = False
        self.peer = "?"
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        # The buffer refuses data (WantReadError) only while more than INCOMING_LIMIT
        # bytes wait to be decrypted; _advance() decrypts everything every time.
        self.buffer.process_incoming(data)
        self._advance()

    def eof_received(self) -> bool:
        if not self.closing:
            self.buffer.process_incoming(b"")  # the transport's EOF
            self._advance()
        return False  # asyncio closes the transport

    # Back-pressure: when the client does not read its echo, asyncio's write buffer
    # fills and asyncio calls pause_writing(); stop reading the client's data until
    # it has drained, so memory stays bounded.
    def pause_writing(self) -> None:
        assert self._transport is not None
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        assert self._transport is not None
        self._transport.resume_reading()

    def _advance(self) -> None:
        assert self._transport is not None
        try:
            if not self.handshake_complete:
                self.buffer.do_handshake()  # WantReadError until the client's flight is in
                self.handshake_complete = True
                version = self.buffer.negotiated_tls_version
                print(f"server: {version.value if version else None} handshake with {self.peer}")
            while True:
                data = self.buffer.read(CHUNK)
                assert isinstance(data, bytes)  # read() without a target buffer returns bytes
                if not data:
                    # The client's close_notify. shutdown() queues ours and returns at
                    # once, since the client's has arrived.
                    print(f"server: close_notify from {self.peer}, answered")
                    self.buffer.shutdown()
                    self.closing = True
                    break
                self._echo(data)
        except unitls.WantReadError:
            pass  # wait for data_received()
        except unitls.TLSError as exc:  # a failed handshake, a bad record, RaggedEOF, ...
            print(f"server: {self.peer}: {type(exc).__name__}: {exc}")
            self.closing = True
        self._flush()  # after every operation, including the failed one (its alert)
        if self.closing:
            self._transport.close()

    def _echo(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                taken = self.buffer.write(view)
            except unitls.WantWriteError:
                taken = 0  # more than OUTGOING_LIMIT bytes wait: the flush makes room
            view = view[taken:]
            self._flush()

    def _flush(self) -> None:
        assert self._transport is not None
        while data := self.buffer.process_outgoing(CHUNK):
            self._transport.write(data)


def echo_once(host: str, port: int, cafile: str | None) -> None:
    """A blocking unitls client: connect, send a message, print the echo, close."""
    trust_store = unitls.TrustStore.from_file(cafile) if cafile else unitls.TrustStore.system()
    config = unitls.TLSClientConfiguration(trust_store=trust_store)
    context = OPENSSL_IMPLEMENTATION.client_context(config)
    sock = context.connect((host, port), timeout=10)
    try:
        version = sock.negotiated_tls_version
        alpn = sock.negotiated_protocol()  # None: this server does not do ALPN
        if isinstance(alpn, unitls.NextProtocol):
            alpn = alpn.value
        alpn_name = alpn.decode() if alpn else "none"
        print(f"client: {version.value if version else None}, ALPN protocol: {alpn_name}")
        message = b"hello, TLS buffer"
        sock.sendall(message)
        echo = b""
        while len(echo) < len(message):
            data = sock.recv(CHUNK)
            if not data:
                break
            echo += data
        print(f"client: echoed {echo!r}")
    finally:
        sock.close()  # sends close_notify and waits (briefly) for the server's


async def serve(args: argparse.Namespace) -> None:
    chain = unitls.SigningChain(
        leaf=(unitls.Certificate.from_file(args.cert), unitls.PrivateKey.from_file(args.key))
    )
    config = unitls.TLSServerConfiguration(certificate_chain=[chain])
    context = OPENSSL_IMPLEMENTATION.server_context(config)  # shared by every connection

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: TLSEchoProtocol(context), args.host, args.port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}")
    async with server:
        if args.self_test:
            await asyncio.wait_for(asyncio.to_thread(echo_once, host, port, args.cafile), 30)
        else:
            await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cert", default="server.crt", help="PEM certificate chain")
    parser.add_argument("--key", default="server.key", help="PEM private key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--self-test", action="store_true", help="echo one message and exit")
    parser.add_argument("--cafile", help="with --self-test: the CA that signed --cert")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
