"""Coverage-guided fuzzing of unitls's sans-I/O `TLSBuffer` (atheris / libFuzzer).

One harness, two roles: the buffer under test is a client (`--role client`) or a
server (`--role server`) `OpenSSLTLSBuffer`, fed bytes from the fuzzer as if they
came from the network. Fuzz with:

    python fuzz/fuzz_buffer.py --role server CORPUS_DIR -max_total_time=30 -timeout=2

and drive one input without atheris (the tests do) with `run_one(role, data)`.

Input format: one flags byte, then a body (README.md has the long version):

    flags  bits 0-2  configuration variant, an index into VARIANTS
           bit 3     replay: signal transport EOF after the last chunk
                     live: resume a session (a priming connection runs first)
           bit 7     0 = replay mode, 1 = live mode

Replay mode (what `record_seeds.py` writes from recorded sessions): up to
MAX_CHUNKS chunks, each a big-endian u16 header and up to 4095 bytes of data.
Header bits 0-11 are the chunk's length (0 means transport EOF,
`process_incoming(b"")`); bits 12-15 are STEP_* options. Each chunk goes to
`process_incoming`, then `do_handshake()` -> `read()` -> `write()` ->
`process_outgoing()`. A seed is therefore a recorded flight with three bytes of
framing, and what the fuzzer mutates is the flight itself. TLS is randomised, so
a recorded flight is only accepted up to the first message that depends on this
connection's own random values (the server's Finished, a TLS 1.2 signature);
everything before it (record layer, ClientHello/ServerHello parsing, certificate
verification in TLS 1.2, alerts) is reached.

Live mode reaches what replay cannot: the application-data phase. A real unitls
peer of the other role talks to the buffer under test through a "wire" that the
input scripts: deliver some or all bytes, split them, flip a bit, drop or inject
bytes, let either side write or shut down, signal EOF, stop draining one side.
The body is a list of operations (OP_* codes in the low nibble of each op byte,
an argument in the high nibble, sometimes followed by u8/u16 arguments).

Invariants (REFERENCE.md §4.1), checked on every call; a violation raises
`Finding`, which atheris reports as a crash:

1. Only `unitls.TLSError` subclasses escape the buffer (and the peer).
2. No plaintext is returned by `read`, and none accepted by `write`, before the
   handshake completed; `cipher()` / `negotiated_protocol()` / `getpeercert()`
   are `None` until then.
3. `process_incoming` either stores all of a chunk or, when more than
   INCOMING_LIMIT bytes wait, raises `WantReadError` and stores nothing;
   `write` takes nothing while more than OUTGOING_LIMIT bytes wait. Buffered
   bytes stay below INCOMING_LIMIT + MAX_DELIVERY and OUTGOING_LIMIT + one
   record (OUTGOING_SLACK).
4. After a fatal error every later `read` / `write` / `do_handshake` raises a
   `TLSError` of the same type that is not `WantReadError` / `WantWriteError`,
   and `process_outgoing` still works.
5. After transport EOF nothing waits for more data: `read` and `do_handshake`
   never raise `WantReadError`, `process_incoming` raises a `TLSError`, and
   `RaggedEOF` is raised only after EOF was signalled.
6. Live mode: what one side reads is a prefix of what the other wrote; `read`
   returns `b""` only if the peer really sent close_notify; and when the wire was
   faithful (no flips, drops, injections or EOF), both handshakes complete, no
   error happens and every written byte arrives.

Time per input is bounded by construction (at most MAX_CHUNKS chunks or MAX_OPS
operations, bounded read loops, at most 1 MiB of plaintext per direction) and
enforced by libFuzzer's `-timeout`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import unitls

__all__ = [
    "HERE",
    "Finding",
    "Outcome",
    "run_one",
    "ROLES",
    "VARIANTS",
    "CERTS",
    "SERVER_HOSTNAME",
    "encode_replay",
    "decode_replay",
    "encode_live",
    "op",
    "environment",
]

HERE = Path(__file__).resolve().parent
CERTS = HERE / "certs"
ROLES = ("client", "server")
#: The name the client role connects to; the fixed leaf covers it (and 127.0.0.1, ::1).
SERVER_HOSTNAME = "localhost"

#: Configuration variants, selected by flags bits 0-2. Each gives a matching
#: client and server configuration, so that live mode always can complete.
VARIANTS = (
    "default",  # TLS 1.2-1.3, no ALPN, no client certificate
    "alpn",  # both sides offer h2 and http/1.1
    "tls12",  # both sides pinned to TLS 1.2
    "mutual",  # the server requires a client certificate from the fixed CA
    "tls12-mutual",
    "tls12-alpn",
    "tls13",  # both sides pinned to TLS 1.3
    "tls13-mutual-alpn",
)

FLAG_VARIANT = 0x07
FLAG_EXTRA = 0x08  # replay: EOF after the last chunk; live: resume a session
FLAG_LIVE = 0x80

# Replay chunk header options (bits 12-15 of the u16 header).
STEP_SKIP_HANDSHAKE = 0x1  # read() without calling do_handshake() first
STEP_READ_INTO = 0x2  # read(amt, bytearray) instead of read(amt)
STEP_BIG_WRITE = 0x4  # write a 40 KiB memoryview (several records) instead of 18 bytes
STEP_PARTIAL_DRAIN = 0x8  # process_outgoing(7) instead of draining everything
MAX_CHUNKS = 8
MAX_CHUNK = 0x0FFF

# Live operations: low nibble of the op byte. The high nibble is `arg`.
# For the delivering ops and OP_STEP, `arg` steers the target's step: bit 0 skips
# do_handshake() (read() drives it), bit 1 reads into a bytearray, bits 2-3 pick the
# read size from READ_SIZES.
OP_DELIVER_ALL = 0  # 0-3: deliver the whole wire
OP_DELIVER = 4  # u16 n: deliver the first n bytes as one chunk
OP_DELIVER_SPLIT = 5  # deliver the whole wire in pieces of SPLIT_SIZES[arg]
OP_FLIP = 6  # u16 offset, u8 mask: corrupt one byte on the wire
OP_INJECT = 7  # u8 n, n bytes: hand raw bytes to the buffer under test
OP_DROP = 8  # u16 n: lose the first n bytes of the wire
OP_PEER_WRITE = 9  # u16 n: the peer writes n bytes (arg bit 0: as a memoryview)
OP_TARGET_WRITE = 10  # u16 n: the buffer under test writes n bytes (arg bit 0: memoryview)
OP_PEER_SHUTDOWN = 11
OP_TARGET_SHUTDOWN = 12
OP_EOF = 13  # process_incoming(b"") on the buffer under test
OP_HOLD = 14  # arg bit 0: stop draining its output; bit 1: stop reading its input
OP_STEP = 15  # handshake/read/flush both sides without delivering anything
MAX_OPS = 64
SPLIT_SIZES = (1, 2, 3, 5, 7, 13, 64, 100, 333, 1000, 1500, 4096, 5000, 16384, 16389, 17000)
MAX_SPLIT_PIECES = 64
READ_SIZES = (65536, 1, 100, 16384)
MAX_READS_PER_STEP = 32

#: The most bytes handed to one `process_incoming` call in live mode (a 64 KiB recv).
MAX_DELIVERY = 65536
#: What `outgoing_bytes_buffered()` may exceed OUTGOING_LIMIT by: `write` checks the
#: limit before each record, so one full record (2**14 bytes of plaintext, at most
#: 256 bytes of expansion, a 5-byte header: RFC 8446 §5.2) can land on top of it;
#: plus 8 KiB for what OpenSSL queues without a `write` (a handshake flight when
#: `write` drives the handshake, session tickets, alerts).
OUTGOING_SLACK = 2**14 + 256 + 5 + 8192
#: Plaintext per direction in live mode is cut from a fixed pseudo-random stream, so
#: a duplicated, reordered or cross-wired byte never matches by accident.
STREAM_SIZE = 1 << 20

_REPLAY_SMALL_WRITE = b"GET / HTTP/1.1\r\n\r\n"
_REPLAY_BIG_WRITE = bytes(40 * 1024)


class Finding(AssertionError):
    """An invariant does not hold: a bug in unitls (or in this harness)."""


@dataclass
class Outcome:
    """What one input did to the buffer under test (for tests and seed checks)."""

    role: str
    variant: str
    live: bool
    handshake_complete: bool = False
    #: The type name of the first fatal error, or None.
    error: str | None = None
    #: read() returned b"" (a clean close_notify).
    clean_close: bool = False
    eof: bool = False
    plaintext_received: int = 0
    plaintext_sent: int = 0
    #: Ciphertext the buffer under test produced (process_outgoing).
    bytes_out: int = 0
    #: Live mode: the wire carried only genuine bytes, in order (no flip, drop, inject, EOF).
    faithful: bool = True
    negotiated_protocol: bytes | None = None
    tls_version: str | None = None
    #: Times process_incoming refused data as overfull (WantReadError).
    refused_incoming: int = 0
    #: Times write refused data as overfull (WantWriteError).
    refused_writes: int = 0


# -- input encoding (used by record_seeds.py and the tests) -------------------------


def encode_replay(
    variant: str,
    chunks: Sequence[bytes],
    *,
    eof: bool = False,
    options: Sequence[int] | None = None,
) -> bytes:
    """A replay-mode input: each chunk (<= 4095 bytes; b"" = transport EOF) with its
    STEP_* options."""
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"at most {MAX_CHUNKS} chunks, not {len(chunks)}")
    out = bytearray([VARIANTS.index(variant) | (FLAG_EXTRA if eof else 0)])
    for index, chunk in enumerate(chunks):
        if len(chunk) > MAX_CHUNK:
            raise ValueError(f"chunk {index} has {len(chunk)} bytes; at most {MAX_CHUNK}")
        opts = options[index] if options is not None else 0
        out += ((opts << 12) | len(chunk)).to_bytes(2, "big")
        out += chunk
    return bytes(out)


def decode_replay(data: bytes) -> tuple[str, list[bytes], bool]:
    """The variant, chunks and EOF flag of a replay-mode input (inverse of encode_replay)."""
    if not data or data[0] & FLAG_LIVE:
        raise ValueError("not a replay-mode input")
    reader = _Reader(data[1:])
    chunks = []
    while reader.remaining and len(chunks) < MAX_CHUNKS:
        chunks.append(reader.take(reader.u16() & MAX_CHUNK))
    return VARIANTS[data[0] & FLAG_VARIANT], chunks, bool(data[0] & FLAG_EXTRA)


def encode_live(variant: str, ops: Sequence[bytes], *, resume: bool = False) -> bytes:
    """A live-mode input from operations built with `op`."""
    if len(ops) > MAX_OPS:
        raise ValueError(f"at most {MAX_OPS} operations, not {len(ops)}")
    flags = FLAG_LIVE | VARIANTS.index(variant) | (FLAG_EXTRA if resume else 0)
    return bytes([flags]) + b"".join(ops)


class op:  # a namespace of encoders, read as op.deliver_all()
    """Encoders for live-mode operations."""

    @staticmethod
    def deliver_all(arg: int = 0) -> bytes:
        return bytes([OP_DELIVER_ALL | arg << 4])

    @staticmethod
    def deliver(n: int, arg: int = 0) -> bytes:
        return bytes([OP_DELIVER | arg << 4]) + n.to_bytes(2, "big")

    @staticmethod
    def deliver_split(size_index: int) -> bytes:
        return bytes([OP_DELIVER_SPLIT | size_index << 4])

    @staticmethod
    def flip(offset: int, mask: int) -> bytes:
        return bytes([OP_FLIP]) + offset.to_bytes(2, "big") + bytes([mask])

    @staticmethod
    def inject(data: bytes) -> bytes:
        return bytes([OP_INJECT, len(data)]) + data

    @staticmethod
    def drop(n: int) -> bytes:
        return bytes([OP_DROP]) + n.to_bytes(2, "big")

    @staticmethod
    def peer_write(n: int, *, view: bool = False) -> bytes:
        return bytes([OP_PEER_WRITE | int(view) << 4]) + n.to_bytes(2, "big")

    @staticmethod
    def target_write(n: int, *, view: bool = False) -> bytes:
        return bytes([OP_TARGET_WRITE | int(view) << 4]) + n.to_bytes(2, "big")

    @staticmethod
    def peer_shutdown() -> bytes:
        return bytes([OP_PEER_SHUTDOWN])

    @staticmethod
    def target_shutdown() -> bytes:
        return bytes([OP_TARGET_SHUTDOWN])

    @staticmethod
    def eof() -> bytes:
        return bytes([OP_EOF])

    @staticmethod
    def hold(*, output: bool = False, input: bool = False) -> bytes:
        return bytes([OP_HOLD | (int(output) | int(input) << 1) << 4])

    @staticmethod
    def step(arg: int = 0) -> bytes:
        return bytes([OP_STEP | arg << 4])


# -- the environment: unitls, imported late so atheris can instrument it --------------


class _Env:
    """Fixed credentials, configurations and shared server contexts, built once."""

    def __init__(self) -> None:
        import unitls
        from unitls.openssl import OPENSSL_IMPLEMENTATION, _buffer

        self.unitls = unitls
        self.impl = OPENSSL_IMPLEMENTATION
        self.TLSError = unitls.TLSError
        self.WantReadError = unitls.WantReadError
        self.WantWriteError = unitls.WantWriteError
        self.RaggedEOF = unitls.RaggedEOF
        self.incoming_limit: int = _buffer.INCOMING_LIMIT
        self.outgoing_limit: int = _buffer.OUTGOING_LIMIT
        self.h2 = unitls.NextProtocol.H2.value

        def pem(name: str) -> bytes:
            return (CERTS / name).read_bytes()

        trust = unitls.TrustStore.from_buffer(pem("ca.pem"))
        server_chain = unitls.SigningChain(
            leaf=(
                unitls.Certificate.from_buffer(pem("server.pem")),
                unitls.PrivateKey.from_buffer(pem("server.key")),
            )
        )
        client_chain = unitls.SigningChain(
            leaf=(
                unitls.Certificate.from_buffer(pem("client.pem")),
                unitls.PrivateKey.from_buffer(pem("client.key")),
            )
        )
        self.client_der = _pem_to_der(pem("client.pem"))
        self.server_der = _pem_to_der(pem("server.pem"))
        v12, v13 = unitls.TLSVersion.TLSv1_2, unitls.TLSVersion.TLSv1_3
        alpn = (unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1)
        self.client_configs: dict[str, unitls.TLSClientConfiguration] = {}
        self.server_configs: dict[str, unitls.TLSServerConfiguration] = {}
        for name in VARIANTS:
            version = v12 if name.startswith("tls12") else v13 if name.startswith("tls13") else None
            protocols = alpn if "alpn" in name else ()
            mutual = "mutual" in name
            self.client_configs[name] = unitls.TLSClientConfiguration(
                certificate_chain=client_chain if mutual else None,
                inner_protocols=protocols,
                lowest_supported_version=version,
                highest_supported_version=version,
                trust_store=trust,
            )
            self.server_configs[name] = unitls.TLSServerConfiguration(
                certificate_chain=[server_chain],
                inner_protocols=protocols,
                lowest_supported_version=version,
                highest_supported_version=version,
                trust_store=trust if mutual else None,
            )
        # Server contexts are shared by all inputs: a server keeps no state between
        # connections that a later input could observe (a TLS 1.2 session-id cache
        # entry is only used if a client presents it, and live clients start fresh).
        self.server_contexts = {
            name: self.impl.server_context(config) for name, config in self.server_configs.items()
        }
        # Replay clients never complete a handshake (they cannot compute the recorded
        # server's keys), so they never store a session and can share a context.
        self.replay_client_contexts = {
            name: self.impl.client_context(config) for name, config in self.client_configs.items()
        }
        self.streams = {
            "client": hashlib.shake_256(b"unitls fuzz: client to server").digest(STREAM_SIZE),
            "server": hashlib.shake_256(b"unitls fuzz: server to client").digest(STREAM_SIZE),
        }

    def new_buffer(self, role: str, variant: str, client_context: Any = None) -> Any:
        if role == "server":
            return self.server_contexts[variant].create_buffer()
        context = client_context or self.replay_client_contexts[variant]
        return context.create_buffer(SERVER_HOSTNAME)


def _pem_to_der(pem: bytes) -> bytes:
    import base64

    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    return base64.b64decode(body)


_env: _Env | None = None


def environment() -> _Env:
    """The shared credentials, configurations and contexts (built on first use)."""
    global _env
    if _env is None:
        _env = _Env()
    return _env


# -- one side of a connection, with the invariant checks ------------------------------


def _origin(exc: BaseException) -> str:
    """Where in unitls an exception came from: "from <module>.py:<function>", so that
    findings with one root cause read alike (and FUZZ_IGNORE can match them)."""
    import traceback

    where = "from outside unitls"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "/unitls/" in frame.filename.replace("\\", "/"):
            where = f"from {Path(frame.filename).name}:{frame.name}"
    return where


class _Side:
    """A buffer plus what the harness knows about it; every call checks invariants."""

    def __init__(self, env: _Env, name: str, buffer: Any, variant: str, live: bool) -> None:
        self.env = env
        self.name = name
        self.buf = buffer
        self.variant = variant
        self.live = live
        self.source: _Side | None = None  # the side whose writes this side reads
        self.stream = env.streams[name.split()[-1]]
        self.received = 0
        self.written = 0
        self.bytes_out = 0
        self.handshake_done = False
        self.fatal: BaseException | None = None
        self.shutdown_called = False
        self.eof = False
        self.clean_close = False
        self.hold_output = False
        self.hold_input = False
        self.refused_incoming = 0
        self.refused_writes = 0

    def finding(self, message: str) -> Finding:
        return Finding(f"{self.name} ({self.variant}): {message}")

    # A call raised: classify it. Only TLSError may escape (invariant 1).
    def _raised(self, what: str, exc: Exception, *, fatal_if_tls: bool = True) -> None:
        env = self.env
        if not isinstance(exc, env.TLSError):
            raise self.finding(
                f"{what} raised {type(exc).__name__}, not a TLSError, {_origin(exc)}: {exc!r}"
            )
        if isinstance(exc, (env.WantReadError, env.WantWriteError)):
            raise self.finding(f"{what} raised {type(exc).__name__} unexpectedly: {exc}")
        if isinstance(exc, env.RaggedEOF) and not self.eof:
            raise self.finding(f"{what} raised RaggedEOF before transport EOF: {exc}")
        if self.fatal is not None:
            if type(exc) is not type(self.fatal):
                raise self.finding(
                    f"{what} after a fatal {type(self.fatal).__name__} raised "
                    f"{type(exc).__name__}: {exc}"
                )
        elif fatal_if_tls:
            self.fatal = exc

    def _expect_failed(self, what: str) -> None:
        raise self.finding(f"{what} succeeded after a fatal {type(self.fatal).__name__}")

    def _check_negotiated(self) -> None:
        """`negotiated_tls_version` tells whether the handshake completed; the other
        getters agree with it (invariant 2)."""
        buf = self.buf
        if self.handshake_done:  # checked in full once; getpeercert() costs ~10 µs
            if buf.negotiated_tls_version is None:
                raise self.finding("negotiated_tls_version went back to None")
            return
        try:
            version = buf.negotiated_tls_version
            cipher = buf.cipher()
            protocol = buf.negotiated_protocol()
            peercert = buf.getpeercert()
        except Exception as exc:
            raise self.finding(f"a getter raised {exc!r}") from exc
        if version is None:
            if cipher is not None or protocol is not None or peercert is not None:
                raise self.finding(
                    f"getters answer before the handshake: {cipher!r} {protocol!r} "
                    f"{peercert is not None}"
                )
            return
        if cipher is None:
            raise self.finding(f"cipher() is None after the handshake ({version})")
        if not self.handshake_done:
            self.handshake_done = True
            self._check_agreement(version, protocol, peercert)

    def _check_agreement(self, version: Any, protocol: Any, peercert: bytes | None) -> None:
        """What a completed handshake negotiated matches the variant's configuration."""
        env, variant = self.env, self.variant
        if variant.startswith("tls12") and version.value != "TLSv1.2":
            raise self.finding(f"negotiated {version} with TLS 1.2 pinned")
        if variant.startswith("tls13") and version.value != "TLSv1.3":
            raise self.finding(f"negotiated {version} with TLS 1.3 pinned")
        if "alpn" in variant:
            if getattr(protocol, "value", protocol) != env.h2:
                raise self.finding(f"ALPN gave {protocol!r}, not h2")
        elif protocol is not None:
            raise self.finding(f"ALPN gave {protocol!r} without ALPN configured")
        client = self.name.endswith("client")
        if client and peercert != env.server_der:
            raise self.finding("the client's peer certificate is not the fixed server leaf")
        if not client:
            expected = env.client_der if "mutual" in variant else None
            if peercert != expected:
                raise self.finding("the server's peer certificate is not what was configured")

    # -- the calls --------------------------------------------------------------------

    def incoming(self, data: bytes) -> bool:
        """`process_incoming(data)`; True if stored, False if refused as overfull."""
        buf, env = self.buf, self.env
        before = buf.incoming_bytes_buffered()
        try:
            buf.process_incoming(data)
        except env.WantReadError:
            after = buf.incoming_bytes_buffered()
            if before <= env.incoming_limit or after != before:
                raise self.finding(
                    f"process_incoming refused {len(data)} bytes with {before} buffered "
                    f"(limit {env.incoming_limit}); now {after}"
                ) from None
            if self.fatal is not None or self.eof:
                raise self.finding(
                    "process_incoming raised WantReadError on a dead buffer"
                ) from None
            self.refused_incoming += 1
            return False
        except Exception as exc:
            if self.fatal is None and not self.eof:
                raise self.finding(f"process_incoming raised {exc!r}") from exc
            # After EOF or a fatal error, process_incoming must refuse with a TLSError.
            self._raised("process_incoming", exc, fatal_if_tls=False)
            if buf.incoming_bytes_buffered() != before:
                raise self.finding("a refused process_incoming stored data") from exc
            return True  # consumed (rejected for good); the caller must not retry
        if self.fatal is not None or self.eof:
            raise self.finding("process_incoming accepted data after EOF or a fatal error")
        after = buf.incoming_bytes_buffered()
        if before > env.incoming_limit or after != before + len(data):
            raise self.finding(
                f"process_incoming stored {after - before} of {len(data)} bytes with "
                f"{before} buffered (limit {env.incoming_limit})"
            )
        if after > env.incoming_limit + MAX_DELIVERY:
            raise self.finding(f"{after} bytes buffered incoming")
        return True

    def signal_eof(self) -> None:
        try:
            self.buf.process_incoming(b"")
        except Exception as exc:
            if not (self.eof or self.fatal is not None):
                raise self.finding(f"process_incoming(b'') raised {exc!r}") from exc
            self._raised("process_incoming(b'')", exc, fatal_if_tls=False)
            return
        if self.eof or self.fatal is not None:
            raise self.finding("process_incoming(b'') accepted after EOF or a fatal error")
        self.eof = True

    def handshake(self) -> None:
        env = self.env
        try:
            self.buf.do_handshake()
        except env.WantReadError:
            if self.fatal is not None or self.handshake_done or self.eof:
                raise self.finding(
                    "do_handshake raised WantReadError "
                    + ("after the handshake" if self.handshake_done else "after EOF/failure")
                ) from None
            self._check_negotiated()
            return
        except Exception as exc:
            self._raised("do_handshake", exc)
            return
        if self.fatal is not None:
            self._expect_failed("do_handshake")
        self._check_negotiated()
        if not self.handshake_done:
            raise self.finding("do_handshake returned but negotiated_tls_version is None")

    def read(self, amt: int, into: bool, max_reads: int) -> None:
        """Read until WantReadError, EOF, an error, or `max_reads` reads."""
        buf, env = self.buf, self.env
        for _ in range(max_reads):
            target = bytearray(amt) if into else None
            try:
                if target is None:
                    data = buf.read(amt)
                else:
                    n = buf.read(amt, target)
                    if not isinstance(n, int) or not 0 <= n <= amt:
                        raise self.finding(f"read into a buffer returned {n!r}")
                    data = bytes(target[:n])
            except env.WantReadError:
                if self.fatal is not None or self.eof or self.clean_close:
                    raise self.finding(
                        "read raised WantReadError after "
                        + (
                            "EOF"
                            if self.eof
                            else "a clean close"
                            if self.clean_close
                            else "failure"
                        )
                    ) from None
                self._check_negotiated()
                return
            except Exception as exc:
                self._raised("read", exc)
                return
            if self.fatal is not None:
                self._expect_failed("read")
            if not isinstance(data, bytes) or len(data) > amt:
                raise self.finding(f"read({amt}) returned {type(data).__name__} of {len(data)}")
            self._check_negotiated()
            if not self.handshake_done:
                raise self.finding(f"read returned {len(data)} bytes before the handshake")
            if not data:
                self._clean_close()
                return
            if self.clean_close:
                raise self.finding("read returned data after returning b''")
            self._check_prefix(data)

    def _clean_close(self) -> None:
        if self.live and (self.source is None or not self.source.shutdown_called):
            raise self.finding("read returned b'' but the peer never sent close_notify")
        self.clean_close = True

    def _check_prefix(self, data: bytes) -> None:
        start, end = self.received, self.received + len(data)
        source = self.source
        if source is None:
            raise self.finding(f"read returned {len(data)} bytes that nobody wrote")
        if end > source.written or data != source.stream[start:end]:
            raise self.finding(
                f"read bytes {start}..{end} differ from what the peer wrote "
                f"({source.written} bytes written)"
            )
        self.received = end

    def write(self, data: bytes | memoryview) -> None:
        buf, env = self.buf, self.env
        before = buf.outgoing_bytes_buffered()
        try:
            n = buf.write(data)
        except env.WantWriteError:
            if before <= env.outgoing_limit or self.fatal is not None:
                raise self.finding(
                    f"write raised WantWriteError with {before} bytes waiting "
                    f"(limit {env.outgoing_limit})"
                ) from None
            self.refused_writes += 1
            return
        except env.WantReadError:
            self._check_negotiated()
            if self.handshake_done or self.fatal is not None:
                raise self.finding("write raised WantReadError after the handshake") from None
            return
        except Exception as exc:
            # Writing after our own shutdown is a caller's mistake, not a failure.
            self._raised("write", exc, fatal_if_tls=not self.shutdown_called)
            return
        if self.fatal is not None:
            self._expect_failed("write")
        if self.shutdown_called:
            raise self.finding("write succeeded after shutdown()")
        if not isinstance(n, int) or not 0 <= n <= len(data) or (n == 0 and len(data)):
            raise self.finding(f"write of {len(data)} bytes returned {n!r}")
        self._check_negotiated()
        if n and not self.handshake_done:
            raise self.finding(f"write took {n} bytes before the handshake")
        if n and before > env.outgoing_limit:
            raise self.finding(f"write took {n} bytes with {before} bytes waiting")
        if data[:n] != self.stream[self.written : self.written + n]:  # pragma: no cover
            raise self.finding("harness bug: written data is not the stream")
        self.written += n
        self.check_outgoing()

    def check_outgoing(self) -> None:
        out = self.buf.outgoing_bytes_buffered()
        if out > self.env.outgoing_limit + OUTGOING_SLACK:
            raise self.finding(f"{out} bytes buffered outgoing")

    def shutdown(self) -> None:
        env = self.env
        try:
            self.buf.shutdown()
        except env.WantReadError:
            if self.fatal is not None:
                raise self.finding("shutdown raised WantReadError after failure") from None
            self.shutdown_called = True
            return
        except Exception as exc:
            # Before the handshake shutdown is refused (a caller's mistake, no effect).
            self._check_negotiated()
            self._raised("shutdown", exc, fatal_if_tls=self.handshake_done)
            return
        if self.fatal is not None:
            self._expect_failed("shutdown")
        self.shutdown_called = True

    def drain(self, amount: int = 1 << 22) -> bytes:
        try:
            data = self.buf.process_outgoing(amount)
        except Exception as exc:
            raise self.finding(f"process_outgoing raised {exc!r}") from exc
        if not isinstance(data, bytes) or len(data) > amount:
            raise self.finding(f"process_outgoing({amount}) returned {len(data)} bytes")
        self.bytes_out += len(data)
        return data

    def check_dead(self) -> None:
        """Invariant 4, probed once more at the end of an input."""
        if self.fatal is None:
            return
        self.handshake()
        self.read(1, False, 1)
        self.read(1, True, 1)
        self.write(b"x")
        self.drain()
        self.incoming(b"\x17\x03\x03\x00\x01x")


