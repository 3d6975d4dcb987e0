"""unitls.insecure with the OpenSSL backend: every step warns, and only the checks asked for
are turned off."""

from __future__ import annotations

import datetime
import ipaddress
import pickle
import threading
import warnings
from collections.abc import Callable, Iterator

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import unitls
from helpers import handshake, make_pair, signing_chain, trust_store
from unitls.insecure import (
    InsecureConfiguration,
    InsecureTLSImplementation,
    SecurityWarning,
)
from unitls.insecure.openssl import (
    OPENSSL_INSECURE_IMPLEMENTATION,
    OpenSSLInsecureClientContext,
    OpenSSLInsecureServerContext,
)
from unitls.openssl import (
    OPENSSL_IMPLEMENTATION,
    OpenSSLClientContext,
    OpenSSLServerContext,
    validate_config,
)

IMPL = OPENSSL_INSECURE_IMPLEMENTATION
TIMEOUT = 10.0


# -- fixtures and helpers ----------------------------------------------------------------------


def _self_signed(name: str) -> unitls.SigningChain:
    """A self-signed EC certificate for `name` (and 127.0.0.1): no CA anyone trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return unitls.SigningChain(
        leaf=(
            unitls.Certificate.from_buffer(cert.public_bytes(serialization.Encoding.PEM)),
            unitls.PrivateKey.from_buffer(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ),
        )
    )


@pytest.fixture(scope="module")
def self_signed_config() -> unitls.TLSServerConfiguration:
    return unitls.TLSServerConfiguration(certificate_chain=[_self_signed("localhost")])


def _insecure(hostname: bool = False, verification: bool = False) -> InsecureConfiguration:
    with pytest.warns(SecurityWarning):
        return InsecureConfiguration(
            disable_hostname_check=hostname, disable_verification=verification
        )


@pytest.fixture
def no_name_check() -> InsecureConfiguration:
    return _insecure(hostname=True)


@pytest.fixture
def no_verify() -> InsecureConfiguration:
    return _insecure(hostname=True, verification=True)


def _client(
    config: unitls.TLSClientConfiguration, insecure: InsecureConfiguration
) -> OpenSSLInsecureClientContext:
    with pytest.warns(SecurityWarning, match="client context"):
        return IMPL.insecure_client_context(config, insecure)


def _server(
    config: unitls.TLSServerConfiguration, insecure: InsecureConfiguration
) -> OpenSSLInsecureServerContext:
    with pytest.warns(SecurityWarning, match="server context"):
        return IMPL.insecure_server_context(config, insecure)


def _buffer(ctx: OpenSSLInsecureClientContext, name: str | None) -> unitls.TLSBuffer:
    with pytest.warns(SecurityWarning, match="buffer"):
        return ctx.create_buffer(name)


def _connect(client: unitls.TLSBuffer, server_config: unitls.TLSServerConfiguration) -> bytes:
    """Handshake `client` with a fresh secure server buffer; return the certificate it saw."""
    server = OPENSSL_IMPLEMENTATION.server_context(server_config).create_buffer()
    handshake(client, server)
    cert = client.getpeercert()
    assert cert is not None
    return cert


def _leaf_der(chain: unitls.SigningChain) -> bytes:
    pem = chain.leaf[0].buffer
    assert pem is not None
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning (instead of pytest.warns) where exact counts matter."""
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        yield log


def _security(log: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in log if issubclass(w.category, SecurityWarning)]


# -- InsecureConfiguration ---------------------------------------------------------------------


def test_security_warning_is_a_plain_warning_shown_by_default():
    assert issubclass(SecurityWarning, Warning)
    assert not issubclass(SecurityWarning, DeprecationWarning)


