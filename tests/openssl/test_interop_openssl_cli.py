"""Interoperability with the `openssl` command-line peers (OpenSSL 3.0.19).

A unitls client against `openssl s_server`, and a unitls server against
`openssl s_client`, over loopback sockets: versions, suites, ALPN, peer
certificates, client authentication, SNI and session resumption, each checked
on both sides (what unitls reports and what the CLI prints).
"""

from __future__ import annotations

import dataclasses
import re
import select
import ssl
import subprocess
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
import trustme

import unitls
from helpers import (
    client_configuration,
    recv_exactly,
    server_configuration,
)
from unitls.openssl import OpenSSLClientContext, OpenSSLServerContext, OpenSSLTLSSocket

WAIT = 10.0
TLS12, TLS13 = unitls.TLSVersion.TLSv1_2, unitls.TLSVersion.TLSv1_3
VERSIONS = pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
CLI_VERSION_FLAG = {TLS12: "-tls1_2", TLS13: "-tls1_3"}
H2, HTTP1 = unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1

# Lines must not start with a letter that s_server / s_client read as a command
# (Q, q, R, r, k, K, c, ...).
FROM_UNITLS = b"ping from unitls\n"
FROM_CLI = b"hello from openssl\n"

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


# -- helpers ---------------------------------------------------------------------


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def printed_cert(output: bytes, heading: bytes) -> bytes:
    """The DER of the PEM certificate the CLI printed after `heading`."""
    start = output.index(heading)
    match = _PEM_CERT.search(output, start)
    assert match, output
    return ssl.PEM_cert_to_DER_cert(match.group().decode())


def verify_args(pem_files: Any, name: str | None = "localhost") -> list[str]:
    """s_client arguments: trust our CA, fail on any verification error."""
    args = ["-CAfile", str(pem_files.ca), "-verify_return_error"]
    if name is not None:
        args += ["-servername", name, "-verify_hostname", name]
    return args


@dataclasses.dataclass
class Seen:
    """What the unitls server reported for one accepted connection."""

    version: unitls.TLSVersion | None
    cipher: unitls.CipherSuite | int | None
    alpn: unitls.NextProtocol | bytes | None
    peercert: bytes | None


def exchange(conn: OpenSSLTLSSocket) -> Seen:
    """Server side: read the client's line, answer, close cleanly."""
    seen = Seen(
        conn.negotiated_tls_version, conn.cipher(), conn.negotiated_protocol(), conn.getpeercert()
    )
    assert recv_exactly(conn, len(FROM_UNITLS)) == FROM_UNITLS
    conn.sendall(FROM_CLI)
    conn.close()
    return seen


def serve_s_client(
    s_client: Callable[..., Future[subprocess.CompletedProcess[bytes]]],
    config: unitls.TLSServerConfiguration,
    *args: str,
    handler: Callable[[OpenSSLTLSSocket], Seen] = exchange,
) -> tuple[Seen, subprocess.CompletedProcess[bytes]]:
    """Run `openssl s_client *args` against a unitls server for one connection."""
    with OpenSSLServerContext(config).connect(("127.0.0.1", 0), timeout=WAIT) as listener:
        listener.listen(1)
        done = s_client(listener.getsockname()[1], *args, stdin=FROM_UNITLS)
        conn, _ = listener.accept()
        with conn:
            seen = handler(conn)
        result = done.result(WAIT)
    return seen, result


def talk_to_s_server(sock: OpenSSLTLSSocket, server: Any, connection: int = 1) -> None:
    """Client side against s_server: one line each way, then a clean close.

    `connection` counts the connections this s_server has seen, 1 for the first.
    """
    sock.sendall(FROM_UNITLS)
    server.wait_for(re.escape(FROM_UNITLS), count=connection)
    server.send(FROM_CLI)
    assert recv_exactly(sock, len(FROM_CLI)) == FROM_CLI
    sock.close()


# -- handshake, data, and what each side reports ------------------------------------


