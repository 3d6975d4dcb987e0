"""The world the documentation's code runs in: real servers on 127.0.0.1 behind public names.

The pages and `docs/examples/` are written for readers, so they talk to `example.org` and trust
the system's CAs, as real programs do. Under test, that world is rebuilt on loopback:

- `example.org` and `www.example.org`, port 443: a real hypercorn server (HTTP/2 and HTTP/1.1,
  the routes of `tests/integrations/asgi_app.py`: `GET /`, `GET /static/hello.txt`, `POST /echo`);
- `proxy.example.org`, port 3128: a real HTTP CONNECT proxy (`servers.ConnectProxy`);
- the "system" trust store is the world's CA (`SSL_CERT_FILE`), so `TrustStore.system()`, the
  default, verifies those servers exactly as it would verify the real ones;
- the working directory holds the files the pages open (see `FILES`).

The servers listen on the real ports (443, 3128) of a loopback address of their own,
127.R.R.R, chosen at random per test session (so parallel sessions do not collide; binding 443
needs root, which CI has). Names resolve through a patched `socket.getaddrinfo` (what asyncio,
trio, anyio, urllib3 and `socket.create_connection` all call), like an `/etc/hosts` entry; only
the address changes, never the port, because anyio keeps the caller's port. Every other name
except `localhost` is refused, so the docs can never reach the internet from CI. TLS is never
mocked: every handshake is real, with certificate and hostname verification on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integrations"))

from servers import ConnectProxy, start_hypercorn, stop_process

#: The files in the working directory, what the pages may open.
FILES = {
    "ca.pem": "the world's CA certificate (what signs every certificate below)",
    "server.crt": "certificate for example.org, www.example.org, localhost, 127.0.0.1",
    "server.key": "its private key (PEM, unencrypted)",
    "example-net.crt": "certificate for example.net and www.example.net (a second SNI name)",
    "example-net.key": "its private key",
    "client.crt": "a client certificate (CN client.example.org) signed by the CA",
    "client.key": "its private key",
}

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclasses.dataclass
class World:
    directory: Path
    ca_file: Path
    address: str  #: the loopback address every world name resolves to
    names: frozenset[str]

    @contextlib.contextmanager
    def active(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
        """Make the world's names, trust store and files what the code sees."""
        real_getaddrinfo = socket.getaddrinfo
        address, names = self.address, self.names

        def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
            name = host.decode() if isinstance(host, bytes) else host
            if name is None or name in LOOPBACK_NAMES:
                return real_getaddrinfo(host, port, *args, **kwargs)
            if name not in names:
                raise socket.gaierror(
                    socket.EAI_NONAME, f"the docs world has no host {name!r} (only {names})"
                )
            return real_getaddrinfo(address, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setenv("SSL_CERT_FILE", str(self.ca_file))
        monkeypatch.chdir(self.directory)
        yield self


@contextlib.contextmanager
def build_world(directory: Path) -> Iterator[World]:
    ca = trustme.CA(organization_name="unitls docs world CA")
    leaf = ca.issue_cert("example.org", "www.example.org", "localhost", "127.0.0.1")
    net = ca.issue_cert("example.net", "www.example.net")
    client = ca.issue_cert("client.example.org")

    files = directory / "files"
    files.mkdir()
    ca.cert_pem.write_to_path(str(files / "ca.pem"))
    for stem, cert in (("server", leaf), ("example-net", net), ("client", client)):
        (files / f"{stem}.crt").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(files / f"{stem}.key"))
    assert sorted(p.name for p in files.iterdir()) == sorted(FILES)

    address = "127.{}.{}.{}".format(*random.SystemRandom().randbytes(2), random.randrange(2, 255))
    (directory / "hypercorn").mkdir()
    _, process = start_hypercorn(directory / "hypercorn", ca, leaf, (address, 443))
    try:
        with ConnectProxy(address=(address, 3128)):
            yield World(
                directory=files,
                ca_file=files / "ca.pem",
                address=address,
                names=frozenset({"example.org", "www.example.org", "proxy.example.org"}),
            )
    finally:
        stop_process(process)
