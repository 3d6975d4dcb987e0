"""Fixtures for the interoperability tests: extra certificates, real peers, threads.

Peers are real: the stdlib `ssl` module (system OpenSSL 3.0.19) in memory or in a
thread, and `openssl s_server` / `s_client` subprocesses, all on loopback, all
stopped (by PID, with bounded waits) when the test ends.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

import unitls

T = TypeVar("T")

#: Seconds any single wait in these fixtures may take before the test fails.
WAIT = 10.0


# -- certificates ----------------------------------------------------------------


@pytest.fixture(scope="session")
def rsa_cert(ca: trustme.CA) -> trustme.LeafCert:
    """A server leaf with an RSA-2048 key (for ECDHE_RSA suites)."""
    return ca.issue_cert("localhost", "127.0.0.1", "::1", key_type=trustme.KeyType.RSA)


@pytest.fixture(scope="session")
def ecdsa_cert(ca: trustme.CA) -> trustme.LeafCert:
    """A server leaf with an ECDSA P-256 key (for ECDHE_ECDSA suites)."""
    return ca.issue_cert("localhost", "127.0.0.1", "::1", key_type=trustme.KeyType.ECDSA)


@pytest.fixture(scope="session")
def client_ca() -> trustme.CA:
    """A CA that issues client certificates only (servers trust it, clients do not)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def client_cert(client_ca: trustme.CA) -> trustme.LeafCert:
    return client_ca.issue_cert("client.example.test")


@dataclasses.dataclass(frozen=True)
class PemFiles:
    """PEM files for the openssl CLI only (unitls loads everything from memory)."""

    ca: Path
    server: Path
    rsa: Path
    ecdsa: Path
    client: Path
    client_ca: Path


