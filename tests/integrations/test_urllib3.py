"""urllib3 over unitls: `PoolManager(ssl_context=SSLContext(...))`, `inject_into_urllib3()`,
HTTP/2 through `urllib3.http2`, proxies, against hypercorn and nginx."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
import urllib3
import urllib3.http2
import urllib3.util
import urllib3.util.ssl_
from urllib3.exceptions import (
    InsecureRequestWarning,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.http2.probe import _HTTP2_PROBE_CACHE
from urllib3.util.ssl_match_hostname import CertificateError

import unitls
from helpers import signing_chain
from servers import BIG, BIG_SHA256, BIG_SIZE, ConnectProxy, Server
from tls_peers import TLSServerThread, read_request, server_context
from unitls.insecure import SecurityWarning
from unitls_integrations.ssl_context import SSLContext, SSLSocket
from unitls_integrations.urllib3 import extract_from_urllib3, inject_into_urllib3


def pool(server: Server, **options: Any) -> urllib3.PoolManager:
    options.setdefault("ssl_context", SSLContext(server.configuration()))
    options.setdefault("retries", False)
    options.setdefault("timeout", 30)
    return urllib3.PoolManager(**options)


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def ssl_reason(info: pytest.ExceptionInfo[BaseException]) -> SSLError:
    """The urllib3 SSLError raised (urllib3 raises it as is with `retries=False`)."""
    assert isinstance(info.value, SSLError)
    return info.value


def verification_error(info: pytest.ExceptionInfo[BaseException]) -> ssl.SSLCertVerificationError:
    """The `ssl.SSLCertVerificationError` the facade raised, inside urllib3's SSLError."""
    inner = ssl_reason(info).args[0]
    assert isinstance(inner, ssl.SSLCertVerificationError)
    assert isinstance(inner.__cause__, unitls.CertificateVerificationError)
    return inner


@pytest.fixture
def injected() -> Iterator[None]:
    inject_into_urllib3()
    try:
        yield
    finally:
        extract_from_urllib3()


@pytest.fixture
def http2() -> Iterator[None]:
    _HTTP2_PROBE_CACHE._reset()
    urllib3.http2.inject_into_urllib3()
    try:
        yield
    finally:
        urllib3.http2.extract_from_urllib3()
        _HTTP2_PROBE_CACHE._reset()


# -- requests and responses ----------------------------------------------------------------


def test_get(server: Server) -> None:
    with pool(server) as http:
        response = http.request("GET", f"{server.url}/")
        assert response.status == 200
        assert response.data.startswith(f"{server.name} HTTP/1.1".encode())
        response = http.request("GET", f"{server.url}/", preload_content=False)
        sock = response.connection.sock  # type: ignore[union-attr]
        assert isinstance(sock, SSLSocket)
        assert sock.selected_alpn_protocol() == "http/1.1"  # what urllib3 asks for
        response.read()
        response.release_conn()


def test_download_10_mib(server: Server) -> None:
    with pool(server) as http:
        response = http.request("GET", f"{server.url}/static/big.bin")
        assert response.status == 200
        assert len(response.data) == BIG_SIZE
        assert hashlib.sha256(response.data).hexdigest() == BIG_SHA256
        streamed = hashlib.sha256()
        response = http.request("GET", f"{server.url}/static/big.bin", preload_content=False)
        for chunk in response.stream(65536):
            streamed.update(chunk)
        response.release_conn()
        assert streamed.hexdigest() == BIG_SHA256


def test_upload_10_mib(server: Server) -> None:
    name = f"urllib3-{server.name}.bin"
    with pool(server) as http:
        response = http.request("PUT", f"{server.url}/up/{name}", body=BIG)
    assert response.status in (201, 204)
    assert server.uploaded_sha256(name) == BIG_SHA256
    if server.name == "hypercorn":
        assert response.data.decode() == BIG_SHA256


def test_keep_alive_reuses_one_connection(server: Server) -> None:
    with pool(server) as http:
        sockets = set()
        for _ in range(5):
            response = http.request("GET", f"{server.url}/static/hello.txt", preload_content=False)
            sockets.add(id(response.connection.sock))  # type: ignore[union-attr]
            assert response.read() == b"hello from a static file\n"
            response.release_conn()
        connection_pool = http.connection_from_url(server.url)
        assert connection_pool.num_requests == 5
        assert connection_pool.num_connections == 1
        assert len(sockets) == 1


