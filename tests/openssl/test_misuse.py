"""Caller mistakes on an `OpenSSLTLSBuffer`, and what each one gets.

Rules (STYLE.md §5): a bad argument type or value raises `TypeError` /
`ValueError` naming the method and the argument; a call in the wrong state raises
a `TLSError` whose message names the state; a failed buffer raises, on every
call, an error of the original type (and attributes) saying "in state failed".
None of these changes the buffer: afterwards the connection behaves as if the call
had not been made.

Read and write before the handshake are not mistakes. PEP 748 lets `read` and
`write` cause handshake traffic ("a call to read() can also cause write
operations"), and `ssl.SSLObject` and tlslib.py complete the handshake inside
them. unitls does the same, with the same verification as `do_handshake`: they
raise `WantReadError` until the handshake is complete and no plaintext is queued
or returned before that (REFERENCE.md §4.1, invariant 2).

`do_handshake` after a shutdown returns at once, as `ssl.SSLObject`'s does: it
means "make sure the handshake is done", which it is, and changes nothing.

Already covered in test_buffer.py (not repeated here): write before the
handshake, write after our own shutdown, a negative `amt`, a read-only
destination buffer, `process_incoming` after EOF, and that a failed buffer keeps
failing on every operation.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

import unitls
from helpers import handshake, pump, read_all, trust_store
from unitls.openssl import OPENSSL_IMPLEMENTATION, OpenSSLClientContext, OpenSSLServerContext

TLS12 = unitls.TLSVersion.TLSv1_2
TLS13 = unitls.TLSVersion.TLSv1_3
#: The marker a payload carries so that a leak into the ciphertext would show.
SECRET = b"plaintext that must not leave before the handshake"


@dataclasses.dataclass
class Contexts:
    client: OpenSSLClientContext
    server: OpenSSLServerContext
    version: unitls.TLSVersion

    def buffers(self, hostname: str = "localhost") -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
        return self.client.create_buffer(hostname), self.server.create_buffer()

    def connected(self) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
        client, server = self.buffers()
        handshake(client, server)
        return client, server


@pytest.fixture(params=[TLS12, TLS13], ids=["tls12", "tls13"])
def ctx(
    request: pytest.FixtureRequest, ca: trustme.CA, server_config: unitls.TLSServerConfiguration
) -> Contexts:
    client_config = unitls.TLSClientConfiguration(
        trust_store=trust_store(ca), highest_supported_version=request.param
    )
    return Contexts(
        OPENSSL_IMPLEMENTATION.client_context(client_config),
        OPENSSL_IMPLEMENTATION.server_context(server_config),
        request.param,
    )


def snapshot(buf: unitls.TLSBuffer) -> tuple[str, int, int]:
    """What a refused call must leave unchanged."""
    return repr(buf), buf.incoming_bytes_buffered(), buf.outgoing_bytes_buffered()


def assert_fatal(exc: BaseException) -> None:
    assert isinstance(exc, unitls.TLSError), repr(exc)
    assert not isinstance(exc, (unitls.WantReadError, unitls.WantWriteError)), repr(exc)


def assert_round_trip(client: unitls.TLSBuffer, server: unitls.TLSBuffer) -> None:
    client.write(b"ping")
    pump(client, server)
    assert read_all(server) == b"ping"
    server.write(b"pong")
    pump(server, client)
    assert read_all(client) == b"pong"


# -- before the handshake: read and write drive it -------------------------------------------


def test_read_and_write_alone_complete_the_handshake_and_then_carry_data(ctx: Contexts):
    # Neither side ever calls do_handshake(): the client keeps trying to write, the
    # server keeps trying to read. Both get WantReadError (never a failure) until
    # the handshake is done, and nothing is taken or returned before that.
    client, server = ctx.buffers()
    wire_c2s = bytearray()
    sent = 0
    got = b""
    for _ in range(10):
        if not sent:
            try:
                sent = client.write(SECRET)
            except unitls.WantReadError:
                assert client.negotiated_tls_version is None
        try:
            got += server.read(1000)  # type: ignore[operator]
        except unitls.WantReadError:
            pass
        data = client.process_outgoing(1 << 20)
        wire_c2s += data
        if data:
            server.process_incoming(data)
        pump(server, client)
        if got:
            break
    assert sent == len(SECRET)
    assert got == SECRET
    assert SECRET not in wire_c2s
    assert client.negotiated_tls_version is ctx.version
    assert server.negotiated_tls_version is ctx.version
    assert_round_trip(client, server)


def test_read_before_the_handshake_is_want_read_not_an_error(ctx: Contexts):
    client, server = ctx.buffers()
    for call in (lambda: client.read(10), lambda: client.read(10, bytearray(10))):
        with pytest.raises(unitls.WantReadError):
            call()
    hello = client.process_outgoing(1 << 20)
    assert hello[:1] == b"\x16"  # read() sent the ClientHello, as do_handshake() would
    server.process_incoming(hello)
    with pytest.raises(unitls.WantReadError):
        server.read(10)  # the server answers from inside read() as well
    assert server.outgoing_bytes_buffered() > 0
    for buf in (client, server):
        assert buf.cipher() is None
        assert buf.getpeercert() is None
    handshake(client, server)
    assert_round_trip(client, server)


def test_a_read_driven_handshake_still_verifies_the_peer(ctx: Contexts):
    client, server = ctx.buffers("wrong.example")  # not a name on the server's certificate
    with pytest.raises(unitls.WantReadError):
        client.read(100)
    error = None
    for _ in range(5):
        pump(client, server)
        try:
            server.read(100)
        except unitls.WantReadError:
            pass
        except unitls.TLSError:
            pass  # the client's alert
        pump(server, client)
        try:
            client.read(100)
        except unitls.WantReadError:
            continue
        except unitls.CertificateVerificationError as exc:
            error = exc
            break
    assert error is not None, "read() completed a handshake with the wrong name"
    assert error.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH
    assert error.expected_name == "wrong.example"
    assert client.negotiated_tls_version is None
    with pytest.raises(unitls.CertificateVerificationError, match="Cannot write in state failed"):
        client.write(SECRET)
    assert SECRET not in client.process_outgoing(1 << 20)


def test_shutdown_before_the_handshake_is_refused_and_changes_nothing(ctx: Contexts):
    client, server = ctx.buffers()
    before = snapshot(client)
    with pytest.raises(unitls.TLSError, match="Cannot shutdown in state handshaking") as info:
        client.shutdown()
    assert_fatal(info.value)
    assert snapshot(client) == before  # no close_notify, no ClientHello either
    with pytest.raises(unitls.WantReadError):
        client.do_handshake()
    pump(client, server)
    with pytest.raises(unitls.TLSError, match="in state handshaking"):
        server.shutdown()  # mid-handshake as well
    handshake(client, server)
    assert_round_trip(client, server)


# -- after a clean close ---------------------------------------------------------------------


def test_calls_after_a_clean_close(ctx: Contexts):
    client, server = ctx.connected()
    with pytest.raises(unitls.WantReadError):
        client.shutdown()
    pump(client, server)
    assert server.read(10) == b""
    server.shutdown()
    pump(server, client)
    assert client.read(10) == b""
    client.shutdown()
    for buf in (client, server):
        with pytest.raises(unitls.TLSError, match="Cannot write in state closed") as info:
            buf.write(b"late")
        assert_fatal(info.value)
        with pytest.raises(unitls.TLSError, match="Cannot write in state closed"):
            buf.write(b"")
        buf.do_handshake()  # the handshake is complete: nothing to do, nothing changes
        buf.shutdown()
        assert buf.read(10) == b""
        assert buf.read(10, bytearray(4)) == 0
        assert buf.process_outgoing(100) == b""
        assert buf.negotiated_tls_version is ctx.version
        assert buf.cipher() is not None
        assert "state=closed" in repr(buf)


def test_do_handshake_after_our_shutdown_returns_and_sends_nothing(ctx: Contexts):
    client, server = ctx.connected()
    with pytest.raises(unitls.WantReadError):
        client.shutdown()
    close_notify = client.process_outgoing(1 << 20)
    assert close_notify
    client.do_handshake()
    assert client.outgoing_bytes_buffered() == 0
    with pytest.raises(unitls.TLSError, match="Cannot write in state shutdown sent"):
        client.write(b"late")
    server.process_incoming(close_notify)
    assert server.read(10) == b""
    server.do_handshake()  # the peer closed: still complete, still nothing to do
    assert server.write(b"still writable") == 14  # half-close: the server may answer
    pump(server, client)
    assert client.read(100) == b"still writable"


# -- after a fatal error ------------------------------------------------------------------------


def fail_by_corruption(ctx: Contexts) -> tuple[unitls.TLSBuffer, unitls.TLSError]:
    client, server = ctx.connected()
    server.write(b"record")
    wire = bytearray(server.process_outgoing(1 << 20))
    wire[-1] ^= 0x40
    client.process_incoming(bytes(wire))
    with pytest.raises(unitls.TLSError) as info:
        client.read(100)
    return client, info.value


def fail_by_ragged_eof(ctx: Contexts) -> tuple[unitls.TLSBuffer, unitls.TLSError]:
    client, _server = ctx.connected()
    client.process_incoming(b"")
    with pytest.raises(unitls.RaggedEOF) as info:
        client.read(100)
    return client, info.value


def fail_by_verification(ctx: Contexts) -> tuple[unitls.TLSBuffer, unitls.TLSError]:
    client, server = ctx.buffers("wrong.example")
    with pytest.raises(unitls.CertificateVerificationError) as info:
        handshake(client, server)
    return client, info.value


@pytest.mark.parametrize(
    "fail", [fail_by_corruption, fail_by_ragged_eof, fail_by_verification], ids=lambda f: f.__name__
)
def test_every_call_after_a_fatal_error_keeps_the_error_and_names_the_state(
    ctx: Contexts, fail: Callable[[Contexts], tuple[unitls.TLSBuffer, unitls.TLSError]]
):
    buf, original = fail(ctx)
    assert_fatal(original)
    alert = buf.process_outgoing(1 << 20)  # the alert still goes out, once
    assert buf.process_outgoing(1 << 20) == b""
    if not isinstance(original, unitls.RaggedEOF):
        assert alert
    calls: dict[str, Callable[[], Any]] = {
        "read": lambda: buf.read(100),
        "read into": lambda: buf.read(100, bytearray(100)),
        "read 0": lambda: buf.read(0),
        "write": lambda: buf.write(b"data"),
        "write empty": lambda: buf.write(b""),
        "write memoryview": lambda: buf.write(memoryview(b"data")),
        "do_handshake": buf.do_handshake,
        "shutdown": buf.shutdown,
        "process_incoming": lambda: buf.process_incoming(b"\x17\x03\x03\x00\x01x"),
        "process_incoming EOF": lambda: buf.process_incoming(b""),
    }
    seen = []
    for name, call in calls.items():
        before = snapshot(buf)
        with pytest.raises(unitls.TLSError) as info:
            call()
        error = info.value
        assert type(error) is type(original), name
        assert_fatal(error)
        operation = name.split()[0]
        assert str(error) == f"Cannot {operation} in state failed: {original}", name
        assert error.__cause__ is original  # the first failure, with OpenSSL's detail
        assert error.__dict__ == original.__dict__  # structured attributes survive
        assert all(error is not other for other in seen)  # a fresh object each time
        seen.append(error)
        assert snapshot(buf) == before
    if isinstance(original, unitls.CertificateVerificationError):
        assert seen[0].verify_code == original.verify_code == 62  # type: ignore[attr-defined]
        assert seen[0].expected_name == "wrong.example"  # type: ignore[attr-defined]
    # The getters and counters keep answering.
    buf.cipher()
    buf.negotiated_protocol()
    buf.getpeercert()
    assert buf.outgoing_bytes_buffered() == 0
    assert "state=failed" in repr(buf)


# -- wrong argument types and values ----------------------------------------------------------

NON_CONTIGUOUS = memoryview(bytearray(b"abcdefgh"))[::2]

AMT = "read() argument amt must be"
INTO = "read() needs a writable, contiguous buffer, not"
WRITE = "write() needs a contiguous bytes-like object, not"
INCOMING = "process_incoming() needs a contiguous bytes-like object, not"
AMOUNT = "process_outgoing() argument amount_bytes_for_network must be"

#: (id, call, error type, start of its message)
BAD_ARGUMENTS: list[tuple[str, Callable[[unitls.TLSBuffer], Any], type[Exception], str]] = [
    ("read amt str", lambda b: b.read("10"), TypeError, f"{AMT} an int, not str"),
    ("read amt float", lambda b: b.read(10.0), TypeError, f"{AMT} an int, not float"),
    ("read amt None", lambda b: b.read(None), TypeError, f"{AMT} an int, not NoneType"),
    ("read amt bytes", lambda b: b.read(b"10"), TypeError, f"{AMT} an int, not bytes"),
    ("read amt negative", lambda b: b.read(-1), ValueError, f"{AMT} >= 0, not -1"),
    (
        "read into amt float",
        lambda b: b.read(10.0, bytearray(20)),
        TypeError,
        f"{AMT} an int, not float",
    ),
    (
        "read into amt float beyond the buffer",  # not clamped into an int
        lambda b: b.read(100.0, bytearray(3)),
        TypeError,
        f"{AMT} an int, not float",
    ),
    ("read into str", lambda b: b.read(10, "0123456789"), TypeError, f"{INTO} str"),
    ("read into int", lambda b: b.read(10, 10), TypeError, f"{INTO} int"),
    ("read into bytes", lambda b: b.read(10, b"0123456789"), TypeError, f"{INTO} bytes"),
    (
        "read into non-contiguous",
        lambda b: b.read(2, NON_CONTIGUOUS),
        TypeError,
        f"{INTO} memoryview",
    ),
    ("write str", lambda b: b.write("text"), TypeError, f"{WRITE} str"),
    ("write int", lambda b: b.write(5), TypeError, f"{WRITE} int"),
    ("write None", lambda b: b.write(None), TypeError, f"{WRITE} NoneType"),
    ("write list", lambda b: b.write([1, 2]), TypeError, f"{WRITE} list"),
    ("write non-contiguous", lambda b: b.write(NON_CONTIGUOUS), TypeError, f"{WRITE} memoryview"),
    ("process_incoming str", lambda b: b.process_incoming("\x17"), TypeError, f"{INCOMING} str"),
    ("process_incoming int", lambda b: b.process_incoming(0), TypeError, f"{INCOMING} int"),
    (
        "process_incoming None",
        lambda b: b.process_incoming(None),
        TypeError,
        f"{INCOMING} NoneType",
    ),
    (
        "process_incoming non-contiguous",
        lambda b: b.process_incoming(NON_CONTIGUOUS),
        TypeError,
        f"{INCOMING} memoryview",
    ),
    (
        "process_outgoing str",
        lambda b: b.process_outgoing("10"),
        TypeError,
        f"{AMOUNT} an int, not str",
    ),
    (
        "process_outgoing float",
        lambda b: b.process_outgoing(1.5),
        TypeError,
        f"{AMOUNT} an int, not float",
    ),
    (
        "process_outgoing None",
        lambda b: b.process_outgoing(None),
        TypeError,
        f"{AMOUNT} an int, not NoneType",
    ),
    (
        "process_outgoing negative",
        lambda b: b.process_outgoing(-1),
        ValueError,
        f"{AMOUNT} >= 0, not -1",
    ),
]


@pytest.mark.parametrize("state", ["handshaking", "open"])
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_bad_arguments_raise_a_typed_error_and_change_nothing(
    ctx: Contexts, state: str, call: Callable[[unitls.TLSBuffer], Any], error: type, message: str
):
    client, server = ctx.buffers()
    if state == "open":
        handshake(client, server)
        server.write(b"waiting")
        pump(server, client)  # plaintext waits in the client: it must survive
    else:
        with pytest.raises(unitls.WantReadError):
            client.do_handshake()  # a ClientHello waits to be sent: it must survive
    before = snapshot(client)
    with pytest.raises(error) as info:
        call(client)
    assert str(info.value).startswith(message), str(info.value)
    # One error in the traceback: not the same TypeError twice, nor cffi's before it.
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert snapshot(client) == before
    if state == "open":
        assert read_all(client) == b"waiting"
    handshake(client, server)
    assert_round_trip(client, server)


def test_a_bad_destination_is_refused_before_the_handshake_moves(ctx: Contexts):
    # read() checks its buffer before it drives the handshake: no ClientHello is
    # produced by a call that fails.
    client, _server = ctx.buffers()
    with pytest.raises(TypeError):
        client.read(10, b"read-only!")
    assert client.outgoing_bytes_buffered() == 0
    with pytest.raises(TypeError):
        client.write("text")  # type: ignore[arg-type]
    assert client.outgoing_bytes_buffered() == 0


def test_a_float_amount_loses_no_ciphertext(ctx: Contexts):
    # More ciphertext than one internal copy (64 KiB) waits: the amount is checked
    # before any of it is taken out, not once part of it has been.
    client, server = ctx.connected()
    client.write(b"x" * 100_000)
    queued = client.outgoing_bytes_buffered()
    assert queued > 1 << 16
    with pytest.raises(TypeError) as info:
        client.process_outgoing(float(queued))
    assert str(info.value) == f"{AMOUNT} an int, not float"
    assert client.outgoing_bytes_buffered() == queued
    pump(client, server)
    assert read_all(server) == b"x" * 100_000


def test_huge_amounts_are_not_errors(ctx: Contexts):
    client, server = ctx.connected()
    messages = [b"first", b"second", b"third", b"fourth"]
    for message in messages:
        server.write(message)
    pump(server, client)
    assert client.read(2**64) == b"first"
    assert client.read(sys.maxsize) == b"second"
    dest = bytearray(4)
    assert client.read(10**30, dest) == 4  # never more than the buffer holds
    assert dest == b"thir"
    assert client.read(2**64, dest) == 1
    assert dest[:1] == b"d"
    assert client.read(2**64) == b"fourth"
    client.write(b"x" * 100_000)
    queued = client.outgoing_bytes_buffered()
    wire = client.process_outgoing(2**64)
    assert len(wire) == queued
    assert client.process_outgoing(2**64) == b""
    server.process_incoming(wire)
    assert read_all(server) == b"x" * 100_000


# -- no crash when errors keep a view of the caller's buffer ---------------------------------

CRASH_SCRIPT = textwrap.dedent(
    """
    import gc, sys
    import trustme, unitls
    from helpers import handshake, pump, signing_chain, trust_store
    from unitls.openssl import OPENSSL_IMPLEMENTATION as I

    ca = trustme.CA()
    chain = signing_chain(ca.issue_cert("localhost"))
    client_ctx = I.client_context(unitls.TLSClientConfiguration(trust_store=trust_store(ca)))
    server_ctx = I.server_context(unitls.TLSServerConfiguration(certificate_chain=[chain]))

    def pair():
        client, server = client_ctx.create_buffer("localhost"), server_ctx.create_buffer()
        handshake(client, server)
        return client, server

    def fatal_read_into_a_memoryview():
        client, server = pair()
        server.write(b"record")
        wire = bytearray(server.process_outgoing(1 << 20))
        wire[-1] ^= 1
        client.process_incoming(bytes(wire))
        try:
            client.read(100, memoryview(bytearray(100))[10:60])
        except unitls.TLSError:
            pass  # the buffer keeps the error: a reference cycle through the traceback

    def want_write_from_a_memoryview():
        client, server = pair()
        view = memoryview(bytearray(1 << 20))
        taken = server.write(view)
        try:
            server.write(view[taken:])
        except unitls.WantWriteError as exc:
            error = exc  # the classic exception <-> frame reference cycle

    def want_read_from_a_memoryview():
        client, server = pair()
        wire = bytearray()
        while len(wire) < 400_000:
            server.write(b"x" * 16384)
            wire += server.process_outgoing(1 << 20)
        client.process_incoming(bytes(wire[:300_000]))
        try:
            client.process_incoming(memoryview(wire)[300_000:])
        except unitls.WantReadError as exc:
            error = exc

    def float_amount_into_a_memoryview():
        client, server = pair()
        try:
            client.read(5.0, memoryview(bytearray(100))[10:60])
        except TypeError as exc:
            error = exc

    for scenario in (
        fatal_read_into_a_memoryview,
        want_write_from_a_memoryview,
        want_read_from_a_memoryview,
        float_amount_into_a_memoryview,
    ):
        for _ in range(20):
            scenario()
            gc.collect()
        print(scenario.__name__, "ok", flush=True)
    """
)


def test_errors_raised_while_holding_a_view_of_a_memoryview_do_not_crash_the_gc():
    # Regression: an error raised while the buffer held a cffi view of the caller's
    # memoryview kept that view alive in the traceback; once the traceback sat in a
    # reference cycle (a failed buffer keeps its error; `except E as e` in a frame),
    # the garbage collector cleared the memoryview with the view still open and
    # CPython crashed freeing it (SIGSEGV). In a subprocess, so a crash is a failure.
    tests = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tests,
        env={**os.environ, "PYTHONPATH": str(tests)},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.count(" ok") == 4
    assert "exported buffer" not in proc.stderr
