"""The HTTP part of `unitls demo`: one local HTTPS server, four HTTP clients, all over unitls.

The core command line finds this through the `unitls.demo` entry point (so `unitls`
itself never imports an HTTP library) and hands it the demo's throwaway CA and
server certificate. The server is hypercorn (h2 and http/1.1) when it is installed,
else a small HTTP/1.1 server on a unitls `TLSSocket`; the clients are httpx with
HTTP/2 allowed, httpx with HTTP/1.1 only, urllib3 and http.client, each printing the
protocol ALPN chose and the server's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION, OpenSSLTLSSocket

__all__ = ["run"]

_TIMEOUT = 10.0


def run(out: IO[str], ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
    """Serve HTTPS on 127.0.0.1 and fetch from it through every adapter."""
    # Imported here so that a missing HTTP library is reported as "skipped" by the CLI.
    import httpx
    import urllib3

    from unitls_integrations.http_client import HTTPSConnection
    from unitls_integrations.httpx import HTTPTransport
    from unitls_integrations.ssl_context import SSLContext

    config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_buffer(ca_pem))
    with _server(cert_pem, key_pem) as (name, port):
        url = f"https://localhost:{port}/"
        out.write(f"\nHTTP over unitls: {name} on {url}\n")

        def via_httpx(http2: bool) -> tuple[str, str]:
            transport = HTTPTransport(config, http1=True, http2=http2)
            with httpx.Client(transport=transport, timeout=_TIMEOUT) as client:
                response = client.get(url)
                response.raise_for_status()
                stream = response.extensions["network_stream"]
                alpn = stream.get_extra_info("ssl_object").selected_alpn_protocol()
                return str(alpn), response.text

        def via_urllib3() -> tuple[str, str]:
            with urllib3.PoolManager(ssl_context=SSLContext(config), timeout=_TIMEOUT) as pool:
                response = pool.request("GET", url, preload_content=False)
                # The connection goes back to the pool once the body is read: ask first.
                sock = getattr(response.connection, "sock", None)
                if sock is None:
                    raise RuntimeError("urllib3 gave no connection for the response")
                alpn = sock.selected_alpn_protocol()
                body = response.read().decode()
                response.release_conn()
                return str(alpn), body

        def via_http_client() -> tuple[str, str]:
            connection = HTTPSConnection("localhost", port, configuration=config, timeout=_TIMEOUT)
            try:
                connection.request("GET", "/")
                body = connection.getresponse().read().decode()
                alpn = connection.sock.selected_alpn_protocol()
                return str(alpn), body
            finally:
                connection.close()

        clients: list[tuple[str, Callable[[], tuple[str, str]]]] = [
            ("httpx, HTTP/2 allowed", lambda: via_httpx(True)),
            ("httpx, HTTP/1.1 only", lambda: via_httpx(False)),
            ("urllib3 PoolManager", via_urllib3),
            ("http.client", via_http_client),
        ]
        for label, fetch in clients:
            alpn, body = fetch()
            out.write(f"  {label:<22} ALPN {alpn:<9} server says: {body.strip()}\n")


@contextlib.contextmanager
def _server(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, int]]:
    try:
        import hypercorn  # noqa: F401
    except ImportError:
        with _unitls_server(cert_pem, key_pem) as port:
            yield "a unitls TLSSocket HTTP/1.1 server (install hypercorn for h2)", port
        return
    with _hypercorn_server(cert_pem, key_pem) as port:
        yield "hypercorn", port


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = f"hello over HTTP/{scope['http_version']}\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def _hypercorn_server(cert_pem: bytes, key_pem: bytes) -> Iterator[int]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    # hypercorn loads its certificate through the stdlib `ssl` module, which reads
    # files only: the throwaway demo key lives in a private temporary directory.
    with tempfile.TemporaryDirectory() as directory:
        certfile, keyfile = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        for path, data in ((certfile, cert_pem), (keyfile, key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(data)
        # hypercorn closes the descriptor it is given, so it gets a duplicate; ours
        # keeps the port bound until the server is gone.
        with socket.create_server(("127.0.0.1", 0)) as listener:
            config = Config()
            config.bind = [f"fd://{os.dup(listener.fileno())}"]
            config.certfile, config.keyfile = certfile, keyfile
            config.accesslog = config.errorlog = None
            config.graceful_timeout = 1.0
            started = threading.Event()
            handle: dict[str, Any] = {}
            failure: list[BaseException] = []

            async def main() -> None:
                handle["loop"], handle["stop"] = asyncio.get_running_loop(), asyncio.Event()
                started.set()
                await serve(_app, config, shutdown_trigger=handle["stop"].wait)

            def thread_main() -> None:
                try:
                    asyncio.run(main())
                except BaseException as exc:  # reported by the main thread
                    failure.append(exc)
                    started.set()

            thread = threading.Thread(target=thread_main, name="demo-hypercorn", daemon=True)
            thread.start()
            if not started.wait(_TIMEOUT) or failure:
                raise RuntimeError("hypercorn did not start") from (failure[0] if failure else None)
            try:
                yield int(listener.getsockname()[1])
            finally:
                handle["loop"].call_soon_threadsafe(handle["stop"].set)
                thread.join(_TIMEOUT)
                if thread.is_alive():
                    raise RuntimeError(f"hypercorn did not stop within {_TIMEOUT} s")


@contextlib.contextmanager
def _unitls_server(cert_pem: bytes, key_pem: bytes) -> Iterator[int]:
    chain = unitls.SigningChain(
        leaf=(unitls.Certificate.from_buffer(cert_pem), unitls.PrivateKey.from_buffer(key_pem))
    )
    config = unitls.TLSServerConfiguration(
        certificate_chain=[chain], inner_protocols=[unitls.NextProtocol.HTTP1]
    )
    listener = OPENSSL_IMPLEMENTATION.server_context(config).connect(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, unitls.TLSError, OSError):
                continue
            assert isinstance(conn, OpenSSLTLSSocket)
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(_TIMEOUT)
        listener.close()


def _answer(conn: OpenSSLTLSSocket) -> None:
    """Answer HTTP/1.1 requests on one kept-alive connection until the client leaves."""
    body = b"hello over HTTP/1.1\n"
    response = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    pending = b""
    conn.settimeout(_TIMEOUT)
    try:
        while True:
            while b"\r\n\r\n" not in pending:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
            _, pending = pending.split(b"\r\n\r\n", 1)  # the demo's clients send no bodies
            view = memoryview(response)
            while view:
                view = view[conn.send(view) :]
    except (unitls.TLSError, OSError):
        pass  # a client that vanished mid-request is no concern of a demo server
    finally:
        conn.close(force=True)
