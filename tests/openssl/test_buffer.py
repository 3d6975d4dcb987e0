"""The `TLSBuffer` contract of the OpenSSL backend, by example.

Each test drives a client and a server `OpenSSLTLSBuffer` entirely in memory and
checks one promise of `src/unitls/openssl/_buffer.py` (its theory of operation and
method docstrings), PEP 748's `TLSBuffer` section and DESIGN.md. Behaviour that
differs between TLS 1.2 and TLS 1.3 is run under both.
"""

from __future__ import annotations

import array
import dataclasses
import threading

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import unitls
from helpers import handshake, pump, read_all, signing_chain, trust_store
from unitls.openssl import (
    INCOMING_LIMIT,
    OPENSSL_IMPLEMENTATION,
    OUTGOING_LIMIT,
    OpenSSLClientContext,
    OpenSSLServerContext,
    OpenSSLTLSBuffer,
)

TLS12 = unitls.TLSVersion.TLSv1_2
TLS13 = unitls.TLSVersion.TLSv1_3
#: Largest TLS record on the wire: 16 KiB of plaintext plus header and AEAD/padding overhead.
MAX_WIRE_RECORD = 16 * 1024 + 256 + 5
#: Every byte of a payload differs from this, so a sentinel byte that changed was overwritten.
SENTINEL = 0xAA


# -- fixtures and helpers -------------------------------------------------------------


@dataclasses.dataclass
class Contexts:
    client: OpenSSLClientContext
    server: OpenSSLServerContext
    version: unitls.TLSVersion

    def buffers(self) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
        """A fresh, not yet handshaken (client, server) pair."""
        return self.client.create_buffer("localhost"), self.server.create_buffer()

    def connected(self) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
        """A (client, server) pair whose handshake is complete and fully flushed."""
        client, server = self.buffers()
        handshake(client, server)
        return client, server


def make_contexts(
    ca: trustme.CA, server_chain: unitls.SigningChain, version: unitls.TLSVersion
) -> Contexts:
    client_config = unitls.TLSClientConfiguration(
        trust_store=trust_store(ca), highest_supported_version=version
    )
    server_config = unitls.TLSServerConfiguration(certificate_chain=[server_chain])
    return Contexts(
        OPENSSL_IMPLEMENTATION.client_context(client_config),
        OPENSSL_IMPLEMENTATION.server_context(server_config),
        version,
    )


@pytest.fixture(params=[TLS12, TLS13], ids=["tls12", "tls13"])
def ctx(
    request: pytest.FixtureRequest, ca: trustme.CA, server_chain: unitls.SigningChain
) -> Contexts:
    return make_contexts(ca, server_chain, request.param)


@pytest.fixture
def ctx13(ca: trustme.CA, server_chain: unitls.SigningChain) -> Contexts:
    return make_contexts(ca, server_chain, TLS13)


