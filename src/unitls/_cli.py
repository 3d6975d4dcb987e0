"""The `unitls` command-line tool (also `python -m unitls`).

- `unitls demo` (the default): a throwaway CA, a TLS echo server on 127.0.0.1
  and a unitls client, all in memory; prints what was negotiated.
- `unitls connect HOST:PORT`: like `openssl s_client`. Handshakes, prints the
  connection summary on stderr, then relays stdin to the server and the server's
  data to stdout (byte for byte) until the server closes.
- `unitls serve --cert FILE --key FILE`: like `openssl s_server`, an echo server
  that prints each connection's summary.

Exit codes: 0 success, 1 TLS or network failure (one line on stderr, no
traceback), 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import select
import socket
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import IO, Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

__all__ = ["main"]

_CHUNK = 64 * 1024
_DEMO_ALPN = [unitls.NextProtocol.H2, unitls.NextProtocol.HTTP1]
_DEMO_MESSAGE = b"hello from unitls"
_DEMO_TIMEOUT = 10.0
_NO_ENCRYPTION = serialization.NoEncryption()
_SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH


# -- argument parsing ------------------------------------------------------------------


def _address(text: str) -> tuple[str, int]:
    """Parse `HOST:PORT` or `[IPv6]:PORT`."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        port = rest[1:] if bracket and rest.startswith(":") else ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{host!r} is not an IPv6 address") from None
    else:
        host, _, port = text.rpartition(":")
        if ":" in host:
            raise argparse.ArgumentTypeError(f"write IPv6 addresses as [ADDRESS]:PORT, not {text}")
    if not host or not port:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, _port(port, lowest=1)


def _port(text: str, lowest: int = 0) -> int:
    if not text.isdigit() or not lowest <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (use {lowest}-65535)")
    return int(text)


