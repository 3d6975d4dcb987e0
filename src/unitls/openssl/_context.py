"""Configurations become OpenSSL contexts here: one `SSL.Context` per unitls context
(per signing chain on servers), built completely at construction and never
changed afterwards (since pyOpenSSL 26.2 a Context used by a Connection is
immutable). Buffers and sockets only create `Connection`s from it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto

from .._configuration import TLSClientConfiguration, TLSServerConfiguration
from .._credentials import Certificate, PrivateKey, SigningChain, TrustStore
from .._enums import NextProtocol
from .._errors import ConfigurationError
from ._buffer import OpenSSLTLSBuffer
from ._ciphers import CipherPlan, plan_ciphers
from ._errors import describe
from ._lowlevel import lib
from ._socket import OpenSSLTLSSocket

__all__ = [
    "OpenSSLClientContext",
    "OpenSSLServerContext",
    "validate_config",
    "SESSION_CACHE_SIZE",
]

#: How many client sessions (one per server name) a client context keeps for resumption.
SESSION_CACHE_SIZE = 256

_OPTIONS = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION
_STORE_FLAGS = crypto.X509StoreFlags.X509_STRICT | crypto.X509StoreFlags.PARTIAL_CHAIN


# -- credentials -----------------------------------------------------------------


def _read_source(source: Certificate | PrivateKey | TrustStore, field: str) -> bytes:
    if source.id is not None:
        raise ConfigurationError(
            f"{field}: the OpenSSL backend has no key or certificate store ids; "
            f"load {type(source).__name__} from a buffer or a file instead"
        )
    if source.buffer is not None:
        return source.buffer
    assert source.path is not None
    try:
        with open(source.path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigurationError(f"{field}: cannot read {source.path!r}: {exc.strerror}") from exc


def _load_certificates(source: Certificate | TrustStore, field: str) -> list[x509.Certificate]:
    data = _read_source(source, field)
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{field}: not a PEM or DER certificate ({exc})") from exc
    return certs


# "X509 CERTIFICATE" is the old label; OpenSSL and cryptography read both.
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN (X509 |)CERTIFICATE-----\r?\n.+?-----END \1CERTIFICATE-----", re.DOTALL
)


def _load_trust_anchors(trust: TrustStore, field: str) -> list[crypto.X509]:
    """The certificates of a trust store, parsed by OpenSSL, which will use them.

    Not through cryptography: its stricter parser warns about (and will one day
    refuse) roots that real bundles carry, such as certifi's with non-positive
    serial numbers, and every `requests` user would see that warning.
    """
    data = _read_source(trust, field)
    if b"-----BEGIN" in data:
        blocks = [m.group() for m in _PEM_CERTIFICATE.finditer(data)]
        filetype = crypto.FILETYPE_PEM
        if not blocks:
            raise ConfigurationError(
                f"{field}: not a PEM or DER certificate (no CERTIFICATE block)"
            )
    else:
        blocks, filetype = [data], crypto.FILETYPE_ASN1
    try:
        return [crypto.load_certificate(filetype, block) for block in blocks]
    except crypto.Error as exc:
        raise ConfigurationError(
            f"{field}: not a PEM or DER certificate ({describe(exc)})"
        ) from exc


def _load_certificate(source: Certificate, field: str) -> x509.Certificate:
    certs = _load_certificates(source, field)
    if len(certs) != 1:
        raise ConfigurationError(
            f"{field}: expected one certificate, found {len(certs)}; "
            "put intermediates in SigningChain.chain"
        )
    return certs[0]


def _load_private_key(source: PrivateKey, field: str) -> object:
    data = _read_source(source, field)
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except TypeError as exc:
        raise ConfigurationError(f"{field}: encrypted private keys are not supported") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError(f"{field}: not a PEM or DER private key ({exc})") from exc


def _system_trust_paths() -> list[str]:
    """Where OpenSSL (or pyOpenSSL's fallback for wheels) finds system CAs."""
    candidates = [os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")]
    candidates += [
        lib_path.decode() if isinstance(lib_path, bytes) else lib_path
        for lib_path in (
            _ffi_string(lib.X509_get_default_cert_file()),
            _ffi_string(lib.X509_get_default_cert_dir()),
        )
    ]
    candidates += list(getattr(SSL, "_CERTIFICATE_FILE_LOCATIONS", ()))
    candidates += list(getattr(SSL, "_CERTIFICATE_PATH_LOCATIONS", ()))
    return [c for c in candidates if c and os.path.exists(c)]


def _ffi_string(ptr: object) -> bytes:
    from ._lowlevel import ffi

    return ffi.string(ptr)  # type: ignore[no-any-return]


def _apply_trust(ctx: SSL.Context, trust: TrustStore, field: str) -> None:
    store = ctx.get_cert_store()
    assert store is not None
    store.set_flags(_STORE_FLAGS)
    if trust.is_system():
        if not _system_trust_paths():
            raise ConfigurationError(
                f"{field}: no system trust store found (looked at SSL_CERT_FILE, SSL_CERT_DIR "
                "and OpenSSL's default paths); pass TrustStore.from_file(...) instead"
            )
        ctx.set_default_verify_paths()
        return
    for cert in _load_trust_anchors(trust, field):
        try:
            store.add_cert(cert)
        except crypto.Error as exc:  # duplicates are harmless; anything else is not
            if "already in hash table" not in str(exc):
                raise ConfigurationError(f"{field}: cannot add certificate: {exc}") from exc


def _apply_chain(ctx: SSL.Context, chain: SigningChain, field: str) -> x509.Certificate:
    leaf_source, key_source = chain.leaf
    if key_source is None:
        raise ConfigurationError(
            f"{field}: the OpenSSL backend needs the leaf's private key (leaf=(cert, key))"
        )
    leaf = _load_certificate(leaf_source, f"{field} leaf")
    key = _load_private_key(key_source, f"{field} key")
    try:
        ctx.use_certificate(leaf)
        ctx.use_privatekey(key)  # type: ignore[arg-type]
        ctx.check_privatekey()
    except (SSL.Error, TypeError) as exc:
        reason = describe(exc)
        if isinstance(exc, TypeError):
            message = f"unsupported key type ({exc})"
        elif "mismatch" in reason:
            message = "the private key does not match the certificate"
        else:
            # e.g. "ee key too small": the security level refuses weak keys and digests
            message = f"OpenSSL refuses this certificate or key: {reason}"
        raise ConfigurationError(f"{field}: {message}") from exc
    for i, source in enumerate(chain.chain):
        ctx.add_extra_chain_cert(_load_certificate(source, f"{field} chain[{i}]"))
    return leaf


# -- keylog ------------------------------------------------------------------------

_keylog_lock = threading.Lock()


def _keylog_writer(path: str) -> Callable[[SSL.Connection, bytes], None]:
    def write(conn: SSL.Connection, line: bytes) -> None:
        with _keylog_lock, open(path, "ab") as f:
            f.write(line + b"\n")

    return write


# -- building ----------------------------------------------------------------------


def _alpn_wire(protocols: Sequence[NextProtocol | bytes]) -> list[bytes]:
    return [p.value if isinstance(p, NextProtocol) else p for p in protocols]


def _base_context(
    plan: CipherPlan, config: TLSClientConfiguration | TLSServerConfiguration
) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(plan.min_version)
    ctx.set_max_proto_version(plan.max_version)
    try:
        ctx.set_cipher_list(plan.tls12)
        ctx.set_tls13_ciphersuites(plan.tls13)
    except SSL.Error as exc:
        raise ConfigurationError(f"ciphers: OpenSSL accepts none of {config.ciphers!r}") from exc
    ctx.set_options(_OPTIONS)
    # Free record buffers while a connection is idle, as CPython's ssl module does.
    lib.SSL_CTX_set_mode(ctx._context, lib.SSL_MODE_RELEASE_BUFFERS)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog:
        ctx.set_keylog_callback(_keylog_writer(keylog))
    return ctx


def build_client_context(
    config: TLSClientConfiguration, *, verify: bool = True
) -> tuple[SSL.Context, CipherPlan]:
    """Build the one `SSL.Context` for a client configuration."""
    plan = plan_ciphers(config)
    ctx = _base_context(plan, config)
    if verify:
        ctx.set_verify(SSL.VERIFY_PEER)
        _apply_trust(ctx, config.trust_store or TrustStore.system(), "trust_store")
    else:
        ctx.set_verify(SSL.VERIFY_NONE)
    if config.certificate_chain is not None:
        _apply_chain(ctx, config.certificate_chain, "certificate_chain")
    if config.inner_protocols:
        ctx.set_alpn_protos(_alpn_wire(config.inner_protocols))
    # unitls keeps the sessions it resumes itself (per server name, bounded);
    # OpenSSL's internal store would also hold every ticket of every connection.
    ctx.set_session_cache_mode(SSL.SESS_CACHE_CLIENT | SSL.SESS_CACHE_NO_INTERNAL_STORE)
    return ctx, plan


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName)]


