"""The `unitls` command line: demo, connect and serve, in subprocesses and in-process."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import re
import runpy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

import unitls
import unitls._cli
from unitls._cli import _address, _summary, main
from unitls.insecure import SecurityWarning
from unitls.openssl import OPENSSL_IMPLEMENTATION

TIMEOUT = 30.0
UNITLS = [sys.executable, "-m", "unitls"]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*UNITLS, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@contextlib.contextmanager
def serve_subprocess(
    files: dict[str, Path], *extra: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`unitls serve` with the test certificate on a free port; yields (process, port).

    The process is killed on exit if it is still running; callers that expect it to
    exit use `communicate()` inside the block.
    """
    argv = [*UNITLS, "serve", "--cert", str(files["cert"]), "--key", str(files["key"])]
    process = subprocess.Popen(
        [*argv, "--port", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"Listening on 127\.0\.0\.1:(\d+)\n", first)
        assert match, (first, process.stderr.read() if process.stderr else "")
        yield process, int(match.group(1))
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PEM files: a CA, a leaf (localhost, 127.0.0.1, ::1) signed by an intermediate, the
    intermediate, the leaf's key, and an unrelated CA."""
    root = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("localhost", "127.0.0.1", "::1")
    paths = {name: root / f"{name}.pem" for name in ("ca", "cert", "chain", "key", "other")}
    ca.cert_pem.write_to_path(paths["ca"])
    leaf.cert_chain_pems[0].write_to_path(paths["cert"])
    paths["chain"].write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems[1:]))
    leaf.private_key_pem.write_to_path(paths["key"])
    trustme.CA().cert_pem.write_to_path(paths["other"])
    return paths


@pytest.fixture
def stdin_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[bytes], None]]:
    """Replace sys.stdin with a real file holding the given bytes."""
    streams: list[BinaryIO] = []

    def install(data: bytes) -> None:
        path = tmp_path / f"stdin{len(streams)}"
        path.write_bytes(data)
        streams.append(path.open("rb"))
        monkeypatch.setattr(sys, "stdin", streams[-1])

    yield install
    for stream in streams:
        stream.close()


Handler = Callable[[unitls.TLSSocket], None]


def echo(conn: unitls.TLSSocket) -> None:
    while data := conn.recv(65536):
        conn.send(data)


@pytest.fixture(scope="module")
def cli_server_config(files: dict[str, Path]) -> unitls.TLSServerConfiguration:
    """The server configuration matching `files` (leaf, intermediate and key)."""
    chain = unitls.SigningChain(
        leaf=(
            unitls.Certificate.from_file(files["cert"]),
            unitls.PrivateKey.from_file(files["key"]),
        ),
        chain=[unitls.Certificate.from_file(files["chain"])],
    )
    return unitls.TLSServerConfiguration(certificate_chain=[chain])


@pytest.fixture
def tls_server(
    cli_server_config: unitls.TLSServerConfiguration,
) -> Iterator[Callable[..., tuple[str, int]]]:
    """Start a one-connection unitls server in a thread; returns its address."""
    threads: list[threading.Thread] = []
    listeners: list[unitls.TLSSocket] = []

    def start(
        handler: Handler = echo,
        config: unitls.TLSServerConfiguration = cli_server_config,
        host: str = "127.0.0.1",
    ) -> tuple[str, int]:
        listener = OPENSSL_IMPLEMENTATION.server_context(config).connect((host, 0))
        listener.settimeout(TIMEOUT)
        listener.listen(1)
        listeners.append(listener)

        def run_once() -> None:
            try:
                conn, _ = listener.accept()
            except (unitls.TLSError, OSError):
                return  # the client's failure is what the test checks
            try:
                handler(conn)
            except (unitls.TLSError, OSError):
                pass
            finally:
                conn.close(force=True)

        thread = threading.Thread(target=run_once, daemon=True)
        thread.start()
        threads.append(thread)
        address = listener.getsockname()
        assert address[0] is not None
        return address[0], address[1]

    yield start
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    for listener in listeners:
        listener.close()


# -- demo --------------------------------------------------------------------------------------