def test_server_closing_mid_body_is_an_error(hypercorn_server: Server) -> None:
    with pool(hypercorn_server) as http, pytest.raises(ProtocolError, match="IncompleteRead"):
        http.request("GET", f"{hypercorn_server.url}/truncated")


@pytest.fixture
def ragged_server(server_leaf: trustme.LeafCert) -> Iterator[TLSServerThread]:
    """Announces 1 MB, sends 100 kB, then drops the connection without close_notify."""

    def handler(tls: ssl.SSLSocket) -> None:
        read_request(tls)
        tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 100_000)

    with TLSServerThread(server_context(server_leaf), handler) as server:
        yield server


def test_ragged_eof_mid_body_is_an_error(
    ragged_server: TLSServerThread, hypercorn_server: Server
) -> None:
    ctx = SSLContext(hypercorn_server.configuration())
    with urllib3.PoolManager(ssl_context=ctx, retries=False) as http:
        with pytest.raises(ProtocolError, match="IncompleteRead"):
            http.request("GET", f"{ragged_server.url}/")
        response = http.request("GET", f"{ragged_server.url}/", preload_content=False)
        with pytest.raises(ProtocolError):
            response.read()
        response.release_conn()


def test_read_timeout(hypercorn_server: Server) -> None:
    with pool(hypercorn_server, timeout=urllib3.Timeout(connect=10, read=0.3)) as http:
        with pytest.raises(ReadTimeoutError):
            http.request("GET", f"{hypercorn_server.url}/slow?seconds=3")
        assert http.request("GET", f"{hypercorn_server.url}/").status == 200


# -- verification -----------------------------------------------------------------------------


def test_untrusted_ca_is_an_ssl_error_with_the_reason(server: Server) -> None:
    http = urllib3.PoolManager(ssl_context=SSLContext(), retries=False)
    with http, pytest.raises(SSLError) as info:
        http.request("GET", f"{server.url}/")
    reason = ssl_reason(info)
    assert "CERTIFICATE_VERIFY_FAILED" in str(reason)
    assert "unable to get local issuer certificate" in str(reason)
    assert verification_error(info).verify_code == 20


def test_wrong_hostname_is_an_ssl_error_with_the_names(server: Server) -> None:
    http = pool(server, server_hostname="wrong.example.test")
    with http, pytest.raises(SSLError) as info:
        http.request("GET", f"{server.url}/")
    message = str(ssl_reason(info))
    assert verification_error(info).verify_message == "hostname mismatch"
    assert "hostname mismatch" in message
    assert "wrong.example.test" in message
    assert "DNS:localhost" in message


def test_ca_certs_given_to_urllib3_are_loaded_into_the_facade(server: Server) -> None:
    ctx = SSLContext()  # the system store by default: replaced by ca_certs
    with urllib3.PoolManager(ssl_context=ctx, ca_certs=str(server.ca_file), retries=False) as http:
        assert http.request("GET", f"{server.url}/").status == 200


def test_assert_hostname_uses_urllib3s_matcher_on_the_certificate_dictionary(
    nginx_server: Server,
) -> None:
    # Connect by IP, and let urllib3 check another name the certificate holds: unitls
    # verifies the chain, urllib3 matches "localhost" against getpeercert()'s SANs.
    url = f"https://127.0.0.1:{nginx_server.port}/"
    with pool(nginx_server, assert_hostname="localhost") as http:
        with pytest.warns(SecurityWarning):  # unitls checks no name: see ssl_context docs
            response = http.request("GET", url)
        assert response.status == 200
    http = pool(nginx_server, assert_hostname="wrong.example.test")
    with http, pytest.warns(SecurityWarning), pytest.raises(SSLError) as info:
        http.request("GET", url)
    # urllib3's own matcher ran on the dictionary form and refused the name.
    assert isinstance(ssl_reason(info).args[0], CertificateError)
    assert "'wrong.example.test' doesn't match either of 'localhost'" in str(ssl_reason(info))


def test_assert_hostname_false_checks_no_name(nginx_server: Server) -> None:
    http = pool(nginx_server, assert_hostname=False, server_hostname="wrong.example.test")
    with http, pytest.warns(SecurityWarning):
        response = http.request("GET", f"{nginx_server.url}/")
    assert response.status == 200