@pytest.mark.parametrize(
    ("hostname", "verification"), [(False, False), (True, False), (True, True)]
)
def test_constructing_a_configuration_warns(hostname, verification):
    with pytest.warns(SecurityWarning, match="testing only") as record:
        config = InsecureConfiguration(
            disable_hostname_check=hostname, disable_verification=verification
        )
    assert len(record) == 1
    assert record[0].filename == __file__  # attributed to the caller, not to unitls
    assert config.disable_hostname_check is hostname
    assert config.disable_verification is verification


def test_defaults_disable_nothing():
    with pytest.warns(SecurityWarning):
        config = InsecureConfiguration()
    assert (config.disable_hostname_check, config.disable_verification) == (False, False)


def test_verification_off_with_hostname_check_on_is_refused(recorded):
    with pytest.raises(ValueError, match="disable_verification requires disable_hostname_check"):
        InsecureConfiguration(disable_verification=True)
    with pytest.raises(ValueError, match="requires disable_hostname_check"):
        InsecureConfiguration(False, True)
    assert _security(recorded) == []  # refused before anything insecure exists


@pytest.mark.parametrize("value", [1, 0, None, "yes"])
@pytest.mark.parametrize("field", ["disable_hostname_check", "disable_verification"])
def test_flags_must_be_bools(field, value, recorded):
    with pytest.raises(TypeError, match=field):
        InsecureConfiguration(**{field: value})
    assert _security(recorded) == []


def test_configuration_is_immutable_hashable_and_picklable(recorded):
    a = InsecureConfiguration(True, True)
    b = InsecureConfiguration(disable_hostname_check=True, disable_verification=True)
    c = InsecureConfiguration(True)
    with pytest.raises(AttributeError, match="immutable"):
        a.disable_verification = False  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del a.disable_hostname_check
    with pytest.raises(AttributeError, match="immutable"):
        a.extra = 1
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != (True, True)
    assert {a: 1, c: 2}[b] == 1
    assert repr(c) == (
        "InsecureConfiguration(disable_hostname_check=True, disable_verification=False)"
    )
    before = len(_security(recorded))
    assert pickle.loads(pickle.dumps(a)) == a
    assert len(_security(recorded)) == before + 1  # unpickling builds one again: it warns


def test_public_names():
    import unitls.insecure
    import unitls.insecure.openssl

    required = {"SecurityWarning", "InsecureConfiguration", "InsecureTLSImplementation"}
    assert required <= set(unitls.insecure.__all__)
    assert "OPENSSL_INSECURE_IMPLEMENTATION" in unitls.insecure.openssl.__all__
    for name in unitls.insecure.__all__:
        assert getattr(unitls.insecure, name).__doc__


# -- the implementation object -----------------------------------------------------------------


def test_implementation_bundles_secure_and_insecure_contexts():
    assert isinstance(IMPL, InsecureTLSImplementation)
    assert isinstance(IMPL, unitls.TLSImplementation)
    assert IMPL.client_context is OpenSSLClientContext
    assert IMPL.server_context is OpenSSLServerContext
    assert IMPL.validate_config is validate_config
    assert IMPL.insecure_client_context is OpenSSLInsecureClientContext
    assert IMPL.insecure_server_context is OpenSSLInsecureServerContext
    assert issubclass(OpenSSLInsecureClientContext, OpenSSLClientContext)
    assert issubclass(OpenSSLInsecureServerContext, OpenSSLServerContext)
    assert "OpenSSLInsecureClientContext" in repr(IMPL)


def test_secure_contexts_of_the_insecure_implementation_do_not_warn(
    client_config, server_config, recorded
):
    client = IMPL.client_context(client_config).create_buffer("localhost")
    server = IMPL.server_context(server_config).create_buffer()
    handshake(client, server)
    assert _security(recorded) == []


# -- contexts ----------------------------------------------------------------------------------


def test_client_context_warns_and_exposes_its_configurations(client_config, no_verify):
    with pytest.warns(SecurityWarning, match="certificates are not verified") as record:
        ctx = IMPL.insecure_client_context(client_config, no_verify)
    assert record[0].filename == __file__
    assert ctx.insecure_configuration is no_verify
    assert ctx.configuration is client_config
    assert isinstance(ctx, OpenSSLClientContext)
    assert "disable_verification=True" in repr(ctx)