def check_demo_output(out: str) -> None:
    assert "TLS version:   TLSv1.3" in out
    assert re.search(r"Cipher suite:  TLS_(AES_256_GCM_SHA384|AES_128_GCM_SHA256|CHACHA20)", out)
    assert "ALPN:          h2" in out
    assert "Subject:     CN=localhost" in out
    assert "SANs:        DNS:localhost, IP:127.0.0.1" in out
    assert "Issuer:      CN=unitls demo CA" in out
    assert re.search(r"Valid: +\d{4}-\d\d-\d\d .* UTC to \d{4}-", out)
    assert "Key:         EC secp256r1 (256 bits)" in out
    assert "received it back intact" in out
    # The HTTP part (unitls_integrations, through the `unitls.demo` entry point; the
    # test extra installs hypercorn, so h2 is on offer).
    assert re.search(r"HTTP over unitls: hypercorn on https://localhost:\d+/", out)
    assert re.search(r"httpx, HTTP/2 allowed +ALPN h2 +server says: hello over HTTP/2", out)
    assert re.search(r"httpx, HTTP/1.1 only +ALPN http/1.1 +server says: hello over HTTP/1.1", out)
    assert re.search(r"urllib3 PoolManager +ALPN http/1.1 +server says: hello over HTTP/1.1", out)
    assert re.search(r"http.client +ALPN http/1.1 +server says: hello over HTTP/1.1", out)


@pytest.mark.parametrize("args", [["demo"], []], ids=["demo", "default"])
def test_demo_in_a_subprocess(args):
    result = run(*args)
    assert result.returncode == 0, result.stderr
    check_demo_output(result.stdout)
    assert result.stderr == ""


def test_demo_in_process(capsys):
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    check_demo_output(out)
    assert err == ""


def test_console_script_points_at_main():
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="unitls")
    assert entry.value == "unitls._cli:main"
    assert entry.load() is main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"unitls {unitls.__version__}"


# -- connect (in-process, against an in-test server) --------------------------------------------


def test_connect_relays_stdin_byte_exact_and_prints_the_summary(
    tls_server, files, stdin_with, capsysbinary
):
    host, port = tls_server()
    payload = b"hello\n" + bytes(range(256)) * 300  # binary, and several TLS records
    stdin_with(payload)
    assert main(["connect", f"{host}:{port}", "--ca", str(files["ca"]), "--alpn", "h2"]) == 0
    out, err = capsysbinary.readouterr()
    assert out == payload  # the summary goes to stderr, so stdout is only the server's data
    summary = err.decode()
    assert f"Connected to 127.0.0.1:{port} (certificate verified)\n" in summary
    assert "TLS version:   TLSv1.3" in summary
    assert "Cipher suite:  TLS_" in summary
    assert "ALPN:          (none)" in summary  # the in-test server offers no ALPN
    assert "SANs:        DNS:localhost, IP:127.0.0.1, IP:::1" in summary
    assert "Key:         EC secp256r1 (256 bits)" in summary
    assert re.search(r"SHA-256: +([0-9A-F]{2}:){31}[0-9A-F]{2}\n", summary)


def test_connect_negotiates_alpn(tls_server, cli_server_config, files, stdin_with, capsys):
    config = unitls.TLSServerConfiguration(
        certificate_chain=cli_server_config.certificate_chain,
        inner_protocols=[unitls.NextProtocol.HTTP1],
    )
    host, port = tls_server(config=config)
    stdin_with(b"")
    args = ["connect", f"{host}:{port}", "--ca", str(files["ca"]), "--alpn", "h2,http/1.1"]
    assert main(args) == 0
    assert "ALPN:          http/1.1" in capsys.readouterr().err


def test_connect_with_servername(tls_server, files, stdin_with, capsys):
    stdin_with(b"")
    host, port = tls_server()
    assert (
        main(["connect", f"{host}:{port}", "--ca", str(files["ca"]), "--servername", "localhost"])
        == 0
    )
    host, port = tls_server()
    args = ["connect", f"{host}:{port}", "--ca", str(files["ca"]), "--servername", "wrong.example"]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("unitls: TLS error: Certificate verify failed")
    assert "'wrong.example'" in err[-1]


def test_connect_over_ipv6(tls_server, files, stdin_with, capsys):
    # IPv6 is a supported feature: a machine without an IPv6 loopback fails this test
    # (tls_server binds ::1) rather than skipping it.
    host, port = tls_server(host="::1")
    stdin_with(b"six\n")
    assert main(["connect", f"[{host}]:{port}", "--ca", str(files["ca"])]) == 0
    out, err = capsys.readouterr()
    assert out == "six\n"
    assert f"Connected to [::1]:{port}" in err


