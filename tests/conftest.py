from __future__ import annotations

import pytest
import trustme

import unitls
from helpers import signing_chain, trust_store


@pytest.fixture(autouse=True)
def _clean_tls_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's CA or keylog settings (as httpx's conftest)."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="session")
def server_chain(server_cert: trustme.LeafCert) -> unitls.SigningChain:
    return signing_chain(server_cert)


@pytest.fixture(scope="session")
def client_config(ca: trustme.CA) -> unitls.TLSClientConfiguration:
    return unitls.TLSClientConfiguration(trust_store=trust_store(ca))


@pytest.fixture(scope="session")
def server_config(server_chain: unitls.SigningChain) -> unitls.TLSServerConfiguration:
    return unitls.TLSServerConfiguration(certificate_chain=[server_chain])