def test_server_context_warns_and_exposes_its_configurations(server_config, no_verify):
    with pytest.warns(SecurityWarning, match="server context"):
        ctx = IMPL.insecure_server_context(server_config, no_verify)
    assert ctx.insecure_configuration is no_verify
    assert ctx.configuration is server_config
    assert "InsecureConfiguration" in repr(ctx)


@pytest.mark.parametrize("factory", ["insecure_client_context", "insecure_server_context"])
def test_contexts_need_an_insecure_configuration(factory, client_config, server_config, recorded):
    config = client_config if factory == "insecure_client_context" else server_config
    with pytest.raises(TypeError, match="insecure_configuration must be an InsecureConfiguration"):
        getattr(IMPL, factory)(config, {"disable_verification": True})
    assert _security(recorded) == []


def test_contexts_check_the_tls_configuration_type(client_config, server_config, no_verify):
    with pytest.raises(TypeError, match="TLSClientConfiguration"):
        IMPL.insecure_client_context(server_config, no_verify)
    with pytest.raises(TypeError, match="TLSServerConfiguration"):
        IMPL.insecure_server_context(client_config, no_verify)


def test_every_create_buffer_warns(client_config, server_config, no_name_check):
    client_ctx = _client(client_config, no_name_check)
    server_ctx = _server(server_config, no_name_check)
    for _ in range(2):
        with pytest.warns(SecurityWarning, match="insecure client context") as record:
            client_ctx.create_buffer("localhost")
        assert record[0].filename == __file__
        with pytest.warns(SecurityWarning, match="insecure server context"):
            server_ctx.create_buffer()


# -- what is and is not checked ----------------------------------------------------------------


def test_verification_disabled_accepts_a_self_signed_server(self_signed_config, no_verify):
    # The same server is refused by a secure client (even one with a trust store).
    secure = OPENSSL_IMPLEMENTATION.client_context(unitls.TLSClientConfiguration())
    with pytest.raises(unitls.CertificateVerificationError) as info:
        _connect(secure.create_buffer("localhost"), self_signed_config)
    assert info.value.verify_code == 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT

    ctx = _client(
        unitls.TLSClientConfiguration(inner_protocols=[unitls.NextProtocol.H2]), no_verify
    )
    for name in ("localhost", "wrong.example", "10.1.2.3", None):
        client = _buffer(ctx, name)
        assert _connect(client, self_signed_config) == _leaf_der(
            self_signed_config.certificate_chain[0]
        )
        assert client.negotiated_tls_version is unitls.TLSVersion.TLSv1_3


def test_verification_disabled_ignores_the_trust_store(ca, self_signed_config, no_verify):
    config = unitls.TLSClientConfiguration(trust_store=trust_store(ca))
    client = _buffer(_client(config, no_verify), "localhost")
    _connect(client, self_signed_config)


def test_hostname_check_disabled_accepts_a_wrong_name(client_config, server_config, no_name_check):
    secure = OPENSSL_IMPLEMENTATION.client_context(client_config)
    with pytest.raises(unitls.CertificateVerificationError, match=r"wrong\.example"):
        _connect(secure.create_buffer("wrong.example"), server_config)

    ctx = _client(client_config, no_name_check)
    for name in ("wrong.example", "192.0.2.1"):
        _connect(_buffer(ctx, name), server_config)


def test_hostname_check_disabled_still_verifies_the_chain(server_config, no_name_check):
    untrusted = unitls.TLSClientConfiguration(trust_store=trust_store(trustme.CA()))
    ctx = _client(untrusted, no_name_check)
    for name in ("localhost", None):
        with pytest.raises(unitls.CertificateVerificationError) as info:
            _connect(_buffer(ctx, name), server_config)
        assert info.value.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_hostname_check_disabled_still_refuses_self_signed(self_signed_config, no_name_check):
    ctx = _client(unitls.TLSClientConfiguration(), no_name_check)
    with pytest.raises(unitls.CertificateVerificationError):
        _connect(_buffer(ctx, "localhost"), self_signed_config)