class _ServerContexts:
    """The per-chain `SSL.Context`s of a server and the SNI lookup between them."""

    def __init__(self, config: TLSServerConfiguration, *, verify: bool = True) -> None:
        chains = config.certificate_chain
        if not chains:
            raise ConfigurationError("certificate_chain: a server needs at least one SigningChain")
        self.plan = plan_ciphers(config)
        session_id = hashlib.sha256(repr(config).encode()).digest()[:32]
        preferences = _alpn_wire(config.inner_protocols)
        self.contexts: list[SSL.Context] = []
        self.exact: dict[str, SSL.Context] = {}
        self.wildcard: dict[str, SSL.Context] = {}
        for index, chain in enumerate(chains):
            ctx = _base_context(self.plan, config)
            ctx.set_options(SSL.OP_CIPHER_SERVER_PREFERENCE)
            leaf = _apply_chain(ctx, chain, f"certificate_chain[{index}]")
            if config.trust_store is not None and verify:
                ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT)
                _apply_trust(ctx, config.trust_store, "trust_store")
            else:
                ctx.set_verify(SSL.VERIFY_NONE)
            ctx.set_session_id(session_id)
            if preferences:
                ctx.set_alpn_select_callback(_alpn_selector(preferences))
            for name in _dns_names(leaf):
                table = self.wildcard if name.startswith("*.") else self.exact
                table.setdefault(name[2:] if name.startswith("*.") else name, ctx)
            self.contexts.append(ctx)
        self.default = self.contexts[0]
        if len(self.contexts) > 1:
            # Registered on the default context, the one every Connection starts with.
            self.default.set_tlsext_servername_callback(self._on_server_name)

    def select(self, server_name: bytes | None) -> SSL.Context:
        """The context for a client's SNI name: exact match, then wildcard, then default."""
        if not server_name:
            return self.default
        name = server_name.decode("ascii", "replace").lower().rstrip(".")
        ctx = self.exact.get(name)
        if ctx is None:
            _, _, parent = name.partition(".")
            ctx = self.wildcard.get(parent, self.default) if parent else self.default
        return ctx

    def _on_server_name(self, conn: SSL.Connection) -> None:
        ctx = self.select(conn.get_servername())
        if ctx is not self.default:
            # Every per-chain context carries its own ALPN, verify and cipher settings.
            conn.set_context(ctx)