# -- replay mode --------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        return self.u8() << 8 | self.u8()

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


def _replay_step(side: _Side, options: int) -> None:
    if not options & STEP_SKIP_HANDSHAKE:
        side.handshake()
    side.read(4096 if options & STEP_READ_INTO else 16384, bool(options & STEP_READ_INTO), 4)
    if options & STEP_BIG_WRITE:
        side.write(memoryview(_REPLAY_BIG_WRITE))
    else:
        side.write(_REPLAY_SMALL_WRITE)
    if options & STEP_PARTIAL_DRAIN:
        side.drain(7)
    else:
        side.drain()
    side.check_outgoing()


def _replay(env: _Env, role: str, variant: str, flags: int, body: bytes) -> _Side:
    side = _Side(env, role, env.new_buffer(role, variant), variant, live=False)
    _replay_step(side, 0)  # a client sends its ClientHello first
    reader = _Reader(body)
    for _ in range(MAX_CHUNKS):
        if not reader.remaining:
            break
        header = reader.u16()
        length = header & MAX_CHUNK
        data = reader.take(length)
        if length == 0:
            side.signal_eof()
        elif data:
            side.incoming(data)
        _replay_step(side, header >> 12)
    if flags & FLAG_EXTRA:
        side.signal_eof()
        _replay_step(side, 0)
    return side