def test_connect_with_the_wrong_ca_fails_on_one_line(tls_server, files, stdin_with, capsys):
    host, port = tls_server()
    stdin_with(b"never sent")
    assert main(["connect", f"{host}:{port}", "--ca", str(files["other"])]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "unitls: TLS error: Certificate verify failed: "
        "unable to get local issuer certificate (code 20)\n"
    )


def test_connect_insecure_warns_and_skips_verification(tls_server, files, stdin_with, capsys):
    host, port = tls_server()
    stdin_with(b"ping")
    with pytest.warns(SecurityWarning) as record:
        assert main(["connect", f"{host}:{port}", "--insecure", "--ca", str(files["other"])]) == 0
    assert len(record) == 3  # configuration, context, buffer
    out, err = capsys.readouterr()
    assert out == "ping"
    assert "(not verified: --insecure)" in err


def test_connect_when_the_server_closes_first(tls_server, files, monkeypatch, capsys):
    def greet_and_close(conn: unitls.TLSSocket) -> None:
        conn.send(b"bye\n")
        conn.close()  # close_notify, while the client still has stdin open

    host, port = tls_server(greet_and_close)
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, "rb")
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        assert main(["connect", f"{host}:{port}", "--ca", str(files["ca"])]) == 0
    finally:
        os.close(write_end)  # stdin EOF: lets the stdin reader thread finish
        stdin.close()
    assert capsys.readouterr().out == "bye\n"


def test_connect_gives_up_waiting_for_the_server_to_close(tls_server, files, stdin_with, capsys):
    done = threading.Event()

    def never_close(conn: unitls.TLSSocket) -> None:
        conn.send(conn.recv(100))
        assert conn.recv(100) == b""  # the client's close_notify
        done.wait(TIMEOUT)  # ...but this server keeps its side open

    host, port = tls_server(never_close)
    stdin_with(b"x")
    started = time.monotonic()
    try:
        args = ["connect", f"{host}:{port}", "--ca", str(files["ca"]), "--timeout", "0.5"]
        assert main(args) == 0
    finally:
        done.set()
    assert time.monotonic() - started < TIMEOUT / 2
    assert capsys.readouterr().out == "x"


def test_connect_reports_a_ragged_eof(files, stdin_with, capsys, cli_server_config):
    # A server that completes the handshake, then drops TCP without close_notify.
    context = OPENSSL_IMPLEMENTATION.server_context(cli_server_config)
    raw = socket.create_server(("127.0.0.1", 0))
    raw.settimeout(TIMEOUT)

    def serve() -> None:
        conn, _ = raw.accept()
        with conn:
            buffer = context.create_buffer()
            while True:
                try:
                    buffer.do_handshake()
                    break
                except unitls.WantReadError:
                    conn.sendall(buffer.process_outgoing(65536))
                    buffer.process_incoming(conn.recv(65536))
            conn.sendall(buffer.process_outgoing(65536))
            buffer.write(b"partial")
            conn.sendall(buffer.process_outgoing(65536))
            # FIN without close_notify; then wait for the client to go (no RST).
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    stdin_with(b"")
    try:
        port = raw.getsockname()[1]
        assert main(["connect", f"127.0.0.1:{port}", "--ca", str(files["ca"])]) == 1
    finally:
        thread.join(TIMEOUT)
        raw.close()
    out, err = capsys.readouterr()
    assert out == "partial"
    assert err.endswith("(ragged EOF)\n")
    assert err.splitlines()[-1].startswith("unitls: TLS error: ")


def test_connect_refused_is_a_connection_error(capsys):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    assert main(["connect", f"127.0.0.1:{port}", "--timeout", "5"]) == 1
    assert capsys.readouterr().err.startswith("unitls: connection error: ")