def test_assert_fingerprint_pins_the_binary_certificate(
    nginx_server: Server, server_leaf: trustme.LeafCert
) -> None:
    fingerprint = hashlib.sha256(der(server_leaf)).hexdigest()
    http = pool(nginx_server, assert_fingerprint=fingerprint)
    with http, pytest.warns(SecurityWarning):
        response = http.request("GET", f"{nginx_server.url}/")
    assert response.status == 200
    http = pool(nginx_server, assert_fingerprint="00" * 32)
    with http, pytest.warns(SecurityWarning), pytest.raises(SSLError) as info:
        http.request("GET", f"{nginx_server.url}/")
    assert "Fingerprints did not match" in str(ssl_reason(info))


def test_cert_none_works_and_warns(server: Server) -> None:
    http = urllib3.PoolManager(ssl_context=SSLContext(), cert_reqs="CERT_NONE")
    with http, pytest.warns(SecurityWarning), pytest.warns(InsecureRequestWarning):
        response = http.request("GET", f"{server.url}/")
    assert response.status == 200


# -- client certificates ----------------------------------------------------------------------


def test_mutual_tls_with_cert_file(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, tmp_path: Any
) -> None:
    certfile = tmp_path / "client.pem"
    client_leaf.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    with pool(nginx_mtls_server, cert_file=str(certfile)) as http:
        response = http.request("GET", f"{nginx_mtls_server.url}/")
    assert b"verify=SUCCESS" in response.data


def test_mutual_tls_with_a_configured_chain(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert
) -> None:
    config = nginx_mtls_server.configuration(certificate_chain=signing_chain(client_leaf))
    with pool(nginx_mtls_server, ssl_context=SSLContext(config)) as http:
        response = http.request("GET", f"{nginx_mtls_server.url}/")
    assert b"verify=SUCCESS" in response.data
    with pool(nginx_mtls_server) as http:  # no client certificate: nginx refuses
        assert http.request("GET", f"{nginx_mtls_server.url}/").status == 400


# -- proxies ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as proxy:  # one per module: stopping one takes seconds
        yield proxy


@pytest.fixture(scope="module")
def https_proxy(server_leaf: trustme.LeafCert) -> Iterator[ConnectProxy]:
    with ConnectProxy(tls=server_context(server_leaf)) as proxy:
        yield proxy


def _through_proxy(http: urllib3.ProxyManager, server: Server) -> None:
    try:
        response = http.request("GET", f"{server.url}/")
        assert response.data.startswith(f"{server.name} HTTP/1.1".encode())
        big = http.request("GET", f"{server.url}/static/big.bin")
        assert hashlib.sha256(big.data).hexdigest() == BIG_SHA256
        assert http.connection_from_url(server.url).num_connections == 1
    finally:
        # urllib3 closes pooled connections only when the pool is garbage-collected.
        http.connection_from_url(server.url).close()


def test_http_proxy_tunnels_tls_to_the_origin(server: Server, http_proxy: ConnectProxy) -> None:
    tunnels = len(http_proxy.tunnels)
    ctx = SSLContext(server.configuration())
    with urllib3.ProxyManager(http_proxy.url, ssl_context=ctx, retries=False) as http:
        _through_proxy(http, server)
    assert http_proxy.tunnels[tunnels:] == [f"localhost:{server.port}"]


def test_https_proxy_runs_tls_inside_tls(server: Server, https_proxy: ConnectProxy) -> None:
    # urllib3 wraps the origin connection with SSLTransport and the facade's wrap_bio().
    tunnels = len(https_proxy.tunnels)
    with urllib3.ProxyManager(
        https_proxy.url,
        ssl_context=SSLContext(server.configuration()),
        proxy_ssl_context=SSLContext(server.configuration()),
        retries=False,
    ) as http:
        _through_proxy(http, server)
    assert https_proxy.tunnels[tunnels:] == [f"localhost:{server.port}"]


def test_https_proxy_with_the_wrong_origin_certificate_fails(
    nginx_server: Server, https_proxy: ConnectProxy
) -> None:
    http = urllib3.ProxyManager(
        https_proxy.url,
        ssl_context=SSLContext(),  # does not trust the origin
        proxy_ssl_context=SSLContext(nginx_server.configuration()),
        retries=False,
    )
    with http, pytest.raises(SSLError) as info:
        http.request("GET", f"{nginx_server.url}/")
    assert "CERTIFICATE_VERIFY_FAILED" in str(ssl_reason(info))
    assert verification_error(info).verify_code == 20