def test_nothing_disabled_behaves_like_a_secure_context(client_config, server_config):
    ctx = _client(client_config, _insecure())
    _connect(_buffer(ctx, "localhost"), server_config)
    with pytest.raises(unitls.CertificateVerificationError, match=r"wrong\.example"):
        _connect(_buffer(ctx, "wrong.example"), server_config)


def test_sni_is_still_sent_without_the_hostname_check(ca, client_config, no_name_check):
    first = signing_chain(ca.issue_cert("a.example"))
    second = signing_chain(ca.issue_cert("b.example"))
    config = unitls.TLSServerConfiguration(certificate_chain=[first, second])
    ctx = _client(client_config, no_name_check)
    # The server picks the chain by SNI: the name is sent even though it is not checked.
    assert _connect(_buffer(ctx, "b.example"), config) == _leaf_der(second)
    assert _connect(_buffer(ctx, "a.example"), config) == _leaf_der(first)
    # None sends no SNI, so the server falls back to its default (first) chain.
    assert _connect(_buffer(ctx, None), config) == _leaf_der(first)


# -- create_buffer(None) -----------------------------------------------------------------------


def test_create_buffer_none_is_refused_by_secure_contexts(client_config):
    with pytest.raises(ValueError, match="server_hostname is required"):
        OPENSSL_IMPLEMENTATION.client_context(client_config).create_buffer(None)  # type: ignore[arg-type]


def test_create_buffer_none_needs_the_hostname_check_disabled(client_config):
    ctx = _client(client_config, _insecure())
    with pytest.warns(SecurityWarning), pytest.raises(ValueError, match="disables the hostname"):
        ctx.create_buffer(None)


@pytest.mark.parametrize("flags", ["no_name_check", "no_verify"])
def test_create_buffer_none_handshakes(flags, client_config, server_config, request):
    insecure = request.getfixturevalue(flags)
    client = _buffer(_client(client_config, insecure), None)
    _connect(client, server_config)


def test_create_buffer_still_validates_names(client_config, no_name_check):
    ctx = _client(client_config, no_name_check)
    with pytest.warns(SecurityWarning), pytest.raises(ValueError, match="empty"):
        ctx.create_buffer("")
    with pytest.warns(SecurityWarning), pytest.raises(TypeError):
        ctx.create_buffer(b"localhost")  # type: ignore[arg-type]


# -- server side -------------------------------------------------------------------------------


def test_server_with_verification_disabled_does_not_require_client_certs(
    ca, client_config, server_chain, no_verify
):
    config = unitls.TLSServerConfiguration(
        certificate_chain=[server_chain], trust_store=trust_store(ca)
    )
    # Secure: a client without a certificate is refused.
    with pytest.raises(unitls.TLSError, match="certificate"):
        make_pair(client_config, config)
    # Insecure: the same configuration lets it in.
    server = _server(config, no_verify)
    with pytest.warns(SecurityWarning):
        server_buffer = server.create_buffer()
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).create_buffer("localhost")
    handshake(client, server_buffer)
    assert server_buffer.getpeercert() is None


# -- sockets -----------------------------------------------------------------------------------