# -- live mode ------------------------------------------------------------------------------


class _Live:
    """The buffer under test, a real unitls peer, and the wire between them."""

    def __init__(self, env: _Env, role: str, variant: str, resume: bool) -> None:
        self.env = env
        client_context = env.impl.client_context(env.client_configs[variant])
        if resume:
            _prime_session(env, client_context, variant)
        peer_role = "client" if role == "server" else "server"
        self.target = _Side(
            env, f"target {role}", env.new_buffer(role, variant, client_context), variant, True
        )
        self.peer = _Side(
            env,
            f"peer {peer_role}",
            env.new_buffer(peer_role, variant, client_context),
            variant,
            True,
        )
        self.target.source, self.peer.source = self.peer, self.target
        self.wire = bytearray()  # peer -> target, in flight
        self.faithful = True

    # The peer is driven to completion at every turn; only its output is scripted.
    def peer_turn(self) -> None:
        peer = self.peer
        if peer.fatal is None:
            if not peer.handshake_done:
                peer.handshake()
            peer.read(65536, False, 1 << 16)
        self.wire += peer.drain()
        peer.check_outgoing()

    def target_flush(self) -> None:
        target = self.target
        target.check_outgoing()
        if target.hold_output:
            return
        data = target.drain()
        if data and self.peer.fatal is None:
            if not self.peer.eof:
                self.peer.incoming(data)
            self.peer_turn()

    def target_step(self, arg: int, max_reads: int = MAX_READS_PER_STEP) -> None:
        target = self.target
        if not target.hold_input:
            if not arg & STEP_SKIP_HANDSHAKE and not target.handshake_done:
                target.handshake()
            target.read(READ_SIZES[arg >> 2 & 3], bool(arg & STEP_READ_INTO), max_reads)
        self.target_flush()

    def deliver(self, n: int, arg: int, piece: int = MAX_DELIVERY) -> None:
        """Hand the first n wire bytes to the target in pieces, stepping after each."""
        n = min(n, len(self.wire))
        sent = 0
        pieces = 0
        while sent < n:
            if self.target.eof or self.target.fatal is not None:
                # Nothing can be delivered any more; check once that it is refused.
                self.target.incoming(bytes(self.wire[:1]))
                sent = n
                break
            size = min(piece if pieces < MAX_SPLIT_PIECES else MAX_DELIVERY, n - sent)
            chunk = bytes(self.wire[sent : sent + size])
            if not self.target.incoming(chunk):
                # Overfull: let the target read, then try once more.
                self.target_step(arg)
                if not self.target.incoming(chunk):
                    break
            sent += size
            pieces += 1
            self.target_step(arg)
        del self.wire[:sent]

    def run(self, reader: _Reader) -> None:
        if self.peer.name.endswith("client"):
            self.peer_turn()  # the peer's ClientHello goes onto the wire
        else:
            self.target_step(0)  # the target's ClientHello goes to the peer
        for _ in range(MAX_OPS):
            if not reader.remaining:
                break
            code = reader.u8()
            kind, arg = code & 0x0F, code >> 4
            if kind <= 3:
                self.deliver(len(self.wire), arg)
            elif kind == OP_DELIVER:
                self.deliver(reader.u16(), arg)
            elif kind == OP_DELIVER_SPLIT:
                self.deliver(len(self.wire), 0, SPLIT_SIZES[arg])
            elif kind == OP_FLIP:
                offset, mask = reader.u16(), reader.u8() or 0x80
                if self.wire:
                    self.wire[offset % len(self.wire)] ^= mask
                    self.faithful = False
            elif kind == OP_INJECT:
                data = reader.take(reader.u8())
                if data:
                    self.faithful = False
                    if self.target.incoming(data):
                        self.target_step(arg)
            elif kind == OP_DROP:
                n = reader.u16()
                if n and self.wire:
                    del self.wire[:n]
                    self.faithful = False
            elif kind == OP_PEER_WRITE:
                self.side_write(self.peer, reader.u16(), arg)
                self.peer_turn()
            elif kind == OP_TARGET_WRITE:
                self.side_write(self.target, reader.u16(), arg)
                self.target_flush()
            elif kind == OP_PEER_SHUTDOWN:
                self.peer.shutdown()
                self.peer_turn()
            elif kind == OP_TARGET_SHUTDOWN:
                self.target.shutdown()
                self.target_flush()
            elif kind == OP_EOF:
                self.faithful = False
                self.target.signal_eof()
                self.target_step(arg)
            elif kind == OP_HOLD:
                self.target.hold_output = bool(arg & 1)
                self.target.hold_input = bool(arg & 2)
                self.target_step(0)
            else:  # OP_STEP
                self.target_step(arg)
                self.peer_turn()
        self.settle()

    def side_write(self, side: _Side, n: int, arg: int) -> None:
        n = min(n, STREAM_SIZE - side.written)
        data = side.stream[side.written : side.written + n]
        side.write(memoryview(data) if arg & 1 else data)

    def settle(self) -> None:
        """Release the holds, deliver everything, and check invariant 6 when faithful."""
        target, peer = self.target, self.peer
        target.hold_output = target.hold_input = False
        for _ in range(8):
            before = (len(self.wire), target.bytes_out, peer.bytes_out)
            self.deliver(len(self.wire), 0)
            self.target_step(0, max_reads=1 << 16)
            self.peer_turn()
            if (len(self.wire), target.bytes_out, peer.bytes_out) == before:
                break
        if not self.faithful:
            return
        for side in (target, peer):
            if side.fatal is not None:
                raise side.finding(f"failed on a faithful wire: {side.fatal!r}")
            if not side.handshake_done:
                raise side.finding("handshake incomplete on a faithful wire")
            if side.source is not None and side.received != side.source.written:
                raise side.finding(
                    f"received {side.received} of the {side.source.written} bytes written"
                )