def _alpn_selector(preferences: list[bytes]) -> Callable[[SSL.Connection, list[bytes]], Any]:
    def select(conn: SSL.Connection, offered: list[bytes]) -> Any:
        # Server preference order; no overlap means no ALPN, as CPython's ssl does.
        for protocol in preferences:
            if protocol in offered:
                return protocol
        return SSL.NO_OVERLAPPING_PROTOCOLS

    return select


def validate_config(config: TLSClientConfiguration | TLSServerConfiguration) -> None:
    """Check that the OpenSSL backend can build a context from `config`.

    Everything a context constructor would reject is checked, by building the
    OpenSSL context and discarding it: when this returns, creating a context from
    `config` will not fail for configuration reasons.

    Raises:
        ConfigurationError: Naming the field that cannot be honoured (e.g. a
            `from_id` credential, an unreadable file, CCM_8 suites).
        TypeError: If `config` is not a unitls configuration.
    """
    if isinstance(config, TLSClientConfiguration):
        build_client_context(config)
    elif isinstance(config, TLSServerConfiguration):
        _ServerContexts(config)
    else:
        raise TypeError(
            "expected a TLSClientConfiguration or TLSServerConfiguration, "
            f"not {type(config).__name__}"
        )


class OpenSSLClientContext:
    """The client side of the OpenSSL backend: builds client buffers and sockets.

    One OpenSSL context is built at construction and shared by every buffer and
    socket (and thread) that this object creates. Sessions are cached per server
    name (up to `SESSION_CACHE_SIZE` names) and resumed by later connections from
    the same context. A session is kept once the connection has read data (TLS 1.3
    tickets arrive after the handshake); OpenSSL refuses to resume a session whose
    connection was dropped without a clean `shutdown()`/`close()`.
    """

    __slots__ = (
        "__weakref__",
        "_check_hostname",
        "_configuration",
        "_plan",
        "_sessions",
        "_sessions_lock",
        "_ssl_context",
        "_verify",
    )

    _verify: bool
    _check_hostname: bool

    def __init__(self, configuration: TLSClientConfiguration) -> None:
        """Create a client context.

        Raises:
            TypeError: If `configuration` is not a `TLSClientConfiguration`.
            ConfigurationError: If the backend cannot honour it (see `validate_config`).
        """
        self._setup(configuration, verify=True, check_hostname=True)

    def _setup(
        self, configuration: TLSClientConfiguration, *, verify: bool, check_hostname: bool
    ) -> None:
        if not isinstance(configuration, TLSClientConfiguration):
            raise TypeError(
                f"configuration must be a TLSClientConfiguration, "
                f"not {type(configuration).__name__}"
            )
        self._configuration = configuration
        self._verify = verify
        self._check_hostname = check_hostname
        self._ssl_context, self._plan = build_client_context(configuration, verify=verify)
        self._sessions: OrderedDict[str, SSL.Session] = OrderedDict()
        self._sessions_lock = threading.Lock()

    @property
    def configuration(self) -> TLSClientConfiguration:
        """The configuration this context was created from."""
        return self._configuration

    def create_buffer(self, server_hostname: str) -> OpenSSLTLSBuffer:
        """Create an in-memory client connection to `server_hostname`.

        Args:
            server_hostname: The DNS name (sent as SNI) or IP literal the server's
                certificate must match.

        Raises:
            ValueError: If `server_hostname` is `None`, empty or malformed.
            TypeError: If it is not a `str`.
        """
        if server_hostname is None:
            raise ValueError(
                "server_hostname is required: certificate verification needs the name to "
                "check (only unitls.insecure may skip the hostname check)"
            )
        return OpenSSLTLSBuffer._create_client(self, server_hostname)

    def connect(
        self, address: tuple[str | None, int], *, timeout: float | None = None
    ) -> OpenSSLTLSSocket:
        """Open a TCP connection to `address`, complete the TLS handshake and return
        the socket. The host part of `address` is the name verified.

        Args:
            address: `(host, port)`; host is a DNS name or an IP literal.
            timeout: An extension of the PEP: bounds the TCP connect and each wait
                during the handshake, then becomes the socket's timeout. `None`
                (default) uses `socket.getdefaulttimeout()`, normally blocking.

        Raises:
            CertificateVerificationError: If the server's certificate fails verification.
            TLSError: If the handshake fails otherwise.
            OSError: If the TCP connection fails (including timeouts).
        """
        return OpenSSLTLSSocket._create_client(self, address, timeout=timeout)

    # session cache ------------------------------------------------------------

    def _get_session(self, key: str) -> SSL.Session | None:
        return self._sessions.get(key)

    def _put_session(self, key: str, session: SSL.Session) -> None:
        sessions = self._sessions
        with self._sessions_lock:  # contexts are shared between threads
            sessions[key] = session
            sessions.move_to_end(key)
            while len(sessions) > SESSION_CACHE_SIZE:
                sessions.popitem(last=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._configuration!r}>"


