"""Threads: shared contexts, and one buffer reached from two threads.

1. Contexts (and configurations) are immutable and shared freely: one client and
   one server context serve 16 threads at once, each doing handshakes and data
   transfers in memory and over real sockets on 127.0.0.1, with every byte checked.
2. A buffer serves one call at a time. A call made while another thread is inside
   a call on the same buffer is refused with a `TLSError` naming the state "busy"
   and changes nothing, so the caller may simply call again; it never lets two
   threads into one OpenSSL `SSL` object, whose memory BIOs are not thread-safe
   (`OpenSSLTLSBuffer` docstring; `_buffer.py` theory of operation, rule 6).
   Callers that really share a buffer (httpcore's sync HTTP/2 reads and writes
   one connection from two threads) hold a lock around each call, as the unitls
   integrations do; a buffer call never blocks, so such a lock is cheap.

Why refuse rather than lock inside the buffer: a lock costs each of the four calls
of a round trip an acquire and a release (100-250 ns here, 5-15 % of a 256-byte
round trip), callers that share a buffer need their own lock anyway to keep the
ciphertext they move in order, and the integrations already hold one. The busy
flag costs a test-and-set per call (`bench/README.md` has the numbers).
"""

from __future__ import annotations

import collections
import hashlib
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trustme

import unitls
from helpers import Pair, handshake, make_pair, pump, read_all, recv_exactly, trust_store
from unitls.openssl import OPENSSL_IMPLEMENTATION

T = TypeVar("T")
#: Seconds any single wait in these tests may take before the test fails.
WAIT = 30.0
THREADS = 16
PAIRS_PER_THREAD = 6
SOCKETS_PER_THREAD = 3
SERVER_THREADS = 8


