"""Regenerate the fuzz seed corpora from real unitls sessions, in memory.

    python fuzz/record_seeds.py              # rewrite fuzz/corpus/{client,server}/
    python fuzz/record_seeds.py --new-certs  # first make new fixed credentials (rarely)

Replay seeds: real client/server buffer pairs (TLS 1.3 and 1.2, with and without
ALPN, with client certificates, resumed sessions, application data, close_notify,
and handshakes that end in an alert) run with the fixed credentials in
`fuzz/certs/`; every transfer one side *receives* is kept as one chunk, and the
chunks are written in the harness's replay format (`fuzz_buffer.encode_replay`):
`corpus/server/` holds what a server receives (ClientHello, the client's second
flight, records after the handshake, alerts), `corpus/client/` what a client
receives (the server's flight, session tickets, records, alerts).

Live seeds: short scripts for the harness's live mode (`fuzz_buffer.encode_live`):
a complete session per configuration variant, resumption, ragged and clean EOF,
corruption, split delivery, back-pressure in both directions.

The credentials are generated once (`--new-certs`) and committed: a CA and three
leaves, all ECDSA P-256, valid for 100 years. The CA's key is not kept. A new set
means new recordings, so `--new-certs` rewrites the corpus too. `server.pem`
covers localhost, 127.0.0.1 and ::1; `wrongname.pem` (same CA) covers only
wrong.invalid, for the hostname-mismatch seeds.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fuzz_buffer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fuzz_buffer import (
    CERTS,
    MAX_CHUNK,
    MAX_CHUNKS,
    SERVER_HOSTNAME,
    encode_live,
    encode_replay,
    op,
)

CORPUS = fuzz_buffer.HERE / "corpus"
VALIDITY = datetime.timedelta(days=365 * 100)

# -- the fixed credentials ------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unitls fuzzing"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_credentials(directory: Path) -> None:
    """Write ca.pem and server/client/wrongname .pem + .key into `directory`."""
    start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    start -= datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("unitls fuzzing CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(stem: str, names: list[x509.GeneralName], usage: x509.ObjectIdentifier) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"unitls fuzzing {stem}"))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{stem}.key").write_bytes(_pem_key(key))

    ip = x509.IPAddress
    leaf(
        "server",
        [
            x509.DNSName("localhost"),
            ip(ipaddress.ip_address("127.0.0.1")),
            ip(ipaddress.ip_address("::1")),
        ],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    leaf("client", [x509.DNSName("client.invalid")], ExtendedKeyUsageOID.CLIENT_AUTH)
    leaf("wrongname", [x509.DNSName("wrong.invalid")], ExtendedKeyUsageOID.SERVER_AUTH)


# -- recording real sessions --------------------------------------------------------------


class Session:
    """A client/server buffer pair; every transfer is kept as the receiver's chunk."""

    def __init__(self, client: Any, server: Any) -> None:
        env = fuzz_buffer.environment()
        self.want = env.WantReadError
        self.error = env.TLSError
        self.client, self.server = client, server
        self.received: dict[str, list[bytes]] = {"client": [], "server": []}

    def send(self, sender: str) -> None:
        """Move what `sender` queued to the other side, as one flight."""
        source, dest, receiver = (
            (self.client, self.server, "server")
            if sender == "client"
            else (self.server, self.client, "client")
        )
        data = source.process_outgoing(1 << 20)
        if not data:
            return
        # A flight longer than a chunk arrives in several pieces, like TCP segments.
        for start in range(0, len(data), MAX_CHUNK):
            self.received[receiver].append(data[start : start + MAX_CHUNK])
        dest.process_incoming(data)

    def step(self, side: str) -> None:
        """Handshake if needed, then read everything that waits (errors are kept)."""
        buf = self.client if side == "client" else self.server
        try:
            buf.do_handshake()
            while buf.read(65536):
                pass
        except self.want:
            pass
        except self.error:
            pass  # the alert is still sent by send()
        self.send(side)

    def handshake(self) -> None:
        for _ in range(4):
            self.step("client")
            self.step("server")

    def write(self, side: str, data: bytes) -> None:
        buf = self.client if side == "client" else self.server
        buf.write(data)
        self.send(side)

    def close(self) -> None:
        """close_notify both ways: the client first."""
        try:
            self.client.shutdown()
        except self.want:
            pass
        self.send("client")
        self.step("server")
        self.server.shutdown()
        self.send("server")
        self.step("client")