def test_connect_with_a_missing_ca_file_is_a_configuration_error(tmp_path, capsys):
    missing = tmp_path / "missing.pem"
    assert main(["connect", "127.0.0.1:443", "--ca", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unitls: configuration error: trust_store: cannot read")
    assert err.count("\n") == 1


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["connect"],
        ["connect", "localhost"],
        ["connect", "::1:443"],
        ["connect", "[::1:443"],
        ["connect", "[not-v6]:443"],
        ["connect", "host:0"],
        ["connect", "host:70000"],
        ["connect", "host:https"],
        ["connect", "host:443", "--alpn", "h2,,http/1.1"],
        ["connect", "host:443", "--timeout", "0"],
        ["connect", "host:443", "--timeout", "soon"],
        ["serve"],
        ["serve", "--cert", "c.pem"],
        ["serve", "--cert", "c.pem", "--key", "k.pem", "--port", "-1"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage: unitls" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:443", ("localhost", 443)),
        ("127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("[::1]:443", ("::1", 443)),
        ("[fe80::1%lo]:1", ("fe80::1%lo", 1)),
        ("example.com:65535", ("example.com", 65535)),
    ],
)
def test_address_parsing(text, expected):
    assert _address(text) == expected


# -- serve -------------------------------------------------------------------------------------


def test_serve_once_and_connect_in_subprocesses(files):
    extra = ("--chain", str(files["chain"]), "--alpn", "h2,http/1.1", "--once")
    with serve_subprocess(files, *extra) as (serve, port):
        client = run(
            "connect", f"127.0.0.1:{port}", "--ca", str(files["ca"]), "--alpn", "h2",
            stdin=b"hello over TLS\n",
        )  # fmt: skip
        out, err = serve.communicate(timeout=TIMEOUT)
    assert client.returncode == 0, client.stderr
    assert client.stdout == "hello over TLS\n"
    assert "ALPN:          h2" in client.stderr
    assert "(certificate verified)" in client.stderr
    assert serve.returncode == 0, err
    assert "Connection from 127.0.0.1:" in out
    assert "TLS version:   TLSv1.3" in out
    assert "ALPN:          h2" in out
    assert "Peer certificate: none" in out


def test_failing_connect_in_a_subprocess_exits_1_with_one_line(files):
    with serve_subprocess(files, "--once") as (serve, port):
        client = run("connect", f"127.0.0.1:{port}", "--ca", str(files["other"]))
        _, err = serve.communicate(timeout=TIMEOUT)
    assert client.returncode == 1
    assert client.stdout == ""
    assert client.stderr.count("\n") == 1
    assert client.stderr.startswith("unitls: TLS error: Certificate verify failed")
    assert "Traceback" not in client.stderr
    # The server saw the client's alert, reported it on one line and (--once) exits 1.
    assert serve.returncode == 1
    assert err.startswith("unitls: TLS error: ")
    assert err.count("\n") == 1


def test_insecure_connect_in_a_subprocess_prints_the_warning(tls_server):
    host, port = tls_server()
    result = run("connect", f"{host}:{port}", "--insecure", stdin=b"hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi"
    assert "unitls: SecurityWarning: " in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_in_a_subprocess_exits_2():
    result = run("connect")
    assert result.returncode == 2
    assert "usage: unitls connect" in result.stderr


def test_serve_in_process_echoes_and_summarises(files, capsys):
    argv = ["serve", "--cert", str(files["cert"]), "--key", str(files["key"])]
    argv += ["--chain", str(files["chain"]), "--port", "0", "--once"]
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    seen = ""
    deadline = time.monotonic() + TIMEOUT
    while (match := re.search(r"Listening on 127\.0\.0\.1:(\d+)", seen)) is None:
        assert time.monotonic() < deadline, seen
        assert thread.is_alive(), seen
        time.sleep(0.01)
        seen += capsys.readouterr().out
    config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_file(files["ca"]))
    address = ("127.0.0.1", int(match.group(1)))
    with OPENSSL_IMPLEMENTATION.client_context(config).connect(address) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendall(b"echo me")
        assert sock.recv(100) == b"echo me"
    thread.join(TIMEOUT)
    assert result == [0]
    out = capsys.readouterr().out
    assert "Connection from 127.0.0.1:" in out
    assert "Peer certificate: none" in out


def test_serve_without_once_handles_several_clients(files):
    config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_file(files["ca"]))
    context = OPENSSL_IMPLEMENTATION.client_context(config)
    with serve_subprocess(files, "--chain", str(files["chain"])) as (serve, port):
        with context.connect(("127.0.0.1", port)) as first:  # stays open meanwhile
            first.settimeout(TIMEOUT)
            with context.connect(("127.0.0.1", port)) as second:
                second.settimeout(TIMEOUT)
                second.sendall(b"two")
                assert second.recv(100) == b"two"
            first.sendall(b"one")
            assert first.recv(100) == b"one"
        assert serve.poll() is None  # still serving
        serve.kill()
        out, _ = serve.communicate(timeout=TIMEOUT)
    assert out.count("Connection from 127.0.0.1:") == 2


