"""Every program in `docs/examples/` runs, as a reader would run it, and says what the docs say.

Each file runs as `__main__` (`runpy.run_path`) with its own command line, inside the loopback
world of `world.py` (so `https://example.org/` is the world's hypercorn server and the system
trust store is the world's CA), with warnings as errors like every test. The assertions look
at what the program printed: the negotiated TLS version and ALPN protocol, the status line and
the body the server really sent.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import trustme

import unitls
from markdown_blocks import ROOT

EXAMPLES = ROOT / "docs" / "examples"

#: What every HTTPS client example prints for `https://example.org/` in the docs world.
CLIENT_OUTPUT = [
    "TLS version: TLSv1.3",
    "ALPN protocol: http/1.1",
    "HTTP/1.1 200",
    "hypercorn HTTP/1.1",
]
CLIENTS = ["asyncio_protocol.py", "selectors_client.py", "trio_client.py"]

#: file name -> (command-line arguments, what its output must contain).
CASES: dict[str, tuple[list[str], list[str]]] = {
    **{name: ([], CLIENT_OUTPUT) for name in CLIENTS},
    "asyncio_server.py": (
        ["--self-test"],
        [
            "listening on 127.0.0.1:",
            "server: TLSv1.3 handshake with 127.0.0.1:",
            "client: TLSv1.3, ALPN protocol: none",
            "client: echoed b'hello, TLS buffer'",
            "server: close_notify from 127.0.0.1:",
        ],
    ),
}


def _run(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = EXAMPLES / name
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    runpy.run_path(str(path), run_name="__main__")


@pytest.fixture
def foreign_ca(tmp_path: Path) -> Path:
    """A CA file for a CA that signed nothing in the docs world."""
    path = tmp_path / "foreign-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.usefixtures("in_docs_world")
def test_example_runs(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = CASES[name]
    _run(name, args, monkeypatch)
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, f"{name} did not print {text!r}; it printed:\n{out}"


@pytest.mark.parametrize("name", CLIENTS)
@pytest.mark.usefixtures("in_docs_world")
def test_client_fetches_the_url_from_argv(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The URL on the command line is what is fetched: its host, path and query."""
    _run(name, ["https://www.example.org/static/hello.txt?x=1"], monkeypatch)
    out = capsys.readouterr().out
    assert "HTTP/1.1 200" in out, out
    assert "hello from a static file" in out, out


@pytest.mark.parametrize("name", CLIENTS)
@pytest.mark.usefixtures("in_docs_world")
def test_client_refuses_an_unverified_server(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    foreign_ca: Path,
) -> None:
    """Secure defaults: a server the system trust store does not vouch for fails the handshake."""
    monkeypatch.setenv("SSL_CERT_FILE", str(foreign_ca))
    with pytest.raises(unitls.CertificateVerificationError):
        _run(name, [], monkeypatch)
    assert "HTTP/1.1" not in capsys.readouterr().out


@pytest.mark.usefixtures("in_docs_world")
def test_server_self_test_verifies_the_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], foreign_ca: Path
) -> None:
    """--cafile replaces the system trust store; the server reports the client's alert."""
    with pytest.raises(unitls.CertificateVerificationError):
        _run("asyncio_server.py", ["--self-test", "--cafile", str(foreign_ca)], monkeypatch)
    out = capsys.readouterr().out
    assert "echoed" not in out
    assert "unknown ca" in out, out


def test_every_example_is_tested_and_included_by_a_page() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert files == sorted(CASES), "add the new example to CASES (or remove the stale entry)"
    pages = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for name in files:
        assert f'--8<-- "docs/examples/{name}"' in pages, f"no docs page includes {name}"
