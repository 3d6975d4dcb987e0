"""requests over unitls: an `HTTPAdapter` whose pools get `ssl_context=SSLContext(...)`, and
`inject_into_urllib3()` under plain `requests` calls, against hypercorn and nginx."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning

import unitls
from helpers import signing_chain
from servers import BIG, BIG_SHA256, ConnectProxy, Server
from unitls.insecure import SecurityWarning
from unitls_integrations.ssl_context import SSLContext, SSLSocket
from unitls_integrations.urllib3 import extract_from_urllib3, inject_into_urllib3


class UnitlsAdapter(HTTPAdapter):
    """The documented way to give requests an SSL context: through the pool manager."""

    def __init__(self, ssl_context: SSLContext, **pool_options: Any) -> None:
        self.pool_options = {"ssl_context": ssl_context, **pool_options}
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs, **self.pool_options)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        return super().proxy_manager_for(*args, **kwargs, **self.pool_options)


def session(ctx: SSLContext, **pool_options: Any) -> requests.Session:
    http = requests.Session()
    http.mount("https://", UnitlsAdapter(ctx, **pool_options))
    return http


@pytest.fixture(autouse=True)
def _no_ca_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests prefers these to `Session.verify`; tests must not see the developer's."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def ssl_cause(error: BaseException) -> ssl.SSLError:
    """The `ssl.SSLError` the facade raised, somewhere in requests' exception chain."""
    seen: list[BaseException] = []
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or current in seen:
            continue
        if isinstance(current, ssl.SSLError):
            return current
        seen.append(current)
        pending += [current.__cause__, current.__context__, *current.args]
        pending.append(getattr(current, "reason", None))
    raise AssertionError(f"no ssl.SSLError behind {error!r}")


@pytest.fixture
def injected() -> Iterator[None]:
    inject_into_urllib3()
    try:
        yield
    finally:
        extract_from_urllib3()


def session_for(server: Server, ctx: SSLContext | None = None) -> requests.Session:
    """A session whose requests verify with the server's CA file.

    requests hands `verify` to urllib3 as `ca_certs` on every request, so the facade's
    `load_verify_locations()` sees it each time (a no-op after the first). The default,
    `verify=True`, is certifi's bundle: see `test_requests_default_ca_bundle`.
    """
    http = session(SSLContext(server.configuration()) if ctx is None else ctx)
    http.verify = str(server.ca_file)
    return http


def test_get_download_and_upload(server: Server) -> None:
    with session_for(server) as http:
        response = http.get(f"{server.url}/", timeout=30)
        assert response.status_code == 200
        assert response.text.startswith(f"{server.name} HTTP/1.1")
        big = http.get(f"{server.url}/static/big.bin", timeout=30)
        assert hashlib.sha256(big.content).hexdigest() == BIG_SHA256
        streamed = hashlib.sha256()
        with http.get(f"{server.url}/static/big.bin", stream=True, timeout=30) as response:
            for chunk in response.iter_content(65536):
                streamed.update(chunk)
        assert streamed.hexdigest() == BIG_SHA256
        name = f"requests-{server.name}.bin"
        upload = http.put(f"{server.url}/up/{name}", data=BIG, timeout=30)
        assert upload.status_code in (201, 204)
    assert server.uploaded_sha256(name) == BIG_SHA256


def test_keep_alive(server: Server) -> None:
    with session_for(server) as http:
        sockets = set()
        for _ in range(4):
            with http.get(f"{server.url}/static/hello.txt", stream=True, timeout=30) as response:
                sockets.add(id(response.raw.connection.sock))
                assert response.content == b"hello from a static file\n"
        assert len(sockets) == 1


def test_verify_with_a_ca_file(server: Server) -> None:
    with session(SSLContext()) as http:  # the system store by default: replaced
        response = http.get(f"{server.url}/", verify=str(server.ca_file), timeout=30)
    assert response.status_code == 200


