"""An `ssl.SSLContext`-shaped facade over unitls, for the HTTP stacks that take a context.

`SSLContext` is what `urllib3.PoolManager(ssl_context=...)` (and so requests, through an
`HTTPAdapter`), `http.client.HTTPSConnection(context=...)` and
`urllib.request.HTTPSHandler(context=...)` accept. The sockets it returns run a unitls
`TLSBuffer` underneath: certificate and hostname verification, ALPN and every TLS
record go through unitls.

```python
import urllib3
import unitls
from unitls_integrations.ssl_context import SSLContext

config = unitls.TLSClientConfiguration(trust_store=unitls.TrustStore.from_file("ca.pem"))
with urllib3.PoolManager(ssl_context=SSLContext(config)) as http:
    print(http.request("GET", "https://example.org/").data)
```

Theory of operation:

1. The facade holds settings, never an OpenSSL object. A setter that changes something
   derives a new immutable `unitls.TLSClientConfiguration`; unitls client contexts are
   built lazily and kept in a small process-wide cache keyed by (implementation,
   configuration, verification mode), one per ALPN list (`_config.ContextCache`).
   urllib3 sets ALPN and `verify_mode` on every connect and, once injected, builds a
   new context object per connection: all of that costs a dictionary lookup, never an
   OpenSSL context.
2. Nothing is silently ignored. What unitls always does (no compression, no
   renegotiation, TLS 1.2 or newer, strict chain checks) reads back as set; setting it
   again is a no-op and clearing it is refused. What unitls cannot honour raises
   `unitls.ConfigurationError` naming the setting. The one exception is
   `OP_NO_TICKET`, which urllib3 sets on every context it builds: it is accepted, and
   unitls keeps its own session policy (see `SSLContext.options`).
3. `check_hostname = False` and `verify_mode = CERT_NONE` build their contexts through
   `unitls.insecure`, which warns with `unitls.insecure.SecurityWarning` when the
   context is built and on every connection. The warning stays even when urllib3
   matches the name itself afterwards (`assert_hostname="name"`) or pins a
   fingerprint: the facade cannot tell those from `assert_hostname=False`, where
   nobody checks the name, and a context that skips the check without a word would be
   a trap for everyone else.
4. Handshake and I/O failures reach callers as the `ssl` module's exceptions (what
   urllib3, requests and http.client catch), chained from the unitls error on
   `__cause__`: `ssl.SSLCertVerificationError` with `verify_code` / `verify_message`
   for certificate failures, `ssl.SSLEOFError` for a ragged EOF, `ssl.SSLError`
   otherwise. Timeouts raise `TimeoutError` (`socket.timeout`), transport failures
   their `OSError`.
5. A socket is a `_blocking.TLSStream` over the caller's connected socket (switched to
   non-blocking mode and waited on with `poll`), with the `socket.socket` timeout
   model kept by the facade: every blocking call gets a fresh deadline from the
   current timeout.

This module holds `SSLContext` and is the public home of `SSLSocket` and `SSLObject`,
which live in `_ssl_connections` (the I/O side). The settings vocabulary (options,
verify flags, versions, ciphers) is mapped in `_ssl_options`, CA files and client
chains are read by `_trust_files`, and `getpeercert()` dictionaries are built by
`_certdict`, which the httpcore streams share.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import threading
from collections import OrderedDict
from typing import Any

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

from ._blocking import SocketTransport, TLSStream, Transport
from ._config import ContextCache, Implementation, check_configuration, protocol_name, replace
from ._ssl_connections import SSLObject, SSLSocket, closed_error
from ._ssl_options import (
    FIXED_OPTIONS,
    FIXED_VERIFY_FLAGS,
    FROM_UNITLS_VERSION,
    alpn_values,
    check_options,
    check_verify_flags,
    expand_ciphers,
    unitls_version,
)
from ._trust_files import Password, Trust, ca_sources, file_key, password_bytes, signing_chain

__all__ = ["SSLContext", "SSLSocket", "SSLObject"]

# Verification modes of a resolved context.
_SECURE, _NO_HOSTNAME_CHECK, _NO_VERIFICATION = 0, 1, 2

_SHARED_LIMIT = 64


# -- contexts --------------------------------------------------------------------------

_shared: OrderedDict[tuple[object, ...], ContextCache] = OrderedDict()
_shared_lock = threading.Lock()


def _insecure_implementation(implementation: Implementation) -> Any:
    """The `InsecureTLSImplementation` matching `implementation`, or a clear error."""
    from unitls.insecure import InsecureTLSImplementation

    if isinstance(implementation, InsecureTLSImplementation):
        return implementation
    if implementation is OPENSSL_IMPLEMENTATION:
        from unitls.insecure.openssl import OPENSSL_INSECURE_IMPLEMENTATION

        return OPENSSL_INSECURE_IMPLEMENTATION
    raise unitls.ConfigurationError(
        f"{implementation!r} has no insecure contexts: check_hostname = False and "
        "verify_mode = CERT_NONE need a unitls.insecure.InsecureTLSImplementation"
    )


def _shared_contexts(
    implementation: Implementation, configuration: unitls.TLSClientConfiguration, mode: int
) -> ContextCache:
    """The process-wide `ContextCache` for a configuration and verification mode."""
    key = (implementation, configuration, mode)
    with _shared_lock:
        found = _shared.get(key)
        if found is not None:
            _shared.move_to_end(key)
            return found
    factory = None
    if mode != _SECURE:
        from unitls.insecure import InsecureConfiguration

        insecure_impl = _insecure_implementation(implementation)
        insecure = InsecureConfiguration(  # warns: SecurityWarning
            disable_hostname_check=True, disable_verification=mode == _NO_VERIFICATION
        )

        def factory(config: unitls.TLSClientConfiguration) -> unitls.ClientContext:
            return insecure_impl.insecure_client_context(config, insecure)  # type: ignore[no-any-return]

    cache = ContextCache(configuration, implementation, factory)
    with _shared_lock:
        cache = _shared.setdefault(key, cache)
        _shared.move_to_end(key)
        while len(_shared) > _SHARED_LIMIT:
            _shared.popitem(last=False)
    return cache


@dataclasses.dataclass(frozen=True)
class _Resolved:
    contexts: ContextCache
    mode: int


class SSLContext:
    """An `ssl.SSLContext` look-alike whose connections run on unitls (client side only).

    Pass it where an HTTP library takes an SSL context:
    `urllib3.PoolManager(ssl_context=ctx)`, requests through an `HTTPAdapter` whose
    pool manager gets `ssl_context=ctx`, `http.client.HTTPSConnection(host,
    context=ctx)` or `urllib.request.HTTPSHandler(context=ctx)`.

    It starts from a unitls configuration and maps what those libraries set onto new
    configurations:

    - `verify_mode`, `check_hostname`: honoured. `check_hostname = False` still verifies
      the chain but not the name (urllib3 then matches names itself with
      `getpeercert()`); `verify_mode = CERT_NONE` verifies nothing and also turns
      `check_hostname` off (the stdlib raises `ValueError` instead, which breaks
      `verify=False` in requests with a custom context). Both go through
      `unitls.insecure` and warn with `SecurityWarning`.
    - `load_verify_locations`, `set_default_verify_paths`, `load_default_certs`: a
      trust store is the system store or explicit certificates. The system store
      of a default `SSLContext()` is only a default: the first
      `load_verify_locations()` replaces it (as urllib3 and requests expect; an
      `ssl.SSLContext(PROTOCOL_TLS_CLIENT)` starts empty). Certificates are then
      added; asking for both the system store and explicit certificates raises
      `unitls.ConfigurationError`. `capath` is read when the call is made (OpenSSL
      reads it at each lookup), PEM files named `<hash>.<n>` only.
    - `load_cert_chain`: the certificate chain and key are read into memory; an
      encrypted key is decrypted in memory with `password`.
    - `set_alpn_protocols`, `minimum_version`, `maximum_version` (TLS 1.2 and 1.3):
      honoured. `set_ciphers` narrows the TLS 1.2 suites to what the stdlib's OpenSSL
      expands the string to; TLS 1.3 suites stay as configured, as in the stdlib.
    - `options`, `verify_flags`, `hostname_checks_common_name`, `post_handshake_auth`,
      `keylog_filename`: read back what unitls does; values it cannot honour raise
      `unitls.ConfigurationError`.

    Server-side use (`wrap_socket(server_side=True)`) and `session=` are refused.
    Thread-safe: one context may serve many connections and threads.
    """

    __slots__ = (
        "__weakref__",
        "_alpn",
        "_alpn_values",
        "_base",
        "_check_hostname",
        "_implementation",
        "_lock",
        "_options",
        "_resolved",
        "_trust",
        "_verify_mode",
    )

    def __init__(
        self,
        configuration: unitls.TLSClientConfiguration | None = None,
        *,
        implementation: Implementation | None = None,
    ) -> None:
        """Create a facade over a unitls client configuration.

        Args:
            configuration: The TLS settings; `None` for the secure defaults with the
                system trust store. Its `inner_protocols` are offered until
                `set_alpn_protocols` replaces them (urllib3 does on every connect,
                with the protocols it speaks).
            implementation: The unitls implementation to build contexts with; `None`
                for `unitls.openssl.OPENSSL_IMPLEMENTATION`.

        Raises:
            TypeError: If `configuration` is not a `TLSClientConfiguration` or `None`
                (for example an `ssl.PROTOCOL_*` constant).
        """
        config = check_configuration(configuration)
        self._implementation: Implementation = (
            OPENSSL_IMPLEMENTATION if implementation is None else implementation
        )
        self._base = replace(config, inner_protocols=())
        store = config.trust_store
        if store is None or store.is_system():
            self._trust = Trust("default")
        else:
            self._trust = Trust("certs", store=store, pems=None)
        self._verify_mode = ssl.CERT_REQUIRED
        self._check_hostname = True
        self._options: int = FIXED_OPTIONS
        self._alpn_values = tuple(config.inner_protocols)
        self._alpn = tuple(protocol_name(p) for p in self._alpn_values)
        self._resolved: _Resolved | None = None
        self._lock = threading.Lock()

    # -- what the configuration becomes ---------------------------------------------

    def _start_without_trust(self) -> None:
        """Trust nothing until certificates or the system store are loaded (as
        `ssl.SSLContext(PROTOCOL_TLS_CLIENT)`); for urllib3's own contexts."""
        with self._lock:
            self._changed(_trust=Trust("certs", store=None, pems=()))

    def _changed(self, **changes: Any) -> None:
        """Apply attribute changes (under `_lock`) and forget the resolved contexts."""
        for name, value in changes.items():
            object.__setattr__(self, name, value)
        self._resolved = None

    def _replace_base(self, **changes: Any) -> None:
        """Change fields of the base configuration; setting the same values is free."""
        with self._lock:
            base = self._base
            if any(getattr(base, name) != value for name, value in changes.items()):
                self._changed(_base=replace(base, **changes))

    def _mode(self) -> int:
        if self._verify_mode == ssl.CERT_NONE:
            return _NO_VERIFICATION
        return _SECURE if self._check_hostname else _NO_HOSTNAME_CHECK

    def _effective_configuration(self, mode: int) -> unitls.TLSClientConfiguration:
        trust = self._trust
        if trust.kind == "certs" and trust.store is None and mode != _NO_VERIFICATION:
            raise unitls.ConfigurationError(
                "trust_store: no trust anchors; call load_verify_locations() or "
                "load_default_certs() first"
            )
        return replace(self._base, trust_store=trust.store)

    def _resolve(self) -> _Resolved:
        with self._lock:
            resolved = self._resolved
            if resolved is None:
                mode = self._mode()
                config = self._effective_configuration(mode)
                contexts = _shared_contexts(self._implementation, config, mode)
                resolved = self._resolved = _Resolved(contexts, mode)
            return resolved

    @property
    def configuration(self) -> unitls.TLSClientConfiguration:
        """The unitls configuration connections use now, ALPN protocols included.

        Raises:
            unitls.ConfigurationError: If verification is on and no trust anchor is set.
        """
        with self._lock:
            config = self._effective_configuration(self._mode())
        return replace(config, inner_protocols=self._alpn_values)

    @property
    def implementation(self) -> Implementation:
        """The unitls implementation this context builds its unitls contexts with."""
        return self._implementation

    @property
    def protocol(self) -> ssl._SSLMethod:
        """Always `ssl.PROTOCOL_TLS_CLIENT`: this is a client context."""
        return ssl.PROTOCOL_TLS_CLIENT

    # -- verification ------------------------------------------------------------------

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        """Whether the server's certificate is verified.

        `CERT_REQUIRED` (the default) and `CERT_OPTIONAL` verify it (they are the same
        thing for a client). Setting `CERT_NONE` verifies nothing, turns
        `check_hostname` off too, and builds contexts through `unitls.insecure`, which
        warns with `SecurityWarning`; `getpeercert()` then returns `{}` as in the stdlib.

        Raises:
            ValueError: For a value that is not a `ssl.VerifyMode`.
            unitls.ConfigurationError: For `CERT_NONE` with an implementation that has
                no insecure contexts.
        """
        return self._verify_mode

    @verify_mode.setter
    def verify_mode(self, value: ssl.VerifyMode | int) -> None:
        try:
            mode = ssl.VerifyMode(value)
        except ValueError:
            raise ValueError(f"invalid value for verify_mode: {value!r}") from None
        if mode == self._verify_mode:
            return  # urllib3 sets it on every connect
        if mode == ssl.CERT_NONE:
            _insecure_implementation(self._implementation)
            with self._lock:
                self._changed(_verify_mode=mode, _check_hostname=False)
        else:
            with self._lock:
                self._changed(_verify_mode=mode)

    @property
    def check_hostname(self) -> bool:
        """Whether the server's certificate must match the name connected to.

        On by default, and checked by unitls during the handshake. `False` still
        verifies the chain; contexts are then built through `unitls.insecure`
        (`disable_hostname_check=True`), which warns with `SecurityWarning`. urllib3
        sets it to `False` for `assert_hostname` / `assert_fingerprint` and then
        matches the name (or the fingerprint) itself with `getpeercert()`.
        Setting it to `True` while `verify_mode` is `CERT_NONE` sets `verify_mode` to
        `CERT_REQUIRED`, as in the stdlib.

        Raises:
            unitls.ConfigurationError: For `False` with an implementation that has no
                insecure contexts.
        """
        return self._check_hostname

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        value = bool(value)
        if value == self._check_hostname:
            return  # http.client writes it back on every connection
        if not value:
            _insecure_implementation(self._implementation)
        with self._lock:
            if value and self._verify_mode == ssl.CERT_NONE:
                self._changed(_check_hostname=True, _verify_mode=ssl.CERT_REQUIRED)
            else:
                self._changed(_check_hostname=value)

    @property
    def hostname_checks_common_name(self) -> bool:
        """Always `False`: unitls matches subjectAltNames only (RFC 6125, RFC 9525).

        Raises:
            unitls.ConfigurationError: When set to `True`.
        """
        return False

    @hostname_checks_common_name.setter
    def hostname_checks_common_name(self, value: bool) -> None:
        if value:
            raise unitls.ConfigurationError(
                "hostname_checks_common_name: unitls never matches the subject common name"
            )

    @property
    def verify_flags(self) -> ssl.VerifyFlags:
        """The chain-verification flags unitls always uses.

        `VERIFY_X509_TRUSTED_FIRST | VERIFY_X509_STRICT | VERIFY_X509_PARTIAL_CHAIN`;
        setting exactly these (as urllib3's `|=` does) is a no-op.

        Raises:
            unitls.ConfigurationError: When set to anything else (CRL checking,
                proxy certificates, or dropping a strictness flag).
        """
        return ssl.VerifyFlags(FIXED_VERIFY_FLAGS)

    @verify_flags.setter
    def verify_flags(self, value: ssl.VerifyFlags | int) -> None:
        check_verify_flags(int(value))  # only the fixed flags pass: nothing to store

    @property
    def post_handshake_auth(self) -> None:
        """Always `None`: unitls does no TLS 1.3 post-handshake authentication.

        urllib3 and http.client treat `None` as "not available" and skip it.

        Raises:
            unitls.ConfigurationError: When set to `True`.
        """
        return None

    @post_handshake_auth.setter
    def post_handshake_auth(self, value: bool | None) -> None:
        if value:
            raise unitls.ConfigurationError(
                "post_handshake_auth: unitls does no TLS 1.3 post-handshake authentication"
            )

    @property
    def keylog_filename(self) -> str | None:
        """Where TLS secrets are logged: unitls follows `$SSLKEYLOGFILE`, nothing else.

        Raises:
            unitls.ConfigurationError: When set to another file.
        """
        return os.environ.get("SSLKEYLOGFILE") or None

    @keylog_filename.setter
    def keylog_filename(self, value: str | None) -> None:
        current = os.environ.get("SSLKEYLOGFILE") or None
        if value is None and current is None:
            return
        if value is not None and current is not None and os.fspath(value) == current:
            return
        raise unitls.ConfigurationError(
            f"keylog_filename: unitls logs TLS secrets to $SSLKEYLOGFILE only "
            f"(now {current!r}), not to {value!r}"
        )

    # -- trust -------------------------------------------------------------------------

    def load_verify_locations(
        self,
        cafile: str | bytes | os.PathLike[Any] | None = None,
        capath: str | bytes | os.PathLike[Any] | None = None,
        cadata: str | bytes | bytearray | memoryview | None = None,
    ) -> None:
        """Trust the CA certificates in a file, an OpenSSL hashed directory, or data.

        The first call on a context that trusts the system store by default replaces
        that default; later calls add certificates. Files are read now (`capath`
        too, its `<hash>.<n>` PEM files only); calling again with an unchanged file is
        a no-op.

        Args:
            cafile: A file of PEM certificates (one DER certificate is accepted too).
            capath: A directory prepared with `c_rehash` / `openssl rehash`.
            cadata: PEM text (`str`) or DER bytes (one or more certificates).

        Raises:
            TypeError: If all three are `None`.
            OSError: If a file or directory cannot be read.
            ssl.SSLError: If a source holds no certificate.
            unitls.ConfigurationError: If the system trust store was asked for
                (`set_default_verify_paths`): unitls cannot trust both.
        """
        if cafile is None and capath is None and cadata is None:
            raise TypeError("cafile, capath and cadata cannot be all omitted")
        sources = ca_sources(cafile, capath, cadata)
        with self._lock:
            trust = self._trust.adding(sources)
            if trust is not self._trust:
                self._changed(_trust=trust)

    def set_default_verify_paths(self) -> None:
        """Trust the system's CA certificates (what unitls calls the system trust store).

        Raises:
            unitls.ConfigurationError: If certificates were loaded or configured:
                unitls trusts the system store or explicit certificates, not both.
        """
        with self._lock:
            trust = self._trust
            if trust.kind == "certs":
                if trust.store is not None:
                    raise unitls.ConfigurationError(
                        "trust_store: this context trusts explicit certificates; unitls "
                        "cannot add the system trust store to them"
                    )
                self._changed(_trust=Trust("system"))
            elif trust.kind == "default":
                self._trust = Trust("system")  # the same configuration, now asked for

    def load_default_certs(self, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> None:
        """Trust the system's CA certificates for verifying servers.

        Args:
            purpose: Must be `ssl.Purpose.SERVER_AUTH`: this is a client context.

        Raises:
            ValueError: For another purpose.
            unitls.ConfigurationError: As `set_default_verify_paths`.
        """
        if purpose != ssl.Purpose.SERVER_AUTH:
            raise ValueError(f"a client context verifies servers; purpose {purpose!r}")
        self.set_default_verify_paths()

    def load_cert_chain(
        self,
        certfile: str | bytes | os.PathLike[Any],
        keyfile: str | bytes | os.PathLike[Any] | None = None,
        password: Password | None = None,
    ) -> None:
        """Present a client certificate to servers that ask for one (mutual TLS).

        Args:
            certfile: PEM file with the certificate, then its intermediates (and the
                private key, if `keyfile` is `None`).
            keyfile: PEM file with the private key.
            password: For an encrypted key: `str`, `bytes`, or a callable returning
                one. The key is decrypted in memory and never written anywhere.

        Raises:
            OSError: If a file cannot be read.
            ssl.SSLError: If no certificate or key is found, the password is wrong
                or missing, or the key does not match the certificate.
            TypeError: If `password` has the wrong type.
        """
        cert_key = file_key(certfile)
        key_key = cert_key if keyfile is None else file_key(keyfile)
        chain = signing_chain(cert_key, key_key, password_bytes(password))
        self._replace_base(certificate_chain=chain)

    # -- protocol settings ----------------------------------------------------------------

    def set_alpn_protocols(self, alpn_protocols: list[str]) -> None:
        """Offer these protocols through ALPN (e.g. `["h2", "http/1.1"]`).

        Raises:
            ValueError: For an empty name or one longer than 255 bytes.
            TypeError: For names that are not `str`.
        """
        protocols = tuple(alpn_protocols)
        if protocols == self._alpn:
            return  # urllib3 sets the same list on every connect
        values = alpn_values(protocols)
        with self._lock:
            self._alpn, self._alpn_values = protocols, values

    def set_ciphers(self, ciphers: str) -> None:
        """Allow the TLS 1.2 suites an OpenSSL cipher string selects.

        The string is expanded by the stdlib's OpenSSL; TLS 1.3 suites are not
        affected (as with `ssl.SSLContext.set_ciphers`). Suites unitls refuses (CCM_8)
        make the next connection raise `unitls.ConfigurationError` naming them.

        Raises:
            ssl.SSLError: If the string selects no TLS 1.2 suite.
        """
        tls12, default_tls13 = expand_ciphers(str(ciphers))
        with self._lock:
            current = self._base.ciphers
            if current is None:
                tls13: tuple[int, ...] = default_tls13
            else:
                tls13 = tuple(int(s) for s in current if 0x1300 <= s <= 0x13FF)
            suites = tls13 + tls12
            if current is None or tuple(int(s) for s in current) != suites:
                self._changed(_base=replace(self._base, ciphers=suites))

    @property
    def minimum_version(self) -> ssl.TLSVersion:
        """The lowest TLS version to negotiate (TLS 1.2 unless raised to TLS 1.3).

        Raises:
            unitls.ConfigurationError: For versions below TLS 1.2.
            ValueError: If above `maximum_version`.
        """
        lowest = self._base.lowest_supported_version
        return ssl.TLSVersion.TLSv1_2 if lowest is None else FROM_UNITLS_VERSION[lowest]

    @minimum_version.setter
    def minimum_version(self, value: ssl.TLSVersion) -> None:
        self._replace_base(lowest_supported_version=unitls_version("minimum_version", value))

    @property
    def maximum_version(self) -> ssl.TLSVersion:
        """The highest TLS version to negotiate (`MAXIMUM_SUPPORTED` by default).

        Raises:
            unitls.ConfigurationError: For versions below TLS 1.2.
            ValueError: If below `minimum_version`.
        """
        highest = self._base.highest_supported_version
        return ssl.TLSVersion.MAXIMUM_SUPPORTED if highest is None else FROM_UNITLS_VERSION[highest]

    @maximum_version.setter
    def maximum_version(self, value: ssl.TLSVersion) -> None:
        self._replace_base(highest_supported_version=unitls_version("maximum_version", value))

    @property
    def options(self) -> ssl.Options:
        """OpenSSL-style option flags, as far as they describe unitls.

        Always set (clearing them is refused): `OP_NO_SSLv2`, `OP_NO_SSLv3`,
        `OP_NO_TLSv1`, `OP_NO_TLSv1_1`, `OP_NO_COMPRESSION`, `OP_NO_RENEGOTIATION`,
        `OP_ENABLE_MIDDLEBOX_COMPAT`. Honoured: `OP_IGNORE_UNEXPECTED_EOF` (a
        connection closed without close_notify reads as a clean end). Accepted
        without effect: `OP_CIPHER_SERVER_PREFERENCE` (server side only),
        `OP_SINGLE_DH_USE` / `OP_SINGLE_ECDH_USE` (no-ops in OpenSSL 3) and
        `OP_NO_TICKET`, which urllib3 sets on every context it builds: unitls keeps
        its own session policy (sessions are resumed per server name, with tickets
        in TLS 1.2 as in TLS 1.3, where OpenSSL ignores this flag on clients).

        Raises:
            unitls.ConfigurationError: For any other flag, e.g. `OP_NO_TLSv1_2` /
                `OP_NO_TLSv1_3` (set `minimum_version` / `maximum_version` instead).
        """
        return ssl.Options(self._options)

    @options.setter
    def options(self, value: ssl.Options | int) -> None:
        value = int(value)
        if value == self._options:
            return
        check_options(value)
        with self._lock:
            self._options = value  # socket-level only: the unitls contexts stay

    # -- connections ---------------------------------------------------------------------

    def _new_buffer(
        self, server_hostname: str | bytes | None
    ) -> tuple[unitls.TLSBuffer, int, str | None]:
        resolved = self._resolved or self._resolve()
        if isinstance(server_hostname, bytes):
            server_hostname = server_hostname.decode("ascii")
        if server_hostname is None and resolved.mode == _SECURE:
            raise ValueError("check_hostname requires server_hostname")
        context = resolved.contexts.get(self._alpn_values)
        # Insecure contexts take None (no SNI) when the hostname check is off.
        buffer = context.create_buffer(server_hostname)  # type: ignore[arg-type]
        return buffer, resolved.mode, server_hostname

    def wrap_socket(
        self,
        sock: socket.socket | SSLSocket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: object = None,
    ) -> SSLSocket:
        """Run TLS over a connected socket and return the TLS socket.

        The socket's current timeout (`sock.gettimeout()`) becomes the TLS socket's;
        the socket itself is switched to non-blocking mode and owned by the result.
        An `SSLSocket` from this module may be wrapped again (TLS inside TLS).

        Args:
            sock: A connected `SOCK_STREAM` socket.
            server_side: Must be `False`: this is a client context.
            do_handshake_on_connect: Handshake now (default) or on first use.
            suppress_ragged_eofs: Read a close without close_notify as a clean end
                of stream (`b""`), as the stdlib does by default; HTTP detects
                truncation by length. `False` raises `ssl.SSLEOFError` instead.
            server_hostname: The name to verify and to send as SNI.
            session: Must be `None`: unitls resumes sessions itself.

        Raises:
            ValueError: For `server_side=True`, an unconnected socket, or no
                `server_hostname` while `check_hostname` is on.
            ssl.SSLCertVerificationError: If the certificate fails verification.
            ssl.SSLError: If the handshake fails otherwise.
            TimeoutError: If the handshake outlasts the timeout.
            unitls.ConfigurationError: For `session`, or a configuration the
                implementation cannot honour.
        """
        if server_side:
            raise ValueError("Cannot create a server socket with a client SSLContext")
        if session is not None:
            raise unitls.ConfigurationError("session: unitls resumes sessions itself")
        if do_handshake_on_connect and sock.gettimeout() == 0.0:
            raise ValueError(
                "do_handshake_on_connect should not be specified for non-blocking sockets"
            )
        inner: TLSStream | None = None
        if isinstance(sock, SSLSocket):
            inner = sock._stream
            if inner is None:
                raise closed_error()
            raw, timeout = sock._raw, sock.gettimeout()
        else:
            if sock.type != socket.SOCK_STREAM:
                raise ValueError("only stream sockets are supported")
            try:
                sock.getpeername()
            except OSError as exc:
                raise ValueError("wrap_socket needs a connected socket: connect it first") from exc
            raw, timeout = sock, sock.gettimeout()
        buffer, mode, hostname = self._new_buffer(server_hostname)
        transport: Transport
        if inner is not None:
            transport = inner
            sock._stream = None  # type: ignore[union-attr]  # the new socket owns it now
        else:
            transport = SocketTransport(raw)
        ssl_sock = SSLSocket._create(
            self,
            raw,
            TLSStream(transport, buffer),
            server_hostname=hostname,
            verified=mode != _NO_VERIFICATION,
            timeout=timeout,
            suppress_ragged_eofs=suppress_ragged_eofs
            or bool(self._options & ssl.OP_IGNORE_UNEXPECTED_EOF),
        )
        if do_handshake_on_connect:
            ssl_sock.do_handshake()
        return ssl_sock

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: object = None,
    ) -> SSLObject:
        """Run TLS over a pair of `ssl.MemoryBIO`s, as `ssl.SSLContext.wrap_bio`.

        urllib3 uses it (when present) for TLS inside TLS, through HTTPS proxies.

        Raises:
            ValueError: For `server_side=True`, or no `server_hostname` while
                `check_hostname` is on.
            unitls.ConfigurationError: For `session`.
        """
        if server_side:
            raise ValueError("Cannot create a server socket with a client SSLContext")
        if session is not None:
            raise unitls.ConfigurationError("session: unitls resumes sessions itself")
        buffer, mode, hostname = self._new_buffer(server_hostname)
        return SSLObject._create(
            self,
            buffer,
            incoming,
            outgoing,
            server_hostname=hostname,
            verified=mode != _NO_VERIFICATION,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} "
            f"verify_mode={self._verify_mode.name} check_hostname={self._check_hostname} "
            f"alpn={list(self._alpn)}>"
        )


# The connection classes live in `_ssl_connections`; this module is their public home.
SSLSocket.__module__ = SSLObject.__module__ = __name__
