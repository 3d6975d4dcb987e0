"""Property tests for the OpenSSL `TLSBuffer` (REFERENCE.md §4.1 invariants).

1. Any chunking of the ciphertext, in either direction and handshake included,
   delivers exactly the plaintext written.
2. Garbage, and bit flips / truncations of real sessions, only ever raise
   `unitls.TLSError` subclasses, in bounded time; a failed buffer stays failed.
3. A server->client stream truncated anywhere (ragged EOF) gives the client a
   prefix of the plaintext and then an error, never a silent `b""`.
4. A rule-based state machine over a client/server pair: what each side reads is
   always a prefix of what the other wrote.

Everything runs in memory; there is no network. Contexts are built once per
module (hypothesis cannot use function-scoped fixtures).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random
import time
from collections.abc import Iterator, Sequence

import pytest
import trustme
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import unitls
from helpers import handshake, pump, signing_chain, trust_store
from unitls.openssl import (
    OPENSSL_IMPLEMENTATION,
    OUTGOING_LIMIT,
    OpenSSLClientContext,
    OpenSSLServerContext,
)

TLS12 = unitls.TLSVersion.TLSv1_2
TLS13 = unitls.TLSVersion.TLSv1_3
VERSIONS = st.sampled_from([TLS12, TLS13])
#: Seconds one example may take before it counts as a hang (REFERENCE.md §4.1, item 3).
TIME_LIMIT = 2.0
#: Read size used by the drivers; larger than one TLS record.
READ_SIZE = 1 << 16


@functools.cache
def _credentials() -> tuple[trustme.CA, unitls.SigningChain]:
    ca = trustme.CA()
    return ca, signing_chain(ca.issue_cert("localhost"))


@functools.cache
def client_config(version: unitls.TLSVersion) -> unitls.TLSClientConfiguration:
    ca, _ = _credentials()
    return unitls.TLSClientConfiguration(
        trust_store=trust_store(ca), highest_supported_version=version
    )


@functools.cache
def server_context(version: unitls.TLSVersion) -> OpenSSLServerContext:
    # The version only keys the cache: the client's configuration picks the version.
    _, chain = _credentials()
    return OPENSSL_IMPLEMENTATION.server_context(
        unitls.TLSServerConfiguration(certificate_chain=[chain])
    )


def primed_client_context(version: unitls.TLSVersion) -> OpenSSLClientContext:
    """A new client context holding a resumable session with the shared server.

    OpenSSL marks a session not resumable when its connection is freed without a
    clean shutdown, so the priming connection closes cleanly on both sides.
    """
    client = OPENSSL_IMPLEMENTATION.client_context(client_config(version))
    client_buf, server_buf = (
        client.create_buffer("localhost"),
        server_context(version).create_buffer(),
    )
    handshake(client_buf, server_buf)
    server_buf.write(b"x")
    pump(server_buf, client_buf)
    assert client_buf.read(1) == b"x"  # the client keeps the session at its first read
    with pytest.raises(unitls.WantReadError):
        client_buf.shutdown()
    pump(client_buf, server_buf)
    assert server_buf.read(1) == b""
    server_buf.shutdown()
    pump(server_buf, client_buf)
    assert client_buf.read(1) == b""
    client_buf.shutdown()
    return client


def new_pair(
    version: unitls.TLSVersion, resume: bool = False
) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
    """A fresh (client, server) pair. Without `resume` the handshake is a full one
    (certificate, key exchange, signature); with it, the client resumes a session.

    Each pair gets its own client context (they are cheap), so that whether a
    handshake resumes never depends on how an earlier example ended.
    """
    if resume:
        client_ctx = primed_client_context(version)
    else:
        client_ctx = OPENSSL_IMPLEMENTATION.client_context(client_config(version))
    return client_ctx.create_buffer("localhost"), server_context(version).create_buffer()


def data_of(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def is_fatal(exc: BaseException) -> bool:
    return not isinstance(exc, (unitls.WantReadError, unitls.WantWriteError))


def assert_stays_failed(buf: unitls.TLSBuffer) -> None:
    """Every later read, write and do_handshake raises a TLSError that is not Want*."""
    for operation in (
        lambda: buf.read(100),
        lambda: buf.read(100, bytearray(100)),
        lambda: buf.write(b"x"),
        buf.do_handshake,
    ):
        with pytest.raises(unitls.TLSError) as info:
            operation()
        assert is_fatal(info.value), f"a failed buffer signalled {info.value!r}"


# -- the driver: two peers joined by a tamperable in-memory network ----------------------


@dataclasses.dataclass
class Peer:
    """One side of a conversation and everything it has done so far."""

    buf: unitls.TLSBuffer
    to_send: bytes = b""
    close_when_done: bool = False
    sent: int = 0  # bytes of to_send accepted by write()
    received: bytearray = dataclasses.field(default_factory=bytearray)
    handshaken: bool = False
    shut: bool = False
    clean_eof: bool = False  # read() returned b""
    error: unitls.TLSError | None = None  # the first fatal error

    @property
    def written(self) -> bytes:
        return self.to_send[: self.sent]

    def fail(self, exc: unitls.TLSError) -> None:
        assert is_fatal(exc)
        if self.error is None:
            self.error = exc

    def step(self) -> bool:
        """Handshake, write, read as far as possible. Returns whether anything happened.

        Only TLSError is caught: any other exception escapes and fails the test.
        """
        if self.error is not None:
            return False
        progress = False
        buf = self.buf
        try:
            if not self.handshaken:
                buf.do_handshake()
                self.handshaken = progress = True
            if self.sent < len(self.to_send):
                n = buf.write(memoryview(self.to_send)[self.sent :])
                assert 0 <= n <= len(self.to_send) - self.sent
                self.sent += n
                progress = progress or n > 0
            if self.sent == len(self.to_send) and self.close_when_done and not self.shut:
                self.shut = progress = True
                buf.shutdown()
        except (unitls.WantReadError, unitls.WantWriteError):
            pass
        except unitls.TLSError as exc:
            self.fail(exc)
            return True
        while not self.clean_eof:
            try:
                chunk = buf.read(READ_SIZE)
            except (unitls.WantReadError, unitls.WantWriteError):
                break
            except unitls.TLSError as exc:
                self.fail(exc)
                return True
            assert isinstance(chunk, bytes)
            if not chunk:
                self.clean_eof = progress = True
                break
            self.received += chunk
            progress = True
        return progress


@dataclasses.dataclass
class Wire:
    """One direction of the network: chunking, an optional bit flip and truncation."""

    chunks: Iterator[int]
    flip_at: int | None = None  # stream offset of the byte to corrupt
    flip_mask: int = 1
    cut_at: int | None = None  # stream offset after which everything is lost
    position: int = 0  # bytes taken from the sender so far
    pending: bytes = b""  # taken but refused by the receiver (back-pressure)
    dropped: int = 0  # bytes the sender produced that were lost to the cut
    eof_sent: bool = False
    tap: bytearray = dataclasses.field(default_factory=bytearray)  # what was sent

    def move(self, src: Peer, dst: Peer) -> bool:
        if self.eof_sent:  # everything else is lost, and counted
            while lost := src.buf.process_outgoing(1 << 20):
                self.dropped += len(lost)
            return False
        if not self.pending:
            data = src.buf.process_outgoing(next(self.chunks))
            if not data:
                return False
            start = self.position
            self.position += len(data)
            if self.flip_at is not None and start <= self.flip_at < self.position:
                mutable = bytearray(data)
                mutable[self.flip_at - start] ^= self.flip_mask
                data = bytes(mutable)
            if self.cut_at is not None and self.position > self.cut_at:
                keep = max(0, self.cut_at - start)
                self.dropped += len(data) - keep
                data = data[:keep]
            self.tap += data
            self.pending = data
        try:
            if self.pending:
                dst.buf.process_incoming(self.pending)
            self.pending = b""
            if self.cut_at is not None and self.position >= self.cut_at:
                dst.buf.process_incoming(b"")  # the transport ends here
                self.eof_sent = True
        except unitls.WantReadError:
            return False  # back-pressure: keep it, the receiver reads first
        except unitls.TLSError as exc:
            dst.fail(exc)
            self.pending = b""
        return True


def converse(
    client: Peer,
    server: Peer,
    c2s: Wire,
    s2c: Wire,
    *,
    max_rounds: int = 200_000,
) -> None:
    """Run both peers until nothing more can happen; fail if that takes too long."""
    started = time.monotonic()
    idle = 0
    for _ in range(max_rounds):
        progress = client.step()
        progress = server.step() or progress
        progress = c2s.move(client, server) or progress
        progress = s2c.move(server, client) or progress
        # A moved byte is progress only if it lets someone act, so allow a few idle
        # rounds before calling the conversation settled.
        idle = 0 if progress else idle + 1
        if idle >= 3:
            break
        assert time.monotonic() - started < TIME_LIMIT, "conversation did not settle in time"
    else:
        raise AssertionError("conversation did not settle")
    assert time.monotonic() - started < TIME_LIMIT


def cycle(sizes: Sequence[int]) -> Iterator[int]:
    return itertools.cycle(sizes)


# -- (1) any chunking delivers exactly what was written -----------------------------------

CHUNK_SIZES = st.lists(
    st.one_of(st.just(1), st.integers(1, 40), st.integers(1, 20_000)), min_size=1, max_size=6
)
PAYLOAD_SIZES = st.lists(st.integers(0, 5000), max_size=3)


@settings(max_examples=60, deadline=None)
@given(
    version=VERSIONS,
    c2s_sizes=PAYLOAD_SIZES,
    s2c_sizes=PAYLOAD_SIZES,
    c2s_chunks=CHUNK_SIZES,
    s2c_chunks=CHUNK_SIZES,
    seed=st.integers(0, 2**32),
    close=st.booleans(),
    resume=st.booleans(),
)
def test_any_chunking_delivers_exactly_the_plaintext(
    version, c2s_sizes, s2c_sizes, c2s_chunks, s2c_chunks, seed, close, resume
):
    up = b"".join(data_of(n, seed + i) for i, n in enumerate(c2s_sizes))
    down = b"".join(data_of(n, ~seed - i) for i, n in enumerate(s2c_sizes))
    client_buf, server_buf = new_pair(version, resume)
    client = Peer(client_buf, up, close_when_done=close)
    server = Peer(server_buf, down, close_when_done=close)
    converse(client, server, Wire(cycle(c2s_chunks)), Wire(cycle(s2c_chunks)))
    assert client.error is None, client.error
    assert server.error is None, server.error
    assert client.handshaken
    assert server.handshaken
    assert client.sent == len(up)
    assert server.sent == len(down)
    assert bytes(server.received) == up
    assert bytes(client.received) == down
    assert client_buf.negotiated_tls_version is version
    if close:
        assert client.clean_eof
        assert server.clean_eof
        client_buf.shutdown()  # both close_notify alerts are in: returns
        server_buf.shutdown()


# -- (2) garbage, bit flips and truncations only raise TLSError -----------------------------

RECORD_HEADERS = st.builds(
    lambda kind, major, minor, length: bytes([kind, major, minor]) + length.to_bytes(2, "big"),
    st.sampled_from([20, 21, 22, 23, 24, 0, 255]),
    st.sampled_from([3, 2, 0]),
    st.sampled_from([0, 1, 3, 4]),
    st.one_of(st.integers(0, 64), st.integers(0, 0xFFFF)),
)
GARBAGE = st.one_of(
    st.binary(max_size=3000),
    st.builds(bytes.__add__, RECORD_HEADERS, st.binary(max_size=600)),
    st.builds(
        lambda header, body, more: header + body + more,
        RECORD_HEADERS,
        st.binary(max_size=100),
        st.binary(max_size=100),
    ),
)


def splits(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def chunked(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """`data` in consecutive pieces whose lengths cycle through `sizes`."""
    pos = 0
    for size in cycle(sizes):
        if pos >= len(data):
            return
        yield data[pos : pos + size]
        pos += size


def feed_then_eof(peer: Peer, chunks: Sequence[bytes]) -> None:
    """Deliver `chunks` one by one, stepping the peer after each, then transport EOF."""
    started = time.monotonic()
    for chunk in chunks:
        try:
            peer.buf.process_incoming(chunk)
        except unitls.WantReadError:
            peer.step()  # back-pressure: a read makes room
            try:
                peer.buf.process_incoming(chunk)
            except unitls.WantReadError:
                pass  # still full: this chunk is lost, as on a broken transport
            except unitls.TLSError as exc:
                peer.fail(exc)
        except unitls.TLSError as exc:
            peer.fail(exc)
        peer.step()
        peer.buf.process_outgoing(1 << 20)  # alerts and flights go nowhere
    try:
        peer.buf.process_incoming(b"")
    except unitls.TLSError as exc:
        peer.fail(exc)
    for _ in range(200):  # a few records may still be buffered; each read takes one
        if not peer.step():
            break
    assert time.monotonic() - started < TIME_LIMIT


def assert_failed_without_plaintext(peer: Peer) -> None:
    # Garbage, or a stream recorded for another connection, can never complete a
    # handshake, so after EOF the buffer must have failed, and it never produced data.
    assert peer.error is not None, "input that cannot be a valid session did not fail"
    assert isinstance(peer.error, unitls.TLSError)
    assert is_fatal(peer.error)
    assert not peer.clean_eof
    assert peer.received == b""
    assert_stays_failed(peer.buf)


@settings(max_examples=150, deadline=None)
@given(version=VERSIONS, garbage=GARBAGE, cuts=st.lists(st.integers(0, 4000), max_size=3))
def test_garbage_only_raises_tls_errors(version, garbage, cuts):
    client_buf, server_buf = new_pair(version)
    server = Peer(server_buf)
    feed_then_eof(server, splits(garbage, cuts))
    assert_failed_without_plaintext(server)

    client = Peer(client_buf)
    client.step()  # ClientHello out, waiting for the server
    assert client.error is None
    client_buf.process_outgoing(1 << 20)
    feed_then_eof(client, splits(garbage, cuts))
    assert_failed_without_plaintext(client)


@functools.cache
def recorded_session(
    version: unitls.TLSVersion, resume: bool = False, up: int = 3000, down: int = 20_000
) -> tuple[bytes, bytes]:
    """The two ciphertext streams of one complete real session: handshake, `up` and
    `down` bytes of data, then close_notify from both sides."""
    client_buf, server_buf = new_pair(version, resume)
    client = Peer(client_buf, data_of(up, 1), close_when_done=True)
    server = Peer(server_buf, data_of(down, 2), close_when_done=True)
    c2s, s2c = Wire(cycle([1 << 20])), Wire(cycle([1 << 20]))
    converse(client, server, c2s, s2c)
    assert client.clean_eof
    assert server.clean_eof
    assert bytes(client.received) == server.to_send
    return bytes(c2s.tap), bytes(s2c.tap)


@functools.cache
def handshake_length(version: unitls.TLSVersion, resume: bool) -> int:
    """How many bytes the server sends in a session without data (about the same
    every time: the flight, and in TLS 1.3 the session tickets)."""
    client_buf, server_buf = new_pair(version, resume)
    client, server = Peer(client_buf), Peer(server_buf)
    s2c = Wire(cycle([1 << 20]))
    converse(client, server, Wire(cycle([1 << 20])), s2c)
    assert client.handshaken
    assert server.handshaken
    return s2c.position


MUTATION = st.tuples(
    st.floats(0, 1, exclude_max=True),  # where: a fraction of the stream
    st.integers(0, 7),  # which bit
    st.sampled_from(["flip", "cut", "flip+cut", "none"]),
    st.floats(0, 1),  # where to cut, relative to the flip
)


def mutate(stream: bytes, mutation: tuple[float, int, str, float]) -> bytes:
    where, bit, kind, cut = mutation
    offset = int(where * len(stream))
    data = bytearray(stream)
    if "flip" in kind:
        data[offset] ^= 1 << bit
    if "cut" in kind:
        end = offset + int(cut * (len(stream) - offset))
        del data[end:]
    return bytes(data)


@settings(max_examples=100, deadline=None)
@given(
    version=VERSIONS,
    mutation=MUTATION,
    cuts=st.lists(st.integers(0, 30_000), max_size=4),
    direction=st.sampled_from(["c2s", "s2c"]),
    resume=st.booleans(),
)
def test_recorded_session_replayed_with_mutations_only_raises_tls_errors(
    version, mutation, cuts, direction, resume
):
    c2s, s2c = recorded_session(version, resume)
    client_buf, server_buf = new_pair(version)
    if direction == "c2s":
        peer = Peer(server_buf)
        stream = c2s
    else:
        peer = Peer(client_buf)
        peer.step()  # a fresh ClientHello: the recorded ServerHello answers another one
        client_buf.process_outgoing(1 << 20)
        stream = s2c
    feed_then_eof(peer, splits(mutate(stream, mutation), cuts))
    # A recorded session never authenticates against a fresh peer, mutated or not.
    assert_failed_without_plaintext(peer)


@settings(max_examples=100, deadline=None)
@given(
    version=VERSIONS,
    direction=st.sampled_from(["c2s", "s2c"]),
    where=st.floats(0, 1, exclude_max=True),
    bit=st.integers(0, 7),
    c2s_chunks=CHUNK_SIZES,
    s2c_chunks=CHUNK_SIZES,
    resume=st.booleans(),
)
def test_bit_flip_in_a_live_session_never_alters_data(
    version, direction, where, bit, c2s_chunks, s2c_chunks, resume
):
    # The session below has the recorded one's shape, so `where` spreads over it.
    up, down = 1500, 5000  # small: the handshake is where flips are interesting
    c2s_len, s2c_len = (len(s) for s in recorded_session(version, resume, up, down))
    flip_at = int(where * (c2s_len if direction == "c2s" else s2c_len))
    client_buf, server_buf = new_pair(version, resume)
    client = Peer(client_buf, data_of(up, 1), close_when_done=True)
    server = Peer(server_buf, data_of(down, 2), close_when_done=True)
    c2s, s2c = Wire(cycle(c2s_chunks)), Wire(cycle(s2c_chunks))
    (c2s if direction == "c2s" else s2c).flip_at = flip_at
    (c2s if direction == "c2s" else s2c).flip_mask = 1 << bit
    converse(client, server, c2s, s2c)
    assert bytes(server.received) == client.written[: len(server.received)]
    assert bytes(client.received) == server.written[: len(client.received)]
    for peer in (client, server):
        if peer.error is not None:
            assert_stays_failed(peer.buf)
    event(f"flip detected: {client.error is not None or server.error is not None}")


# -- (3) ragged EOF anywhere in the server->client stream -----------------------------------


@settings(max_examples=100, deadline=None)
@given(
    version=VERSIONS,
    where=st.floats(0, 1.1),  # over 1: beyond the end, nothing is lost
    close=st.booleans(),
    s2c_chunks=CHUNK_SIZES,
    sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=3),
    resume=st.booleans(),
)
def test_truncated_server_stream_gives_a_prefix_then_an_error(
    version, where, close, s2c_chunks, sizes, resume
):
    down = b"".join(data_of(n, i) for i, n in enumerate(sizes))
    # About the length of this session's server->client stream, so that `where`
    # spreads the cuts over the handshake, the records and the close_notify.
    expected_length = handshake_length(version, resume) + len(down) + 30 * len(sizes) + 30
    cut_at = int(where * expected_length)
    client_buf, server_buf = new_pair(version, resume)
    client = Peer(client_buf)
    server = Peer(server_buf, down, close_when_done=close)
    s2c = Wire(cycle(s2c_chunks), cut_at=cut_at)
    converse(client, server, Wire(cycle([1 << 20])), s2c)
    if not s2c.eof_sent:  # the cut lies beyond the stream: the transport ends after it
        client_buf.process_incoming(b"")
        s2c.eof_sent = True
        while client.step():
            pass
    # Whatever the client read is exactly the start of what the server wrote.
    assert bytes(client.received) == server.written[: len(client.received)]
    s2c.move(server, client)  # count whatever the server still had queued
    if s2c.dropped:
        event("stream truncated")
        assert not client.clean_eof, "a truncated stream read as a clean close"
        assert client.error is not None, "a truncated stream ended without an error"
        assert is_fatal(client.error)
        assert_stays_failed(client_buf)
        if isinstance(client.error, unitls.RaggedEOF):
            event("RaggedEOF")
    else:
        # Nothing was lost: all data arrived, then a clean close or a ragged EOF.
        event("stream complete")
        assert server.written == down
        assert bytes(client.received) == down
        if close:
            assert client.clean_eof
            assert client.error is None
        else:
            assert isinstance(client.error, unitls.RaggedEOF)


def records(stream: bytes) -> list[int]:
    """The offsets where TLS records start in `stream`, and its end."""
    offsets = [0]
    while offsets[-1] < len(stream):
        start = offsets[-1]
        offsets.append(start + 5 + int.from_bytes(stream[start + 3 : start + 5], "big"))
    assert offsets[-1] == len(stream)
    return offsets


@settings(max_examples=100, deadline=None)
@given(
    version=VERSIONS,
    sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=4),
    close=st.booleans(),
    chunks=CHUNK_SIZES,
    data=st.data(),
)
def test_recorded_data_stream_truncated_at_any_offset(version, sizes, close, chunks, data):
    client_buf, server_buf = new_pair(version)
    handshake(client_buf, server_buf)
    messages = [data_of(n, i) for i, n in enumerate(sizes)]
    for message in messages:
        assert server_buf.write(message) == len(message)  # one record each
    if close:
        with pytest.raises(unitls.WantReadError):
            server_buf.shutdown()
    stream = server_buf.process_outgoing(1 << 20)
    boundaries = records(stream)
    assert len(boundaries) == len(messages) + 1 + close
    cut = data.draw(
        st.one_of(st.integers(0, len(stream)), st.sampled_from(boundaries), st.just(len(stream))),
        label="cut",
    )
    whole = sum(1 for b in boundaries[1:] if b <= cut)  # records that arrive whole

    client = Peer(client_buf)
    for piece in chunked(stream[:cut], chunks):
        client_buf.process_incoming(piece)
        client.step()
    assert client.error is None
    client_buf.process_incoming(b"")
    while client.step():
        pass

    # Exactly the records that arrived whole are delivered, in order, unaltered.
    assert bytes(client.received) == b"".join(messages[:whole])
    if cut == len(stream) and close:
        assert client.clean_eof
        assert client.error is None
        event("clean close")
    else:
        assert not client.clean_eof, "a truncated stream read as a clean close"
        assert client.error is not None, "a truncated stream ended without an error"
        assert is_fatal(client.error)
        assert_stays_failed(client_buf)
        if cut in boundaries:
            # Cut between records: nothing is damaged, only the close_notify is missing.
            assert isinstance(client.error, unitls.RaggedEOF)
            event("cut between records")
        else:
            event(f"cut inside a record: {type(client.error).__name__}")


# -- (4) a state machine over a client/server pair ---------------------------------------------

SIDES = st.sampled_from(["client", "server"])


class BufferPair(RuleBasedStateMachine):
    """Random interleavings of delivery, writes, reads and shutdowns.

    Rules never have preconditions on TLS state (REFERENCE.md §4.1: TLS randomness
    would make them flaky); they look at the state and return early instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.buffers: dict[str, unitls.TLSBuffer] = {}
        self.written = {"client": bytearray(), "server": bytearray()}
        self.received = {"client": bytearray(), "server": bytearray()}
        self.shut = {"client": False, "server": False}
        self.peer_closed = {"client": False, "server": False}
        self.pipes = {"c2s": bytearray(), "s2c": bytearray()}

    @initialize(version=VERSIONS, resume=st.booleans(), handshake_first=st.booleans())
    def connect(self, version: unitls.TLSVersion, resume: bool, handshake_first: bool) -> None:
        self.buffers["client"], self.buffers["server"] = new_pair(version, resume)
        if handshake_first:  # half the examples start in the data phase
            assert self.settle_handshake()

    @staticmethod
    def other(side: str) -> str:
        return "server" if side == "client" else "client"

    def done(self, side: str) -> bool:
        return self.buffers[side].negotiated_tls_version is not None

    def deliver(self, direction: str, n: int) -> None:
        src, dst = ("client", "server") if direction == "c2s" else ("server", "client")
        pipe = self.pipes[direction]
        pipe += self.buffers[src].process_outgoing(n)
        if not pipe:
            return
        try:
            self.buffers[dst].process_incoming(bytes(pipe[:n]))
        except unitls.WantReadError:
            return  # back-pressure: stays in the pipe
        del pipe[:n]

    @rule(n=st.one_of(st.integers(1, 64), st.integers(1, 40_000)))
    def deliver_c2s(self, n: int) -> None:
        self.deliver("c2s", n)

    @rule(n=st.one_of(st.integers(1, 64), st.integers(1, 40_000)))
    def deliver_s2c(self, n: int) -> None:
        self.deliver("s2c", n)

    @rule(side=SIDES, data=st.binary(max_size=3000))
    def write(self, side: str, data: bytes) -> None:
        buf = self.buffers[side]
        if self.shut[side]:
            with pytest.raises(unitls.TLSError) as info:
                buf.write(data)
            assert is_fatal(info.value)
            return
        try:
            n = buf.write(data)
        except unitls.WantReadError:
            assert not self.done(side), "WantReadError from write after the handshake"
            return
        except unitls.WantWriteError:
            assert buf.outgoing_bytes_buffered() > OUTGOING_LIMIT
            return
        assert 0 <= n <= len(data)
        assert n == len(data) or buf.outgoing_bytes_buffered() > OUTGOING_LIMIT
        assert self.done(side) or n == 0
        self.written[side] += data[:n]

    @rule(
        side=SIDES,
        amt=st.one_of(st.integers(0, 100), st.integers(0, 70_000)),
        into_buffer=st.booleans(),
    )
    def read(self, side: str, amt: int, into_buffer: bool = False) -> None:
        buf = self.buffers[side]
        for _ in range(100):
            try:
                if into_buffer:
                    dest = bytearray(b"\xaa") * (amt + 8)
                    count = buf.read(amt, dest)
                    assert isinstance(count, int)
                    assert dest[count:] == bytearray(b"\xaa") * (amt + 8 - count)
                    got = bytes(dest[:count])
                else:
                    got = buf.read(amt)  # type: ignore[assignment]
            except unitls.WantReadError:
                return
            assert isinstance(got, bytes)
            assert len(got) <= amt
            if amt == 0:
                assert got == b""
                return
            if not got:
                assert self.shut[self.other(side)], "b'' but the peer never shut down"
                self.peer_closed[side] = True
                return
            self.received[side] += got

    @rule(side=SIDES, now=st.integers(0, 2))
    def shutdown(self, side: str, now: int) -> None:
        # Only one draw in three shuts down, so that more examples carry data.
        if now or not self.done(side):
            return  # shutting down before the handshake ends the example's interest
        try:
            self.buffers[side].shutdown()
        except unitls.WantReadError:
            pass
        self.shut[side] = True

    def settle_handshake(self) -> bool:
        for _ in range(10):
            for side in ("client", "server"):
                try:
                    self.buffers[side].do_handshake()
                except unitls.WantReadError:
                    pass
            self.deliver("c2s", 1 << 20)
            self.deliver("s2c", 1 << 20)
            if self.done("client") and self.done("server"):
                return True
        return False

    @rule()
    def complete_handshake(self) -> None:
        already = self.done("client") and self.done("server")
        assert self.settle_handshake(), "the handshake did not complete"
        if not already:
            event("handshake completed by the rule")

    @invariant()
    def reads_are_prefixes(self) -> None:
        if not self.buffers:
            return
        for side in ("client", "server"):
            assert self.written[self.other(side)].startswith(self.received[side])

    def teardown(self) -> None:
        if not self.buffers:
            return
        event(f"data phase reached: {self.done('client') and self.done('server')}")
        if self.written["client"] or self.written["server"]:
            event("application data written")
        # Let everything settle: all that was written must arrive, intact.
        for _ in range(50):
            assert self.settle_handshake()
            for side in ("client", "server"):
                self.read(side, 1 << 16)
        for side in ("client", "server"):
            assert self.received[side] == self.written[self.other(side)]