@VERSIONS
def test_unitls_client_to_s_server(version, ca, server_cert, pem_files, s_server, iana_id):
    server = s_server(
        "-cert", str(pem_files.server), "-naccept", "1", "-alpn", "h2,http/1.1",
        CLI_VERSION_FLAG[version],
    )  # fmt: skip
    config = client_configuration(ca, version=version, alpn=[HTTP1, H2])
    with OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
        assert sock.negotiated_tls_version is version
        assert sock.negotiated_protocol() is H2  # the server's preference
        assert sock.getpeercert() == der(server_cert)
        cipher = sock.cipher()
        # s_server prints the connection details only once the handshake is over
        printed = server.wait_for(rb"CIPHER is (\S+)")
        talk_to_s_server(sock, server)

    assert server.wait() == 0
    output = server.output
    assert iana_id[printed.group(1).decode()] == cipher
    assert b"ALPN protocols advertised by the client: http/1.1, h2" in output
    assert b"ALPN protocols selected: h2" in output
    assert b"Client certificate" not in output


@VERSIONS
def test_s_client_to_unitls_server(version, ca, server_cert, pem_files, s_client, iana_id):
    config = server_configuration(server_cert, version=version, alpn=[H2, HTTP1])
    seen, result = serve_s_client(
        s_client, config, *verify_args(pem_files), "-alpn", "http/1.1,h2",
        CLI_VERSION_FLAG[version],
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert seen.version is version
    assert seen.alpn is H2
    assert seen.peercert is None
    summary = re.search(rb"New, (TLSv1\.[23]), Cipher is (\S+)", out)
    assert summary, out
    assert summary.group(1).decode() == version.value
    assert iana_id[summary.group(2).decode()] == seen.cipher
    assert b"ALPN protocol: h2" in out
    assert b"Verify return code: 0 (ok)" in out
    assert printed_cert(out, b"Server certificate") == der(server_cert)
    assert FROM_CLI in out


def test_unitls_client_answers_key_update_from_s_server(ca, pem_files, s_server):
    """TLS 1.3 KeyUpdate (update_requested) from the server mid-connection."""
    server = s_server("-cert", str(pem_files.server), "-naccept", "1", "-tls1_3")
    config = client_configuration(ca)
    with OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
        server.wait_for(rb"CIPHER is")
        sock.sendall(b"before the update\n")
        server.wait_for(rb"before the update\n")
        server.send(b"hello before\n")
        # Reading it also consumes the session tickets, so the socket is now empty.
        assert recv_exactly(sock, 13) == b"hello before\n"
        server.send(b"K\n")  # s_server: SSL_key_update(SSL_KEY_UPDATE_REQUESTED)
        # The KeyUpdate record arriving shows s_server has handled "K", so the next
        # line cannot reach it in the same read (it would be dropped as part of "K").
        readable, _, _ = select.select([sock.fileno()], [], [], WAIT)
        assert readable
        server.send(FROM_CLI)
        assert recv_exactly(sock, len(FROM_CLI)) == FROM_CLI  # new keys, server -> client
        sock.sendall(b"after the update\n")  # and client -> server
        server.wait_for(rb"after the update\n")
        sock.close()
    assert server.wait() == 0


# -- ALPN ------------------------------------------------------------------------------

PROTOCOLS = [*unitls.NextProtocol, b"bla"]


def protocol_id(protocol: unitls.NextProtocol | bytes) -> str:
    return protocol.name if isinstance(protocol, unitls.NextProtocol) else repr(protocol)


def wire(protocol: unitls.NextProtocol | bytes) -> bytes:
    return protocol.value if isinstance(protocol, unitls.NextProtocol) else protocol


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=protocol_id)
def test_alpn_unitls_client_to_s_server(protocol, ca, pem_files, s_server):
    offered = f"not-this,{wire(protocol).decode()}"
    server = s_server("-cert", str(pem_files.server), "-naccept", "1", "-alpn", offered)
    config = client_configuration(ca, alpn=[protocol, b"unknown-here"])
    with OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
        negotiated = sock.negotiated_protocol()
        server.wait_for(rb"CIPHER is")
        talk_to_s_server(sock, server)
    assert negotiated == protocol
    assert type(negotiated) is type(protocol)
    assert f"ALPN protocols selected: {wire(protocol).decode()}\n".encode() in server.output


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=protocol_id)
def test_alpn_s_client_to_unitls_server(protocol, ca, server_cert, pem_files, s_client):
    config = server_configuration(server_cert, alpn=[b"not-offered", protocol])
    offered = f"{HTTP1.value.decode()},{wire(protocol).decode()}"
    if protocol is HTTP1:
        offered = "http/1.1"
    seen, result = serve_s_client(s_client, config, *verify_args(pem_files), "-alpn", offered)
    assert result.returncode == 0, result.stderr
    assert seen.alpn == protocol
    assert type(seen.alpn) is type(protocol)
    assert f"ALPN protocol: {wire(protocol).decode()}\n".encode() in result.stdout