@pytest.fixture
def ctx12(ca: trustme.CA, server_chain: unitls.SigningChain) -> Contexts:
    return make_contexts(ca, server_chain, TLS12)


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, position-dependent data that never contains SENTINEL."""
    return bytes((i * 7 + seed) % 251 for i in range(size))


def try_handshake(buf: unitls.TLSBuffer) -> bool:
    try:
        buf.do_handshake()
    except unitls.WantReadError:
        return False
    return True


def assert_fatal(exc: BaseException) -> None:
    """A real failure: a TLSError, and not one of the retry signals."""
    assert isinstance(exc, unitls.TLSError), repr(exc)
    assert not isinstance(exc, (unitls.WantReadError, unitls.WantWriteError)), repr(exc)


def assert_stays_failed(buf: unitls.TLSBuffer) -> None:
    """Every operation of a failed buffer raises a fatal TLSError, again and again."""
    operations = [
        lambda: buf.read(10),
        lambda: buf.read(10, bytearray(10)),
        lambda: buf.read(0),
        lambda: buf.write(b"more"),
        lambda: buf.write(bytearray(b"more")),
        buf.do_handshake,
        buf.shutdown,
        lambda: buf.process_incoming(b"\x17\x03\x03\x00\x01x"),
    ]
    for _ in range(2):
        for operation in operations:
            with pytest.raises(unitls.TLSError) as info:
                operation()
            assert_fatal(info.value)


def leaf_der(cert: trustme.LeafCert) -> bytes:
    pem = cert.cert_chain_pems[0].bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


# -- construction and contexts ----------------------------------------------------------


def test_direct_construction_is_a_type_error():
    with pytest.raises(TypeError, match="create_buffer"):
        OpenSSLTLSBuffer()
    with pytest.raises(TypeError):
        OpenSSLTLSBuffer("anything", server_hostname="localhost")  # type: ignore[call-arg]


def test_buffer_knows_its_context(ctx: Contexts):
    client, server = ctx.buffers()
    assert client.context is ctx.client
    assert server.context is ctx.server


def test_context_is_reusable_for_many_buffers(ctx: Contexts):
    # First create many buffers, then use them interleaved: no buffer leaks state
    # into another created from the same context.
    pairs = [ctx.buffers() for _ in range(12)]
    for client, _ in pairs:
        assert try_handshake(client) is False
    for client, server in pairs:
        handshake(client, server)
    for i, (client, _) in enumerate(pairs):
        client.write(payload(100 + i, seed=i))
    for i, (client, server) in enumerate(pairs):
        pump(client, server)
        assert read_all(server) == payload(100 + i, seed=i)
    for _ in range(12):  # and sequentially, one after the other
        client, server = ctx.connected()
        server.write(b"hello")
        pump(server, client)
        assert read_all(client) == b"hello"
        assert client.negotiated_tls_version is ctx.version


def test_buffers_from_one_context_used_from_many_threads(ctx: Contexts):
    threads_count, pairs_per_thread = 4, 8
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []
    done: list[int] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for j in range(pairs_per_thread):
                client, server = ctx.connected()
                up, down = payload(5000 + j, seed=index), payload(70000 + j, seed=index + 1)
                sent = 0
                received = bytearray()
                while sent < len(up):
                    sent += client.write(memoryview(up)[sent:])
                    pump(client, server)
                    received += read_all(server)
                assert bytes(received) == up
                view = memoryview(down)
                received = bytearray()
                while view:
                    n = server.write(view)
                    view = view[n:]
                    pump(server, client)
                    received += read_all(client, 4096)
                assert bytes(received) == down
                assert client.negotiated_tls_version is ctx.version
            done.append(index)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(done) == list(range(threads_count))


# -- information getters -----------------------------------------------------------------


def assert_no_info(buf: unitls.TLSBuffer) -> None:
    assert buf.cipher() is None
    assert buf.negotiated_protocol() is None
    assert buf.negotiated_tls_version is None
    assert buf.getpeercert() is None


def test_getters_are_none_until_the_handshake_completes(
    ctx: Contexts, server_cert: trustme.LeafCert
):
    client, server = ctx.buffers()
    assert_no_info(client)
    assert_no_info(server)
    done = {"client": False, "server": False}
    # Step the handshake one flight at a time; a side reports nothing until its
    # own do_handshake() has returned.
    for _ in range(6):
        for name, buf in (("client", client), ("server", server)):
            if not done[name]:
                done[name] = try_handshake(buf)
            if not done[name]:
                assert_no_info(buf)
        pump(client, server)
        pump(server, client)
    assert done == {"client": True, "server": True}

    assert isinstance(client.cipher(), unitls.CipherSuite)
    assert client.cipher() == server.cipher()
    if ctx.version is TLS13:
        assert 0x1301 <= client.cipher() <= 0x1305  # type: ignore[operator]
    else:
        assert not 0x1301 <= client.cipher() <= 0x1305  # type: ignore[operator]
    assert client.negotiated_tls_version is ctx.version
    assert server.negotiated_tls_version is ctx.version
    assert client.negotiated_protocol() is None  # no ALPN configured
    assert server.negotiated_protocol() is None
    assert client.getpeercert() == leaf_der(server_cert)
    assert server.getpeercert() is None  # no client authentication asked for


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls12", "tls13"])
def test_negotiated_protocol_after_alpn(
    ca: trustme.CA, server_chain: unitls.SigningChain, version: unitls.TLSVersion
):
    offered = [unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1]
    client_ctx = OPENSSL_IMPLEMENTATION.client_context(
        unitls.TLSClientConfiguration(
            trust_store=trust_store(ca), inner_protocols=offered, highest_supported_version=version
        )
    )
    for server_protocols, expected in [
        ([unitls.NextProtocol.HTTP1], unitls.NextProtocol.HTTP1),
        ([unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1], unitls.NextProtocol.H2),
    ]:
        server_ctx = OPENSSL_IMPLEMENTATION.server_context(
            unitls.TLSServerConfiguration(
                certificate_chain=[server_chain], inner_protocols=server_protocols
            )
        )
        client, server = client_ctx.create_buffer("localhost"), server_ctx.create_buffer()
        assert client.negotiated_protocol() is None
        assert server.negotiated_protocol() is None
        handshake(client, server)
        assert client.negotiated_protocol() is expected
        assert server.negotiated_protocol() is expected

    raw_client = OPENSSL_IMPLEMENTATION.client_context(
        unitls.TLSClientConfiguration(trust_store=trust_store(ca), inner_protocols=[b"custom/1"])
    ).create_buffer("localhost")
    raw_server = OPENSSL_IMPLEMENTATION.server_context(
        unitls.TLSServerConfiguration(
            certificate_chain=[server_chain], inner_protocols=[b"custom/1"]
        )
    ).create_buffer()
    handshake(raw_client, raw_server)
    assert raw_client.negotiated_protocol() == b"custom/1"
    assert raw_server.negotiated_protocol() == b"custom/1"


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls12", "tls13"])
def test_getpeercert_with_client_authentication(
    ca: trustme.CA,
    server_chain: unitls.SigningChain,
    server_cert: trustme.LeafCert,
    version: unitls.TLSVersion,
):
    client_cert = ca.issue_cert("client.example")
    client = OPENSSL_IMPLEMENTATION.client_context(
        unitls.TLSClientConfiguration(
            trust_store=trust_store(ca),
            certificate_chain=signing_chain(client_cert),
            highest_supported_version=version,
        )
    ).create_buffer("localhost")
    server = OPENSSL_IMPLEMENTATION.server_context(
        unitls.TLSServerConfiguration(certificate_chain=[server_chain], trust_store=trust_store(ca))
    ).create_buffer()
    assert server.getpeercert() is None
    handshake(client, server)
    assert server.getpeercert() == leaf_der(client_cert)
    assert client.getpeercert() == leaf_der(server_cert)


# -- write ------------------------------------------------------------------------------


def test_write_empty_returns_zero_and_queues_nothing(ctx: Contexts):
    client, server = ctx.buffers()
    for empty in (b"", bytearray(), memoryview(b""), array.array("i")):
        assert client.write(empty) == 0
        assert server.write(empty) == 0
    assert client.outgoing_bytes_buffered() == 0  # not even a ClientHello
    assert server.outgoing_bytes_buffered() == 0
    handshake(client, server)
    for empty in (b"", bytearray(), memoryview(b"abc")[3:], array.array("i")):
        assert client.write(empty) == 0
        assert server.write(empty) == 0
        assert client.outgoing_bytes_buffered() == 0
        assert server.outgoing_bytes_buffered() == 0
    with pytest.raises(unitls.WantReadError):
        client.read(100)  # no empty record reached the peer either
    with pytest.raises(unitls.WantReadError):
        server.read(100)


def test_write_before_the_handshake_raises_want_read(ctx: Contexts):
    client, server = ctx.buffers()
    with pytest.raises(unitls.WantReadError):
        client.write(b"early client data")
    hello = client.process_outgoing(1 << 20)
    assert hello[:1] == b"\x16"  # only a handshake record (the ClientHello)
    assert client.outgoing_bytes_buffered() == 0
    with pytest.raises(unitls.WantReadError):
        server.write(b"early server data")  # nothing received yet
    server.process_incoming(hello)
    with pytest.raises(unitls.WantReadError):
        server.write(bytearray(b"0.5-RTT data"))  # mid-handshake: still refused
    flight = server.process_outgoing(1 << 20)
    assert flight[:1] == b"\x16"
    client.process_incoming(flight)
    handshake(client, server)
    # None of the refused data was queued: both sides see only what comes next.
    with pytest.raises(unitls.WantReadError):
        server.read(1000)
    with pytest.raises(unitls.WantReadError):
        client.read(1000)
    client.write(b"after")
    server.write(b"later")
    pump(client, server)
    pump(server, client)
    assert read_all(server) == b"after"
    assert read_all(client) == b"later"


def as_kind(kind: str, data: bytes) -> object:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    assert kind == "array"
    return array.array("i", data)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array"])
def test_large_write_reports_honest_partial_counts(ctx: Contexts, kind: str):
    client, server = ctx.connected()
    data = payload(1 << 20)
    source = as_kind(kind, data)
    total = memoryview(source).nbytes  # type: ignore[arg-type]
    assert total == len(data)
    offset = 0
    counts = []
    received = bytearray()
    while offset < total:
        # The first call passes the object itself, later ones the unsent rest.
        rest = source if offset == 0 else memoryview(source).cast("B")[offset:]  # type: ignore[arg-type]
        n = server.write(rest)  # type: ignore[arg-type]
        assert isinstance(n, int)
        assert 0 < n <= total - offset
        counts.append(n)
        assert server.outgoing_bytes_buffered() <= OUTGOING_LIMIT + MAX_WIRE_RECORD
        pump(server, client)
        before = len(received)
        received += read_all(client)
        # Honest: exactly the n bytes reported as taken arrived, no more, no less.
        assert bytes(received[before:]) == data[offset : offset + n]
        offset += n
    assert len(counts) > 1, "1 MiB is more than OUTGOING_LIMIT: the first write must be partial"
    assert counts[0] < total
    assert sum(counts) == total
    assert bytes(received) == data


def test_write_raises_want_write_over_outgoing_limit(ctx: Contexts):
    client, server = ctx.connected()
    data = payload(1 << 20)
    taken = server.write(data)
    assert 0 < taken < len(data)
    queued = server.outgoing_bytes_buffered()
    assert queued > OUTGOING_LIMIT
    for attempt in (b"x", bytearray(b"x" * 20000), memoryview(data)[taken:]):
        with pytest.raises(unitls.WantWriteError):
            server.write(attempt)
        assert server.outgoing_bytes_buffered() == queued  # nothing was taken
    # Drain a little, but not below the limit: still refused.
    sent = server.process_outgoing(queued - OUTGOING_LIMIT - 1)
    with pytest.raises(unitls.WantWriteError):
        server.write(memoryview(data)[taken:])
    # Exactly OUTGOING_LIMIT waiting is not "more than": accepted again.
    sent += server.process_outgoing(1)
    assert server.outgoing_bytes_buffered() == OUTGOING_LIMIT
    n = server.write(memoryview(data)[taken:])
    assert n > 0
    assert server.outgoing_bytes_buffered() <= OUTGOING_LIMIT + MAX_WIRE_RECORD
    taken += n
    sent += server.process_outgoing(1 << 20)
    assert server.outgoing_bytes_buffered() == 0
    n = server.write(memoryview(data)[taken:])  # and after draining everything
    assert n > 0
    taken += n
    client.process_incoming(sent)
    got = read_all(client)
    pump(server, client)
    got += read_all(client)
    assert got == data[:taken]


# -- process_incoming back-pressure ------------------------------------------------------


def ciphertext_of(writer: unitls.TLSBuffer, data: bytes) -> bytes:
    """Encrypt all of `data` on `writer`, draining as needed; return the ciphertext."""
    out = bytearray()
    view = memoryview(data)
    while view:
        n = writer.write(view)
        view = view[n:]
        out += writer.process_outgoing(1 << 21)
    return bytes(out)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_process_incoming_refuses_data_over_incoming_limit(ctx: Contexts, kind: str):
    client, server = ctx.connected()
    data = payload(3 * INCOMING_LIMIT)
    wire = ciphertext_of(server, data)
    chunk = 10_000
    pos = 0
    # Accepted while no more than INCOMING_LIMIT bytes wait.
    while client.incoming_bytes_buffered() <= INCOMING_LIMIT:
        before = client.incoming_bytes_buffered()
        client.process_incoming(as_kind(kind, wire[pos : pos + chunk]))  # type: ignore[arg-type]
        assert client.incoming_bytes_buffered() == before + chunk
        pos += chunk
    waiting = client.incoming_bytes_buffered()
    assert waiting > INCOMING_LIMIT
    for _ in range(3):
        with pytest.raises(unitls.WantReadError):
            client.process_incoming(as_kind(kind, wire[pos : pos + chunk]))  # type: ignore[arg-type]
        assert client.incoming_bytes_buffered() == waiting  # nothing was stored
    # Reading makes room; then the very same chunk is accepted again.
    received = bytearray()
    while client.incoming_bytes_buffered() > INCOMING_LIMIT:
        got = client.read(1 << 16)
        assert isinstance(got, bytes)
        assert got
        received += got
    client.process_incoming(as_kind(kind, wire[pos : pos + chunk]))  # type: ignore[arg-type]
    pos += chunk
    # Deliver the rest, reading whenever the limit pushes back.
    while pos < len(wire):
        try:
            client.process_incoming(wire[pos : pos + chunk])
        except unitls.WantReadError:
            received += read_all(client)
            continue
        pos += chunk
    received += read_all(client)
    assert bytes(received) == data
    assert client.incoming_bytes_buffered() == 0


def test_incoming_limit_boundary(ctx: Contexts):
    client, server = ctx.connected()
    with pytest.raises(unitls.WantReadError):
        client.read(1)  # consume the TLS 1.3 session tickets still waiting
    assert client.incoming_bytes_buffered() == 0
    data = payload(INCOMING_LIMIT + 50_000)
    wire = ciphertext_of(server, data)
    client.process_incoming(wire[:INCOMING_LIMIT])
    assert client.incoming_bytes_buffered() == INCOMING_LIMIT
    client.process_incoming(wire[INCOMING_LIMIT : INCOMING_LIMIT + 1])  # not "more than" yet
    assert client.incoming_bytes_buffered() == INCOMING_LIMIT + 1
    with pytest.raises(unitls.WantReadError):
        client.process_incoming(wire[INCOMING_LIMIT + 1 :])
    assert client.incoming_bytes_buffered() == INCOMING_LIMIT + 1
    received = bytearray(client.read(1 << 16))  # type: ignore[arg-type]
    client.process_incoming(wire[INCOMING_LIMIT + 1 :])
    received += read_all(client)
    assert bytes(received) == data


# -- read --------------------------------------------------------------------------------


def filled(size: int) -> bytearray:
    return bytearray([SENTINEL]) * size


@pytest.mark.parametrize(
    ("make_dest", "amt", "window"),
    [
        # (buffer factory -> (object passed to read, backing bytearray), amt, (start, stop))
        (lambda: (lambda b: (b, b))(filled(100)), 10, (0, 10)),
        (lambda: (lambda b: (b, b))(filled(16)), 1000, (0, 16)),
        (lambda: (lambda b: (memoryview(b), b))(filled(64)), 40, (0, 40)),
        (lambda: (lambda b: (memoryview(b), b))(filled(8)), 50, (0, 8)),
        (lambda: (lambda b: (memoryview(b)[10:20], b))(filled(30)), 100, (10, 20)),
        (lambda: (lambda b: (memoryview(b)[10:40], b))(filled(50)), 7, (10, 17)),
        (lambda: (lambda b: (memoryview(b)[5:6], b))(filled(12)), 1, (5, 6)),
    ],
    ids=[
        "bytearray-amt-smaller",
        "bytearray-amt-larger",
        "memoryview-amt-smaller",
        "memoryview-amt-larger",
        "slice-amt-larger",
        "slice-amt-smaller",
        "slice-one-byte",
    ],
)
def test_read_into_a_buffer_never_writes_past_amt_or_the_buffer(
    ctx: Contexts, make_dest, amt, window
):
    client, server = ctx.connected()
    data = payload(300, seed=3)
    server.write(data)
    pump(server, client)
    start, stop = window
    received = bytearray()
    while len(received) < len(data):
        dest, backing = make_dest()
        n = client.read(amt, dest)
        assert type(n) is int
        assert 0 < n <= stop - start
        assert backing[start : start + n] == data[len(received) : len(received) + n]
        # Every byte outside what was reported written is untouched.
        assert backing[:start] == filled(start)
        assert backing[start + n :] == filled(len(backing) - start - n)
        received += backing[start : start + n]
    assert bytes(received) == data
    with pytest.raises(unitls.WantReadError):
        client.read(amt, make_dest()[0])


def test_read_into_an_array_counts_bytes(ctx: Contexts):
    client, server = ctx.connected()
    server.write(b"0123456789abcdef")
    pump(server, client)
    dest = array.array("i", [0] * 8)  # 32 bytes
    n = client.read(100, dest)
    assert n == 16
    assert dest.tobytes()[:16] == b"0123456789abcdef"
    assert dest.tobytes()[16:] == bytes(16)


def test_read_into_a_read_only_buffer_is_a_type_error(ctx: Contexts):
    # Caller misuse raises TypeError (STYLE.md §5), like socket.recv_into(),
    # io.BytesIO.readinto() and ssl.SSLObject.read() do; no data is lost.
    client, server = ctx.connected()
    server.write(b"kept")
    pump(server, client)
    with pytest.raises(TypeError):
        client.read(4, b"\0\0\0\0")
    with pytest.raises(TypeError):
        client.read(4, memoryview(b"\0\0\0\0"))
    assert client.read(4) == b"kept"


@pytest.mark.parametrize(
    "make_dest",
    [lambda: bytearray(), lambda: memoryview(bytearray(10))[3:3]],
    ids=["bytearray", "memoryview-slice"],
)
def test_read_into_an_empty_buffer_returns_zero_and_keeps_the_connection(ctx: Contexts, make_dest):
    # Nothing fits, so nothing is read: the same as read(0, buffer). It must not
    # be taken for an error (an SSL_read of 0 bytes is not EOF).
    client, server = ctx.connected()
    server.write(b"hello")
    pump(server, client)
    assert client.read(10, make_dest()) == 0
    assert client.read(10) == b"hello"
    client.write(b"still open")
    pump(client, server)
    assert server.read(100) == b"still open"


def test_read_returns_at_most_one_record_and_at_most_amt(ctx: Contexts):
    client, server = ctx.connected()
    server.write(b"a" * 10)
    server.write(b"b" * 10)
    pump(server, client)
    assert client.read(100) == b"a" * 10
    assert client.read(4) == b"bbbb"
    assert client.read(100) == b"b" * 6
    with pytest.raises(unitls.WantReadError):
        client.read(100)


def test_read_zero(ctx: Contexts):
    client, server = ctx.connected()
    server.write(b"data")
    pump(server, client)
    assert client.read(0) == b""
    dest = filled(4)
    assert client.read(0, dest) == 0
    assert dest == filled(4)
    assert client.read(100) == b"data"  # read(0) consumed nothing


def test_read_negative_amount_is_a_value_error(ctx: Contexts):
    client, server = ctx.buffers()
    with pytest.raises(ValueError, match="-1"):
        client.read(-1)
    handshake(client, server)
    server.write(b"data")
    pump(server, client)
    with pytest.raises(ValueError, match="-1"):
        client.read(-1)
    with pytest.raises(ValueError, match="-5"):
        client.read(-5, bytearray(10))
    assert client.read(100) == b"data"


# -- process_outgoing ---------------------------------------------------------------------


def test_process_outgoing_amounts(ctx: Contexts):
    client, server = ctx.connected()
    data = payload(200_000)
    assert server.write(data) == len(data)  # all of it: less than OUTGOING_LIMIT waits
    total = server.outgoing_bytes_buffered()
    assert total > 200_000
    assert server.process_outgoing(0) == b""
    assert server.outgoing_bytes_buffered() == total
    wire = bytearray()
    for amount in (1, 7, 5, 65536, 65537, 30_000):  # through both internal paths
        before = server.outgoing_bytes_buffered()
        chunk = server.process_outgoing(amount)
        assert len(chunk) == min(amount, before)
        assert server.outgoing_bytes_buffered() == before - len(chunk)
        wire += chunk
    remaining = server.outgoing_bytes_buffered()
    assert remaining > 0
    last = server.process_outgoing(remaining + 1000)
    assert len(last) == remaining
    wire += last
    assert server.outgoing_bytes_buffered() == 0
    assert server.process_outgoing(1000) == b""
    assert server.process_outgoing(1 << 20) == b""
    assert len(wire) == total
    with pytest.raises(ValueError, match="-1"):
        server.process_outgoing(-1)
    with pytest.raises(ValueError, match="-100000"):
        server.process_outgoing(-100_000)
    received = bytearray()
    for i in range(0, len(wire), 50_000):
        client.process_incoming(bytes(wire[i : i + 50_000]))
        received += read_all(client)
    assert bytes(received) == data


# -- flushing: whatever OpenSSL queues is available at once ------------------------------


def test_tls13_session_tickets_are_flushed_right_after_do_handshake(ctx13: Contexts):
    client, server = ctx13.buffers()
    assert try_handshake(client) is False
    pump(client, server)
    assert try_handshake(server) is False
    pump(server, client)
    assert try_handshake(client) is True  # TLS 1.3: the client finishes first
    finished = client.process_outgoing(1 << 20)
    assert finished  # its Finished, without any write
    server.process_incoming(finished)
    assert try_handshake(server) is True
    tickets = server.outgoing_bytes_buffered()
    assert tickets > 0  # NewSessionTicket messages, without any write
    client.process_incoming(server.process_outgoing(1 << 20))
    with pytest.raises(unitls.WantReadError):
        client.read(100)  # tickets processed; no application data yet
    assert client.outgoing_bytes_buffered() == 0  # nothing to answer
    assert client.incoming_bytes_buffered() == 0  # ...and nothing left unprocessed
    server.write(b"first")
    pump(server, client)
    assert client.read(100) == b"first"


def test_tls12_server_final_flight_is_flushed_by_read(ctx12: Contexts):
    client, server = ctx12.buffers()
    assert try_handshake(client) is False
    pump(client, server)
    assert try_handshake(server) is False
    pump(server, client)
    assert try_handshake(client) is False  # TLS 1.2: the server finishes first
    pump(client, server)
    # read() drives the rest of the server's handshake; its final flight
    # (ChangeCipherSpec, Finished) is ready the moment read() returns.
    with pytest.raises(unitls.WantReadError):
        server.read(100)
    assert server.outgoing_bytes_buffered() > 0
    assert server.negotiated_tls_version is TLS12
    assert client.negotiated_tls_version is None
    pump(server, client)
    with pytest.raises(unitls.WantReadError):
        client.read(100)  # completes the client's handshake, no data yet
    assert client.negotiated_tls_version is TLS12
    assert client.outgoing_bytes_buffered() == 0


def test_each_handshake_step_flushes_its_flight(ctx: Contexts):
    # Driving the handshake with one drain after each call, and never a write,
    # is enough: nothing is held back waiting for a later call.
    client, server = ctx.buffers()
    steps = 0
    finished = {id(client): False, id(server): False}
    while not all(finished.values()):
        steps += 1
        assert steps < 10
        for me, peer in ((client, server), (server, client)):
            if not finished[id(me)]:
                finished[id(me)] = try_handshake(me)
            pump(me, peer)
    assert client.outgoing_bytes_buffered() == 0
    assert server.outgoing_bytes_buffered() == 0
    server.write(b"s")
    client.write(b"c")
    pump(server, client)
    pump(client, server)
    assert client.read(10) == b"s"
    assert server.read(10) == b"c"


# -- clean close -----------------------------------------------------------------------------


def test_clean_close(ctx: Contexts):
    client, server = ctx.connected()
    for _ in range(2):
        with pytest.raises(unitls.WantReadError):
            client.shutdown()  # close_notify queued; the peer's has not arrived
    assert client.outgoing_bytes_buffered() > 0
    pump(client, server)
    assert server.read(100) == b""
    assert server.read(100, bytearray(10)) == 0
    server.shutdown()  # the peer already closed: returns at once
    server.shutdown()
    pump(server, client)
    assert client.read(100) == b""
    client.shutdown()  # both close_notify alerts exchanged
    client.shutdown()
    for buf in (client, server):
        for _ in range(3):  # keeps returning EOF
            assert buf.read(100) == b""
            assert buf.read(100, bytearray(10)) == 0
            assert buf.read(0) == b""
    # A transport EOF after a clean close changes nothing: it is not ragged.
    client.process_incoming(b"")
    assert client.read(100) == b""


def test_half_close_peer_may_still_write(ctx: Contexts):
    client, server = ctx.connected()
    client.write(b"request")
    with pytest.raises(unitls.WantReadError):
        client.shutdown()
    pump(client, server)
    assert server.read(100) == b"request"
    assert server.read(100) == b""
    # The server may still answer after the client's close_notify.
    assert server.write(b"response") == 8
    server.shutdown()
    pump(server, client)
    assert client.read(100) == b"response"
    assert client.read(100) == b""
    client.shutdown()


def test_write_after_own_shutdown_raises_tls_error_naming_the_state(ctx: Contexts):
    client, server = ctx.connected()
    with pytest.raises(unitls.WantReadError):
        client.shutdown()
    with pytest.raises(unitls.TLSError, match="shutdown sent") as info:
        client.write(b"too late")
    assert_fatal(info.value)
    pump(client, server)
    assert server.read(100) == b""
    server.shutdown()
    with pytest.raises(unitls.TLSError, match="closed") as info:
        server.write(b"too late")
    assert_fatal(info.value)
    pump(server, client)
    assert client.read(100) == b""
    client.shutdown()
    with pytest.raises(unitls.TLSError, match="closed") as info:
        client.write(b"too late")
    assert_fatal(info.value)


# -- ragged EOF ------------------------------------------------------------------------------


@pytest.mark.parametrize("reader_side", ["client", "server"])
def test_ragged_eof_delivers_buffered_data_first(ctx: Contexts, reader_side: str):
    client, server = ctx.connected()
    reader, writer = (client, server) if reader_side == "client" else (server, client)
    writer.write(b"one")
    writer.write(b"two")
    pump(writer, reader)
    reader.process_incoming(b"")  # transport EOF, no close_notify
    assert reader.read(100) == b"one"
    assert reader.read(100, buf := bytearray(10)) == 3
    assert buf[:3] == b"two"
    with pytest.raises(unitls.RaggedEOF) as info:
        reader.read(100)
    assert_fatal(info.value)
    assert_stays_failed(reader)


def test_ragged_eof_in_the_middle_of_a_record(ctx: Contexts):
    client, server = ctx.connected()
    server.write(b"complete")
    server.write(b"truncated record")
    wire = server.process_outgoing(1 << 20)
    client.process_incoming(wire[:-5])
    client.process_incoming(b"")
    assert client.read(100) == b"complete"
    with pytest.raises(unitls.RaggedEOF):
        client.read(100)
    assert_stays_failed(client)


@pytest.mark.parametrize("flights", [0, 1, 2])
def test_eof_during_the_handshake_is_ragged_eof(ctx: Contexts, flights: int):
    client, server = ctx.buffers()
    # Deliver `flights` flights, then the transport ends on whoever is waiting.
    try_handshake(client)
    waiting = client
    if flights >= 1:
        pump(client, server)
        try_handshake(server)
        waiting = server
    if flights >= 2:
        wire = server.process_outgoing(1 << 20)
        client.process_incoming(wire[: len(wire) // 2])  # half of the server's flight
        waiting = client
    waiting.process_incoming(b"")
    with pytest.raises(unitls.TLSError) as info:
        waiting.do_handshake()
    assert isinstance(info.value, unitls.RaggedEOF)
    assert_fatal(info.value)
    assert_stays_failed(waiting)
    assert_no_info(waiting)


def test_process_incoming_after_eof_is_a_tls_error(ctx: Contexts):
    client, server = ctx.connected()
    server.write(b"data")
    pump(server, client)
    client.process_incoming(b"")
    for late in (b"more", b"", bytearray(b"x"), memoryview(b"y")):
        with pytest.raises(unitls.TLSError) as info:
            client.process_incoming(late)
        assert_fatal(info.value)
    assert client.read(100) == b"data"  # what came before EOF is still delivered


# -- corrupted and malicious input -------------------------------------------------------------


def test_corrupted_record_fails_and_the_alert_is_still_sent(ctx: Contexts):
    client, server = ctx.connected()
    server.write(b"good record")
    server.write(b"bad record")
    wire = bytearray(server.process_outgoing(1 << 20))
    wire[-3] ^= 0x01  # inside the second record's authentication tag
    client.process_incoming(bytes(wire))
    assert client.read(100) == b"good record"  # data before the corruption is intact
    with pytest.raises(unitls.TLSError) as info:
        client.read(100)
    assert_fatal(info.value)
    alert = client.process_outgoing(1 << 20)
    assert alert[:1] == (b"\x15" if ctx.version is TLS12 else b"\x17")  # (encrypted) alert
    server.process_incoming(alert)
    with pytest.raises(unitls.TLSError) as server_info:
        server.read(100)  # the peer learns why
    assert_fatal(server_info.value)
    assert_stays_failed(client)
    assert_stays_failed(server)
    assert client.process_outgoing(1 << 20) == b""  # the alert went out once


def test_record_header_claiming_65535_bytes_fails_at_once(ctx: Contexts):
    client, _server = ctx.connected()
    client.process_incoming(b"\x17\x03\x03\xff\xff" + bytes(16))  # nowhere near 64 KiB
    with pytest.raises(unitls.TLSError) as info:
        client.read(100)
    assert_fatal(info.value)
    assert client.outgoing_bytes_buffered() > 0  # an alert for the peer
    assert_stays_failed(client)


def test_oversized_handshake_record_fails_at_once(ctx: Contexts):
    _client, server = ctx.buffers()
    server.process_incoming(b"\x16\x03\x01\xff\xff" + bytes(16))
    with pytest.raises(unitls.TLSError) as info:
        server.do_handshake()
    assert_fatal(info.value)
    assert_stays_failed(server)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x00" * 64,
        bytes(range(256)),
        b"\x15\x03\x03\x00\x02\x02\x28",  # a plaintext fatal alert
    ],
    ids=["http", "zeros", "bytes", "alert"],
)
def test_garbage_before_any_handshake(ctx: Contexts, garbage: bytes):
    client, server = ctx.buffers()
    server.process_incoming(garbage)
    with pytest.raises(unitls.TLSError) as info:
        server.do_handshake()
    assert_fatal(info.value)
    assert_stays_failed(server)
    assert_no_info(server)

    try_handshake(client)  # the ClientHello is out; garbage comes back
    client.process_incoming(garbage)
    with pytest.raises(unitls.TLSError) as info:
        client.do_handshake()
    assert_fatal(info.value)
    assert_stays_failed(client)
    assert_no_info(client)


def test_garbage_through_read_and_write_before_the_handshake(ctx: Contexts):
    # The same failure when the handshake is driven implicitly by read()/write().
    client, server = ctx.buffers()
    server.process_incoming(b"\x16\x03\x01\x00\x05hello")
    with pytest.raises(unitls.TLSError) as info:
        server.read(100)
    assert_fatal(info.value)
    assert_stays_failed(server)
    client.process_incoming(b"\x16\x03\x03\x00\x05hello")
    with pytest.raises(unitls.TLSError) as info:
        client.write(b"data")
    assert_fatal(info.value)
    assert_stays_failed(client)