def test_untrusted_and_mismatched_certificates(server: Server, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with session(SSLContext()) as http, pytest.raises(requests.exceptions.SSLError) as info:
        http.get(f"{server.url}/", verify=str(other_ca), timeout=30)
    error = ssl_cause(info.value)
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.verify_message == "unable to get local issuer certificate"
    assert "unable to get local issuer certificate" in str(info.value)
    http = session(SSLContext(server.configuration()), server_hostname="wrong.example.test")
    with http, pytest.raises(requests.exceptions.SSLError) as info:
        http.get(f"{server.url}/", verify=str(server.ca_file), timeout=30)
    error = ssl_cause(info.value)
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH
    assert "wrong.example.test" in str(info.value)


def test_verify_false_works_and_warns(server: Server) -> None:
    http = session(SSLContext())
    with http, pytest.warns(SecurityWarning), pytest.warns(InsecureRequestWarning):
        response = http.get(f"{server.url}/", verify=False, timeout=30)
    assert response.status_code == 200


def test_client_certificates(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, tmp_path: Path
) -> None:
    certfile = tmp_path / "client.pem"
    keyfile = tmp_path / "client.key"
    certfile.write_bytes(b"".join(blob.bytes() for blob in client_leaf.cert_chain_pems))
    client_leaf.private_key_pem.write_to_path(str(keyfile))
    url = f"{nginx_mtls_server.url}/"
    with session_for(nginx_mtls_server) as http:
        response = http.get(url, cert=(str(certfile), str(keyfile)), timeout=30)
    assert "verify=SUCCESS" in response.text
    config = nginx_mtls_server.configuration(certificate_chain=signing_chain(client_leaf))
    with session_for(nginx_mtls_server, SSLContext(config)) as http:
        assert "verify=SUCCESS" in http.get(url, timeout=30).text


@pytest.fixture(scope="module")
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as running:  # one per module: stopping one takes seconds
        yield running


def test_proxies(server: Server, proxy: ConnectProxy) -> None:
    tunnels = len(proxy.tunnels)
    with session_for(server) as http:
        response = http.get(f"{server.url}/", proxies={"https": proxy.url}, timeout=30)
        assert response.text.startswith(f"{server.name} HTTP/1.1")
        # Close the tunnel now: urllib3 closes pooled connections only on garbage collection.
        http.adapters["https://"].proxy_manager[proxy.url].connection_from_url(server.url).close()
    assert proxy.tunnels[tunnels:] == [f"localhost:{server.port}"]


def test_read_timeout(hypercorn_server: Server) -> None:
    with session_for(hypercorn_server) as http:
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.get(f"{hypercorn_server.url}/slow?seconds=3", timeout=(10, 0.3))
        assert http.get(f"{hypercorn_server.url}/", timeout=30).status_code == 200


def test_truncated_body_is_an_error(hypercorn_server: Server) -> None:
    http = session_for(hypercorn_server)
    with http, pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        http.get(f"{hypercorn_server.url}/truncated", timeout=30)


@pytest.mark.usefixtures("injected")
def test_plain_requests_with_unitls_injected(server: Server) -> None:
    with requests.get(
        f"{server.url}/", verify=str(server.ca_file), stream=True, timeout=30
    ) as response:
        assert isinstance(response.raw.connection.sock, SSLSocket)
        assert response.text.startswith(f"{server.name} HTTP/1.1")
    with pytest.warns(SecurityWarning), pytest.warns(InsecureRequestWarning):
        assert requests.get(f"{server.url}/", verify=False, timeout=30).status_code == 200


def test_configuration_errors_reach_the_caller(server: Server) -> None:
    ctx = SSLContext(server.configuration())
    ctx.set_ciphers("ECDHE-ECDSA-AES128-CCM8")  # unitls refuses CCM_8 suites
    with session_for(server, ctx) as http, pytest.raises(unitls.ConfigurationError, match="CCM_8"):
        http.get(f"{server.url}/", timeout=30)


# certifi's bundle holds roots with non-positive serial numbers, which cryptography's
# parser warns about; the backend loads trust anchors with OpenSSL, so no warning
# reaches requests users (pytest turns any warning into an error here).
def test_requests_default_ca_bundle(server: Server) -> None:
    # verify=True: requests loads certifi's bundle into the facade, which then trusts
    # the configured test CA and certifi's roots, as an ssl.SSLContext would.
    with session(SSLContext(server.configuration())) as http:
        assert http.get(f"{server.url}/", timeout=30).status_code == 200
    with session(SSLContext()) as http, pytest.raises(requests.exceptions.SSLError):
        http.get(f"{server.url}/", timeout=30)  # certifi's roots alone: not the test CA
