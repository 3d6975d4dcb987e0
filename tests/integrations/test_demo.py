"""The HTTP part of `unitls demo`: hypercorn (h2 and http/1.1) when installed, else its own
HTTP/1.1 server on a TLSSocket."""

from __future__ import annotations

import io
import re
import sys

import trustme

from unitls_integrations import _demo


def _demo_output() -> str:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    out = io.StringIO()
    _demo.run(
        out, ca.cert_pem.bytes(), leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()
    )
    return out.getvalue()


def test_http_demo_serves_with_hypercorn() -> None:
    text = _demo_output()
    assert "HTTP over unitls: hypercorn on https://localhost:" in text
    assert re.search(r"httpx, HTTP/2 allowed +ALPN h2 +server says: hello over HTTP/2", text)
    for label in ("httpx, HTTP/1.1 only", "urllib3 PoolManager", "http.client"):
        assert re.search(rf"{label} +ALPN http/1.1 +server says: hello over HTTP/1.1", text)


def test_http_demo_falls_back_to_a_unitls_server_without_hypercorn(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypercorn", None)  # `import hypercorn` now fails
    text = _demo_output()
    assert "a unitls TLSSocket HTTP/1.1 server (install hypercorn for h2)" in text
    # No h2 on offer, so every client, httpx with HTTP/2 allowed included, gets http/1.1.
    for label in ("httpx, HTTP/2 allowed", "httpx, HTTP/1.1 only", "urllib3 PoolManager"):
        assert re.search(rf"{label} +ALPN http/1.1 +server says: hello over HTTP/1.1", text)
    assert re.search(r"http.client +ALPN http/1.1 +server says: hello over HTTP/1.1", text)