def test_alpn_s_client_no_overlap_negotiates_nothing(ca, server_cert, pem_files, s_client):
    config = server_configuration(server_cert, alpn=[H2])
    seen, result = serve_s_client(s_client, config, *verify_args(pem_files), "-alpn", "http/1.1")
    assert result.returncode == 0, result.stderr
    assert seen.alpn is None
    assert b"No ALPN negotiated" in result.stdout
    assert FROM_CLI in result.stdout


def test_alpn_s_server_no_overlap_is_a_tls_error(ca, pem_files, s_server):
    # Unlike CPython and unitls, s_server answers "no overlap" with a fatal alert.
    server = s_server("-cert", str(pem_files.server), "-naccept", "1", "-alpn", "h2")
    config = client_configuration(ca, alpn=[HTTP1])
    with pytest.raises(unitls.TLSError) as failed:
        OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT)
    assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
    assert "application protocol" in str(failed.value).lower()


def test_alpn_s_server_without_alpn(ca, pem_files, s_server):
    server = s_server("-cert", str(pem_files.server), "-naccept", "1")
    config = client_configuration(ca, alpn=[H2, HTTP1])
    with OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
        assert sock.negotiated_protocol() is None
        server.wait_for(rb"CIPHER is")
        talk_to_s_server(sock, server)


# -- client authentication ---------------------------------------------------------


@VERSIONS
def test_unitls_client_cert_to_s_server_verify(
    version, ca, client_ca, client_cert, pem_files, s_server
):
    server = s_server(
        "-cert", str(pem_files.server), "-naccept", "1", "-Verify", "1",
        "-CAfile", str(pem_files.client_ca), "-verify_return_error", CLI_VERSION_FLAG[version],
    )  # fmt: skip
    config = client_configuration(ca, version=version, cert=client_cert)
    with OpenSSLClientContext(config).connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
        server.wait_for(rb"CIPHER is")
        talk_to_s_server(sock, server)
    assert server.wait() == 0
    assert printed_cert(server.output, b"Client certificate") == der(client_cert)
    assert b"verify error" not in server.output


@VERSIONS
def test_unitls_client_without_cert_to_s_server_verify(version, ca, pem_files, s_server):
    server = s_server(
        "-cert", str(pem_files.server), "-naccept", "1", "-Verify", "1",
        "-CAfile", str(pem_files.client_ca), CLI_VERSION_FLAG[version],
    )  # fmt: skip
    context = OpenSSLClientContext(client_configuration(ca, version=version))
    if version is TLS13:
        # The late failure: the client's handshake completes, the alert fails the read.
        sock = context.connect(("127.0.0.1", server.port), timeout=WAIT)
        with sock, pytest.raises(unitls.TLSError) as failed:
            sock.recv(1)
    else:
        with pytest.raises(unitls.TLSError) as failed:
            context.connect(("127.0.0.1", server.port), timeout=WAIT)
    assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
    server.wait_for(rb"(?i)peer did not return a certificate|certificate required")