def _alpn(text: str) -> list[bytes]:
    protocols = [item.strip().encode() for item in text.split(",")]
    if not all(1 <= len(p) <= 255 for p in protocols):
        raise argparse.ArgumentTypeError(f"invalid ALPN list {text!r} (e.g. h2,http/1.1)")
    return protocols


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unitls", description="PEP 748 TLS on pyOpenSSL: demo, client and echo server."
    )
    parser.add_argument("--version", action="version", version=f"unitls {unitls.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="handshake with an in-memory CA and echo server (default)")

    connect = commands.add_parser(
        "connect", help="connect to a TLS server and relay stdin/stdout (like s_client)"
    )
    connect.add_argument("address", type=_address, metavar="HOST:PORT", help="[::1]:443 for IPv6")
    connect.add_argument("--ca", metavar="FILE", help="trust these PEM/DER CAs, not the system's")
    connect.add_argument("--alpn", type=_alpn, default=[], metavar="LIST", help="e.g. h2,http/1.1")
    connect.add_argument(
        "--insecure", action="store_true", help="do not verify the certificate (testing only)"
    )
    connect.add_argument("--servername", metavar="NAME", help="name to send and check (SNI)")
    connect.add_argument("--timeout", type=_seconds, default=10.0, metavar="S", help="seconds")

    serve = commands.add_parser("serve", help="run a TLS echo server (like s_server)")
    serve.add_argument("--cert", required=True, metavar="FILE", help="leaf certificate (PEM/DER)")
    serve.add_argument("--key", required=True, metavar="FILE", help="its private key (PEM/DER)")
    serve.add_argument("--chain", metavar="FILE", help="intermediate certificates (PEM)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8443, help="0 picks a free port")
    serve.add_argument("--alpn", type=_alpn, default=[], metavar="LIST", help="e.g. h2,http/1.1")
    serve.add_argument("--once", action="store_true", help="exit after one connection")
    return parser


# -- certificates and summaries ----------------------------------------------------------


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty)"


def _key_type(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name} ({key.curve.key_size} bits)"
    name = type(key).__name__.removesuffix("PublicKey")  # RSA, DSA, Ed25519, Ed448
    return f"{name} ({key.key_size} bits)" if hasattr(key, "key_size") else name


def _certificate_lines(der: bytes | None) -> list[str]:
    if der is None:
        return ["  Peer certificate: none"]
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)]
        names += [f"IP:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    when = "%Y-%m-%d %H:%M:%S UTC"
    return [
        "  Peer certificate:",
        f"    Subject:     {_name(cert.subject)}",
        f"    SANs:        {', '.join(names) or '(none)'}",
        f"    Issuer:      {_name(cert.issuer)}",
        f"    Valid:       {cert.not_valid_before_utc.strftime(when)}"
        f" to {cert.not_valid_after_utc.strftime(when)}",
        f"    Key:         {_key_type(cert.public_key())}",
        f"    SHA-256:     {cert.fingerprint(hashes.SHA256()).hex(':').upper()}",
    ]


def _summary(title: str, conn: unitls.TLSBuffer | unitls.TLSSocket) -> str:
    """A readable block describing a completed handshake."""
    version = conn.negotiated_tls_version
    cipher = conn.cipher()
    if isinstance(cipher, unitls.CipherSuite):
        cipher_text = f"{cipher.name} (0x{cipher.value:04X})"
    else:
        cipher_text = "(none)" if cipher is None else f"0x{cipher:04X}"
    protocol = conn.negotiated_protocol()
    if isinstance(protocol, unitls.NextProtocol):
        protocol = protocol.value
    lines = [
        title,
        f"  TLS version:   {version.value if version else '(none)'}",
        f"  Cipher suite:  {cipher_text}",
        f"  ALPN:          {protocol.decode('ascii', 'replace') if protocol else '(none)'}",
        *_certificate_lines(conn.getpeercert()),
    ]
    return "\n".join(lines) + "\n"


def _demo_credentials() -> tuple[bytes, bytes, bytes]:
    """A throwaway CA and a leaf it signed for localhost and 127.0.0.1.

    Returns:
        (CA certificate, leaf certificate, leaf private key), all PEM, in memory.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("unitls demo CA", ca_key.public_key(), ca_key, None)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = _certificate("localhost", leaf_key.public_key(), ca_key, ca, san)
    pem = serialization.Encoding.PEM
    key = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, _NO_ENCRYPTION)
    return ca.public_bytes(pem), leaf.public_bytes(pem), key


def _certificate(
    common_name: str,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A certificate valid for a day: a self-signed CA when `issuer` is None, else a server leaf.

    The backend verifies with X509_STRICT, which wants key usage on CAs and key
    identifiers on every certificate, so both are set.
    """
    is_ca = issuer is None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    # KeyUsage fields: digital_signature, content_commitment, key_encipherment,
    # data_encipherment, key_agreement, key_cert_sign, crl_sign, encipher_only, decipher_only.
    usage = x509.KeyUsage(not is_ca, False, False, False, False, is_ca, is_ca, False, False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(is_ca, 0 if is_ca else None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([_SERVER_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


# -- commands --------------------------------------------------------------------------


def _echo(conn: unitls.TLSSocket) -> None:
    """Send back everything received until the client closes, then close."""
    try:
        while data := conn.recv(_CHUNK):
            view = memoryview(data)
            while view:
                view = view[conn.send(view) :]
    finally:
        conn.close(force=True)


def _demo(out: IO[str]) -> int:
    ca_pem, leaf_pem, key_pem = _demo_credentials()
    chain = unitls.SigningChain(
        leaf=(unitls.Certificate.from_buffer(leaf_pem), unitls.PrivateKey.from_buffer(key_pem))
    )
    server_config = unitls.TLSServerConfiguration(
        certificate_chain=[chain], inner_protocols=_DEMO_ALPN
    )
    listener = OPENSSL_IMPLEMENTATION.server_context(server_config).connect(("127.0.0.1", 0))
    listener.settimeout(_DEMO_TIMEOUT)
    listener.listen(1)
    host, port = listener.getsockname()

    def serve_one() -> None:
        try:
            _echo(listener.accept()[0])
        except (unitls.TLSError, OSError):
            pass  # the client reports the failure

    thread = threading.Thread(target=serve_one, name="unitls-demo-server", daemon=True)
    thread.start()
    out.write(f"unitls {unitls.__version__} demo: in-memory CA, echo server on {host}:{port}\n")
    client_config = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(ca_pem), inner_protocols=_DEMO_ALPN
    )
    try:
        with OPENSSL_IMPLEMENTATION.client_context(client_config).connect((host, port)) as sock:
            sock.settimeout(_DEMO_TIMEOUT)
            out.write(_summary(f"Connected to {host}:{port} (certificate verified)", sock))
            sock.sendall(_DEMO_MESSAGE)
            received = b""
            while len(received) < len(_DEMO_MESSAGE) and (data := sock.recv(_CHUNK)):
                received += data
    finally:
        listener.close()
        thread.join(_DEMO_TIMEOUT)
    if received != _DEMO_MESSAGE:
        raise RuntimeError(f"echo mismatch: sent {_DEMO_MESSAGE!r}, received {received!r}")
    out.write(f"Echo: sent {_DEMO_MESSAGE!r}, received it back intact\n")
    _demo_plugins(out, ca_pem, leaf_pem, key_pem)
    return 0


def _demo_plugins(out: IO[str], ca_pem: bytes, leaf_pem: bytes, key_pem: bytes) -> None:
    """Run the demos other packages register under the `unitls.demo` entry point.

    The HTTP demo lives in `unitls_integrations` (it needs HTTP libraries, which the
    core never imports); it receives this demo's CA and server certificate.
    """
    for entry_point in sorted(entry_points(group="unitls.demo"), key=lambda ep: ep.name):
        try:
            entry_point.load()(out, ca_pem, leaf_pem, key_pem)
        except ImportError as exc:
            out.write(
                f"\n{entry_point.name.upper()} demo skipped: {exc} "
                "(install it with: python -m pip install 'unitls[demo]')\n"
            )


def _send_all(sock: socket.socket, buffer: unitls.TLSBuffer) -> None:
    while data := buffer.process_outgoing(_CHUNK):
        sock.sendall(data)


def _connect(
    args: argparse.Namespace, stdin: IO[bytes] | None, out: IO[bytes], err: IO[str]
) -> int:
    config = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_file(args.ca) if args.ca else None,
        inner_protocols=args.alpn,
    )
    host, port = args.address
    context: unitls.ClientContext
    if args.insecure:
        from .insecure import InsecureConfiguration
        from .insecure.openssl import OPENSSL_INSECURE_IMPLEMENTATION

        insecure = InsecureConfiguration(disable_hostname_check=True, disable_verification=True)
        context = OPENSSL_INSECURE_IMPLEMENTATION.insecure_client_context(config, insecure)
    else:
        context = OPENSSL_IMPLEMENTATION.client_context(config)
    buffer = context.create_buffer(args.servername or host)
    with socket.create_connection((host, port), timeout=args.timeout) as sock:
        while True:
            try:
                buffer.do_handshake()
                break
            except unitls.WantReadError:
                _send_all(sock, buffer)
                buffer.process_incoming(sock.recv(_CHUNK))
            except unitls.TLSError:
                try:
                    _send_all(sock, buffer)  # the alert tells the server why
                except OSError:
                    pass
                raise
        _send_all(sock, buffer)
        verified = "not verified: --insecure" if args.insecure else "certificate verified"
        err.write(_summary(f"Connected to {_label(host, port)} ({verified})", buffer))
        err.flush()
        _relay(sock, buffer, stdin, out, args.timeout)
    return 0


def _relay(
    sock: socket.socket,
    buffer: unitls.TLSBuffer,
    stdin: IO[bytes] | None,
    out: IO[bytes],
    timeout: float,
) -> None:
    """Copy stdin to the server and the server's plaintext to `out` until it closes.

    A thread feeds stdin into a socket pair, so one `select` waits for both sides
    (Windows can select on sockets only). At stdin EOF we send close_notify and
    give the server `timeout` seconds to close its side.
    """
    local, remote = socket.socketpair()
    threading.Thread(target=_feed, args=(stdin, remote), name="unitls-stdin", daemon=True).start()
    sources, deadline = [sock, local], None
    with local:
        while _deliver(buffer, out):
            _send_all(sock, buffer)
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return  # we closed our side and the server kept its own open: done
            ready = select.select(sources, [], [], wait)[0]
            if sock in ready:
                buffer.process_incoming(sock.recv(_CHUNK))  # b"" signals transport EOF
            if local in ready:
                data = memoryview(local.recv(_CHUNK))
                if not data:  # stdin EOF
                    sources.remove(local)
                    deadline = time.monotonic() + timeout
                    try:
                        buffer.shutdown()
                    except unitls.WantReadError:
                        pass  # expected: the server has not closed yet
                while data:
                    try:
                        data = data[buffer.write(data) :]
                    except unitls.WantWriteError:
                        pass
                    _send_all(sock, buffer)
        try:  # the server sent close_notify: answer it
            buffer.shutdown()
        except unitls.TLSError:
            pass
        _send_all(sock, buffer)


def _deliver(buffer: unitls.TLSBuffer, out: IO[bytes]) -> bool:
    """Write all decrypted data to `out`; False once the server has closed cleanly."""
    while True:
        try:
            data = buffer.read(_CHUNK)
        except unitls.WantReadError:
            return True
        if not data:
            return False
        out.write(data)  # type: ignore[arg-type]  # read() without a buffer returns bytes
        out.flush()


def _feed(stdin: IO[bytes] | None, sink: socket.socket) -> None:
    with sink:
        read = getattr(stdin, "read1", getattr(stdin, "read", None))
        try:
            while read is not None and (data := read(_CHUNK)):
                sink.sendall(data)
        except (OSError, ValueError):
            pass  # stdin closed under us, or the relay ended first


def _serve(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    chain = [unitls.Certificate.from_buffer(c) for c in _read_chain(args.chain)]
    leaf = (unitls.Certificate.from_file(args.cert), unitls.PrivateKey.from_file(args.key))
    config = unitls.TLSServerConfiguration(
        certificate_chain=[unitls.SigningChain(leaf=leaf, chain=chain)], inner_protocols=args.alpn
    )
    listener = OPENSSL_IMPLEMENTATION.server_context(config).connect((args.host, args.port))
    lock = threading.Lock()  # one summary or error block at a time

    def handle(conn: unitls.TLSSocket, peer: tuple[str | None, int]) -> None:
        with lock:
            out.write(_summary(f"Connection from {_label(peer[0], peer[1])}", conn))
            out.flush()
        try:
            _echo(conn)
        except (unitls.TLSError, OSError) as exc:
            with lock:
                _report(err, exc)

    with listener:
        listener.listen(16)
        out.write(f"Listening on {_label(*listener.getsockname())}\n")
        out.flush()
        while True:
            try:
                conn, peer = listener.accept()
            except (unitls.TLSError, OSError) as exc:
                if args.once:
                    raise
                with lock:
                    _report(err, exc)
                continue
            if args.once:
                handle(conn, peer)
                return 0
            threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


def _label(host: str | None, port: int) -> str:
    return f"[{host}]:{port}" if host and ":" in host else f"{host}:{port}"


def _read_chain(path: str | None) -> list[bytes]:
    """Split a PEM file of intermediates into one buffer per certificate."""
    if path is None:
        return []
    try:
        with open(path, "rb") as f:
            certs = x509.load_pem_x509_certificates(f.read())
    except (OSError, ValueError) as exc:  # unreadable, or no PEM certificate in it
        raise ValueError(f"--chain: cannot load {path!r}: {exc}") from exc
    return [c.public_bytes(serialization.Encoding.PEM) for c in certs]


# -- entry point -----------------------------------------------------------------------


def _report(err: IO[str], exc: BaseException) -> int:
    """Print one line for a failure and return the exit code."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (unitls.ConfigurationError, ValueError, TypeError)):
        err.write(f"unitls: configuration error: {message}\n")
        return 2
    if isinstance(exc, unitls.TLSError):
        err.write(f"unitls: TLS error: {message}\n")
    elif isinstance(exc, OSError):
        err.write(f"unitls: connection error: {message}\n")
    else:
        err.write(f"unitls: error: {message}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status.

    Args:
        argv: The arguments after the program name; `None` uses `sys.argv[1:]`.

    Returns:
        0 on success, 1 on a TLS or network failure, 2 on a usage or configuration
        error, 130 when interrupted. Failures are one line on stderr, never a traceback.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage (or --help / --version)
        return exc.code if isinstance(exc.code, int) else 2
    # SecurityWarning (from --insecure) as one line, like every other message.
    saved_format = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *_: (
        f"unitls: {category.__name__}: {message}\n"
    )
    try:
        if args.command == "connect":
            stdin = cast("IO[bytes] | None", getattr(sys.stdin, "buffer", sys.stdin))
            return _connect(args, stdin, cast("IO[bytes]", sys.stdout.buffer), sys.stderr)
        if args.command == "serve":
            return _serve(args, sys.stdout, sys.stderr)
        return _demo(sys.stdout)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, never a traceback
        return _report(sys.stderr, exc)
    finally:
        warnings.formatwarning = saved_format
