"""In-memory TLS 1.3 benchmark: unitls vs the stdlib `ssl` module vs raw pyOpenSSL.

    python bench/bench_tls.py [--quick] [--rounds N] [--json out.json]

Every implementation runs in this one process, client and server in one thread,
over memory BIOs: stdlib `ssl.SSLObject` + `ssl.MemoryBIO`, raw pyOpenSSL
`SSL.Connection(ctx, None)` driven through its public methods (`send`, `bio_read`,
`bio_write`, `recv`), and a unitls `TLSBuffer` from `OPENSSL_IMPLEMENTATION`.
All three use the same trustme ECDSA P-256 CA and `localhost` leaf, TLS 1.3 only,
TLS_AES_256_GCM_SHA384, certificate and hostname verification on the client, and
(for the like-for-like rows) ECDHE pinned to P-256 on both sides. A probe handshake
per implementation reads version, suite and key-exchange group off the wire (the
ServerHello) and the benchmark refuses to run if any of them differs.

Rows (method in bench/README.md): bulk (64 MiB in 16 KiB writes), 256 B writes
(50,000, each written, drained, fed and read), full handshakes (200, contexts
reused, resumption checked to be off), the same handshakes with each library's
default groups, and RSS per idle established connection (each implementation in
a fresh subprocess). Implementations run round-robin inside each repetition, in a
rotating order; ratios are computed per repetition against the stdlib in the same
repetition and the median is shown.

Benchmark-only setup reaches into private attributes in a few places (pinning
groups on unitls' OpenSSL contexts, reading `SSL_session_reused`, hostname checks
for raw pyOpenSSL); each place says so. Nothing here is an example of using unitls.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import cryptography
import OpenSSL
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL, crypto

# pyOpenSSL's cffi binding of the OpenSSL inside its wheel (the one unitls uses as
# well); needed for SSL_CTX_set1_curves_list, SSL_session_reused and hostname checks.
from OpenSSL._util import lib as ossl_lib

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

MiB = 1 << 20
BULK_BYTES = 64 * MiB
BULK_BLOCK = 16 * 1024
SMALL_WRITES = 50_000
SMALL_BLOCK = 256
HANDSHAKES = 200
IDLE_PAIRS = 2_000
#: Each timed row is cut into this many round-robin slices per repetition (they divide
#: the full-size work exactly: 256 x 16 KiB, 2,500 x 256 B, 10 handshakes per slice).
SLICES = {"bulk": 16, "small": 20, "hs": 20}
DRAIN = 65536  # process_outgoing / bio_read / MemoryBIO.read amount
READ = 16384  # read / recv amount

HOSTNAME = "localhost"
SUITE = "TLS_AES_256_GCM_SHA384"
SUITE_ID = 0x1302
TLS13 = 0x0304

#: IANA TLS supported-group ids (https://www.iana.org/assignments/tls-parameters).
GROUP_NAMES = {
    0x0017: "secp256r1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x001D: "x25519",
    0x001E: "x448",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
}
P256 = 0x0017

IMPLEMENTATIONS = ("stdlib", "pyopenssl", "unitls")
LABELS = {
    "stdlib": "stdlib `SSLObject`+`MemoryBIO`",
    "pyopenssl": "raw pyOpenSSL `Connection(ctx, None)`",
    "unitls": "unitls `TLSBuffer`",
}


class BenchError(RuntimeError):
    """A correctness check failed: the numbers of this run are meaningless."""


def _data_loop(
    write: Callable[[bytes], int],
    drain: Callable[[int], bytes],
    feed: Callable[[bytes], Any],
    read: Callable[[int], bytes],
    writes: int,
    block: bytes,
) -> tuple[float, int, bytes]:
    """The timed data loop, one for all three stacks so they run the very same code:
    each write is drained, fed to the peer and read before the next one."""
    sent = got = 0
    chunk = b""
    t0 = time.perf_counter()
    for _ in range(writes):
        sent += write(block)
        feed(drain(DRAIN))
        while got < sent:
            chunk = read(READ)
            if not chunk:
                raise BenchError("unexpected EOF")
            got += len(chunk)
    return time.perf_counter() - t0, got, chunk


# -- credentials ---------------------------------------------------------------------


class Credentials:
    """A trustme ECDSA P-256 CA and `localhost` leaf, as PEM bytes and as files."""

    def __init__(self, directory: str) -> None:
        ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
        leaf = ca.issue_cert(HOSTNAME, key_type=trustme.KeyType.ECDSA)
        self.ca_pem = ca.cert_pem.bytes()
        self.chain_pems = [blob.bytes() for blob in leaf.cert_chain_pems]
        self.key_pem = leaf.private_key_pem.bytes()
        key = x509.load_pem_x509_certificate(self.chain_pems[0]).public_key()
        if not (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"):
            raise BenchError(f"the leaf key is not ECDSA P-256: {key!r}")
        self.chain_file = os.path.join(directory, "chain.pem")
        self.key_file = os.path.join(directory, "key.pem")
        with open(self.chain_file, "wb") as f:
            f.write(b"".join(self.chain_pems))
        with open(self.key_file, "wb") as f:
            f.write(self.key_pem)


# -- the three implementations ----------------------------------------------------------
#
# Each class offers the same untimed endpoint operations (used to establish pairs, to
# verify content and to probe the handshake) and three timed loops. The timed loops are
# written with the same structure for every implementation: bound methods in locals,
# one write, one drain, one feed and as many reads as needed per iteration.


class Stdlib:
    name = "stdlib"
    WantRead: type[Exception] = ssl.SSLWantReadError

    def __init__(self, creds: Credentials, *, pinned: bool) -> None:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and hostname
        client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1_3
        client.load_verify_locations(cadata=creds.ca_pem.decode())
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.minimum_version = server.maximum_version = ssl.TLSVersion.TLSv1_3
        server.load_cert_chain(creds.chain_file, creds.key_file)
        # The ssl module cannot narrow the TLS 1.3 suites; OpenSSL's default order puts
        # TLS_AES_256_GCM_SHA384 first and the probe checks it is what gets negotiated.
        if pinned:
            client.set_ecdh_curve("prime256v1")
            server.set_ecdh_curve("prime256v1")
        self.client_ctx, self.server_ctx = client, server

    # endpoints are (SSLObject, incoming MemoryBIO, outgoing MemoryBIO)
    def client(self) -> Any:
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        return (self.client_ctx.wrap_bio(inc, out, server_hostname=HOSTNAME), inc, out)

    def server(self) -> Any:
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        return (self.server_ctx.wrap_bio(inc, out, server_side=True), inc, out)

    def do_handshake(self, ep: Any) -> None:
        ep[0].do_handshake()

    def outgoing(self, ep: Any) -> bytes:
        return ep[2].read()  # type: ignore[no-any-return]

    def incoming(self, ep: Any, data: bytes) -> None:
        ep[1].write(data)

    def write(self, ep: Any, data: bytes) -> int:
        return ep[0].write(data)  # type: ignore[no-any-return]

    def read(self, ep: Any, amount: int) -> bytes:
        return ep[0].read(amount)  # type: ignore[no-any-return]

    def reused(self, ep: Any) -> bool:
        return bool(ep[0].session_reused)

    def describe(self, ep: Any) -> tuple[str | None, str | None, str | None]:
        """(version, suite, group) as the library reports them."""
        # No API for the negotiated group in the ssl module of Python 3.11 (SSLSocket.group()
        # arrived in 3.15); the wire probe reports it instead.
        return ep[0].version(), ep[0].cipher()[0], None

    def bulk(self, c: Any, s: Any, writes: int, block: bytes) -> tuple[float, int, bytes]:
        return _data_loop(c[0].write, c[2].read, s[1].write, s[0].read, writes, block)

    def handshakes(self, n: int) -> tuple[float, Any]:
        cctx, sctx = self.client_ctx, self.server_ctx
        MemoryBIO, WantRead = ssl.MemoryBIO, self.WantRead
        c = s = None
        t0 = time.perf_counter()
        for _ in range(n):
            c_in, c_out, s_in, s_out = MemoryBIO(), MemoryBIO(), MemoryBIO(), MemoryBIO()
            c = cctx.wrap_bio(c_in, c_out, server_hostname=HOSTNAME)
            s = sctx.wrap_bio(s_in, s_out, server_side=True)
            c_done = s_done = False
            for _ in range(8):
                if not c_done:
                    try:
                        c.do_handshake()
                        c_done = True
                    except WantRead:
                        pass
                data = c_out.read(DRAIN)
                if data:
                    s_in.write(data)
                if not s_done:
                    try:
                        s.do_handshake()
                        s_done = True
                    except WantRead:
                        pass
                data = s_out.read(DRAIN)
                if data:
                    c_in.write(data)
                if c_done and s_done:
                    break
            else:
                raise BenchError("stdlib handshake did not complete")
            if c.session_reused:
                raise BenchError("stdlib resumed a session")
        return time.perf_counter() - t0, ((c, None, None), (s, None, None))


def _pyopenssl_contexts(
    creds: Credentials, *, pinned: bool, release_buffers: bool = False
) -> tuple[SSL.Context, SSL.Context]:
    contexts = []
    for side in ("client", "server"):
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_tls13_ciphersuites(SUITE.encode())
        if side == "client":
            ctx.set_verify(SSL.VERIFY_PEER)
            store = ctx.get_cert_store()
            assert store is not None
            store.add_cert(
                crypto.X509.from_cryptography(x509.load_pem_x509_certificate(creds.ca_pem))
            )
        else:
            pems = [x509.load_pem_x509_certificate(p) for p in creds.chain_pems]
            ctx.use_certificate(pems[0])
            key = serialization.load_pem_private_key(creds.key_pem, password=None)
            ctx.use_privatekey(key)  # type: ignore[arg-type]
            for extra in pems[1:]:
                ctx.add_extra_chain_cert(extra)
        # Same effect as Context.set_tmp_ecdh(ec.SECP256R1()): one group, P-256.
        if pinned and ossl_lib.SSL_CTX_set1_curves_list(ctx._context, b"P-256") != 1:
            raise BenchError("SSL_CTX_set1_curves_list(P-256) failed")
        if release_buffers:  # memory variant only (what unitls and the ssl module set)
            ossl_lib.SSL_CTX_set_mode(ctx._context, ossl_lib.SSL_MODE_RELEASE_BUFFERS)
        contexts.append(ctx)
    return contexts[0], contexts[1]


class PyOpenSSL:
    name = "pyopenssl"
    WantRead: type[Exception] = SSL.WantReadError

    def __init__(self, creds: Credentials, *, pinned: bool, release_buffers: bool = False) -> None:
        self.client_ctx, self.server_ctx = _pyopenssl_contexts(
            creds, pinned=pinned, release_buffers=release_buffers
        )

    def client(self) -> Any:
        conn = SSL.Connection(self.client_ctx, None)
        _pyopenssl_client_setup(conn)
        return conn

    def server(self) -> Any:
        conn = SSL.Connection(self.server_ctx, None)
        conn.set_accept_state()
        return conn

    def do_handshake(self, ep: Any) -> None:
        ep.do_handshake()

    def outgoing(self, ep: Any) -> bytes:
        try:
            return ep.bio_read(DRAIN)  # type: ignore[no-any-return]
        except SSL.WantReadError:
            return b""

    def incoming(self, ep: Any, data: bytes) -> None:
        if data:
            ep.bio_write(data)

    def write(self, ep: Any, data: bytes) -> int:
        return ep.send(data)  # type: ignore[no-any-return]

    def read(self, ep: Any, amount: int) -> bytes:
        return ep.recv(amount)  # type: ignore[no-any-return]

    def reused(self, ep: Any) -> bool:
        return bool(ossl_lib.SSL_session_reused(ep._ssl))  # private handle: check only

    def describe(self, ep: Any) -> tuple[str | None, str | None, str | None]:
        return ep.get_protocol_version_name(), ep.get_cipher_name(), ep.get_group_name()

    def bulk(self, c: Any, s: Any, writes: int, block: bytes) -> tuple[float, int, bytes]:
        return _data_loop(c.send, c.bio_read, s.bio_write, s.recv, writes, block)

    def handshakes(self, n: int) -> tuple[float, Any]:
        cctx, sctx = self.client_ctx, self.server_ctx
        Connection, WantRead = SSL.Connection, self.WantRead
        setup, reused = _pyopenssl_client_setup, ossl_lib.SSL_session_reused
        c = s = None
        t0 = time.perf_counter()
        for _ in range(n):
            c = Connection(cctx, None)
            setup(c)
            s = Connection(sctx, None)
            s.set_accept_state()
            c_done = s_done = False
            for _ in range(8):
                if not c_done:
                    try:
                        c.do_handshake()
                        c_done = True
                    except WantRead:
                        pass
                try:
                    s.bio_write(c.bio_read(DRAIN))
                except WantRead:  # bio_read on an empty BIO
                    pass
                if not s_done:
                    try:
                        s.do_handshake()
                        s_done = True
                    except WantRead:
                        pass
                try:
                    c.bio_write(s.bio_read(DRAIN))
                except WantRead:
                    pass
                if c_done and s_done:
                    break
            else:
                raise BenchError("pyOpenSSL handshake did not complete")
            if reused(c._ssl):
                raise BenchError("pyOpenSSL resumed a session")
        return time.perf_counter() - t0, (c, s)


def _pyopenssl_client_setup(conn: SSL.Connection) -> None:
    conn.set_tlsext_host_name(HOSTNAME.encode())
    # pyOpenSSL has no public hostname check; do what unitls and the ssl module do (have
    # OpenSSL check the name during the handshake, same flags as unitls) so all three
    # verify the same things.
    param = ossl_lib.SSL_get0_param(conn._ssl)
    ossl_lib.X509_VERIFY_PARAM_set_hostflags(
        param,
        ossl_lib.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
        | ossl_lib.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
    )
    if ossl_lib.X509_VERIFY_PARAM_set1_host(param, HOSTNAME.encode(), len(HOSTNAME)) != 1:
        raise BenchError("X509_VERIFY_PARAM_set1_host failed")
    conn.set_connect_state()


def _unitls_pin_p256(client_ctx: Any, server_ctx: Any) -> None:
    """Benchmark-only setup: pin ECDHE to P-256 on unitls' OpenSSL contexts.

    unitls has no group setting (PEP 748 has none); this reaches the private
    `SSL.Context` of each unitls context and must run before any buffer exists
    (an `SSL.Context` that a Connection has used is immutable).
    """
    for ctx in (client_ctx._ssl_context, *server_ctx._contexts.contexts):
        if ossl_lib.SSL_CTX_set1_curves_list(ctx._context, b"P-256") != 1:
            raise BenchError("SSL_CTX_set1_curves_list(P-256) failed on a unitls context")


class Unitls:
    name = "unitls"
    WantRead: type[Exception] = unitls.WantReadError

    def __init__(self, creds: Credentials, *, pinned: bool) -> None:
        suites = [unitls.CipherSuite.TLS_AES_256_GCM_SHA384]
        v13 = unitls.TLSVersion.TLSv1_3
        client_cfg = unitls.TLSClientConfiguration(
            ciphers=suites,
            lowest_supported_version=v13,
            highest_supported_version=v13,
            trust_store=unitls.TrustStore.from_buffer(creds.ca_pem),
        )
        chain = unitls.SigningChain(
            leaf=(
                unitls.Certificate.from_buffer(creds.chain_pems[0]),
                unitls.PrivateKey.from_buffer(creds.key_pem),
            ),
            chain=[unitls.Certificate.from_buffer(p) for p in creds.chain_pems[1:]],
        )
        server_cfg = unitls.TLSServerConfiguration(
            certificate_chain=[chain],
            ciphers=suites,
            lowest_supported_version=v13,
            highest_supported_version=v13,
        )
        self.client_ctx = OPENSSL_IMPLEMENTATION.client_context(client_cfg)
        self.server_ctx = OPENSSL_IMPLEMENTATION.server_context(server_cfg)
        if pinned:
            _unitls_pin_p256(self.client_ctx, self.server_ctx)

    def forget_sessions(self) -> None:
        """Benchmark-only: empty the client context's session cache (private), so the
        next buffer makes a full handshake like the other two implementations."""
        self.client_ctx._sessions.clear()

    def client(self) -> Any:
        self.forget_sessions()
        return self.client_ctx.create_buffer(HOSTNAME)

    def server(self) -> Any:
        return self.server_ctx.create_buffer()

    def do_handshake(self, ep: Any) -> None:
        ep.do_handshake()

    def outgoing(self, ep: Any) -> bytes:
        return ep.process_outgoing(DRAIN)  # type: ignore[no-any-return]

    def incoming(self, ep: Any, data: bytes) -> None:
        if data:
            ep.process_incoming(data)

    def write(self, ep: Any, data: bytes) -> int:
        return ep.write(data)  # type: ignore[no-any-return]

    def read(self, ep: Any, amount: int) -> bytes:
        return ep.read(amount)  # type: ignore[no-any-return]

    def reused(self, ep: Any) -> bool:
        return bool(ossl_lib.SSL_session_reused(ep._conn._ssl))  # private handle: check only

    def describe(self, ep: Any) -> tuple[str | None, str | None, str | None]:
        version = ep.negotiated_tls_version
        cipher = ep.cipher()
        return (
            version.value if version is not None else None,
            cipher.name if isinstance(cipher, unitls.CipherSuite) else str(cipher),
            ep._conn.get_group_name(),  # no unitls API for the group; via its Connection
        )

    def bulk(self, c: Any, s: Any, writes: int, block: bytes) -> tuple[float, int, bytes]:
        return _data_loop(c.write, c.process_outgoing, s.process_incoming, s.read, writes, block)

    def handshakes(self, n: int) -> tuple[float, Any]:
        # The client context never reads here, so it never caches a session; every
        # handshake is still checked to be a full one.
        create_client = self.client_ctx.create_buffer
        create_server = self.server_ctx.create_buffer
        WantRead, reused = self.WantRead, ossl_lib.SSL_session_reused
        c = s = None
        t0 = time.perf_counter()
        for _ in range(n):
            c = create_client(HOSTNAME)
            s = create_server()
            c_done = s_done = False
            for _ in range(8):
                if not c_done:
                    try:
                        c.do_handshake()
                        c_done = True
                    except WantRead:
                        pass
                data = c.process_outgoing(DRAIN)
                if data:  # process_incoming(b"") would mean transport EOF
                    s.process_incoming(data)
                if not s_done:
                    try:
                        s.do_handshake()
                        s_done = True
                    except WantRead:
                        pass
                data = s.process_outgoing(DRAIN)
                if data:
                    c.process_incoming(data)
                if c_done and s_done:
                    break
            else:
                raise BenchError("unitls handshake did not complete")
            if reused(c._conn._ssl):
                raise BenchError("unitls resumed a session")
        return time.perf_counter() - t0, (c, s)


Impl = Stdlib | PyOpenSSL | Unitls


def make_impl(name: str, creds: Credentials, *, pinned: bool) -> Impl:
    if name == "stdlib":
        return Stdlib(creds, pinned=pinned)
    if name == "pyopenssl":
        return PyOpenSSL(creds, pinned=pinned)
    if name == "pyopenssl-rb":
        return PyOpenSSL(creds, pinned=pinned, release_buffers=True)
    if name == "unitls":
        return Unitls(creds, pinned=pinned)
    raise ValueError(name)


# -- untimed helpers: establishing pairs, verifying content, probing the wire ------------


def _try(impl: Impl, step: Callable[[], None]) -> bool:
    try:
        step()
        return True
    except impl.WantRead:
        return False


def establish(impl: Impl, first_flight: list[bytes] | None = None) -> tuple[Any, Any]:
    """A completed handshake between a new client and server endpoint."""
    c, s = impl.client(), impl.server()
    c_done = s_done = False
    for flights in range(8):
        c_done = c_done or _try(impl, lambda: impl.do_handshake(c))
        impl.incoming(s, impl.outgoing(c))
        s_done = s_done or _try(impl, lambda: impl.do_handshake(s))
        data = impl.outgoing(s)
        if first_flight is not None and flights == 0:
            first_flight.append(data)
        impl.incoming(c, data)
        if c_done and s_done:
            break
    else:
        raise BenchError(f"{impl.name}: handshake did not complete")
    if impl.reused(c):
        raise BenchError(f"{impl.name}: session resumed")
    return c, s


def transfer(impl: Impl, writer: Any, reader: Any, data: bytes, block: int) -> bytes:
    """Send `data` in `block`-sized writes; return what the reader read."""
    received = bytearray()
    view = memoryview(data)
    while view:
        n = impl.write(writer, bytes(view[:block]))
        view = view[n:]
        impl.incoming(reader, impl.outgoing(writer))
        while True:
            try:
                chunk = impl.read(reader, READ)
            except impl.WantRead:
                break
            if not chunk:
                raise BenchError(f"{impl.name}: unexpected EOF")
            received += chunk
        impl.incoming(writer, impl.outgoing(reader))
    return bytes(received)


def verify_pair(impl: Impl, c: Any, s: Any, size: int) -> None:
    """Random data both ways, in bulk and small writes, compared by SHA-256."""
    for block in (BULK_BLOCK, SMALL_BLOCK):
        for writer, reader in ((c, s), (s, c)):
            data = os.urandom(size)
            got = transfer(impl, writer, reader, data, block)
            if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
                raise BenchError(f"{impl.name}: corrupted transfer ({len(got)}/{len(data)} bytes)")


def parse_server_hello(flight: bytes) -> dict[str, Any]:
    """Version, suite and key-share group from the server's first TLS 1.3 flight."""
    if len(flight) < 9 or flight[0] != 22 or flight[5] != 2:
        raise BenchError("the server's first flight does not start with a ServerHello")
    body = flight[9:]
    pos = 2 + 32  # legacy_version, random
    pos += 1 + body[pos]  # legacy_session_id
    suite = int.from_bytes(body[pos : pos + 2], "big")
    pos += 2 + 1  # cipher_suite, legacy_compression_method
    end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 2
    version = group = None
    while pos < end:
        ext = int.from_bytes(body[pos : pos + 2], "big")
        length = int.from_bytes(body[pos + 2 : pos + 4], "big")
        data = body[pos + 4 : pos + 4 + length]
        if ext == 0x002B:  # supported_versions
            version = int.from_bytes(data[:2], "big")
        elif ext == 0x0033:  # key_share
            group = int.from_bytes(data[:2], "big")
        pos += 4 + length
    return {"suite": suite, "version": version, "group": group}