def _prime_session(env: _Env, client_context: Any, variant: str) -> None:
    """A complete connection from `client_context`, so the next one resumes."""
    client = _Side(
        env, "priming client", client_context.create_buffer(SERVER_HOSTNAME), variant, True
    )
    server = _Side(env, "priming server", env.new_buffer("server", variant), variant, True)
    client.source, server.source = server, client
    for _ in range(6):
        for side, other in ((client, server), (server, client)):
            if not side.handshake_done:
                side.handshake()
            side.read(65536, False, 64)
            data = side.drain()
            if data:
                other.incoming(data)
    server.write(server.stream[:1])
    client.incoming(server.drain())
    client.read(65536, False, 64)  # stores the session (TLS 1.3 tickets came first)
    client.shutdown()
    server.incoming(client.drain())
    server.read(65536, False, 64)
    server.shutdown()
    client.incoming(server.drain())
    client.read(65536, False, 64)
    if not (client.clean_close and server.clean_close and client.received == 1):
        raise client.finding("the priming connection did not complete")


# -- entry points -----------------------------------------------------------------------


def run_one(role: str, data: bytes) -> Outcome:
    """Run one fuzz input against a buffer of `role` ("client" or "server").

    Raises:
        Finding: An invariant does not hold (see the module docstring).
        ValueError: `role` is not a role.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    env = environment()
    flags = data[0] if data else 0
    variant = VARIANTS[flags & FLAG_VARIANT]
    live = bool(flags & FLAG_LIVE)
    body = data[1:]
    if live:
        connection = _Live(env, role, variant, bool(flags & FLAG_EXTRA))
        connection.run(_Reader(body))
        side, faithful = connection.target, connection.faithful
        connection.peer.check_dead()
    else:
        side, faithful = _replay(env, role, variant, flags, body), True
    side.check_dead()
    protocol = side.buf.negotiated_protocol()
    version = side.buf.negotiated_tls_version
    return Outcome(
        role=role,
        variant=variant,
        live=live,
        handshake_complete=side.handshake_done,
        error=None if side.fatal is None else type(side.fatal).__name__,
        clean_close=side.clean_close,
        eof=side.eof,
        plaintext_received=side.received,
        plaintext_sent=side.written,
        bytes_out=side.bytes_out,
        faithful=faithful,
        negotiated_protocol=None
        if protocol is None
        else bytes(getattr(protocol, "value", protocol)),
        tls_version=None if version is None else version.value,
        refused_incoming=side.refused_incoming,
        refused_writes=side.refused_writes,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Fuzz one role with atheris; other arguments go to libFuzzer."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=ROLES, default=os.environ.get("FUZZ_ROLE"))
    parser.add_argument(
        "--mode",
        choices=("all", "replay", "live"),
        default=os.environ.get("FUZZ_MODE", "all"),
        help="skip inputs of the other mode (they do nothing, so never enter the corpus)",
    )
    parser.add_argument(
        "--run",
        nargs="+",
        metavar="FILE",
        help="run these inputs without atheris and print what they did (to reproduce)",
    )
    args, libfuzzer_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.role is None:
        parser.error("--role client|server (or FUZZ_ROLE) is required")
    if args.run:
        for name in args.run:
            print(name, run_one(args.role, Path(name).read_bytes()))
        return
    import atheris

    # Instrument unitls and pyOpenSSL (their Python edges are the coverage signal);
    # they must not have been imported before this point.
    with atheris.instrument_imports(include=["unitls", "OpenSSL"]):
        import unitls.openssl  # noqa: F401

    environment()
    role = args.role

    skip = {"all": None, "replay": FLAG_LIVE, "live": 0}[args.mode]
    # For long runs while a reported bug awaits its fix: findings whose message
    # contains one of these (comma-separated) strings are counted, not crashes.
    known = [k for k in os.environ.get("FUZZ_IGNORE", "").split(",") if k]
    ignored: dict[str, int] = {}

    def test_one_input(data: bytes) -> None:
        if skip is not None and (data[0] & FLAG_LIVE if data else 0) == skip:
            return
        try:
            run_one(role, data)
        except Finding as finding:
            match = next((k for k in known if k in str(finding)), None)
            if match is None:
                raise
            ignored[match] = ignored.get(match, 0) + 1
            if ignored[match] & (ignored[match] - 1) == 0:  # 1, 2, 4, 8, ...
                print(f"FUZZ_IGNORE: {ignored[match]} x {match!r}", file=sys.stderr)

    # libFuzzer's -fork/-jobs re-run argv[0] through the shell with its own flags
    # appended, so argv[0] is the whole command that starts this role.
    command = f"{sys.executable} {Path(__file__).resolve()} --role {role} --mode {args.mode}"
    atheris.Setup([command, *libfuzzer_args], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