class OpenSSLServerContext:
    """The server side of the OpenSSL backend: builds server buffers and sockets.

    Each signing chain gets its own fully configured OpenSSL context, built once;
    the client's SNI name picks one per handshake (exact DNS name, then a
    one-label wildcard), and the first chain serves clients that send no SNI or an
    unknown name.
    """

    __slots__ = ("__weakref__", "_configuration", "_contexts", "_verify")

    def __init__(self, configuration: TLSServerConfiguration) -> None:
        """Create a server context.

        Raises:
            TypeError: If `configuration` is not a `TLSServerConfiguration`.
            ConfigurationError: If the backend cannot honour it (see `validate_config`).
        """
        self._setup(configuration, verify=True)

    def _setup(self, configuration: TLSServerConfiguration, *, verify: bool) -> None:
        if not isinstance(configuration, TLSServerConfiguration):
            raise TypeError(
                f"configuration must be a TLSServerConfiguration, "
                f"not {type(configuration).__name__}"
            )
        self._configuration = configuration
        self._verify = verify
        self._contexts = _ServerContexts(configuration, verify=verify)

    @property
    def configuration(self) -> TLSServerConfiguration:
        """The configuration this context was created from."""
        return self._configuration

    def create_buffer(self) -> OpenSSLTLSBuffer:
        """Create an in-memory server connection."""
        return OpenSSLTLSBuffer._create_server(self)

    def connect(
        self, address: tuple[str | None, int], *, timeout: float | None = None
    ) -> OpenSSLTLSSocket:
        """Bind a listening TLS socket to `address` (IPv4 or IPv6) and return it.

        `accept()` on it returns sockets whose handshake is complete.

        Args:
            address: `(host, port)`; host `None` or `""` binds every IPv4 interface,
                port 0 picks a free port (see `getsockname()`).
            timeout: An extension of the PEP: the listening socket's timeout, which
                also bounds each accepted client's handshake.
        """
        sock = OpenSSLTLSSocket._create_server(self, address)
        sock.settimeout(timeout)
        return sock

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._configuration!r}>"