def probe(impl: Impl, *, pinned: bool) -> dict[str, Any]:
    """One handshake with the wire checked, then a content check over the new pair."""
    flights: list[bytes] = []
    c, s = establish(impl, flights)
    wire = parse_server_hello(flights[0])
    version, suite, group = impl.describe(c)
    if wire["version"] != TLS13 or version != "TLSv1.3":
        raise BenchError(f"{impl.name}: not TLS 1.3 ({wire['version']!r}, {version!r})")
    if wire["suite"] != SUITE_ID or suite != SUITE:
        raise BenchError(f"{impl.name}: negotiated {suite!r} (0x{wire['suite']:04x}), not {SUITE}")
    if pinned and wire["group"] != P256:
        raise BenchError(f"{impl.name}: group 0x{wire['group']:04x} is not P-256")
    verify_pair(impl, c, s, 1 * MiB)
    wire_group = GROUP_NAMES.get(wire["group"], f"0x{wire['group']:04x}")
    return {"wire_group": wire_group, "api_group": group}


# -- timed rows -----------------------------------------------------------------------


@contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def interleaved(
    impls: dict[str, Impl], slices: int, seed: int, run_slice: Callable[[Impl], tuple[float, float]]
) -> dict[str, float]:
    """Rate per implementation, the work cut into `slices` run round-robin.

    Each slice runs once per implementation, in an order that rotates from slice to
    slice, so a burst of load on this shared machine hits every implementation alike.
    `run_slice` returns (units of work, seconds).
    """
    work = dict.fromkeys(impls, 0.0)
    seconds = dict.fromkeys(impls, 0.0)
    for i in range(slices):
        k = (seed + i) % len(IMPLEMENTATIONS)
        for name in IMPLEMENTATIONS[k:] + IMPLEMENTATIONS[:k]:
            with no_gc():
                done, elapsed = run_slice(impls[name])
            work[name] += done
            seconds[name] += elapsed
    return {name: work[name] / seconds[name] for name in impls}