def test_serve_with_a_bad_key_is_a_configuration_error(files, capsys):
    argv = ["serve", "--cert", str(files["cert"]), "--key", str(files["ca"]), "--port", "0"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("unitls: configuration error: ")


def test_serve_with_a_bad_chain_file_is_a_configuration_error(files, tmp_path, capsys):
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"no certificates here")
    argv = ["serve", "--cert", str(files["cert"]), "--key", str(files["key"])]
    assert main([*argv, "--chain", str(empty), "--port", "0"]) == 2
    assert capsys.readouterr().err.startswith("unitls: configuration error: ")
    assert main([*argv, "--chain", str(tmp_path / "missing.pem"), "--port", "0"]) == 2
    assert capsys.readouterr().err.startswith("unitls: configuration error: --chain")


# -- pieces --------------------------------------------------------------------------------------


class Negotiated:
    """A stand-in for a finished connection, to exercise the summary's rarer branches."""

    def __init__(self, cert: bytes | None, cipher: object, protocol: object) -> None:
        self._cert, self._cipher, self._protocol = cert, cipher, protocol
        self.negotiated_tls_version = None

    def cipher(self) -> object:
        return self._cipher

    def negotiated_protocol(self) -> object:
        return self._protocol

    def getpeercert(self) -> bytes | None:
        return self._cert


def self_signed_der(key: object, name: str = "no-san") -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (rsa.generate_private_key(65537, 2048), "Key:         RSA (2048 bits)"),
        (ed25519.Ed25519PrivateKey.generate(), "Key:         Ed25519"),
        (ec.generate_private_key(ec.SECP384R1()), "Key:         EC secp384r1 (384 bits)"),
    ],
    ids=["rsa", "ed25519", "p384"],
)
def test_summary_of_other_keys_and_no_san(key, shown):
    text = _summary("Title", Negotiated(self_signed_der(key), 0xC05D, b"bla"))  # type: ignore[arg-type]
    assert text.startswith("Title\n")
    assert shown in text
    assert "SANs:        (none)" in text
    assert "Subject:     CN=no-san" in text
    assert "Cipher suite:  0xC05D" in text  # an id outside CipherSuite
    assert "ALPN:          bla" in text
    assert "TLS version:   (none)" in text


def test_summary_before_a_handshake():
    text = _summary("T", Negotiated(None, None, None))  # type: ignore[arg-type]
    assert "Cipher suite:  (none)" in text
    assert "ALPN:          (none)" in text
    assert "Peer certificate: none" in text


def test_interrupt_exits_130_without_a_traceback(monkeypatch, capsys):
    def interrupted(out: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(unitls._cli, "_demo", interrupted)
    assert main([]) == 130
    assert capsys.readouterr().err == ""


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    def broken(out: object) -> int:
        raise RuntimeError("echo mismatch:\n  sent x")

    monkeypatch.setattr(unitls._cli, "_demo", broken)
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == "unitls: error: echo mismatch: sent x\n"


def test_python_dash_m_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["unitls", "--version"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("unitls", run_name="__main__")
    assert info.value.code == 0
    assert capsys.readouterr().out == f"unitls {unitls.__version__}\n"


class _EntryPoint:
    """An installed `unitls.demo` plugin whose import fails, as without `unitls[demo]`."""

    name = "http"

    def load(self) -> object:
        raise ModuleNotFoundError("No module named 'hypercorn_or_httpx'")


def test_demo_reports_a_plugin_whose_dependencies_are_missing(monkeypatch, capsys):
    monkeypatch.setattr(unitls._cli, "entry_points", lambda group: [_EntryPoint()])
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert "received it back intact" in out
    assert (
        "HTTP demo skipped: No module named 'hypercorn_or_httpx' "
        "(install it with: python -m pip install 'unitls[demo]')"
    ) in out
    assert err == ""