BufferPair.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    # Each example handshakes real TLS; a slow shared machine must not turn that
    # into a failed health check.
    suppress_health_check=[HealthCheck.too_slow],
)
test_buffer_pair_state_machine = BufferPair.TestCase


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls12", "tls13"])
def test_recorded_sessions_are_real_sessions(version):
    # The replay and flip tests are only meaningful if the recordings are whole
    # sessions, and `resume` only if it really switches to an abbreviated handshake.
    full_c2s, full_s2c = recorded_session(version, resume=False)
    resumed_c2s, resumed_s2c = recorded_session(version, resume=True)
    for c2s, s2c in ((full_c2s, full_s2c), (resumed_c2s, resumed_s2c)):
        assert c2s[:1] == b"\x16"
        assert s2c[:1] == b"\x16"
        assert len(s2c) > 20_000
        assert len(c2s) > 3000
    # No certificate and no signature in the resumed server flight.
    assert len(resumed_s2c) < len(full_s2c) - 300


def test_wire_cut_at_zero_is_an_immediate_ragged_eof():
    # A check of the driver itself: a cut at offset 0 delivers nothing, then EOF.
    client_buf, server_buf = new_pair(TLS13)
    client, server = Peer(client_buf, b"x"), Peer(server_buf)
    c2s = Wire(cycle([1]), cut_at=0)
    converse(client, server, c2s, Wire(cycle([1])))
    assert c2s.eof_sent
    assert c2s.tap == b""
    assert c2s.dropped > 0
    assert isinstance(server.error, unitls.RaggedEOF)
    assert client.received == b""
