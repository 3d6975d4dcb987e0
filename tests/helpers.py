"""Shared test helpers: credential builders and the client/server buffer pair harness."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import trustme

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION


def signing_chain(cert: trustme.LeafCert) -> unitls.SigningChain:
    """A unitls SigningChain (leaf + intermediates, key) from a trustme leaf, in memory."""
    pems = [blob.bytes() for blob in cert.cert_chain_pems]
    return unitls.SigningChain(
        leaf=(
            unitls.Certificate.from_buffer(pems[0]),
            unitls.PrivateKey.from_buffer(cert.private_key_pem.bytes()),
        ),
        chain=[unitls.Certificate.from_buffer(p) for p in pems[1:]],
    )


def trust_store(ca: trustme.CA) -> unitls.TrustStore:
    return unitls.TrustStore.from_buffer(ca.cert_pem.bytes())


def pump(source: unitls.TLSBuffer, dest: unitls.TLSBuffer, chunk: int = 1 << 20) -> int:
    """Move every queued byte from `source` to `dest`; return how many moved."""
    moved = 0
    while True:
        data = source.process_outgoing(chunk)
        if not data:
            return moved
        dest.process_incoming(data)
        moved += len(data)


def handshake(client: unitls.TLSBuffer, server: unitls.TLSBuffer, rounds: int = 10) -> None:
    """Drive both buffers until both handshakes complete (errors propagate)."""
    done = {id(client): False, id(server): False}
    for _ in range(rounds):
        for side in (client, server):
            if done[id(side)]:
                continue
            try:
                side.do_handshake()
                done[id(side)] = True
            except unitls.WantReadError:
                pass
        moved = pump(client, server) + pump(server, client)
        if all(done.values()) and not moved:
            return
    raise AssertionError("handshake did not complete")


@dataclasses.dataclass
class Pair:
    """A connected client/server buffer pair."""

    client: unitls.TLSBuffer
    server: unitls.TLSBuffer

    def c2s(self, data: bytes) -> bytes:
        """Write on the client, deliver, read everything on the server."""
        return _transfer(self.client, self.server, data)

    def s2c(self, data: bytes) -> bytes:
        return _transfer(self.server, self.client, data)


def _transfer(writer: unitls.TLSBuffer, reader: unitls.TLSBuffer, data: bytes) -> bytes:
    view = memoryview(data)
    received = bytearray()
    while view:
        n = writer.write(view)
        view = view[n:]
        pump(writer, reader)
        received += read_all(reader)
        pump(reader, writer)
    return bytes(received)


def read_all(reader: unitls.TLSBuffer, amt: int = 1 << 16) -> bytes:
    """Everything `reader` can return now, stopping at WantReadError or b''."""
    out = bytearray()
    while True:
        try:
            chunk = reader.read(amt)
        except unitls.WantReadError:
            return bytes(out)
        assert isinstance(chunk, bytes)
        if not chunk:
            return bytes(out)
        out += chunk


def make_pair(
    client_config: unitls.TLSClientConfiguration,
    server_config: unitls.TLSServerConfiguration,
    server_hostname: str = "localhost",
    implementation: unitls.TLSImplementation = OPENSSL_IMPLEMENTATION,  # type: ignore[type-arg]
) -> Pair:
    client = implementation.client_context(client_config).create_buffer(server_hostname)
    server = implementation.server_context(server_config).create_buffer()
    handshake(client, server)
    return Pair(client, server)


def client_configuration(
    ca: trustme.CA,
    *,
    version: unitls.TLSVersion | None = None,
    alpn: Sequence[unitls.NextProtocol | bytes] = (),
    cert: trustme.LeafCert | None = None,
) -> unitls.TLSClientConfiguration:
    """A client trusting `ca`, pinned to `version` if given, offering `alpn`, with an
    optional client certificate."""
    return unitls.TLSClientConfiguration(
        certificate_chain=None if cert is None else signing_chain(cert),
        inner_protocols=alpn,
        lowest_supported_version=version,
        highest_supported_version=version,
        trust_store=trust_store(ca),
    )


def server_configuration(
    *leaves: trustme.LeafCert,
    version: unitls.TLSVersion | None = None,
    alpn: Sequence[unitls.NextProtocol | bytes] = (),
    client_ca: trustme.CA | None = None,
) -> unitls.TLSServerConfiguration:
    """A server with one signing chain per leaf (the first is the default), pinned to
    `version` if given, accepting `alpn`, requiring client certificates from `client_ca`."""
    return unitls.TLSServerConfiguration(
        certificate_chain=[signing_chain(leaf) for leaf in leaves],
        inner_protocols=alpn,
        lowest_supported_version=version,
        highest_supported_version=version,
        trust_store=None if client_ca is None else trust_store(client_ca),
    )


def recv_exactly(sock: Any, size: int) -> bytes:
    """Receive from a (unitls or stdlib) socket until `size` bytes or EOF."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


@contextlib.contextmanager
def serve_http(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A plain-HTTP server on 127.0.0.1 in a thread; yields its base URL (no trailing slash)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
