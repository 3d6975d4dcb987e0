"""Configuration -> OpenSSL context: loading credentials, validate_config, cipher/version plans."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import unitls
from helpers import handshake, make_pair, signing_chain, trust_store
from unitls.openssl import (
    OPENSSL_IMPLEMENTATION,
    OpenSSLClientContext,
    OpenSSLServerContext,
    validate_config,
)
from unitls.openssl import _context as context_module
from unitls.openssl._ciphers import plan_ciphers
from unitls.openssl._lowlevel import check_bindings, lib

CS = unitls.CipherSuite
V = unitls.TLSVersion


def _pem_to_der(pem: bytes) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_implementation_object():
    assert OPENSSL_IMPLEMENTATION.client_context is OpenSSLClientContext
    assert OPENSSL_IMPLEMENTATION.server_context is OpenSSLServerContext
    assert OPENSSL_IMPLEMENTATION.validate_config is validate_config
    assert "OpenSSLClientContext" in repr(OPENSSL_IMPLEMENTATION)


def test_credentials_from_der_buffers_and_files(ca, server_cert, tmp_path: Path):
    leaf_pem = server_cert.cert_chain_pems[0].bytes()
    key = serialization.load_pem_private_key(server_cert.private_key_pem.bytes(), None)
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "leaf.der").write_bytes(_pem_to_der(leaf_pem))
    (tmp_path / "ca.der").write_bytes(_pem_to_der(ca.cert_pem.bytes()))
    chain = unitls.SigningChain(
        (
            unitls.Certificate.from_file(tmp_path / "leaf.der"),
            unitls.PrivateKey.from_buffer(key_der),
        )
    )
    client = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_file(tmp_path / "ca.der")
    )
    pair = make_pair(client, unitls.TLSServerConfiguration(certificate_chain=[chain]))
    assert pair.c2s(b"der works") == b"der works"
    assert pair.client.getpeercert() == _pem_to_der(leaf_pem)


def test_trust_store_file_with_several_pem_certificates(ca, server_config, tmp_path: Path):
    other = trustme.CA()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other.cert_pem.bytes() + ca.cert_pem.bytes() + ca.cert_pem.bytes())
    client = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_file(str(bundle)))
    assert make_pair(client, server_config).c2s(b"ok") == b"ok"


def test_trust_store_with_roots_cryptography_warns_about_loads_silently(ca, server_config):
    # certifi's bundle has roots with non-positive serial numbers: cryptography warns
    # about them (an error under this suite's filterwarnings), OpenSSL does not.
    certifi = pytest.importorskip("certifi")
    with open(certifi.where(), "rb") as f:
        bundle = f.read()
    trust = unitls.TrustStore.from_buffer(bundle + ca.cert_pem.bytes())
    client = unitls.TLSClientConfiguration(trust_store=trust)
    assert make_pair(client, server_config).c2s(b"ok") == b"ok"


def test_trust_store_reads_the_old_x509_certificate_label(ca, server_config):
    pem = ca.cert_pem.bytes().replace(b" CERTIFICATE-----", b" X509 CERTIFICATE-----")
    assert pem.startswith(b"-----BEGIN X509 CERTIFICATE-----\n")
    other = trustme.CA().cert_pem.bytes()  # a modern block beside it
    client = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_buffer(other + pem))
    assert make_pair(client, server_config).c2s(b"ok") == b"ok"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "wrong tag"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no CERTIFICATE"),
        (b"\x30\x03\x02\x01\x01", "DER|tag|asn1"),
    ],
    ids=["bad-pem-body", "no-certificate-block", "bad-der"],
)
def test_unreadable_trust_stores_name_the_reason(data, reason):
    config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_buffer(data))
    with pytest.raises(unitls.ConfigurationError, match="trust_store: not a PEM or DER") as info:
        validate_config(config)
    assert re.search(reason, str(info.value), re.IGNORECASE)


def test_system_trust_store_honours_ssl_cert_file(ca, server_config, tmp_path, monkeypatch):
    bundle = tmp_path / "system.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    client = unitls.TLSClientConfiguration()  # trust_store=None means the system store
    assert make_pair(client, server_config).c2s(b"sys") == b"sys"


def test_system_trust_store_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(context_module, "_system_trust_paths", lambda: [])
    with pytest.raises(unitls.ConfigurationError, match="no system trust store found"):
        OpenSSLClientContext(unitls.TLSClientConfiguration())


def test_system_trust_paths_lists_existing_locations(tmp_path, monkeypatch):
    bundle = tmp_path / "x.pem"
    bundle.write_bytes(b"")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "missing"))
    paths = context_module._system_trust_paths()
    assert str(bundle) in paths
    assert str(tmp_path / "missing") not in paths
    assert all(os.path.exists(p) for p in paths)


@pytest.mark.parametrize("kind", ["certificate", "key", "trust"])
def test_from_id_is_rejected_with_a_reason(kind, server_chain, ca):
    if kind == "trust":
        config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_id(b"store"))
    else:
        cert, key = server_chain.leaf
        if kind == "certificate":
            cert = unitls.Certificate.from_id(b"hsm:1")
        else:
            key = unitls.PrivateKey.from_id(b"hsm:1")
        config = unitls.TLSServerConfiguration(certificate_chain=[unitls.SigningChain((cert, key))])
    with pytest.raises(unitls.ConfigurationError, match="no key or certificate store ids"):
        validate_config(config)


def test_validate_config_catches_everything_a_context_would(server_cert, ca, tmp_path):
    good_key = unitls.PrivateKey.from_buffer(server_cert.private_key_pem.bytes())
    leaf = unitls.Certificate.from_buffer(server_cert.cert_chain_pems[0].bytes())
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encrypted_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    cases = {
        "does not match": [unitls.SigningChain((leaf, unitls.PrivateKey.from_buffer(other_key)))],
        "encrypted private keys": [
            unitls.SigningChain((leaf, unitls.PrivateKey.from_buffer(encrypted_key)))
        ],
        "not a PEM or DER private key": [
            unitls.SigningChain((leaf, unitls.PrivateKey.from_buffer(b"garbage")))
        ],
        "not a PEM or DER certificate": [
            unitls.SigningChain((unitls.Certificate.from_buffer(b"garbage"), good_key))
        ],
        "expected one certificate": [
            unitls.SigningChain((unitls.Certificate.from_buffer(ca.cert_pem.bytes() * 2), good_key))
        ],
        "cannot read": [
            unitls.SigningChain((unitls.Certificate.from_file(tmp_path / "nope.pem"), good_key))
        ],
        "needs the leaf's private key": [unitls.SigningChain((leaf, None))],
        "at least one SigningChain": [],
    }
    for message, chains in cases.items():
        config = unitls.TLSServerConfiguration(certificate_chain=chains)
        with pytest.raises(unitls.ConfigurationError, match=message):
            validate_config(config)
        with pytest.raises(unitls.ConfigurationError, match=message):
            OpenSSLServerContext(config)
    with pytest.raises(unitls.ConfigurationError, match="trust_store: not a PEM or DER"):
        validate_config(
            unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_buffer(b"-----BEGIN"))
        )
    with pytest.raises(TypeError):
        validate_config("not a config")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OpenSSLClientContext(unitls.TLSServerConfiguration())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OpenSSLServerContext(unitls.TLSClientConfiguration())  # type: ignore[arg-type]
    validate_config(unitls.TLSServerConfiguration(certificate_chain=[signing_chain(server_cert)]))


@pytest.mark.parametrize(
    ("ciphers", "lowest", "highest", "message"),
    [
        ([CS.TLS_AES_128_CCM_8_SHA256], None, None, "security level 0"),
        ([CS.TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8], None, None, "CCM_8"),
        ([], None, None, "ciphers is empty"),
        ([CS.TLS_AES_128_GCM_SHA256], None, V.TLSv1_2, "no TLS 1.2 suite"),
        ([CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], V.TLSv1_3, None, "no TLS 1.3 suite"),
        ([0x0000], None, None, "0x0000"),
        ([0xFEFE], None, None, "0xFEFE is not a cipher suite"),
    ],
)
def test_impossible_cipher_plans_fail_at_construction(ciphers, lowest, highest, message):
    config = unitls.TLSClientConfiguration(
        ciphers=ciphers,
        lowest_supported_version=lowest,
        highest_supported_version=highest,
        trust_store=unitls.TrustStore.from_buffer(trustme.CA().cert_pem.bytes()),
    )
    with pytest.raises(unitls.ConfigurationError, match=message):
        validate_config(config)


def test_cipher_plan_couples_versions():
    tls13_only = plan_ciphers(unitls.TLSClientConfiguration(ciphers=[CS.TLS_AES_256_GCM_SHA384]))
    assert tls13_only.min_version == lib.TLS1_3_VERSION
    assert tls13_only.tls13 == b"TLS_AES_256_GCM_SHA384"
    tls12_only = plan_ciphers(
        unitls.TLSClientConfiguration(ciphers=[CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256])
    )
    assert tls12_only.max_version == lib.TLS1_2_VERSION
    assert tls12_only.tls12 == b"ECDHE-ECDSA-AES128-GCM-SHA256"
    default = plan_ciphers(unitls.TLSClientConfiguration())
    assert default.min_version == lib.TLS1_2_VERSION
    assert default.max_version == 0
    assert b"CCM_8" not in default.tls13
    assert b"CBC" not in default.tls12
    assert b"SHA:" not in default.tls12
    pinned = plan_ciphers(
        unitls.TLSClientConfiguration(
            lowest_supported_version=V.MINIMUM_SUPPORTED,
            highest_supported_version=V.MAXIMUM_SUPPORTED,
        )
    )
    assert (pinned.min_version, pinned.max_version) == (lib.TLS1_2_VERSION, 0)


def test_raw_cipher_id_outside_the_enum_is_negotiated(ca, server_cert):
    aria = 0xC05D  # TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384
    ec_leaf = ca.issue_cert("localhost", key_type=trustme.KeyType.ECDSA)
    client = unitls.TLSClientConfiguration(ciphers=[aria], trust_store=trust_store(ca))
    server = unitls.TLSServerConfiguration(
        certificate_chain=[signing_chain(ec_leaf)], ciphers=[aria]
    )
    pair = make_pair(client, server)
    assert pair.client.cipher() == aria
    assert type(pair.client.cipher()) is int
    assert pair.server.cipher() == aria
    assert pair.client.negotiated_tls_version is V.TLSv1_2


def test_versions_are_enforced(client_config, server_chain):
    server = unitls.TLSServerConfiguration(
        certificate_chain=[server_chain], highest_supported_version=V.TLSv1_2
    )
    assert make_pair(client_config, server).client.negotiated_tls_version is V.TLSv1_2
    client13 = unitls.TLSClientConfiguration(
        trust_store=client_config.trust_store, lowest_supported_version=V.TLSv1_3
    )
    client = OPENSSL_IMPLEMENTATION.client_context(client13).create_buffer("localhost")
    with pytest.raises(unitls.TLSError) as info:
        handshake(client, OPENSSL_IMPLEMENTATION.server_context(server).create_buffer())
    assert not isinstance(info.value, (unitls.WantReadError, unitls.WantWriteError))


def test_server_picks_its_own_alpn_preference(client_config, server_chain):
    client = unitls.TLSClientConfiguration(
        trust_store=client_config.trust_store,
        inner_protocols=[unitls.NextProtocol.HTTP1, unitls.NextProtocol.H2, b"custom"],
    )
    server = unitls.TLSServerConfiguration(
        certificate_chain=[server_chain], inner_protocols=[b"custom", unitls.NextProtocol.H2]
    )
    pair = make_pair(client, server)
    assert pair.client.negotiated_protocol() == b"custom"
    assert pair.server.negotiated_protocol() == b"custom"


def test_keylog_file(client_config, server_config, tmp_path, monkeypatch):
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    make_pair(client_config, server_config)
    lines = keylog.read_text().splitlines()
    assert any(line.startswith("CLIENT_TRAFFIC_SECRET_0 ") for line in lines)


def test_sessions_resume_per_hostname(client_config, server_config):
    client_ctx = OPENSSL_IMPLEMENTATION.client_context(client_config)
    server_ctx = OPENSSL_IMPLEMENTATION.server_context(server_config)
    reused = []
    for _ in range(3):
        client = client_ctx.create_buffer("localhost")
        server = server_ctx.create_buffer()
        handshake(client, server)
        reused.append(lib.SSL_session_reused(client._ssl))
        server.write(b"hi")
        from helpers import pump

        pump(server, client)
        assert client.read(10) == b"hi"
        with pytest.raises(unitls.WantReadError):
            client.shutdown()
    assert reused == [0, 1, 1]
    assert client.getpeercert() is not None  # the peer certificate survives resumption
    other = client_ctx.create_buffer("127.0.0.1")
    handshake(other, server_ctx.create_buffer())
    assert lib.SSL_session_reused(other._ssl) == 0  # sessions are per server name


def test_session_cache_is_bounded(client_config, monkeypatch):
    monkeypatch.setattr(context_module, "SESSION_CACHE_SIZE", 2)
    ctx = OPENSSL_IMPLEMENTATION.client_context(client_config)
    for name in ("a", "b", "c"):
        ctx._put_session(name, object())  # type: ignore[arg-type]
    assert list(ctx._sessions) == ["b", "c"]


def test_bindings_check_names_what_is_missing():
    class Empty:
        pass

    with pytest.raises(ImportError, match=r"SSL_read.*Connection\._ssl"):
        check_bindings(Empty(), Empty())
    check_bindings()


def test_contexts_have_reprs(client_config, server_config):
    assert "TLSClientConfiguration" in repr(OPENSSL_IMPLEMENTATION.client_context(client_config))
    assert "TLSServerConfiguration" in repr(OPENSSL_IMPLEMENTATION.server_context(server_config))