def _serve_once(
    listener: unitls.TLSSocket, handler: Callable[[unitls.TLSSocket], None]
) -> threading.Thread:
    def run() -> None:
        conn, _ = listener.accept()
        try:
            handler(conn)
        finally:
            conn.close(force=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _echo_once(conn: unitls.TLSSocket) -> None:
    conn.send(conn.recv(1024))


def test_connect_warns_once_and_skips_verification(self_signed_config, no_verify, recorded):
    listener = OPENSSL_IMPLEMENTATION.server_context(self_signed_config).connect(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    listener.listen(1)
    thread = _serve_once(listener, _echo_once)
    ctx = IMPL.insecure_client_context(unitls.TLSClientConfiguration(), no_verify)
    before = len(_security(recorded))
    sock = ctx.connect(listener.getsockname(), timeout=TIMEOUT)
    messages = _security(recorded)[before:]
    assert len(messages) == 1, messages  # one step, one warning (not one per layer)
    assert "Connecting with an insecure TLS client context" in messages[0]
    assert recorded[-1].filename == __file__
    try:
        assert sock.send(b"ping") == 4
        assert sock.recv(1024) == b"ping"
        assert sock.getpeercert() == _leaf_der(self_signed_config.certificate_chain[0])
    finally:
        sock.close(force=True)
        thread.join(TIMEOUT)
        listener.close()
    assert not thread.is_alive()


def test_secure_connect_refuses_the_same_server(self_signed_config):
    listener = OPENSSL_IMPLEMENTATION.server_context(self_signed_config).connect(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    listener.listen(1)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            listener.accept()
        except (unitls.TLSError, OSError) as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ctx = OPENSSL_IMPLEMENTATION.client_context(unitls.TLSClientConfiguration())
    try:
        with pytest.raises(unitls.CertificateVerificationError):
            ctx.connect(listener.getsockname())
    finally:
        thread.join(TIMEOUT)
        listener.close()
    assert failures, "the server should see the client's alert"


def test_insecure_server_socket_warns_on_listen_and_accept(client_config, server_config, no_verify):
    ctx = _server(server_config, no_verify)
    with pytest.warns(SecurityWarning, match="Listening with an insecure"):
        listener = ctx.connect(("127.0.0.1", 0), timeout=TIMEOUT)
    listener.listen(1)
    results: list[bytes] = []

    def client() -> None:
        secure = OPENSSL_IMPLEMENTATION.client_context(client_config)
        sock = secure.connect(listener.getsockname())
        try:
            sock.send(b"hi")
            results.append(sock.recv(16))
        finally:
            sock.close(force=True)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        # accept() creates a buffer for the client, and that step warns as well.
        with pytest.warns(SecurityWarning, match="insecure server context"):
            conn, _ = listener.accept()
        _echo_once(conn)
        conn.close(force=True)
    finally:
        thread.join(TIMEOUT)
        listener.close()
    assert results == [b"hi"]


# -- errors after an unverified handshake ------------------------------------------------------


def test_a_ragged_eof_after_an_unverified_handshake_is_a_ragged_eof(self_signed_config, no_verify):
    # OpenSSL records "self-signed certificate" (code 18) even under VERIFY_NONE and keeps
    # it after the handshake; it must not turn later failures into verification errors.
    client = _buffer(_client(unitls.TLSClientConfiguration(), no_verify), "localhost")
    _connect(client, self_signed_config)
    client.process_incoming(b"")  # the transport closed without close_notify
    with pytest.raises(unitls.RaggedEOF) as info:
        client.read(100)
    assert not isinstance(info.value, unitls.CertificateVerificationError)


def test_a_corrupt_record_after_an_unverified_handshake_is_not_a_verification_error(
    self_signed_config, no_verify
):
    client = _buffer(_client(unitls.TLSClientConfiguration(), no_verify), "localhost")
    server = OPENSSL_IMPLEMENTATION.server_context(self_signed_config).create_buffer()
    handshake(client, server)
    server.write(b"x" * 100)
    record = bytearray(server.process_outgoing(1 << 16))
    record[-1] ^= 0x01  # break the AEAD tag
    client.process_incoming(bytes(record))
    with pytest.raises(unitls.TLSError) as info:
        client.read(100)
    assert not isinstance(info.value, unitls.CertificateVerificationError)
    assert "bad record mac" in str(info.value).lower() or "decrypt" in str(info.value).lower()
