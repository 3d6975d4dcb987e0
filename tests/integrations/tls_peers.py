"""Small TLS peers for the adapter tests: servers that misbehave on purpose.

`TLSServerThread` accepts connections on 127.0.0.1 and runs a handler on each (in its own
thread) after the stdlib handshake; the handler decides what the client sees (a response
closed with or without close_notify, silence, ...). `RenegotiatingServer` (pyOpenSSL: the
stdlib cannot ask for it) asks its clients to renegotiate. `silent_listener()` is a TCP
listener that never accepts, so a TLS handshake with it never progresses;
`hanging_up_listener()` one that hangs up on every connection. `Socks5Proxy` is
a minimal SOCKS5 (no authentication, CONNECT only) proxy; `RefusingProxy` an HTTP proxy
that refuses every tunnel.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator

import trustme
from typing_extensions import Self

Handler = Callable[[ssl.SSLSocket], None]


def server_context(
    leaf: trustme.LeafCert,
    *,
    version: ssl.TLSVersion | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    """A stdlib server context for `leaf`, optionally pinned to one TLS version and
    selecting among `alpn`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


def read_request(sock: ssl.SSLSocket) -> bytes:
    """The request head (up to the blank line), read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def ragged_close(tls: ssl.SSLSocket) -> None:
    """End the TCP stream under `tls` without close_notify (a "ragged EOF"), then wait for
    the client to close (so no unread byte turns the FIN into a reset)."""
    raw = socket.socket(fileno=os.dup(tls.fileno()))
    with raw:
        raw.shutdown(socket.SHUT_WR)
        raw.settimeout(10)
        with contextlib.suppress(OSError):
            while raw.recv(65536):
                pass


def close_delimited_server(leaf: trustme.LeafCert, body: bytes, *, clean: bool) -> TLSServerThread:
    """A server answering with a body delimited by the connection's end (no length),
    then closing with close_notify if `clean`, else with a ragged EOF."""

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + body)
        if clean:
            tls.unwrap()
        else:
            ragged_close(tls)

    return TLSServerThread(server_context(leaf), handler)


def h2_truncating_handler(*, clean: bool) -> Handler:
    """An HTTP/2 server (ALPN h2) that announces 1 MB, sends 48 KiB and closes the
    connection, with close_notify if `clean` and without otherwise."""
    import h2.config
    import h2.connection
    import h2.events

    def handler(tls: ssl.SSLSocket) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        stream_id = None
        while stream_id is None:
            data = tls.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    stream_id = event.stream_id
            tls.sendall(conn.data_to_send())
        conn.send_headers(stream_id, [(":status", "200"), ("content-length", "1000000")])
        for _ in range(3):  # within the initial flow-control window
            conn.send_data(stream_id, b"x" * 16384)
        tls.sendall(conn.data_to_send())
        if clean:
            tls.unwrap()
        else:
            ragged_close(tls)

    return handler


class LocalServer:
    """A server on 127.0.0.1 (or on a Unix socket) that runs `handle` for each connection,
    in a thread of its own; a context manager that stops it and joins its threads.

    Subclasses implement `handle(client)`; the client socket is closed after it returns.
    """

    def __init__(self, listener: socket.socket | None = None) -> None:
        self._listener = listener or socket.create_server(("127.0.0.1", 0))
        address = self._listener.getsockname()
        self.port = int(address[1]) if isinstance(address, tuple) else 0
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> Self:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._accept_thread.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def _accept_loop(self) -> None:
        while (client := _accept(self._listener, self._stopping)) is not None:
            thread = threading.Thread(target=self._run, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, client: socket.socket) -> None:
        with client:
            self.handle(client)

    def handle(self, client: socket.socket) -> None:
        raise NotImplementedError


class TLSServerThread(LocalServer):
    """A stdlib TLS server on 127.0.0.1 running `handler` on each accepted connection.

    `seen` collects `(version(), cipher())` as the server saw them; `errors` collects
    exceptions raised in handshakes or handlers (tests check it when that matters).
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        handler: Handler,
        *,
        unix_path: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.context = context
        self.handler = handler
        self.seen: list[tuple[str | None, tuple[str, str, int] | None]] = []
        self.errors: list[BaseException] = []
        if unix_path is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, 0), family=family)
        else:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(unix_path)
            listener.listen()
        super().__init__(listener)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        try:
            with self.context.wrap_socket(
                client, server_side=True, suppress_ragged_eofs=False
            ) as tls:
                self.seen.append((tls.version(), tls.cipher()))
                self.handler(tls)
        except (OSError, ValueError) as exc:
            self.errors.append(exc)


def send_raw(tls: ssl.SSLSocket, data: bytes) -> None:
    """Write `data` to the TCP stream under `tls`, outside TLS (a corrupt record)."""
    with socket.socket(fileno=os.dup(tls.fileno())) as raw:
        raw.sendall(data)


#: Bytes that frame as a TLS 1.2 application-data record but cannot be decrypted.
GARBAGE = b"\x17\x03\x03\x00\x20" + bytes(32)