@VERSIONS
def test_s_client_cert_to_unitls_server(
    version, ca, server_cert, client_ca, client_cert, pem_files, s_client
):
    config = server_configuration(server_cert, version=version, client_ca=client_ca)
    seen, result = serve_s_client(
        s_client, config, *verify_args(pem_files), CLI_VERSION_FLAG[version],
        "-cert", str(pem_files.client), "-key", str(pem_files.client),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert seen.peercert == der(client_cert)
    assert FROM_CLI in result.stdout


@VERSIONS
def test_s_client_without_cert_rejected_by_unitls_server(
    version, ca, server_cert, client_ca, pem_files, s_client
):
    config = server_configuration(server_cert, version=version, client_ca=client_ca)
    with OpenSSLServerContext(config).connect(("127.0.0.1", 0), timeout=WAIT) as listener:
        listener.listen(1)
        done = s_client(
            listener.getsockname()[1],
            *verify_args(pem_files),
            CLI_VERSION_FLAG[version],
            stdin=FROM_UNITLS,
        )
        with pytest.raises(unitls.TLSError) as failed:
            listener.accept()
        assert not isinstance(failed.value, (unitls.WantReadError, unitls.WantWriteError))
        result = done.result(WAIT)
    assert result.returncode != 0
    assert re.search(rb"(?i)alert", result.stderr), result.stderr


# -- SNI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sni_leaves(ca: trustme.CA, server_cert: trustme.LeafCert) -> dict[str, trustme.LeafCert]:
    return {
        "default": server_cert,  # localhost, 127.0.0.1, ::1
        "a": ca.issue_cert("a.test"),
        "wild": ca.issue_cert("*.wild.test"),
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-servername", "a.test", "-verify_hostname", "a.test"], "a"),
        (["-servername", "x.wild.test", "-verify_hostname", "x.wild.test"], "wild"),
        (["-servername", "localhost", "-verify_hostname", "localhost"], "default"),
        (["-servername", "unknown.test"], "default"),
        (["-noservername", "-verify_ip", "127.0.0.1"], "default"),
    ],
    ids=["a.test", "x.wild.test", "localhost", "unknown", "no-sni"],
)
def test_sni_s_client_servername(args, expected, sni_leaves, pem_files, s_client):
    config = server_configuration(
        sni_leaves["default"], sni_leaves["a"], sni_leaves["wild"], alpn=[H2, HTTP1]
    )
    seen, result = serve_s_client(
        s_client,
        config,
        *verify_args(pem_files, name=None),
        *args,
        "-alpn",
        "http/1.1,h2",
    )
    assert result.returncode == 0, result.stderr
    assert printed_cert(result.stdout, b"Server certificate") == der(sni_leaves[expected])
    # ALPN still works after SNI switched the chain.
    assert seen.alpn is H2
    assert b"ALPN protocol: h2\n" in result.stdout


def test_s_client_sees_unitls_server_intermediate(ca, pem_files, s_client):
    leaf = ca.create_child_ca().issue_cert("localhost")
    _, result = serve_s_client(s_client, server_configuration(leaf), *verify_args(pem_files))
    assert result.returncode == 0, result.stderr
    # s_client trusts only the root, so verification needs the intermediate unitls sent.
    assert b"Verify return code: 0 (ok)" in result.stdout
    chain = result.stdout.split(b"Certificate chain", 1)[1].split(b"---", 1)[0]
    assert re.findall(rb"^ (\d) s:", chain, re.M) == [b"0", b"1"]
    assert printed_cert(result.stdout, b"Server certificate") == der(leaf)


# -- session resumption ---------------------------------------------------------------


@VERSIONS
def test_unitls_client_resumes_with_s_server(version, ca, server_cert, pem_files, s_server):
    server = s_server(
        "-cert", str(pem_files.server), "-naccept", "2", CLI_VERSION_FLAG[version]
    )  # fmt: skip
    context = OpenSSLClientContext(client_configuration(ca, version=version))
    for connection in (1, 2):
        with context.connect(("127.0.0.1", server.port), timeout=WAIT) as sock:
            assert sock.getpeercert() == der(server_cert)
            server.wait_for(rb"CIPHER is", count=connection)
            # The client reads data (processing TLS 1.3 tickets), then closes cleanly.
            talk_to_s_server(sock, server, connection)
    assert server.wait() == 0
    connections = server.output.split(b"CIPHER is")[1:]
    assert len(connections) == 2
    assert b"Reused session-id" not in connections[0]
    assert b"Reused session-id" in connections[1]
    assert re.search(rb"\s+1 session cache hits", server.output)


@VERSIONS
def test_s_client_resumes_with_unitls_server(
    version, ca, server_cert, pem_files, s_client, tmp_path
):
    config = server_configuration(server_cert, version=version)
    session = tmp_path / "session.pem"
    server_context = OpenSSLServerContext(config)
    outputs = []
    with server_context.connect(("127.0.0.1", 0), timeout=WAIT) as listener:
        listener.listen(1)
        port = listener.getsockname()[1]
        for flag in ("-sess_out", "-sess_in"):
            done = s_client(port, *verify_args(pem_files), flag, str(session), stdin=FROM_UNITLS)
            conn, _ = listener.accept()
            with conn:
                exchange(conn)
            result = done.result(WAIT)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
    assert re.search(rb"New, TLSv1\.[23], Cipher is", outputs[0])
    assert re.search(rb"Reused, TLSv1\.[23], Cipher is", outputs[1]), outputs[1]
