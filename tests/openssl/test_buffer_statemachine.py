"""A rule-based state machine over a client/server `OpenSSLTLSBuffer` pair.

Hypothesis interleaves everything two peers and a network can do: ciphertext
delivered in arbitrary chunks both ways, writes of any size (empty, one record,
several records, more than `OUTGOING_LIMIT`), reads of any size with and without
a destination buffer, a rule that completes the handshake, TLS 1.3 key updates
and new session tickets, shutdown from either side, transport EOF, a corrupted
byte in flight, and caller mistakes. After every step (REFERENCE.md §4.1):

1. What each side has read is a prefix of what the other side wrote: nothing is
   altered, duplicated or reordered.
2. Both buffers stay within their limits (`INCOMING_LIMIT` / `OUTGOING_LIMIT`
   plus one chunk or one record).
3. Only `TLSError` escapes (or `TypeError` / `ValueError` for caller mistakes),
   a fatal error only ever follows an injected fault (corruption, transport EOF,
   the peer's failure), and a failed buffer stays failed with an error that
   names the state.

At the end of each example everything is delivered and read: all that was
written arrives, a close_notify reads as `b""`, a corrupted stream fails the
receiver (never silently), and the alert of a failed side fails its peer.

Rules check the state and return early instead of using `@precondition`: TLS
randomness would make state-dependent preconditions flaky (REFERENCE.md §4.1).

Key updates and extra session tickets have no unitls API. Only this test triggers
them, on the buffer's private `SSL*` (`buffer._ssl`), by calling OpenSSL's
`SSL_key_update` / `SSL_new_session_ticket`. cryptography's cffi binding does not
export either function, so `openssl_private_functions()` finds them in the
symbol table of the binding's own shared object (ELF, as on Linux CI) relative to
functions it does export. Where that is impossible, those two rules do nothing
and say so with `event()`; everything else still runs.

The default run takes about 20 s. For a deeper local run (3,000 examples of up
to 100 steps, without the per-test timeout; many minutes):

    UNITLS_STATEMACHINE_PROFILE=deep python -m pytest tests/openssl/test_buffer_statemachine.py \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import os
import random
import struct
from typing import Any

import cryptography.hazmat.bindings._rust as rust_binding
import pytest
import trustme
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from OpenSSL._util import ffi, lib

import unitls
from helpers import handshake, pump, signing_chain, trust_store
from unitls.openssl import (
    INCOMING_LIMIT,
    OPENSSL_IMPLEMENTATION,
    OUTGOING_LIMIT,
    OpenSSLClientContext,
    OpenSSLServerContext,
)

TLS12 = unitls.TLSVersion.TLSv1_2
TLS13 = unitls.TLSVersion.TLSv1_3
SIDES = ("client", "server")
#: The largest chunk any rule hands to `process_incoming` in one call.
MAX_CHUNK = 1 << 16
#: Largest TLS record on the wire: 16 KiB of plaintext plus header and AEAD/padding overhead.
MAX_WIRE_RECORD = 16 * 1024 + 256 + 5
#: Ciphertext a buffer may queue beyond a write's overshoot without any write:
#: session tickets, a handshake flight, an alert, close_notify, KeyUpdate answers.
QUEUED_SLACK = 8192
#: Read calls one `read` rule makes at most (each returns at most one record).
READS_PER_RULE = 64

settings.register_profile(
    "statemachine-ci",
    max_examples=400,
    stateful_step_count=50,
    deadline=None,
    # Every example handshakes real TLS; a slow shared machine must not turn that
    # into a failed health check.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "statemachine-deep",
    parent=settings.get_profile("statemachine-ci"),
    max_examples=3000,
    stateful_step_count=100,
)
PROFILE = {"ci": "statemachine-ci", "deep": "statemachine-deep"}[
    os.environ.get("UNITLS_STATEMACHINE_PROFILE", "ci")
]
if PROFILE == "statemachine-deep":
    pytestmark = pytest.mark.timeout(0)  # a deep run takes many minutes, not 120 s


# -- KeyUpdate and NewSessionTicket, below unitls (test only) ---------------------------


@functools.cache
def openssl_private_functions() -> dict[str, Any]:
    """`SSL_key_update` and `SSL_new_session_ticket` of the OpenSSL unitls runs on.

    cryptography links OpenSSL statically into its Rust extension and its cffi
    module binds neither function. The extension keeps a symbol table, though:
    the address of each function is its table value plus the load base, and the
    base is the runtime address of a bound function (cffi's `_cffi_d_<name>`
    wrapper) minus its table value. Three bound functions must agree on the base,
    and `SSL_version` found this way must answer like the bound one, before any
    address is trusted. Returns `{}` where this cannot work (not ELF, no table).
    """
    signatures = {
        "SSL_key_update": "int(*)(SSL *, int)",
        "SSL_new_session_ticket": "int(*)(SSL *)",
        "SSL_version": "int(*)(SSL *)",
    }
    anchors = ("SSL_do_handshake", "SSL_write", "SSL_read")
    wanted = {name.encode() for name in signatures}
    wanted |= {f"_cffi_d_{name}".encode() for name in anchors}
    with open(rust_binding.__file__, "rb") as f:
        image = f.read()
    if image[:4] != b"\x7fELF" or image[4] != 2 or image[5] != 1:  # ELF64, little-endian
        return {}
    section_offset = int.from_bytes(image[0x28:0x30], "little")
    entry_size, count = struct.unpack_from("<HH", image, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", image, section_offset + i * entry_size)
        for i in range(count)
    ]
    found: dict[bytes, int] = {}
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for name_at, info, _, _, value, _ in struct.iter_unpack(
            "<IBBHQQ", image[offset : offset + size]
        ):
            if info & 0xF != 2 or not value:  # STT_FUNC, defined
                continue
            start = strings + name_at
            name = image[start : image.index(b"\0", start)]
            if name in wanted:
                found[name] = value
    if not wanted <= found.keys():
        return {}
    bases = {
        int(ffi.cast("uintptr_t", ffi.cast("void *", getattr(lib, name))))
        - found[f"_cffi_d_{name}".encode()]
        for name in anchors
    }
    if len(bases) != 1:
        return {}
    (base,) = bases
    functions = {
        name: ffi.cast(signature, base + found[name.encode()])
        for name, signature in signatures.items()
    }
    probe = OPENSSL_IMPLEMENTATION.server_context(server_configuration()).create_buffer()
    if functions["SSL_version"](probe._ssl) != lib.SSL_version(probe._ssl):
        return {}
    return functions


def flush_post_handshake_message(buf: unitls.TLSBuffer) -> None:
    """Make OpenSSL write a scheduled KeyUpdate / NewSessionTicket now (as `openssl
    s_server` does after its `k` command) instead of with the next `write`."""
    result = lib.SSL_do_handshake(buf._ssl)
    assert result == 1, f"SSL_do_handshake after a post-handshake message: {result}"


# -- contexts ------------------------------------------------------------------------------


@functools.cache
def credentials() -> tuple[trustme.CA, unitls.SigningChain]:
    ca = trustme.CA()
    return ca, signing_chain(ca.issue_cert("localhost"))


@functools.cache
def server_configuration() -> unitls.TLSServerConfiguration:
    return unitls.TLSServerConfiguration(certificate_chain=[credentials()[1]])


@functools.cache
def server_context() -> OpenSSLServerContext:
    # Shared by every example: a server keeps nothing a fresh client can reuse.
    return OPENSSL_IMPLEMENTATION.server_context(server_configuration())


def client_context(version: unitls.TLSVersion, resume: bool) -> OpenSSLClientContext:
    """A new client context, so that whether a handshake resumes never depends on
    an earlier example; with `resume`, primed with a session for "localhost"."""
    ca, _ = credentials()
    config = unitls.TLSClientConfiguration(
        trust_store=trust_store(ca), highest_supported_version=version
    )
    context = OPENSSL_IMPLEMENTATION.client_context(config)
    if resume:
        client, server = context.create_buffer("localhost"), server_context().create_buffer()
        handshake(client, server)
        server.write(b"x")
        pump(server, client)
        assert client.read(1) == b"x"  # the client keeps the session at its first read
        with pytest.raises(unitls.WantReadError):
            client.shutdown()  # a session is resumable only after a clean close
        pump(client, server)
        assert server.read(1) == b""
        server.shutdown()
        pump(server, client)
        assert client.read(1) == b""
    return context


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# -- the model -------------------------------------------------------------------------------


@dataclasses.dataclass
class Side:
    """One peer and everything the test knows about it."""

    name: str
    buf: unitls.TLSBuffer
    written: bytearray = dataclasses.field(default_factory=bytearray)  # taken by write()
    received: bytearray = dataclasses.field(default_factory=bytearray)  # returned by read()
    checked: int = 0  # len(received) already compared with the peer's `written`
    writes: int = 0  # seeds the payloads, so no two writes carry the same bytes
    shut: bool = False  # shutdown() queued close_notify
    clean_eof: bool = False  # read() returned b""
    eof_in: bool = False  # process_incoming(b"") was called: the transport ended
    error: unitls.TLSError | None = None  # the first fatal error
    shut_when_failed: bool = False
    alert_at: int | None = None  # stream offset of what the failing call queued
    injected: int = 0  # KeyUpdate / NewSessionTicket messages the test scheduled
    # A scheduled message not sent yet (it goes out with the next write). unitls
    # itself never leaves one pending (it has no API to schedule one), and OpenSSL
    # refuses to shut down or schedule another meanwhile, so the test flushes it
    # first in those two cases.
    pending_message: bool = False


@dataclasses.dataclass
class Pipe:
    """One direction of the network, with what crossed it."""

    sender: str
    receiver: str
    data: bytearray = dataclasses.field(default_factory=bytearray)  # taken, not delivered
    tap: bytearray = dataclasses.field(default_factory=bytearray)  # everything taken, as sent
    delivered: int = 0  # stream bytes the receiver accepted
    dropped: int = 0  # stream bytes lost to a transport EOF
    closed: bool = False  # transport EOF delivered; everything later is lost
    flip_at: int | None = None  # stream offset of the corrupted byte
    headers: list[int] = dataclasses.field(default_factory=list)  # record starts in `tap`
    next_header: int = 0

    @property
    def consumed(self) -> int:
        return self.delivered + self.dropped

    def record(self, data: bytes) -> None:
        self.tap += data
        while self.next_header + 5 <= len(self.tap):
            self.headers.append(self.next_header)
            length = int.from_bytes(self.tap[self.next_header + 3 : self.next_header + 5], "big")
            self.next_header += 5 + length

    def header_of(self, offset: int) -> int | None:
        """The start of the record whose header or body holds stream byte `offset`."""
        i = bisect.bisect_right(self.headers, offset) - 1
        return self.headers[i] if i >= 0 else None


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, unitls.TLSError) and not isinstance(
        exc, (unitls.WantReadError, unitls.WantWriteError)
    )


class TLSPairMachine(RuleBasedStateMachine):
    """A client and a server buffer, the network between them, and the test's model
    of what each side has written, read and been through."""

    def __init__(self) -> None:
        super().__init__()
        self.sides: dict[str, Side] = {}
        self.pipes: dict[str, Pipe] = {
            "c2s": Pipe("client", "server"),
            "s2c": Pipe("server", "client"),
        }
        self.version = TLS13
        self.hooks: dict[str, Any] = {}
        self.received_at_start = 0

    # -- helpers -------------------------------------------------------------------------

    def other(self, side: Side) -> Side:
        return self.sides["server" if side.name == "client" else "client"]

    def pipe_from(self, side: Side) -> Pipe:
        return self.pipes["c2s" if side.name == "client" else "s2c"]

    def pipe_to(self, side: Side) -> Pipe:
        return self.pipes["s2c" if side.name == "client" else "c2s"]

    @staticmethod
    def done(side: Side) -> bool:
        return side.buf.negotiated_tls_version is not None

    def cause(self, side: Side) -> str | None:
        """Why `side` may legitimately have failed, or None."""
        if side.eof_in:
            return "transport EOF"
        # A corrupted handshake message also fails its sender: the two transcripts
        # differ, so the peer's next flight does not decrypt or verify.
        for pipe in self.pipes.values():
            if pipe.flip_at is not None and pipe.delivered > pipe.flip_at:
                return "corrupted byte"
        if self.other(side).error is not None:
            return "the peer failed"
        return None

    def failed(self, side: Side, exc: unitls.TLSError, queued_before: int) -> None:
        """Record a fatal error (or check a repeated one)."""
        assert is_fatal(exc), repr(exc)
        if side.error is not None:
            assert isinstance(exc, type(side.error)), (exc, side.error)
            assert "in state failed" in str(exc), str(exc)
            return
        cause = self.cause(side)
        assert cause is not None, f"{side.name} failed without an injected fault: {exc!r}"
        if isinstance(exc, unitls.RaggedEOF):
            assert side.eof_in, f"RaggedEOF without transport EOF: {exc!r}"
        side.error = exc
        side.shut_when_failed = side.shut
        if side.buf.outgoing_bytes_buffered() > queued_before:
            side.alert_at = len(self.pipe_from(side).tap) + queued_before
        event(f"failure: {type(exc).__name__} after {cause}")

    def attempt(self, side: Side, operation: Any) -> Any:
        """Run `operation()`; Want* and fatal TLS errors become None (fatal ones are
        recorded). Anything else propagates and fails the test."""
        before = side.buf.outgoing_bytes_buffered()
        try:
            return operation()
        except (unitls.WantReadError, unitls.WantWriteError):
            return None
        except unitls.TLSError as exc:
            self.failed(side, exc, before)
            return None

    def take(self, pipe: Pipe, amount: int) -> int:
        """Move up to `amount` bytes from the sender into the network."""
        data = self.sides[pipe.sender].buf.process_outgoing(amount)
        if not data:
            return 0
        pipe.record(data)
        if pipe.closed:
            pipe.dropped += len(data)
        else:
            pipe.data += data
        return len(data)

    def give(self, pipe: Pipe, amount: int) -> int:
        """Deliver up to `amount` bytes from the network to the receiver."""
        if not pipe.data:
            return 0
        receiver = self.sides[pipe.receiver]
        chunk = bytes(pipe.data[:amount])
        before = receiver.buf.outgoing_bytes_buffered()
        try:
            receiver.buf.process_incoming(chunk)
        except unitls.WantReadError:
            assert receiver.buf.incoming_bytes_buffered() > INCOMING_LIMIT
            event("back-pressure: process_incoming refused")
            return 0
        except unitls.TLSError as exc:
            # Only a failed buffer refuses data (EOF closes the pipe first); the
            # bytes are gone, as on a network whose reader has given up.
            self.failed(receiver, exc, before)
            assert receiver.error is not None
            pipe.dropped += len(chunk)
            del pipe.data[: len(chunk)]
            return len(chunk)
        pipe.delivered += len(chunk)
        del pipe.data[: len(chunk)]
        return len(chunk)

    def read_some(self, side: Side, amt: int, into: str | None, times: int) -> bool:
        """Read up to `times` times; return whether anything was read."""
        got_any = False
        for _ in range(times):
            dest: Any = None
            backing = bytearray()
            size = min(amt, MAX_CHUNK + 1)
            if into == "bytearray":
                backing = dest = bytearray(b"\xaa") * size
            elif into == "memoryview":
                backing = bytearray(b"\xaa") * (size + 16)
                dest = memoryview(backing)[8 : 8 + size]
            result = self.attempt(side, functools.partial(side.buf.read, amt, dest))
            if result is None:
                if side.error is not None:
                    # A failed buffer keeps failing, with an error naming the state.
                    with pytest.raises(unitls.TLSError, match="in state failed"):
                        side.buf.read(amt, dest)
                return got_any
            if dest is None:
                assert isinstance(result, bytes)
                data = result
            else:
                assert type(result) is int
                assert 0 <= result <= min(amt, size)
                start = 8 if into == "memoryview" else 0
                data = bytes(backing[start : start + result])
                untouched = backing[:start] + backing[start + result :]
                assert untouched == bytearray(b"\xaa") * len(untouched), "read overfilled"
            assert len(data) <= amt
            if amt == 0:
                assert data == b""
                return got_any
            if not data:
                other = self.other(side)
                assert other.shut, f"{side.name} read b'' but its peer never shut down"
                side.clean_eof = True
                return got_any
            side.received += data
            got_any = True
        return got_any

    def settle(self, *, read: bool) -> None:
        """Run handshakes, deliver everything both ways and (with `read`) read it all,
        until nothing moves."""
        for _ in range(2000):
            moved = 0
            for side in self.sides.values():
                if side.error is None and not self.done(side):
                    self.attempt(side, side.buf.do_handshake)
            for pipe in self.pipes.values():
                while self.take(pipe, MAX_CHUNK):
                    moved += 1
                while self.give(pipe, MAX_CHUNK):
                    moved += 1
            if read:
                for side in self.sides.values():
                    if side.error is None and not side.clean_eof:
                        moved += self.read_some(side, 1 << 16, None, READS_PER_RULE)
            if not moved:
                return
        raise AssertionError("the pair did not settle")

    def schedule(self, side: Side, function: str, *args: int, flush: bool) -> bool:
        """Call a test-only OpenSSL function that schedules a post-handshake message."""
        if side.pending_message:
            flush_post_handshake_message(side.buf)
            side.pending_message = False
        if self.hooks[function](side.buf._ssl, *args) != 1:
            lib.ERR_clear_error()  # leave nothing on OpenSSL's error queue for unitls
            event(f"{function} refused by OpenSSL")
            return False
        side.injected += 1
        if flush:
            flush_post_handshake_message(side.buf)
        else:
            side.pending_message = True
        return True

    # -- rules ---------------------------------------------------------------------------

    @initialize(
        version=st.sampled_from([TLS13, TLS13, TLS12]),
        resume=st.integers(0, 3),
        start=st.sampled_from(["data", "data", "handshake", "nothing"]),
    )
    def connect(self, version: unitls.TLSVersion, resume: int, start: str) -> None:
        self.version = version
        context = client_context(version, resume=resume == 0)
        self.sides["client"] = Side("client", context.create_buffer("localhost"))
        self.sides["server"] = Side("server", server_context().create_buffer())
        if version is TLS13:
            self.hooks = openssl_private_functions()
        # Hypothesis disables a random subset of the rules in each example (swarm
        # testing), so the data phase cannot rely on any one rule: half of the
        # examples start after a first exchange, a quarter after the handshake, and
        # a quarter before anything happened.
        if start != "nothing":
            self.complete_handshake()
        if start == "data":
            self.exchange("c2s", 100)
            self.exchange("s2c", 1000)
        self.received_at_start = sum(len(side.received) for side in self.sides.values())

    @rule(
        direction=st.sampled_from(["c2s", "s2c"]),
        n=st.one_of(st.integers(1, 64), st.integers(1, MAX_CHUNK)),
    )
    def deliver(self, direction: str, n: int) -> None:
        pipe = self.pipes[direction]
        self.take(pipe, n)
        self.give(pipe, n)

    @rule(
        side=st.sampled_from(SIDES),
        size=st.one_of(
            st.just(0),
            st.integers(1, 2000),
            st.integers(2001, 40_000),
            st.integers(OUTGOING_LIMIT - 20_000, OUTGOING_LIMIT + 60_000),
        ),
        kind=st.sampled_from(["bytes", "bytearray", "memoryview"]),
    )
    def write(self, side: str, size: int, kind: str) -> None:
        me = self.sides[side]
        me.writes += 1
        data = payload(size, seed=me.writes * 2 + (side == "server"))
        arg: Any = {
            "bytes": data,
            "bytearray": bytearray(data),
            "memoryview": memoryview(b"<" + data + b">")[1:-1],
        }[kind]
        if me.error is not None:
            with pytest.raises(type(me.error), match="Cannot write in state failed"):
                me.buf.write(arg)
            return
        if me.shut:  # caller misuse: no state change, no failure
            state = repr(me.buf)
            with pytest.raises(
                unitls.TLSError, match=r"Cannot write in state (shutdown sent|closed)"
            ):
                me.buf.write(arg)
            assert repr(me.buf) == state
            return
        before = me.buf.outgoing_bytes_buffered()
        try:
            n = me.buf.write(arg)
        except unitls.WantReadError:
            assert not self.done(me), "WantReadError from write after the handshake"
            return
        except unitls.WantWriteError:
            assert me.buf.outgoing_bytes_buffered() == before > OUTGOING_LIMIT
            event("write: WantWriteError")
            return
        except unitls.TLSError as exc:
            self.failed(me, exc, before)
            return
        assert 0 <= n <= size
        if size:
            assert n > 0, "write took nothing without raising"
            assert self.done(me)
        if n < size:
            assert me.buf.outgoing_bytes_buffered() > OUTGOING_LIMIT, "short write below the limit"
            event("write: partial")
        me.written += data[:n]
        if n:
            me.pending_message = False

    @rule(
        side=st.sampled_from(SIDES),
        amt=st.one_of(st.just(0), st.integers(1, 100), st.integers(1, 70_000), st.just(2**62)),
        into=st.sampled_from([None, None, "bytearray", "memoryview"]),
        drain=st.booleans(),
    )
    def read(self, side: str, amt: int, into: str | None, drain: bool) -> None:
        """One read, or (`drain`) everything in flight toward `side`, read until
        WantReadError."""
        me = self.sides[side]
        if me.clean_eof and me.error is None:
            assert me.buf.read(amt) == b""  # EOF is sticky (PEP 748)
            return
        if drain:
            pipe = self.pipe_to(me)
            while self.take(pipe, MAX_CHUNK) + self.give(pipe, MAX_CHUNK):
                pass
        if self.read_some(me, amt, into, READS_PER_RULE if drain else 1):
            event("read: application data")

    @rule()
    def complete_handshake(self) -> None:
        for _ in range(20):
            for side in self.sides.values():
                if side.error is None and not self.done(side):
                    self.attempt(side, side.buf.do_handshake)
            moved = 0
            for pipe in self.pipes.values():
                while self.take(pipe, MAX_CHUNK):
                    moved += 1
                while self.give(pipe, MAX_CHUNK):
                    moved += 1
            if not moved:
                break

    @rule(
        direction=st.sampled_from(["c2s", "s2c"]),
        size=st.one_of(st.integers(1, 100), st.integers(1, 40_000)),
    )
    def exchange(self, direction: str, size: int) -> None:
        """A write, delivered and read at once: keeps most examples in the data phase
        (the other rules interleave the same steps arbitrarily)."""
        pipe = self.pipes[direction]
        self.write(pipe.sender, size, "bytes")
        while self.take(pipe, MAX_CHUNK) + self.give(pipe, MAX_CHUNK):
            pass
        receiver = self.sides[pipe.receiver]
        if receiver.clean_eof and receiver.error is None:
            return
        if self.read_some(receiver, 1 << 16, None, READS_PER_RULE):
            event("read: application data")

    @rule(side=st.sampled_from(SIDES), now=st.integers(0, 3))
    def shutdown(self, side: str, now: int) -> None:
        me = self.sides[side]
        if now:  # one draw in four: most examples should carry data for a while
            return
        if me.error is not None:
            with pytest.raises(type(me.error), match="Cannot shutdown in state failed"):
                me.buf.shutdown()
            return
        if not self.done(me):  # caller misuse: refused, nothing changes
            with pytest.raises(unitls.TLSError, match="in state handshaking"):
                me.buf.shutdown()
            assert not self.done(me)
            return
        if me.pending_message:
            flush_post_handshake_message(me.buf)
            me.pending_message = False
        before = me.buf.outgoing_bytes_buffered()
        try:
            me.buf.shutdown()
            assert me.clean_eof, "shutdown() returned before the peer's close_notify"
        except unitls.WantReadError:
            assert not me.clean_eof
        except unitls.TLSError as exc:
            self.failed(me, exc, before)
            return
        me.shut = True
        event("shutdown")

    @rule(
        direction=st.sampled_from(["c2s", "s2c"]),
        deliver_first=st.booleans(),
        now=st.integers(0, 7),
    )
    def transport_eof(self, direction: str, deliver_first: bool, now: int) -> None:
        if now:  # rare: EOF ends the interesting part of an example
            return
        pipe = self.pipes[direction]
        receiver = self.sides[pipe.receiver]
        if pipe.closed:  # a second EOF is a caller mistake
            with pytest.raises(unitls.TLSError, match=r"EOF|in state failed"):
                receiver.buf.process_incoming(b"")
            return
        if deliver_first:
            while self.take(pipe, MAX_CHUNK):
                pass
            while self.give(pipe, MAX_CHUNK):
                pass
        pipe.dropped += len(pipe.data)
        pipe.data.clear()
        pipe.closed = True
        receiver.eof_in = True
        self.attempt(receiver, lambda: receiver.buf.process_incoming(b""))
        event("transport EOF")

    @rule(
        direction=st.sampled_from(["c2s", "s2c"]),
        index=st.integers(0, 1 << 20),
        mask=st.integers(1, 255),
        now=st.integers(0, 3),
    )
    def corrupt_record(self, direction: str, index: int, mask: int, now: int) -> None:
        pipe = self.pipes[direction]
        sender, receiver = self.sides[pipe.sender], self.sides[pipe.receiver]
        if now or pipe.closed or pipe.flip_at is not None:
            return
        if not pipe.data:
            self.take(pipe, MAX_CHUNK)  # what the sender has queued is now in flight
        if not pipe.data:
            return
        # Everything from here on must reach the receiver as an error: it has not
        # closed, and the sender's close_notify (if any) lies behind the flip.
        if receiver.error is not None or receiver.clean_eof or sender.shut:
            return
        offset = pipe.consumed + index % len(pipe.data)
        header = pipe.header_of(offset)
        if header is not None and offset - header in (1, 2):
            # RFC 8446 §5.1: legacy_record_version "MUST be ignored for all
            # purposes" in some records, so a flip there need not be detected.
            # Flip the first length byte of that header instead, if still in flight.
            offset = header + 3
            if offset >= pipe.consumed + len(pipe.data):
                return
        pipe.data[offset - pipe.consumed] ^= mask
        pipe.flip_at = offset
        event("corrupted a byte in flight")

    @rule(side=st.sampled_from(SIDES), requested=st.booleans(), flush=st.booleans())
    def key_update(self, side: str, requested: bool, flush: bool) -> None:
        me = self.sides[side]
        if self.version is not TLS13:
            return
        if not self.hooks:
            event("key update: SSL_key_update not reachable on this platform")
            return
        if me.error is not None or me.shut or not self.done(me):
            return
        # Test only: unitls has no KeyUpdate API (module docstring).
        if self.schedule(me, "SSL_key_update", int(requested), flush=flush):
            event(f"key update (requested={requested}, flushed={flush})")

    @rule(flush=st.booleans())
    def new_session_ticket(self, flush: bool) -> None:
        server = self.sides["server"]
        if self.version is not TLS13 or not self.hooks:
            return
        if server.error is not None or server.shut or not self.done(server):
            return
        # Test only: unitls has no API to send another NewSessionTicket.
        if self.schedule(server, "SSL_new_session_ticket", flush=flush):
            event(f"extra session ticket (flushed={flush})")

    @rule(
        side=st.sampled_from(SIDES),
        mistake=st.sampled_from(
            [
                "read amt str",
                "read amt float",
                "read amt negative",
                "read into bytes",
                "write str",
                "write int",
                "process_incoming str",
                "process_outgoing float",
                "process_outgoing negative",
            ]
        ),
    )
    def caller_mistake(self, side: str, mistake: str) -> None:
        me = self.sides[side]
        call = {
            "read amt str": lambda: me.buf.read("10"),  # type: ignore[arg-type]
            "read amt float": lambda: me.buf.read(10.0),  # type: ignore[arg-type]
            "read amt negative": lambda: me.buf.read(-1),
            "read into bytes": lambda: me.buf.read(10, b"0123456789"),
            "write str": lambda: me.buf.write("text"),  # type: ignore[arg-type]
            "write int": lambda: me.buf.write(5),  # type: ignore[arg-type]
            "process_incoming str": lambda: me.buf.process_incoming("x"),  # type: ignore[arg-type]
            "process_outgoing float": lambda: me.buf.process_outgoing(1.5),  # type: ignore[arg-type]
            "process_outgoing negative": lambda: me.buf.process_outgoing(-1),
        }[mistake]
        snapshot = (
            repr(me.buf),
            me.buf.incoming_bytes_buffered(),
            me.buf.outgoing_bytes_buffered(),
        )
        with pytest.raises((TypeError, ValueError, unitls.TLSError)) as info:
            call()
        if isinstance(info.value, unitls.TLSError):
            # Only a state error may come first: a failed buffer, or a closed write side.
            assert me.error is not None or me.shut or me.eof_in, repr(info.value)
            assert is_fatal(info.value)
        else:
            assert mistake.split()[0] in str(info.value), str(info.value)
        after = (
            repr(me.buf),
            me.buf.incoming_bytes_buffered(),
            me.buf.outgoing_bytes_buffered(),
        )
        assert after == snapshot, "a refused call changed the buffer"

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def reads_are_prefixes_of_writes(self) -> None:
        for side in self.sides.values():
            written = self.other(side).written
            end = len(side.received)
            assert end <= len(written), f"{side.name} read more than its peer wrote"
            assert side.received[side.checked :] == written[side.checked : end], (
                f"{side.name} read bytes its peer did not write at this position"
            )
            side.checked = end

    @invariant()
    def buffers_stay_within_their_limits(self) -> None:
        for side in self.sides.values():
            assert side.buf.incoming_bytes_buffered() <= INCOMING_LIMIT + MAX_CHUNK
            slack = MAX_WIRE_RECORD + QUEUED_SLACK + 512 * side.injected
            assert side.buf.outgoing_bytes_buffered() <= OUTGOING_LIMIT + slack

    # -- the end of an example ---------------------------------------------------------------

    def teardown(self) -> None:
        if not self.sides:
            return
        client, server = self.sides["client"], self.sides["server"]
        handshaken = self.done(client) and self.done(server)
        received = len(client.received) + len(server.received)  # before the final settle
        self.settle(read=True)
        # A stream that was corrupted, or stalled by a corrupted length, must end in
        # an error once the transport ends: never in b"" or silence.
        for pipe in self.pipes.values():
            receiver = self.sides[pipe.receiver]
            if pipe.flip_at is not None and receiver.error is None and not pipe.closed:
                pipe.closed = receiver.eof_in = True
                self.attempt(receiver, lambda r=receiver: r.buf.process_incoming(b""))
                self.read_some(receiver, 1 << 16, None, READS_PER_RULE)
        self.reads_are_prefixes_of_writes()
        for pipe in self.pipes.values():
            sender, receiver = self.sides[pipe.sender], self.sides[pipe.receiver]
            if pipe.flip_at is not None:
                assert receiver.error is not None, (
                    f"a corrupted stream did not fail {receiver.name}"
                )
                assert not receiver.clean_eof
                continue
            if (
                sender.alert_at is not None
                and not sender.shut_when_failed
                and pipe.delivered > sender.alert_at
            ):
                assert receiver.error is not None, (
                    f"{receiver.name} never learned that {sender.name} failed"
                )
            if pipe.closed:
                continue  # truncated: only the prefix property holds
            # Nothing was lost, even when a side failed: the only failure left here
            # is the receiver reading the sender's alert, which follows its data.
            assert receiver.received == sender.written, (
                f"{receiver.name} got {len(receiver.received)} of "
                f"{len(sender.written)} bytes {sender.name} wrote"
            )
            if sender.shut and not sender.shut_when_failed and receiver.error is None:
                assert receiver.clean_eof, f"{sender.name}'s close_notify did not arrive"
        if client.clean_eof and server.clean_eof and client.shut and server.shut:
            client.buf.shutdown()  # both close_notify alerts exchanged: returns
            server.buf.shutdown()
            event("closed cleanly on both sides")
        # How far examples get: most must reach the data phase.
        if received > self.received_at_start:
            event("application data read by the rules (not only by connect)")
        if received:
            phase = "application data"
        elif handshaken:
            phase = "handshake only"
        else:
            phase = "handshake not completed"
        event(f"phase reached: {phase}")
        event(f"version: {self.version.value}")


TLSPairMachine.TestCase.settings = settings.get_profile(PROFILE)
test_tls_pair_state_machine = TLSPairMachine.TestCase


# -- the test hooks themselves ------------------------------------------------------------------


def test_key_update_and_new_session_ticket_reach_the_peer():
    # The hook the state machine relies on, checked by example (Linux / ELF builds,
    # as CI): a requested KeyUpdate is answered before the peer's next data, an
    # extra ticket is consumed by the client, and data keeps flowing both ways.
    hooks = openssl_private_functions()
    with open(rust_binding.__file__, "rb") as f:
        if f.read(4) != b"\x7fELF":
            assert hooks == {}
            return
    assert hooks, "SSL_key_update not found in cryptography's binding"
    client_ctx = client_context(TLS13, resume=False)
    client, server = client_ctx.create_buffer("localhost"), server_context().create_buffer()
    handshake(client, server)
    assert hooks["SSL_key_update"](client._ssl, 1) == 1
    flush_post_handshake_message(client)
    key_update = client.process_outgoing(1 << 20)
    assert key_update[:1] == b"\x17"  # an encrypted handshake message
    server.process_incoming(key_update)
    with pytest.raises(unitls.WantReadError):
        server.read(100)  # processed; the answer goes out before the server's next data
    assert server.write(b"answer") == 6
    assert hooks["SSL_new_session_ticket"](server._ssl) == 1
    assert server.write(b"+ticket") == 7
    pump(server, client)
    assert client.read(100) == b"answer"
    assert client.read(100) == b"+ticket"
    client.write(b"new keys both ways")
    pump(client, server)
    assert server.read(100) == b"new keys both ways"