@pytest.fixture(scope="session")
def pem_files(
    tmp_path_factory: pytest.TempPathFactory,
    ca: trustme.CA,
    server_cert: trustme.LeafCert,
    rsa_cert: trustme.LeafCert,
    ecdsa_cert: trustme.LeafCert,
    client_ca: trustme.CA,
    client_cert: trustme.LeafCert,
) -> PemFiles:
    directory = tmp_path_factory.mktemp("pem")
    files = PemFiles(
        ca=directory / "ca.pem",
        server=directory / "server.pem",
        rsa=directory / "rsa.pem",
        ecdsa=directory / "ecdsa.pem",
        client=directory / "client.pem",
        client_ca=directory / "client_ca.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    client_ca.cert_pem.write_to_path(str(files.client_ca))
    for leaf, path in (
        (server_cert, files.server),
        (rsa_cert, files.rsa),
        (ecdsa_cert, files.ecdsa),
        (client_cert, files.client),
    ):
        leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
    return files


# -- threads ---------------------------------------------------------------------


@pytest.fixture
def background() -> Iterator[Callable[..., concurrent.futures.Future[Any]]]:
    """Run a callable in a thread; `future.result(timeout)` re-raises its exception.

    Everything run here must bound its own blocking calls (socket timeouts,
    subprocess timeouts); teardown waits for the threads at most `WAIT` seconds.
    """
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    futures: list[concurrent.futures.Future[Any]] = []

    def submit(fn: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
        future = executor.submit(fn, *args)
        futures.append(future)
        return future

    yield submit
    concurrent.futures.wait(futures, timeout=WAIT)
    executor.shutdown(wait=False, cancel_futures=True)


@pytest.fixture(scope="session")
def iana_id() -> dict[str, int]:
    """OpenSSL suite name -> IANA id, as the stdlib's own OpenSSL (3.0.19) reports them.

    The stdlib cannot list TLS 1.3 suites outside its defaults, so the CCM ones are
    added from RFC 8446 appendix B.4.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("ALL:@SECLEVEL=0")
    table = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    table.update({"TLS_AES_128_CCM_SHA256": 0x1304, "TLS_AES_128_CCM_8_SHA256": 0x1305})
    return table


@pytest.fixture
def stdlib_server(
    background: Callable[..., concurrent.futures.Future[Any]],
) -> Iterator[Callable[..., tuple[int, concurrent.futures.Future[list[Any]]]]]:
    """`stdlib_server(context, handler, host="127.0.0.1", connections=1)`.

    Listens on `host`, port 0, and in a thread accepts `connections` clients one
    after the other, wraps each with the stdlib `context` (handshake included)
    and calls `handler(ssl_socket)`. Returns `(port, future)`; the future gives
    the handlers' results, or re-raises what the thread raised (e.g. a failed
    handshake). Every socket has a `WAIT` timeout.
    """
    listeners: list[socket.socket] = []

    def serve(
        context: ssl.SSLContext,
        handler: Callable[[ssl.SSLSocket], T],
        *,
        host: str = "127.0.0.1",
        connections: int = 1,
    ) -> tuple[int, concurrent.futures.Future[list[T]]]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, 0), family=family)
        listener.settimeout(WAIT)
        listeners.append(listener)

        def run() -> list[T]:
            results = []
            for _ in range(connections):
                raw, _ = listener.accept()
                raw.settimeout(WAIT)
                with context.wrap_socket(raw, server_side=True) as tls:
                    results.append(handler(tls))
            return results

        return listener.getsockname()[1], background(run)

    yield serve
    for listener in listeners:
        listener.close()


# -- stdlib ssl in memory ----------------------------------------------------------


class StdlibLink:
    """A unitls buffer wired to a stdlib `ssl.SSLObject` through two `MemoryBIO`s."""

    def __init__(
        self,
        ours: unitls.TLSBuffer,
        theirs: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self.ours = ours
        self.theirs = theirs
        self._incoming = incoming  # ciphertext for the stdlib side
        self._outgoing = outgoing  # ciphertext from the stdlib side
        #: Ciphertext bytes moved in each direction so far.
        self.sent_by_unitls = 0
        self.sent_by_stdlib = 0

    def pump(self) -> int:
        """Move every queued ciphertext byte both ways; return how many moved."""
        moved = 0
        while True:
            data = self.ours.process_outgoing(1 << 20)
            if data:
                self._incoming.write(data)
                self.sent_by_unitls += len(data)
            back = self._outgoing.read()
            if back:
                self.ours.process_incoming(back)
                self.sent_by_stdlib += len(back)
            if not data and not back:
                return moved
            moved += len(data) + len(back)

    def handshake(self, rounds: int = 20) -> None:
        """Drive both handshakes to completion; a failure on either side propagates."""
        ours_done = theirs_done = False
        for _ in range(rounds):
            if not ours_done:
                try:
                    self.ours.do_handshake()
                    ours_done = True
                except unitls.WantReadError:
                    pass
            if not theirs_done:
                try:
                    self.theirs.do_handshake()
                    theirs_done = True
                except ssl.SSLWantReadError:
                    pass
            if not self.pump() and ours_done and theirs_done:
                return
        raise AssertionError("handshake with the stdlib peer did not complete")

    def to_stdlib(self, data: bytes) -> bytes:
        """Write `data` on the unitls side; return everything the stdlib side reads."""
        view = memoryview(data)
        received = bytearray()
        while view:
            view = view[self.ours.write(view) :]
            self.pump()
            received += self._drain_stdlib()
        return bytes(received)

    def to_unitls(self, data: bytes) -> bytes:
        """Write `data` on the stdlib side; return everything the unitls side reads."""
        self.theirs.write(data)
        received = bytearray()
        while True:
            moved = self.pump()
            while True:
                try:
                    chunk = self.ours.read(65536)
                except unitls.WantReadError:
                    break
                assert isinstance(chunk, bytes)
                if not chunk:
                    break
                received += chunk
            if not moved:
                return bytes(received)

    def _drain_stdlib(self) -> bytes:
        received = bytearray()
        while True:
            try:
                chunk = self.theirs.read(65536)
            except ssl.SSLWantReadError:
                return bytes(received)
            if not chunk:
                return bytes(received)
            received += chunk


@pytest.fixture
def stdlib_link() -> Callable[..., StdlibLink]:
    """`stdlib_link(unitls_buffer, ssl_context, server_hostname=None, session=None)`.

    The stdlib side plays the opposite role of the unitls buffer: a client when
    `ssl_context` is a `PROTOCOL_TLS_CLIENT` context (then `server_hostname` is its
    SNI and verified name), a server otherwise.
    """

    def make(
        ours: unitls.TLSBuffer,
        context: ssl.SSLContext,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> StdlibLink:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        server_side = context.protocol is ssl.PROTOCOL_TLS_SERVER
        theirs = context.wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=None if server_side else server_hostname,
            session=session,
        )
        return StdlibLink(ours, theirs, incoming, outgoing)

    return make


# -- openssl CLI -------------------------------------------------------------------

OPENSSL = shutil.which("openssl") or "openssl"


class OpenSSLProcess:
    """An `openssl` subprocess whose merged stdout/stderr a thread collects."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [OPENSSL, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._output = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            with self._changed:
                if not chunk:
                    self._changed.notify_all()
                    return
                self._output += chunk
                self._changed.notify_all()

    @property
    def output(self) -> bytes:
        with self._changed:
            return bytes(self._output)

    def wait_for(self, pattern: bytes, count: int = 1, timeout: float = WAIT) -> re.Match[bytes]:
        """Wait until `pattern` (a regex) matched the output `count` times; return the
        last match. Fail after `timeout`, or once the process ended without it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = list(regex.finditer(self._output))
                if len(matches) >= count:
                    return matches[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"openssl {' '.join(self.args)!r} never printed {pattern!r}; "
                        f"output:\n{bytes(self._output).decode(errors='replace')}"
                    )
                self._changed.wait(min(remaining, 0.1))

    def send(self, data: bytes) -> None:
        """Write to the process's stdin (s_server sends it to the connected client)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, timeout: float = WAIT) -> int:
        """Wait for the process to exit and for its output to be collected."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by PID
        try:
            self.proc.wait(WAIT)
            self._reader.join(WAIT)  # the pipe reaches EOF once the process is gone
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass


class OpenSSLServer(OpenSSLProcess):
    """`openssl s_server` on an OS-chosen loopback port, ready once it printed ACCEPT."""

    def __init__(self, args: list[str], host: str) -> None:
        bind = f"[{host}]:0" if ":" in host else f"{host}:0"
        super().__init__(["s_server", "-accept", bind, *args])
        try:
            match = self.wait_for(rb"ACCEPT [^\n]*:(\d+)\s")
        except BaseException:
            self.stop()
            raise
        self.host = host
        self.port = int(match.group(1))


@pytest.fixture
def s_server() -> Iterator[Callable[..., OpenSSLServer]]:
    """`s_server(*args, host="127.0.0.1")` starts `openssl s_server -accept host:0 *args`.

    Port 0 lets the OS choose (the real port is parsed from the ACCEPT line, so
    there is no race and no retry). Killed by PID at teardown.
    """
    started: list[OpenSSLServer] = []

    def start(*args: str, host: str = "127.0.0.1") -> OpenSSLServer:
        server = OpenSSLServer(list(args), host)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def s_client(
    background: Callable[..., concurrent.futures.Future[Any]],
) -> Callable[..., concurrent.futures.Future[subprocess.CompletedProcess[bytes]]]:
    """`s_client(port, *args, stdin=b"")` runs `openssl s_client -connect 127.0.0.1:port`.

    It runs in a thread (so the test can `accept()` meanwhile) under
    `subprocess.run(timeout=...)`, which kills it if it outlives the timeout.
    `-ign_eof` keeps it reading after its stdin ends, until the server closes.
    """

    def run(
        port: int, *args: str, stdin: bytes = b"", host: str = "127.0.0.1"
    ) -> concurrent.futures.Future[subprocess.CompletedProcess[bytes]]:
        connect = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        command = [OPENSSL, "s_client", "-connect", connect, "-ign_eof", *args]
        return background(
            lambda: subprocess.run(command, input=stdin, capture_output=True, timeout=WAIT)
        )

    return run