def _pair(variant: str, client_context: Any = None) -> Session:
    env = fuzz_buffer.environment()
    context = client_context or env.impl.client_context(env.client_configs[variant])
    return Session(context.create_buffer(SERVER_HOSTNAME), env.new_buffer("server", variant))


def _full_session(session: Session) -> Session:
    session.handshake()
    session.write("client", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    session.write("client", b"x" * 1000)
    session.step("server")
    session.write("server", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    session.write("server", b"hello")
    session.step("client")
    session.close()
    return session


def _resumed(variant: str) -> Session:
    env = fuzz_buffer.environment()
    context = env.impl.client_context(env.client_configs[variant])
    _full_session(_pair(variant, context))  # stores the session in `context`
    return _full_session(_pair(variant, context))


def _server_with(stem: str, variant: str) -> Any:
    """A server buffer (variant's versions) presenting fuzz/certs/<stem>.pem."""
    import unitls

    env = fuzz_buffer.environment()
    base = env.server_configs[variant]
    chain = unitls.SigningChain(
        leaf=(
            unitls.Certificate.from_buffer((CERTS / f"{stem}.pem").read_bytes()),
            unitls.PrivateKey.from_buffer((CERTS / f"{stem}.key").read_bytes()),
        )
    )
    config = unitls.TLSServerConfiguration(
        certificate_chain=[chain],
        lowest_supported_version=base.lowest_supported_version,
        highest_supported_version=base.highest_supported_version,
    )
    return env.impl.server_context(config).create_buffer()


def _untrusted_server(variant: str) -> Any:
    """A server buffer with a certificate from a CA the harness does not trust."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        make_credentials(Path(tmp))
        import unitls

        env = fuzz_buffer.environment()
        base = env.server_configs[variant]
        chain = unitls.SigningChain(
            leaf=(
                unitls.Certificate.from_buffer((Path(tmp) / "server.pem").read_bytes()),
                unitls.PrivateKey.from_buffer((Path(tmp) / "server.key").read_bytes()),
            )
        )
        config = unitls.TLSServerConfiguration(
            certificate_chain=[chain],
            lowest_supported_version=base.lowest_supported_version,
            highest_supported_version=base.highest_supported_version,
        )
        return env.impl.server_context(config).create_buffer()


def _failed_handshake(client_variant: str, server: Any) -> Session:
    env = fuzz_buffer.environment()
    client = env.impl.client_context(env.client_configs[client_variant])
    session = Session(client.create_buffer(SERVER_HOSTNAME), server)
    session.handshake()
    return session


def _no_client_cert() -> Session:
    server = fuzz_buffer.environment().new_buffer("server", "tls12-mutual")
    return _failed_handshake("tls12", server)


# (name, variant the client role replays with, the server role's, how to record it)
SCENARIOS: list[tuple[str, str, str, Callable[[], Session]]] = [
    *[(v, v, v, lambda v=v: _full_session(_pair(v))) for v in fuzz_buffer.VARIANTS],
    ("resumed-tls13", "default", "default", lambda: _resumed("default")),
    ("resumed-tls12", "tls12", "tls12", lambda: _resumed("tls12")),
    # A TLS 1.2-only server refuses a TLS 1.3-only client: a protocol_version alert.
    (
        "alert-version",
        "tls13",
        "tls12",
        lambda: _failed_handshake("tls13", _server_with("server", "tls12")),
    ),
    # A TLS 1.2 server requires a certificate that the client does not send.
    ("alert-no-client-cert", "tls12", "tls12-mutual", _no_client_cert),
    # TLS 1.2 certificates travel in clear, so a replayed flight reaches verification.
    (
        "untrusted-tls12",
        "tls12",
        "tls12",
        lambda: _failed_handshake("tls12", _untrusted_server("tls12")),
    ),
    (
        "wrongname-tls12",
        "tls12",
        "tls12",
        lambda: _failed_handshake("tls12", _server_with("wrongname", "tls12")),
    ),
]


def replay_seeds() -> dict[str, dict[str, bytes]]:
    """role -> seed name -> input, from the recorded scenarios."""
    seeds: dict[str, dict[str, bytes]] = {"client": {}, "server": {}}
    for name, client_variant, server_variant, record in SCENARIOS:
        session = record()
        for role, chunks in session.received.items():
            if not chunks:
                continue
            variant = client_variant if role == "client" else server_variant
            full = chunks[:MAX_CHUNKS]
            seeds[role][f"replay-{name}-full"] = encode_replay(variant, full)
            seeds[role][f"replay-{name}-first-eof"] = encode_replay(variant, chunks[:1], eof=True)
            if len(chunks) > 2 and name in ("default", "tls12"):
                # Records after the handshake, to a buffer that never saw it.
                seeds[role][f"replay-{name}-midstream"] = encode_replay(variant, chunks[2:])
                # The first flight a byte at a time through its record header, then EOF.
                first = chunks[0]
                pieces = [first[i : i + 1] for i in range(6)] + [first[6:]]
                seeds[role][f"replay-{name}-trickle"] = encode_replay(
                    variant, [*pieces[: MAX_CHUNKS - 1], b""]
                )
    return seeds


def live_seeds() -> dict[str, bytes]:
    """Seeds for the live mode; the same scripts serve both roles."""
    handshake = [op.deliver_all(), op.deliver_all(), op.deliver_all()]
    session = [
        *handshake,
        op.peer_write(300),
        op.deliver_all(),
        op.target_write(300),
        op.deliver_all(),
        op.peer_shutdown(),
        op.deliver_all(),
        op.target_shutdown(),
        op.step(),
    ]
    seeds = {f"live-session-{v}": encode_live(v, session) for v in fuzz_buffer.VARIANTS}
    seeds["live-resume-tls13"] = encode_live("tls13", session, resume=True)
    seeds["live-resume-tls12"] = encode_live("tls12", session, resume=True)
    seeds["live-ragged-eof"] = encode_live(
        "default", [*handshake, op.peer_write(2000), op.deliver(1000), op.eof(), op.step()]
    )
    seeds["live-clean-eof"] = encode_live(
        "tls12",
        [*handshake, op.peer_write(10), op.peer_shutdown(), op.deliver_all(), op.eof(), op.step()],
    )
    seeds["live-flip-handshake"] = encode_live(
        "default", [op.flip(100, 0x01), op.deliver_all(), op.deliver_all(), op.step()]
    )
    seeds["live-flip-data"] = encode_live(
        "tls12", [*handshake, op.peer_write(100), op.flip(20, 0x40), op.deliver_all()]
    )
    seeds["live-split"] = encode_live(
        "mutual",
        [
            op.deliver_split(0),
            op.deliver_split(4),
            op.deliver_all(),
            op.peer_write(5000),
            op.deliver_split(11),
        ],
    )
    seeds["live-drop"] = encode_live(
        "default", [*handshake, op.peer_write(100), op.drop(5), op.deliver_all()]
    )
    seeds["live-inject"] = encode_live(
        "tls12-alpn",
        [op.deliver_all(), op.inject(bytes.fromhex("170303ffff") + b"\x00" * 16), op.deliver_all()],
    )
    seeds["live-backpressure-out"] = encode_live(
        "default",
        [*handshake, op.hold(output=True), *[op.target_write(65535, view=True)] * 6, op.hold()],
    )
    seeds["live-backpressure-in"] = encode_live(
        "tls13",
        [*handshake, op.hold(input=True), *[op.peer_write(65535)] * 6, op.deliver_all(), op.hold()],
    )
    seeds["live-halfclose"] = encode_live(
        "default",
        [
            *handshake,
            op.target_shutdown(),
            op.peer_write(700, view=True),
            op.deliver_all(arg=0b0110),
            op.peer_shutdown(),
            op.deliver_all(),
        ],
    )
    return seeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-certs", action="store_true", help="regenerate fuzz/certs first")
    args = parser.parse_args(argv)
    if args.new_certs or not (CERTS / "ca.pem").exists():
        make_credentials(CERTS)
        print(f"new credentials in {CERTS}")
    replay = replay_seeds()
    live = live_seeds()
    for role in fuzz_buffer.ROLES:
        directory = CORPUS / role
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        seeds = {**replay[role], **live}
        for name, data in sorted(seeds.items()):
            fuzz_buffer.run_one(role, data)  # every seed must pass the harness
            (directory / name).write_bytes(data)
        total = sum(len(d) for d in seeds.values())
        print(f"{role}: {len(seeds)} seeds, {total} bytes in {directory}")


if __name__ == "__main__":
    sys.exit(main())