# -- injection -------------------------------------------------------------------------------


def test_inject_and_extract_swap_and_restore_exactly() -> None:
    before = (urllib3.util.ssl_.SSLContext, urllib3.util.SSLContext)
    assert before == (ssl.SSLContext, ssl.SSLContext)
    inject_into_urllib3()
    inject_into_urllib3()  # twice: still restorable
    try:
        injected = urllib3.util.ssl_.SSLContext
        assert injected is not ssl.SSLContext
        assert issubclass(injected, SSLContext)  # type: ignore[arg-type]
        assert urllib3.util.SSLContext is injected
    finally:
        extract_from_urllib3()
    assert (urllib3.util.ssl_.SSLContext, urllib3.util.SSLContext) == before
    extract_from_urllib3()  # no-op when not injected
    assert (urllib3.util.ssl_.SSLContext, urllib3.util.SSLContext) == before


@pytest.mark.usefixtures("injected")
def test_injected_contexts_are_client_contexts_only() -> None:
    context = urllib3.util.ssl_.create_urllib3_context()
    assert isinstance(context, SSLContext)
    assert context.protocol == ssl.PROTOCOL_TLS_CLIENT
    with pytest.raises(unitls.ConfigurationError, match="client contexts"):
        urllib3.util.ssl_.SSLContext(ssl.PROTOCOL_TLS_SERVER)


@pytest.mark.usefixtures("injected")
def test_injected_pools_use_unitls(server: Server) -> None:
    with urllib3.PoolManager(ca_certs=str(server.ca_file), retries=False) as http:
        response = http.request("GET", f"{server.url}/", preload_content=False)
        assert isinstance(response.connection.sock, SSLSocket)  # type: ignore[union-attr]
        assert response.read().startswith(f"{server.name} HTTP/1.1".encode())
        response.release_conn()
        for _ in range(3):  # a new facade per connection, one unitls context for all
            assert http.request("GET", f"{server.url}/").status == 200
        download = http.request("GET", f"{server.url}/static/big.bin")
        assert hashlib.sha256(download.data).hexdigest() == BIG_SHA256


@pytest.mark.usefixtures("injected")
def test_injected_pools_default_to_the_system_store(server: Server) -> None:
    http = urllib3.PoolManager(retries=False)  # load_default_certs(): the system CAs
    with http, pytest.raises(SSLError) as info:
        http.request("GET", f"{server.url}/")
    assert "unable to get local issuer certificate" in str(ssl_reason(info))


@pytest.mark.usefixtures("injected")
def test_injected_cert_none_works_and_warns(server: Server) -> None:
    http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)
    with http, pytest.warns(SecurityWarning), pytest.warns(InsecureRequestWarning):
        response = http.request("GET", f"{server.url}/")
    assert response.status == 200


@pytest.mark.usefixtures("injected")
def test_injected_client_certificate(
    nginx_mtls_server: Server, client_leaf: trustme.LeafCert, tmp_path: Any
) -> None:
    certfile = tmp_path / "client.pem"
    client_leaf.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    with urllib3.PoolManager(
        ca_certs=str(nginx_mtls_server.ca_file), cert_file=str(certfile), retries=False
    ) as http:
        response = http.request("GET", f"{nginx_mtls_server.url}/")
    assert b"verify=SUCCESS" in response.data


# -- HTTP/2 ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("http2")
def test_http2_get(server: Server) -> None:
    with pool(server) as http:
        response = http.request("GET", f"{server.url}/")
        assert response.status == 200
        assert response.version == 20
        expected = b"hypercorn HTTP/2" if server.name == "hypercorn" else b"nginx HTTP/2.0"
        assert response.data.startswith(expected)
        hello = http.request("GET", f"{server.url}/static/hello.txt")
        assert hello.data == b"hello from a static file\n"


@pytest.mark.usefixtures("http2", "injected")
def test_http2_with_unitls_injected(server: Server) -> None:
    with urllib3.PoolManager(ca_certs=str(server.ca_file), retries=False) as http:
        response = http.request("GET", f"{server.url}/")
    assert response.version == 20
    assert b"HTTP/2" in response.data
