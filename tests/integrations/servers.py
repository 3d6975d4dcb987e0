"""Real HTTPS servers on 127.0.0.1 for the integration tests: hypercorn, nginx, a CONNECT proxy.

Each server runs as a child process (or a thread, for the proxy), is ready before its
fixture returns, and is stopped by PID afterwards. Routes shared by hypercorn and nginx:
`GET /` (names the server and the HTTP version), `GET /static/big.bin` (10 MiB),
`PUT /up/<name>` (stores the body under `root/up/`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import random
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import trustme

import unitls

HERE = Path(__file__).parent
BIG_SIZE = 10 * 1024 * 1024
BIG = random.Random(748).randbytes(BIG_SIZE)
BIG_SHA256 = hashlib.sha256(BIG).hexdigest()
STARTUP_TIMEOUT = 20.0


@dataclasses.dataclass(frozen=True)
class Server:
    """A running HTTPS server: where it is, who signed its certificate, where its files are."""

    name: str  #: "hypercorn", "nginx" or "nginx-mtls"
    port: int
    root: Path  #: static/ holds what GET /static/ serves; up/ receives PUTs
    ca: trustme.CA
    ca_file: Path  #: the CA as a PEM file (requests' `verify=`, urllib3's `ca_certs`)
    host: str = "localhost"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def trust_store(self) -> unitls.TrustStore:
        return unitls.TrustStore.from_buffer(self.ca.cert_pem.bytes())

    def configuration(self, **options: object) -> unitls.TLSClientConfiguration:
        """A client configuration trusting this server's CA (`options` are passed through)."""
        return unitls.TLSClientConfiguration(trust_store=self.trust_store, **options)  # type: ignore[arg-type]

    def uploaded_sha256(self, name: str) -> str:
        return hashlib.sha256((self.root / "up" / name).read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_root(root: Path, ca: trustme.CA, leaf: trustme.LeafCert) -> Path:
    """Write the certificates and the static files a server needs; return the CA file."""
    (root / "static").mkdir(parents=True, exist_ok=True)
    (root / "up").mkdir(exist_ok=True)
    (root / "static" / "big.bin").write_bytes(BIG)
    (root / "static" / "hello.txt").write_bytes(b"hello from a static file\n")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    leaf.private_key_pem.write_to_path(str(root / "server.key"))
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca_file


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode} before listening:\n{log.read_text()}"
            )
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    stop_process(process, signal.SIGKILL)
    raise RuntimeError(
        f"server not listening on {port} after {STARTUP_TIMEOUT} s:\n{log.read_text()}"
    )


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def start_hypercorn(
    root: Path, ca: trustme.CA, leaf: trustme.LeafCert, address: tuple[str, int] | None = None
) -> tuple[Server, subprocess.Popen[bytes]]:
    """hypercorn serving `asgi_app.py`, on `address` or a free port of 127.0.0.1."""
    ca_file = prepare_root(root, ca, leaf)
    host, port = address or ("127.0.0.1", free_port())
    log = root / "hypercorn.log"
    env = {**os.environ, "UNITLS_TEST_ROOT": str(root), "PYTHONPATH": str(HERE)}
    command = [
        sys.executable, "-m", "hypercorn", "--workers", "0",
        "--certfile", str(root / "server.pem"), "--keyfile", str(root / "server.key"),
        "--bind", f"{host}:{port}", "asgi_app:app",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, process, log, host)
    return Server("hypercorn", port, root, ca, ca_file), process


NGINX_CONF = """\
daemon off; master_process off; worker_processes 1;
pid {root}/nginx.pid; error_log {root}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}/tb; proxy_temp_path {root}/tp; fastcgi_temp_path {root}/tf;
  uwsgi_temp_path {root}/tu; scgi_temp_path {root}/ts;
  ssl_certificate {root}/server.pem; ssl_certificate_key {root}/server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  client_max_body_size 64m;
  keepalive_requests 10000;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    location /static/ {{ alias {root}/static/; }}
    location /up/ {{ alias {root}/up/; dav_methods PUT; create_full_put_path on; }}
    location = / {{
      default_type text/plain;
      return 200 "nginx $server_protocol $ssl_protocol alpn=$ssl_alpn_protocol\\n";
    }}
  }}
  server {{
    listen 127.0.0.1:{mtls_port} ssl http2;
    ssl_client_certificate {root}/ca.pem; ssl_verify_client on; ssl_verify_depth 2;
    location = / {{
      default_type text/plain;
      return 200 "nginx $server_protocol client=$ssl_client_s_dn verify=$ssl_client_verify\\n";
    }}
  }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: `apt-get install nginx` (.ci/run does this)")
    return found


def start_nginx(
    root: Path, ca: trustme.CA, leaf: trustme.LeafCert
) -> tuple[Server, Server, subprocess.Popen[bytes]]:
    """nginx with two servers: plain TLS, and TLS requiring a client certificate from `ca`."""
    ca_file = prepare_root(root, ca, leaf)
    port, mtls_port = free_port(), free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port, mtls_port=mtls_port))
    log = root / "nginx.stderr"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(root), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    wait_for_port(port, process, log)
    wait_for_port(mtls_port, process, log)
    return (
        Server("nginx", port, root, ca, ca_file),
        Server("nginx-mtls", mtls_port, root, ca, ca_file),
        process,
    )


class ConnectProxy:
    """A threaded HTTP CONNECT proxy on 127.0.0.1, optionally itself behind TLS (an HTTPS proxy).

    `tunnels` records every `host:port` a client asked to reach, so tests can check
    that traffic really went through the proxy.
    """

    def __init__(
        self, tls: ssl.SSLContext | None = None, address: tuple[str, int] = ("127.0.0.1", 0)
    ) -> None:
        self.tls = tls
        self.tunnels: list[str] = []
        self._listener = socket.create_server(address)
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._upstreams: set[socket.socket] = set()
        self._stopping = False
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://localhost:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        # close() alone does not wake a thread blocked in accept(); shutdown() does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accept_thread.join(5)
        # Tunnels a client left open end now: their upstream sockets are shut down,
        # which makes the copying thread's select() return.
        for upstream in list(self._upstreams):
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client.settimeout(10)
                client = self.tls.wrap_socket(client, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            self.tunnels.append(target)
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            client.close()
            return
        self._upstreams.add(upstream)
        try:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _tunnel(client, upstream)
        except OSError:
            pass  # the client went away
        finally:
            self._upstreams.discard(upstream)
            client.close()
            upstream.close()


def _tunnel(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways in one thread (an `ssl.SSLSocket` must not be used from two)."""
    client.setblocking(False)
    upstream.setblocking(False)
    while True:
        pending = isinstance(client, ssl.SSLSocket) and client.pending()
        ready = [client] if pending else select.select([client, upstream], [], [], 60)[0]
        if not ready:
            return
        for source in ready:
            dest = upstream if source is client else client
            try:
                data = source.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                return
            if not data:
                return
            dest.setblocking(True)
            try:
                dest.sendall(data)
            except OSError:
                return
            finally:
                dest.setblocking(False)