class ScriptedPeer:
    """A `TLSServerThread` handler that sends what the test asks for, when it asks.

    `send(*parts)` has the server send each part (`bytes` as one TLS record,
    `GARBAGE` raw on the TCP stream) and returns once it has; `stop()` ends the
    connection (without close_notify).
    """

    def __init__(self) -> None:
        self._steps: queue.Queue[tuple[bytes, ...] | None] = queue.Queue()
        self._done: queue.Queue[bool] = queue.Queue()

    def __call__(self, tls: ssl.SSLSocket) -> None:
        while (step := self._steps.get(timeout=20)) is not None:
            for part in step:
                if part is GARBAGE:
                    send_raw(tls, part)
                else:
                    tls.sendall(part)
            self._done.put(True)

    def send(self, *parts: bytes) -> None:
        self._steps.put(parts)
        assert self._done.get(timeout=10)

    def stop(self) -> None:
        self._steps.put(None)


class RenegotiatingServer(LocalServer):
    """A TLS 1.2 server on 127.0.0.1 that asks each client to renegotiate.

    After the handshake it sends `b"one"`, then a HelloRequest, then `then` (if any),
    sets `sent`, and waits for the client's answer. `answers` collects what that answer
    did to the server: unitls clients refuse renegotiation with a `no_renegotiation`
    alert, which OpenSSL servers treat as fatal (they then send `handshake_failure`).
    """

    def __init__(self, leaf: trustme.LeafCert, then: bytes = b"") -> None:
        from OpenSSL import SSL

        self._context = SSL.Context(SSL.TLS_METHOD)
        self._context.set_min_proto_version(SSL.TLS1_2_VERSION)
        self._context.set_max_proto_version(SSL.TLS1_2_VERSION)
        leaf.configure_cert(self._context)
        self.then = then
        self.sent = threading.Event()
        self.answers: list[str] = []
        super().__init__()

    def handle(self, client: socket.socket) -> None:
        from OpenSSL import SSL

        connection = SSL.Connection(self._context, client)
        connection.set_accept_state()
        try:
            connection.do_handshake()
            connection.sendall(b"one")
            connection.renegotiate()
            connection.do_handshake()  # sends the HelloRequest, returns at once
            if self.then:
                connection.sendall(self.then)
            self.sent.set()
            if not select.select([client], [], [], 10)[0]:
                self.answers.append("no answer")
                return
            self.answers.append(f"read {connection.recv(100)!r}")
        except SSL.Error as exc:
            self.answers.append(str(exc))


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose listener completes TCP connections but never reads or answers."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


@contextlib.contextmanager
def hanging_up_listener(*, reset: bool = False) -> Iterator[int]:
    """A port whose listener hangs up on each connection before any TLS: at once with a
    FIN (an early EOF), or, if `reset`, with a RST once the client's first bytes (its
    ClientHello) arrived (the client's reads and writes then fail with
    `ConnectionResetError` or `BrokenPipeError`)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve() -> None:
        while (client := _accept(listener, stopping)) is not None:
            if reset:  # SO_LINGER with a zero timeout: close() sends a RST
                select.select([client], [], [], 10)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        thread.join(5)
        listener.close()


class Socks5Proxy(LocalServer):
    """A threaded SOCKS5 proxy (RFC 1928: no authentication, CONNECT) on 127.0.0.1."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    def handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        try:
            version, count = _recv_exactly(client, 2)
            methods = _recv_exactly(client, count)
            if version != 5 or 0 not in methods:
                client.sendall(b"\x05\xff")
                return
            client.sendall(b"\x05\x00")
            _, command, _, kind = _recv_exactly(client, 4)
            if kind == 1:
                host = socket.inet_ntoa(_recv_exactly(client, 4))
            elif kind == 3:
                host = _recv_exactly(client, _recv_exactly(client, 1)[0]).decode("ascii")
            else:
                host = socket.inet_ntop(socket.AF_INET6, _recv_exactly(client, 16))
            (port,) = struct.unpack("!H", _recv_exactly(client, 2))
            if command != 1:
                client.sendall(b"\x05\x07\x00\x01" + bytes(6))
                return
            self.tunnels.append(f"{host}:{port}")
        except (OSError, ValueError):
            return
        try:
            upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            with contextlib.suppress(OSError):
                client.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            return
        with upstream:
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            _relay(client, upstream)


class RefusingProxy(LocalServer):
    """An HTTP proxy on 127.0.0.1 that answers every CONNECT with 502 Bad Gateway."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        with contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                request += chunk
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")


def _accept(listener: socket.socket, stopping: threading.Event) -> socket.socket | None:
    """The next connection, or `None` once `stopping` is set (closing a listener does not
    wake a thread blocked in `accept()` on Linux, so wait in short polls instead)."""
    while not stopping.is_set():
        if select.select([listener], [], [], 0.05)[0]:
            try:
                return listener.accept()[0]
            except OSError:
                return None
    return None


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("the client closed the connection early")
        data += chunk
    return data


def _relay(a: socket.socket, b: socket.socket) -> None:
    while True:
        ready, _, _ = select.select([a, b], [], [], 30)
        if not ready:
            return
        for source in ready:
            try:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
            except OSError:
                return