def data_slice(pairs: dict[str, tuple[Any, Any]], writes: int, block: bytes) -> Any:
    """A slice of `writes` client -> server writes of `block`; returns (bytes, seconds)."""

    def run(impl: Impl) -> tuple[float, float]:
        c, s = pairs[impl.name]
        elapsed, got, last = impl.bulk(c, s, writes, block)
        if got != writes * len(block) or not last or last != block[-len(last) :]:
            raise BenchError(f"{impl.name}: received {got} of {writes * len(block)} bytes")
        return got, elapsed

    return run


def handshake_slice(n: int) -> Callable[[Impl], tuple[float, float]]:
    """A slice of `n` full handshakes; returns (handshakes, seconds)."""

    def run(impl: Impl) -> tuple[float, float]:
        elapsed, (c, _) = impl.handshakes(n)
        if impl.reused(c):
            raise BenchError(f"{impl.name}: session resumed")
        return n, elapsed

    return run


# -- idle memory (one fresh subprocess per implementation) ----------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _settle() -> int:
    gc.collect()
    try:  # give freed heap pages back to the OS so RSS shows live memory (glibc only)
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _rss_bytes()


def memory_child(name: str, pairs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        impl = make_impl(name, Credentials(tmp), pinned=True)
    ping = b"x" * SMALL_BLOCK

    def idle_pair() -> tuple[Any, Any]:
        c, s = establish(impl)
        # One request/response, so tickets are consumed and buffers were used once.
        if transfer(impl, c, s, ping, SMALL_BLOCK) != ping:
            raise BenchError(f"{name}: bad echo")
        if transfer(impl, s, c, ping, SMALL_BLOCK) != ping:
            raise BenchError(f"{name}: bad echo")
        if impl.outgoing(c) or impl.outgoing(s):
            raise BenchError(f"{name}: unflushed data on an idle pair")
        return c, s

    warm = [idle_pair() for _ in range(50)]
    del warm
    before = _settle()
    kept = [idle_pair() for _ in range(pairs)]
    after = _settle()
    assert len(kept) == pairs
    del kept
    # Informational: what stays allocated once every connection is gone (caches, leaks).
    dropped = _settle()
    return {
        "impl": name,
        "pairs": pairs,
        "per_pair": (after - before) / pairs,
        "retained_per_pair": (dropped - before) / pairs,
    }


def run_memory(name: str, pairs: int) -> dict[str, float]:
    """RSS bytes per idle connection (client and server end together), in a subprocess;
    also the bytes per connection still held after all of them were released."""
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", name, "--pairs", str(pairs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"memory child {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- environment ------------------------------------------------------------------------


def environment() -> dict[str, str]:
    cpu = "unknown"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu == "unknown":
                    cpu = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("aes", "vaes", "vpclmulqdq", "avx2", "avx512f", "sha_ni")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": platform.python_version() + " " + platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": f"{cpu} ({os.cpu_count()} CPUs; {' '.join(x for x in wanted if x in flags)})",
        "stdlib_openssl": ssl.OPENSSL_VERSION,
        "pyopenssl_openssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        "pyopenssl": OpenSSL.__version__,
        "cryptography": cryptography.__version__,
        "unitls": f"{unitls.__version__} ({commit or 'no git'})",
    }


# -- driver -------------------------------------------------------------------------------

#: row key -> (title, unit, higher is better, target vs stdlib or None)
ROWS: dict[str, tuple[str, str, bool, float | None]] = {
    "bulk": ("bulk, 16 KiB writes", "MB/s", True, 0.85),
    "small": ("256 B writes", "ops/s", True, 0.50),
    "hs": ("full handshakes, P-256", "hs/s", True, 1.3),
    "hs_default": ("full handshakes, default groups", "hs/s", True, None),
    "memory": ("RSS per idle connection", "KiB", False, 1.0),
}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (3 if quick else 7)
    bulk_bytes = BULK_BYTES // 8 if quick else BULK_BYTES
    small_writes = SMALL_WRITES // 10 if quick else SMALL_WRITES
    handshakes = HANDSHAKES // 5 if quick else HANDSHAKES
    idle_pairs = args.pairs if args.pairs is not None else (300 if quick else IDLE_PAIRS)

    env = environment()
    for key, value in env.items():
        print(f"{key:>18}: {value}")
    print(
        f"{'settings':>18}: {rounds} rounds; bulk {bulk_bytes // MiB} MiB/{BULK_BLOCK} B; "
        f"small {small_writes}x{SMALL_BLOCK} B; {handshakes} handshakes; {idle_pairs} idle pairs"
    )

    with tempfile.TemporaryDirectory() as tmp:
        creds = Credentials(tmp)
        pinned = {n: make_impl(n, creds, pinned=True) for n in IMPLEMENTATIONS}
        default = {n: make_impl(n, creds, pinned=False) for n in IMPLEMENTATIONS}
        # Separate unitls contexts for the handshake rows: the data rows read on the
        # client, which makes a unitls client context cache a session for resumption.
        hs_pinned = {n: make_impl(n, creds, pinned=True) for n in IMPLEMENTATIONS}

    groups: dict[str, dict[str, Any]] = {}
    for n in IMPLEMENTATIONS:
        probe(pinned[n], pinned=True)
        probe(hs_pinned[n], pinned=True)
        groups[n] = probe(default[n], pinned=False)
    # The probes read on the client, so unitls client contexts now hold a session.
    for impl in (*pinned.values(), *default.values(), *hs_pinned.values()):
        if isinstance(impl, Unitls):
            impl.forget_sessions()
    print(f"{'checks':>18}: TLSv1.3, {SUITE}, P-256 on the wire for the pinned rows; content OK")
    for n in IMPLEMENTATIONS:
        api = groups[n]["api_group"] or "no API"
        print(f"{'default group':>18}: {n}: {groups[n]['wire_group']} (wire), {api} (library)")

    values: dict[str, dict[str, list[float]]] = {r: {n: [] for n in IMPLEMENTATIONS} for r in ROWS}
    retained: dict[str, list[float]] = {n: [] for n in (*IMPLEMENTATIONS, "pyopenssl-rb")}
    bulk_block = bytes(range(256)) * (BULK_BLOCK // 256)
    small_block = bytes(range(256))[:SMALL_BLOCK]
    for r in range(rounds):
        # Fresh established pairs per repetition (untimed); contexts are reused.
        bulk_pairs = {n: establish(pinned[n]) for n in IMPLEMENTATIONS}
        rates = interleaved(
            pinned,
            SLICES["bulk"],
            r,
            data_slice(bulk_pairs, bulk_bytes // BULK_BLOCK // SLICES["bulk"], bulk_block),
        )
        for n in IMPLEMENTATIONS:
            values["bulk"][n].append(rates[n] / 1e6)
        small_pairs = {n: establish(pinned[n]) for n in IMPLEMENTATIONS}
        rates = interleaved(
            pinned,
            SLICES["small"],
            r,
            data_slice(small_pairs, small_writes // SLICES["small"], small_block),
        )
        for n in IMPLEMENTATIONS:
            values["small"][n].append(rates[n] / SMALL_BLOCK)  # bytes/s -> writes/s
        for row, impls in (("hs", hs_pinned), ("hs_default", default)):
            rates = interleaved(impls, SLICES["hs"], r, handshake_slice(handshakes // SLICES["hs"]))
            for n in IMPLEMENTATIONS:
                values[row][n].append(rates[n])
        if not args.no_memory:
            k = r % len(IMPLEMENTATIONS)
            for n in IMPLEMENTATIONS[k:] + IMPLEMENTATIONS[:k]:
                mem = run_memory(n, idle_pairs)
                values["memory"][n].append(mem["per_pair"] / 1024)
                retained[n].append(mem["retained_per_pair"] / 1024)
        line = "  ".join(
            f"{row}: " + "/".join(f"{values[row][n][-1]:,.0f}" for n in IMPLEMENTATIONS)
            for row in ROWS
            if values[row]["stdlib"]
        )
        print(f"round {r + 1}/{rounds} (stdlib/pyopenssl/unitls)  {line}", flush=True)

    extra: dict[str, float] = {}
    if not args.no_memory:
        # Informational: raw pyOpenSSL with SSL_MODE_RELEASE_BUFFERS, as unitls and ssl set it.
        rb = [run_memory("pyopenssl-rb", idle_pairs) for _ in range(min(rounds, 3))]
        extra["memory_pyopenssl_release_buffers"] = statistics.median(
            m["per_pair"] / 1024 for m in rb
        )
        retained["pyopenssl-rb"] = [m["retained_per_pair"] / 1024 for m in rb]
        for n, kib in retained.items():
            extra[f"retained_after_close_{n}"] = statistics.median(kib)
    return {
        "environment": env,
        "settings": {
            "rounds": rounds,
            "bulk_bytes": bulk_bytes,
            "small_writes": small_writes,
            "handshakes": handshakes,
            "idle_pairs": idle_pairs,
            "quick": quick,
        },
        "default_groups": groups,
        "values": values,
        "extra": extra,
    }


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per row: medians, per-repetition ratio medians and ranges, target verdicts."""
    table = []
    for row, (title, unit, higher, target) in ROWS.items():
        vals = result["values"][row]
        if not vals["stdlib"]:
            continue
        entry: dict[str, Any] = {"row": row, "title": title, "unit": unit, "target": target}
        for n in IMPLEMENTATIONS:
            entry[n] = statistics.median(vals[n])
            ratios = [a / b for a, b in zip(vals[n], vals["stdlib"], strict=True)]
            entry[f"{n}_ratio"] = statistics.median(ratios)
            entry[f"{n}_ratio_range"] = (min(ratios), max(ratios))
        vs_raw = [a / b for a, b in zip(vals["unitls"], vals["pyopenssl"], strict=True)]
        entry["unitls_vs_pyopenssl"] = statistics.median(vs_raw)
        entry["unitls_vs_pyopenssl_range"] = (min(vs_raw), max(vs_raw))
        ratio = entry["unitls_ratio"]
        if target is not None:
            entry["target_met"] = ratio >= target if higher else ratio <= target
        raw = entry["unitls_vs_pyopenssl"]
        entry["not_worse_than_raw"] = raw >= 1.0 if higher else raw <= 1.0
        table.append(entry)
    return table


def render(result: dict[str, Any], table: list[dict[str, Any]]) -> str:
    lines = [
        "| Row | stdlib | raw pyOpenSSL | unitls | pyOpenSSL / stdlib | unitls / stdlib "
        "| target | met | unitls / pyOpenSSL | not worse |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for e in table:
        higher = ROWS[e["row"]][2]
        fmt = "{:,.1f}" if e["unit"] == "KiB" else "{:,.0f}"
        cells = [f"{e['title']} ({e['unit']})"]
        cells += [fmt.format(e[n]) for n in IMPLEMENTATIONS]
        for key in ("pyopenssl", "unitls"):
            lo, hi = e[f"{key}_ratio_range"]
            cells.append(f"{e[f'{key}_ratio']:.2f}x ({lo:.2f}-{hi:.2f})")
        if e["target"] is None:
            cells += ["—", "—"]
        else:
            cells += [f"{'≥' if higher else '≤'} {e['target']:.2f}x", _yes(e["target_met"])]
        lo, hi = e["unitls_vs_pyopenssl_range"]
        cells.append(f"{e['unitls_vs_pyopenssl']:.2f}x ({lo:.2f}-{hi:.2f})")
        cells.append(_yes(e["not_worse_than_raw"]))
        lines.append("| " + " | ".join(cells) + " |")
    groups = result["default_groups"]
    lines.append("")
    lines.append(
        "Default groups negotiated: "
        + "; ".join(
            f"{n} {groups[n]['wire_group']}"
            + ("" if groups[n]["api_group"] else " (wire only: no API)")
            for n in IMPLEMENTATIONS
        )
        + "."
    )
    extra = result.get("extra", {})
    if "memory_pyopenssl_release_buffers" in extra:
        lines.append(
            "Raw pyOpenSSL with SSL_MODE_RELEASE_BUFFERS (set by unitls and ssl): "
            f"{extra['memory_pyopenssl_release_buffers']:,.1f} KiB per idle connection."
        )
        lines.append(
            "Still held per connection after all were released (KiB): "
            + ", ".join(
                f"{n} {extra[f'retained_after_close_{n}']:,.1f}"
                for n in (*IMPLEMENTATIONS, "pyopenssl-rb")
            )
            + "."
        )
    return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 rounds (smoke)")
    parser.add_argument("--rounds", type=int, help="repetitions (default 7; 3 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="write raw values and summary here")
    parser.add_argument("--pairs", type=int, help=f"idle pairs for the memory row ({IDLE_PAIRS})")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory row")
    parser.add_argument("--memory-child", metavar="IMPL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.pairs or IDLE_PAIRS)))
        return 0
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")

    result = measure(args)
    table = summarize(result)
    print()
    print(render(result, table))
    if args.json:
        result["summary"] = table
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