class Failures:
    """Exceptions from worker threads, re-raised in the test's thread."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., object], *args: object) -> threading.Thread:
        def target() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # reported by check()
                with self._lock:
                    self.errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    def check(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.join(WAIT * 4)
        assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
        if self.errors:
            raise self.errors[0]


# -- 1. one pair of contexts, many threads -------------------------------------------------------


def test_one_pair_of_contexts_serves_16_threads_at_once(
    ca: trustme.CA, server_config: unitls.TLSServerConfiguration
):
    client_ctx = OPENSSL_IMPLEMENTATION.client_context(
        unitls.TLSClientConfiguration(trust_store=trust_store(ca))
    )
    server_ctx = OPENSSL_IMPLEMENTATION.server_context(server_config)
    listener = server_ctx.connect(("127.0.0.1", 0), timeout=WAIT)
    listener.listen(THREADS * SOCKETS_PER_THREAD)
    port = listener.getsockname()[1]
    failures = Failures()
    start = threading.Barrier(THREADS + SERVER_THREADS, timeout=WAIT)
    to_accept = [THREADS * SOCKETS_PER_THREAD]
    accept_lock = threading.Lock()
    sockets_checked: list[int] = []
    pairs_checked: list[int] = []

    def serve() -> None:
        # Echo: a 4-byte length and a message in; its SHA-256 and the message
        # reversed out. accept() completes each handshake on the shared context.
        start.wait()
        while True:
            with accept_lock:
                if not to_accept[0]:
                    return
                to_accept[0] -= 1
            conn, _ = listener.accept()
            with conn:
                size = int.from_bytes(recv_exactly(conn, 4), "big")
                message = recv_exactly(conn, size)
                assert len(message) == size
                conn.sendall(hashlib.sha256(message).digest() + message[::-1])

    def work(index: int) -> None:
        rng = random.Random(index)
        start.wait()
        for j in range(PAIRS_PER_THREAD):
            client = client_ctx.create_buffer("localhost")
            server = server_ctx.create_buffer()
            handshake(client, server)
            pair = Pair(client, server)
            up = rng.randbytes(rng.choice([1, 700, 20_000, 300_000]))
            down = rng.randbytes(rng.choice([1, 5_000, 70_000]))
            assert pair.c2s(up) == up
            assert pair.s2c(down) == down
            assert client.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
            assert server.getpeercert() is None
            assert client.getpeercert() is not None
            pairs_checked.append(j)
        for _ in range(SOCKETS_PER_THREAD):
            message = rng.randbytes(rng.choice([1, 30_000, 200_000]))
            with client_ctx.connect(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(len(message).to_bytes(4, "big") + message)
                reply = recv_exactly(sock, 32 + len(message))
            assert reply == hashlib.sha256(message).digest() + message[::-1]
            sockets_checked.append(index)

    threads = [failures.run(serve) for _ in range(SERVER_THREADS)]
    threads += [failures.run(work, i) for i in range(THREADS)]
    try:
        failures.check(threads)
    finally:
        listener.close()
    assert len(pairs_checked) == THREADS * PAIRS_PER_THREAD
    assert len(sockets_checked) == THREADS * SOCKETS_PER_THREAD
    assert to_accept == [0]


# -- 2. one buffer, two threads -------------------------------------------------------------------


@pytest.fixture
def pair(
    client_config: unitls.TLSClientConfiguration, server_config: unitls.TLSServerConfiguration
) -> Pair:
    return make_pair(client_config, server_config)


GUARDED: dict[str, Callable[[unitls.TLSBuffer], object]] = {
    "read": lambda b: b.read(10),
    "write": lambda b: b.write(b"data"),
    "process_incoming": lambda b: b.process_incoming(b"\x17\x03\x03\x00\x01x"),
    "process_outgoing": lambda b: b.process_outgoing(100),
    "do_handshake": lambda b: b.do_handshake(),
    "shutdown": lambda b: b.shutdown(),
    "cipher": lambda b: b.cipher(),
    "negotiated_protocol": lambda b: b.negotiated_protocol(),
    "negotiated_tls_version": lambda b: b.negotiated_tls_version,
    "getpeercert": lambda b: b.getpeercert(),
}


def test_a_buffer_busy_in_another_thread_refuses_each_call_and_changes_nothing(pair: Pair):
    # The refusal itself, made deterministic by marking the buffer busy the way a
    # call running in another thread does (the private flag of rule 6).
    client, server = pair.client, pair.server
    server.write(b"waiting")
    pump(server, client)
    before = (repr(client), client.incoming_bytes_buffered(), client.outgoing_bytes_buffered())
    client._busy = True  # type: ignore[attr-defined]
    try:
        for name, call in GUARDED.items():
            with pytest.raises(unitls.TLSError) as info:
                call(client)
            assert type(info.value) is unitls.TLSError
            assert str(info.value).startswith(f"Cannot {name} in state busy: another thread")
            assert "lock" in str(info.value)
        # These may be read at any time (they only look at lengths).
        assert client.incoming_bytes_buffered() == before[1]
        assert client.outgoing_bytes_buffered() == before[2]
        assert client.context is not None
        assert client._busy is True  # type: ignore[attr-defined]  # a refusal leaves it to its owner
    finally:
        client._busy = False  # type: ignore[attr-defined]
    assert (repr(client), client.incoming_bytes_buffered(), client.outgoing_bytes_buffered()) == (
        before
    )
    assert client.read(100) == b"waiting"  # nothing was lost
    assert pair.c2s(b"still open") == b"still open"


def test_errors_inside_a_call_leave_the_buffer_usable_by_the_next_thread(pair: Pair):
    # Every exit from a call (return, Want* signal, argument error, fatal error)
    # frees the buffer; a buffer may move from thread to thread between calls.
    client = pair.client
    with pytest.raises(unitls.WantReadError):
        client.read(10)
    with pytest.raises(TypeError):
        client.write("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="-1"):
        client.process_outgoing(-1)
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(pair.c2s(b"from a thread")))
    thread.start()
    thread.join(WAIT)
    assert results == [b"from a thread"]
    client.process_incoming(b"")  # transport EOF: the next read fails for good
    with pytest.raises(unitls.RaggedEOF):
        client.read(10)
    with pytest.raises(unitls.RaggedEOF, match="in state failed"):
        client.read(10)  # the failure, not "busy"


def test_two_threads_on_one_buffer_without_a_lock_are_refused_never_corrupted(pair: Pair):
    # The httpcore sync HTTP/2 pattern without the lock the integrations add: one
    # thread writes to the client buffer and drains it, another feeds it and reads
    # from it, at the same time. A third thread owns the server buffer and echoes
    # what it reads, so both client threads stay busy until the end. Refused calls
    # are simply made again; every byte must come back, in order.
    client, server = pair.client, pair.server
    refused: collections.Counter[str] = collections.Counter()

    def again(name: str, call: Callable[[], T]) -> T:
        while True:
            try:
                return call()
            except unitls.TLSError as exc:
                # Only the refusal is retried: a plain TLSError (never Want*, which
                # would invite a retry loop of its own) that names the state.
                if type(exc) is not unitls.TLSError or "in state busy" not in str(exc):
                    raise
                refused[name] += 1
                time.sleep(0)  # let the thread inside the buffer finish its call

    def exchange(up: bytes) -> None:
        c2s: queue.Queue[bytes] = queue.Queue()
        s2c: queue.Queue[bytes] = queue.Queue()
        sent = [0]
        echoed = bytearray()
        received = bytearray()

        def client_writer() -> None:
            while len(received) < len(up):
                # Stay at most 64 KiB ahead of the echo, so that writing goes on for
                # as long as reading does.
                if sent[0] < len(up) and sent[0] - len(received) < 65536:
                    piece = memoryview(up)[sent[0] : sent[0] + 2048]
                    try:
                        sent[0] += again("write", lambda p=piece: client.write(p))
                    except unitls.WantWriteError:
                        pass
                else:
                    time.sleep(0.0002)
                while data := again("process_outgoing", lambda: client.process_outgoing(65536)):
                    c2s.put(data)

        def client_reader() -> None:
            while len(received) < len(up):
                pending = s2c.get(timeout=WAIT)
                while pending:
                    try:
                        again("process_incoming", lambda p=pending: client.process_incoming(p))
                        pending = b""
                    except unitls.WantReadError:
                        pass  # full: read below, then feed the same bytes again
                    while True:
                        try:
                            chunk = again("read", lambda: client.read(65536))
                        except unitls.WantReadError:
                            break
                        assert isinstance(chunk, bytes)
                        assert chunk, "unexpected clean close"
                        received.extend(chunk)

        def echo_server() -> None:
            while len(echoed) < len(up):
                try:
                    incoming = c2s.get(timeout=WAIT)
                except queue.Empty:
                    raise AssertionError("the client stopped sending") from None
                while True:
                    try:
                        server.process_incoming(incoming)
                        break
                    except unitls.WantReadError:
                        echo(read_all(server))
                echo(read_all(server))

        def echo(data: bytes) -> None:
            view = memoryview(data)
            while view:
                try:
                    view = view[server.write(view) :]
                except unitls.WantWriteError:
                    pass
                while out := server.process_outgoing(65536):
                    s2c.put(out)
            echoed.extend(data)

        failures = Failures()
        threads = [failures.run(fn) for fn in (client_writer, client_reader, echo_server)]
        failures.check(threads)
        assert bytes(echoed) == up
        assert bytes(received) == up

    # Whether two calls overlap is up to the scheduler: exchange until they have
    # (usually the first round does).
    for seed in range(10):
        exchange(random.Random(seed).randbytes(512 * 1024))
        assert "state=open" in repr(client)  # never failed
        if refused:
            break
    print(f"refused calls: {dict(refused)}")
    assert sum(refused.values()) > 0, "the threads never overlapped inside the buffer"
    assert pair.c2s(b"after") == b"after"
    assert pair.s2c(b"after") == b"after"
