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
    print(http.request("GET", "https://localhost:8443/").data)
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
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NoReturn, overload

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

from ._blocking import SocketTransport, TLSStream, Transport, deadline_after
from ._config import ContextCache, alpn_protocols, check_configuration, replace

__all__ = ["SSLContext", "SSLSocket", "SSLObject"]

Implementation = unitls.TLSImplementation[Any, Any]
_Password = str | bytes | bytearray | Callable[[], str | bytes | bytearray]
PeerCertificate = dict[str, Any]

# Verification modes of a resolved context.
_SECURE, _NO_HOSTNAME_CHECK, _NO_VERIFICATION = 0, 1, 2

#: Options unitls always applies: they read back as set and cannot be cleared.
_FIXED_OPTIONS = (
    ssl.OP_NO_SSLv2
    | ssl.OP_NO_SSLv3
    | ssl.OP_NO_TLSv1
    | ssl.OP_NO_TLSv1_1
    | ssl.OP_NO_COMPRESSION
    | ssl.OP_NO_RENEGOTIATION
    | ssl.OP_ENABLE_MIDDLEBOX_COMPAT
)
#: Options that change nothing for a unitls client: server-side only
#: (OP_CIPHER_SERVER_PREFERENCE), zero in OpenSSL 3 (OP_SINGLE_*), or OP_NO_TICKET
#: (urllib3 sets it on every context; unitls keeps its own session policy).
_NOOP_OPTIONS = (
    ssl.OP_CIPHER_SERVER_PREFERENCE
    | ssl.OP_SINGLE_DH_USE
    | ssl.OP_SINGLE_ECDH_USE
    | ssl.OP_NO_TICKET
)
#: What unitls verifies with, always: trusted certificates first (OpenSSL's default),
#: RFC 5280 strictness, and trust anchors that need not be self-signed.
_FIXED_VERIFY_FLAGS = (
    ssl.VERIFY_X509_TRUSTED_FIRST | ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
)

_TO_UNITLS_VERSION = {
    ssl.TLSVersion.MINIMUM_SUPPORTED: unitls.TLSVersion.MINIMUM_SUPPORTED,
    ssl.TLSVersion.TLSv1_2: unitls.TLSVersion.TLSv1_2,
    ssl.TLSVersion.TLSv1_3: unitls.TLSVersion.TLSv1_3,
    ssl.TLSVersion.MAXIMUM_SUPPORTED: unitls.TLSVersion.MAXIMUM_SUPPORTED,
}
_FROM_UNITLS_VERSION = {value: key for key, value in _TO_UNITLS_VERSION.items()}

#: The sendall chunk that gets its own deadline: one TLS record, so a timeout bounds
#: each wait for progress, as it does for each `SSL_write` in the stdlib.
_SEND_CHUNK = 16 * 1024
_SHARED_LIMIT = 64
_monotonic = time.monotonic


# -- errors ------------------------------------------------------------------------


def _ssl_error(exc: unitls.TLSError) -> ssl.SSLError:
    """The `ssl` exception for a unitls error (raise it `from exc`)."""
    error: ssl.SSLError
    if isinstance(exc, unitls.CertificateVerificationError):
        cert_error = ssl.SSLCertVerificationError(
            ssl.SSL_ERROR_SSL, f"[SSL: CERTIFICATE_VERIFY_FAILED] {exc}"
        )
        cert_error.verify_code = exc.verify_code
        cert_error.verify_message = exc.verify_message
        error, reason = cert_error, "CERTIFICATE_VERIFY_FAILED"
    elif isinstance(exc, unitls.RaggedEOF):
        error = ssl.SSLEOFError(ssl.SSL_ERROR_EOF, f"[SSL: UNEXPECTED_EOF_WHILE_READING] {exc}")
        reason = "UNEXPECTED_EOF_WHILE_READING"
    else:
        error, reason = ssl.SSLError(ssl.SSL_ERROR_SSL, f"[SSL] {exc}"), ""
    error.library = "SSL"
    error.reason = reason or None  # type: ignore[assignment]  # the stdlib sets None too
    return error


def _closed_error() -> OSError:
    return OSError(errno.EBADF, "Bad file descriptor")


def _flag_names(bits: int, flags: type[ssl.Options] | type[ssl.VerifyFlags]) -> str:
    """`bits` as flag names, for messages ("OP_NO_TLSv1_3, 0x4")."""
    names = []
    for member in flags:
        if member.value and bits & member.value == member.value:
            names.append(member.name or hex(member.value))
            bits &= ~member.value
    if bits:
        names.append(hex(bits))
    return ", ".join(names)


# -- certificates: trust anchors, client chains ------------------------------------


def _split_der(data: bytes) -> list[bytes]:
    """Concatenated DER certificates, one by one (as `cadata` bytes hold them)."""
    items, i = [], 0
    while i < len(data):
        if data[i] != 0x30 or i + 2 > len(data):
            raise ValueError("not a DER SEQUENCE")
        length, header = data[i + 1], 2
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 4 or i + 2 + count > len(data):
                raise ValueError("bad DER length")
            length, header = int.from_bytes(data[i + 2 : i + 2 + count], "big"), 2 + count
        end = i + header + length
        if end > len(data):
            raise ValueError("truncated DER")
        items.append(data[i:end])
        i = end
    return items


_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)


@functools.lru_cache(maxsize=32)
def _certificates_pem(data: bytes, what: str) -> bytes:
    """The certificates in `data` (PEM, or concatenated DER) as PEM text.

    Only the framing is checked here (the backend parses the certificates when it
    builds its context): parsing CA bundles with `cryptography` would warn about
    the non-positive serial numbers some widely trusted roots have.

    Raises:
        ssl.SSLError: If there is no certificate, as `ssl.SSLContext.load_verify_locations`.
    """
    blocks: list[bytes] = []
    if b"-----BEGIN" in data:
        blocks = _PEM_CERTIFICATE.findall(data)
    else:
        try:
            blocks = [ssl.DER_cert_to_PEM_cert(item).encode("ascii") for item in _split_der(data)]
        except ValueError:
            pass
    if not blocks:
        raise ssl.SSLError(
            ssl.SSL_ERROR_SSL, f"[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate found in {what}"
        )
    return b"\n".join(block.strip() for block in blocks) + b"\n"


_FileKey = tuple[str | bytes, int, int, int, int]


def _file_key(path: str | bytes | os.PathLike[Any]) -> _FileKey:
    """A file's identity and version, for caches (raises `OSError` like `open`)."""
    name = os.fspath(path)
    st = os.stat(name)
    return (name, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _read_file(key: _FileKey) -> bytes:
    """A file's bytes, read once per version (`key` from `_file_key`)."""
    with open(key[0], "rb") as f:
        return f.read()


_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def _ca_directory(capath: str | bytes | os.PathLike[Any]) -> tuple[tuple[object, ...], bytes]:
    """The certificates of an OpenSSL hashed directory (`c_rehash`), read now."""
    name = os.fsdecode(capath)
    keys, pems = [], []
    for entry in sorted(os.listdir(name)):
        if not _HASHED_NAME.fullmatch(entry):
            continue  # OpenSSL only looks up <subject hash>.<n> files
        key = _file_key(os.path.join(name, entry))
        keys.append(key)
        pems.append(_certificates_pem(_read_file(key), repr(key[0])))
    return ("dir", name, tuple(keys)), b"".join(pems)


_KEY_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S
)


def _password_bytes(password: _Password | None) -> bytes | None:
    if password is None:
        return None
    if callable(password):
        password = password()
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise TypeError("password should be a string or callable")


@functools.lru_cache(maxsize=16)
def _signing_chain(
    cert_key: _FileKey, key_key: _FileKey, password: bytes | None
) -> unitls.SigningChain:
    """A unitls signing chain from PEM files, decrypted in memory (never on disk)."""
    try:
        certs = x509.load_pem_x509_certificates(_read_file(cert_key))
    except ValueError as exc:
        raise ssl.SSLError(
            ssl.SSL_ERROR_SSL, f"[SSL: PEM_LIB] no PEM certificate in {cert_key[0]!r}"
        ) from exc
    match = _KEY_BLOCK.search(_read_file(key_key))
    if match is None:
        raise ssl.SSLError(
            ssl.SSL_ERROR_SSL, f"[SSL: PEM_LIB] no PEM private key in {key_key[0]!r}"
        )
    try:
        key = serialization.load_pem_private_key(match.group(0), password)
    except TypeError as exc:
        if password is None:
            raise ssl.SSLError(
                ssl.SSL_ERROR_SSL,
                f"[SSL: PEM_LIB] the private key in {key_key[0]!r} is encrypted: pass password=",
            ) from exc
        # A password for an unencrypted key is ignored, as the stdlib does.
        key = serialization.load_pem_private_key(match.group(0), None)
    except ValueError as exc:
        raise ssl.SSLError(
            ssl.SSL_ERROR_SSL, f"[SSL: BAD_DECRYPT] cannot load the private key: {exc}"
        ) from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != certs[0].public_key().public_bytes(der, spki):
        raise ssl.SSLError(ssl.SSL_ERROR_SSL, "[X509: KEY_VALUES_MISMATCH] key values mismatch")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = serialization.Encoding.PEM
    return unitls.SigningChain(
        leaf=(
            unitls.Certificate.from_buffer(certs[0].public_bytes(pem)),
            unitls.PrivateKey.from_buffer(key_pem),
        ),
        chain=[unitls.Certificate.from_buffer(cert.public_bytes(pem)) for cert in certs[1:]],
    )


@dataclasses.dataclass(frozen=True)
class _Trust:
    """Where trust comes from. unitls trusts the system store or explicit certificates,
    never both, so mixing them is refused."""

    #: "default": the system store, replaced by the first load_verify_locations();
    #: "system": the system store, asked for; "certs": explicit certificates.
    kind: Literal["default", "system", "certs"]
    #: For "certs": the store (None while no certificate was loaded).
    store: unitls.TrustStore | None = None
    #: For "certs": PEM of each source loaded so far (None: `store` not read yet).
    pems: tuple[bytes, ...] | None = ()
    #: For "certs": identities of the sources loaded, so repeats are no-ops.
    keys: frozenset[object] = frozenset()


def _store_pem(store: unitls.TrustStore) -> bytes:
    """A configured trust store's certificates as PEM, to merge more into it."""
    if store.buffer is not None:
        return _certificates_pem(store.buffer, "the configured trust store")
    if store.path is not None:
        return _certificates_pem(_read_file(_file_key(store.path)), repr(store.path))
    raise unitls.ConfigurationError(
        "trust_store: cannot add certificates to a trust store given by id"
    )


# -- peer certificates as the ssl module shows them ----------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: OpenSSL's long names for distinguished-name attributes (what `getpeercert()` shows).
_ATTRIBUTE_NAMES = {
    "2.5.4.3": "commonName",
    "2.5.4.4": "surname",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "countryName",
    "2.5.4.7": "localityName",
    "2.5.4.8": "stateOrProvinceName",
    "2.5.4.9": "streetAddress",
    "2.5.4.10": "organizationName",
    "2.5.4.11": "organizationalUnitName",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "givenName",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.72": "role",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "userId",
    "0.9.2342.19200300.100.1.25": "domainComponent",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionLocalityName",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionStateOrProvinceName",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionCountryName",
}


def _name(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    return tuple(
        tuple(
            (
                _ATTRIBUTE_NAMES.get(attr.oid.dotted_string, attr.oid.dotted_string),
                attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1"),
            )
            for attr in rdn
        )
        for rdn in name.rdns
    )


def _time(moment: datetime) -> str:
    # ASN1_TIME_print's format, locale-independent: "Jan  5 09:34:43 2018 GMT".
    return f"{_MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S} {moment.year} GMT"


def _serial(number: int) -> str:
    # i2a_ASN1_INTEGER: uppercase hex byte pairs, a "\\\n" every 35 bytes.
    text = f"{abs(number):X}"
    text = "0" * (len(text) % 2) + text
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    lines = ["".join(pairs[i : i + 35]) for i in range(0, len(pairs), 35)]
    return ("-" if number < 0 else "") + "\\\n".join(lines)


def _general_name(name: x509.GeneralName) -> tuple[str, Any]:
    if isinstance(name, x509.DNSName):
        return ("DNS", name.value)
    if isinstance(name, x509.IPAddress):
        packed = name.value.packed  # type: ignore[union-attr]  # SAN IPs are addresses
        if len(packed) == 4:
            return ("IP Address", ".".join(str(b) for b in packed))
        groups = (int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2))
        return ("IP Address", ":".join(f"{g:X}" for g in groups))
    if isinstance(name, x509.RFC822Name):
        return ("email", name.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        return ("URI", name.value)
    if isinstance(name, x509.DirectoryName):
        return ("DirName", _name(name.value))
    if isinstance(name, x509.RegisteredID):
        return ("Registered ID", name.value.dotted_string)
    return ("othername", "<unsupported>")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _decode_certificate(der: bytes) -> PeerCertificate:
    """A DER certificate as the dictionary `ssl.SSLSocket.getpeercert()` returns.

    Built with `cryptography.x509`; the same keys, value shapes and text formats as
    CPython's `_ssl` module (subject and issuer as tuples of RDNs of
    `(long name, value)` pairs, `notBefore` / `notAfter` as `"%b %e %H:%M:%S %Y GMT"`,
    `subjectAltName` entries such as `("DNS", ...)` and `("IP Address", ...)`).
    """
    cert = x509.load_der_x509_certificate(der)
    result: PeerCertificate = {
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": _serial(cert.serial_number),
        "notBefore": _time(cert.not_valid_before_utc),
        "notAfter": _time(cert.not_valid_after_utc),
    }
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is not None:
        result["subjectAltName"] = tuple(_general_name(name) for name in san)
    aia = _extension(cert, x509.AuthorityInformationAccess)
    if aia is not None:
        for key, oid in (
            ("OCSP", AuthorityInformationAccessOID.OCSP),
            ("caIssuers", AuthorityInformationAccessOID.CA_ISSUERS),
        ):
            uris = tuple(
                d.access_location.value
                for d in aia
                if d.access_method == oid
                and isinstance(d.access_location, x509.UniformResourceIdentifier)
            )
            if uris:
                result[key] = uris
    crl = _extension(cert, x509.CRLDistributionPoints)
    if crl is not None:
        uris = tuple(
            name.value
            for point in crl
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        )
        if uris:
            result["crlDistributionPoints"] = uris
    return result


@functools.lru_cache(maxsize=1)
def _cipher_table() -> dict[int, tuple[str, str, int]]:
    """IANA id -> (OpenSSL name, protocol, secret bits), from the stdlib's OpenSSL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:  # pragma: no cover - an OpenSSL without security levels
        pass
    return {
        c["id"] & 0xFFFF: (c["name"], c["protocol"], c["strength_bits"])
        for c in context.get_ciphers()
    }


@functools.lru_cache(maxsize=32)
def _expand_ciphers(spec: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """An OpenSSL cipher string, expanded by the stdlib's OpenSSL: (TLS 1.2, TLS 1.3) ids."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers(spec)  # ssl.SSLError if nothing matches, as the stdlib
    ciphers = context.get_ciphers()
    tls12 = tuple(c["id"] & 0xFFFF for c in ciphers if c["protocol"] != "TLSv1.3")
    tls13 = tuple(c["id"] & 0xFFFF for c in ciphers if c["protocol"] == "TLSv1.3")
    if not tls12:
        raise ssl.SSLError(ssl.SSL_ERROR_SSL, "No cipher can be selected.")
    return tls12, tls13


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
            self._trust = _Trust("default")
        else:
            self._trust = _Trust("certs", store=store, pems=None)
        self._verify_mode = ssl.CERT_REQUIRED
        self._check_hostname = True
        self._options: int = _FIXED_OPTIONS
        self._alpn_values = tuple(config.inner_protocols)
        self._alpn = tuple(
            (p.value if isinstance(p, unitls.NextProtocol) else p).decode("ascii", "replace")
            for p in self._alpn_values
        )
        self._resolved: _Resolved | None = None
        self._lock = threading.Lock()

    # -- what the configuration becomes ---------------------------------------------

    def _start_without_trust(self) -> None:
        """Trust nothing until certificates or the system store are loaded (as
        `ssl.SSLContext(PROTOCOL_TLS_CLIENT)`); for urllib3's own contexts."""
        with self._lock:
            self._changed(_trust=_Trust("certs", store=None, pems=()))

    def _changed(self, **changes: Any) -> None:
        """Apply attribute changes (under `_lock`) and forget the resolved contexts."""
        for name, value in changes.items():
            object.__setattr__(self, name, value)
        self._resolved = None

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
        return ssl.VerifyFlags(_FIXED_VERIFY_FLAGS)

    @verify_flags.setter
    def verify_flags(self, value: ssl.VerifyFlags | int) -> None:
        value = int(value)
        if value == _FIXED_VERIFY_FLAGS:
            return
        added, removed = value & ~_FIXED_VERIFY_FLAGS, _FIXED_VERIFY_FLAGS & ~value
        problems = []
        if added:
            problems.append(f"cannot add {_flag_names(added, ssl.VerifyFlags)}")
        if removed:
            problems.append(f"always uses {_flag_names(removed, ssl.VerifyFlags)}")
        raise unitls.ConfigurationError(f"verify_flags: unitls {' and '.join(problems)}")

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
        sources: list[tuple[object, bytes]] = []
        if cafile is not None:
            key = _file_key(cafile)
            sources.append((("file", *key), _certificates_pem(_read_file(key), repr(key[0]))))
        if capath is not None:
            sources.append(_ca_directory(capath))
        if cadata is not None:
            if isinstance(cadata, str):
                data = cadata.encode("ascii")
            elif isinstance(cadata, (bytes, bytearray, memoryview)):
                data = bytes(cadata)
            else:
                raise TypeError(f"cadata should be str or bytes, not {type(cadata).__name__}")
            sources.append((("data", data), _certificates_pem(data, "cadata")))
        with self._lock:
            trust = self._trust
            if trust.kind == "system":
                raise unitls.ConfigurationError(
                    "trust_store: this context trusts the system store "
                    "(set_default_verify_paths); unitls cannot add certificates to it"
                )
            if trust.kind == "default":
                pems: tuple[bytes, ...] = ()
                keys: frozenset[object] = frozenset()
            else:
                assert trust.kind == "certs"
                keys = trust.keys
                if trust.pems is not None:
                    pems = trust.pems
                else:
                    assert trust.store is not None
                    pems = (_store_pem(trust.store),)
            new = [(key, pem) for key, pem in sources if key not in keys]
            if not new and trust.kind == "certs" and trust.pems is not None:
                return  # urllib3 and requests load the same file on every connect
            pems += tuple(pem for _, pem in new)
            keys |= frozenset(key for key, _ in new)
            blob = b"".join(pems)
            store = unitls.TrustStore.from_buffer(blob) if blob else None
            self._changed(_trust=_Trust("certs", store=store, pems=pems, keys=keys))

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
                self._changed(_trust=_Trust("system"))
            elif trust.kind == "default":
                self._trust = _Trust("system")  # the same configuration, now asked for

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
        password: _Password | None = None,
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
        cert_key = _file_key(certfile)
        key_key = cert_key if keyfile is None else _file_key(keyfile)
        pw = _password_bytes(password)
        chain = _signing_chain(cert_key, key_key, pw)
        with self._lock:
            if self._base.certificate_chain != chain:
                self._changed(_base=replace(self._base, certificate_chain=chain))

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
        values = _alpn_values(protocols)
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
        tls12, default_tls13 = _expand_ciphers(str(ciphers))
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
        return ssl.TLSVersion.TLSv1_2 if lowest is None else _FROM_UNITLS_VERSION[lowest]

    @minimum_version.setter
    def minimum_version(self, value: ssl.TLSVersion) -> None:
        version = self._version("minimum_version", value)
        with self._lock:
            if self._base.lowest_supported_version != version:
                self._changed(_base=replace(self._base, lowest_supported_version=version))

    @property
    def maximum_version(self) -> ssl.TLSVersion:
        """The highest TLS version to negotiate (`MAXIMUM_SUPPORTED` by default).

        Raises:
            unitls.ConfigurationError: For versions below TLS 1.2.
            ValueError: If below `minimum_version`.
        """
        highest = self._base.highest_supported_version
        return (
            ssl.TLSVersion.MAXIMUM_SUPPORTED if highest is None else _FROM_UNITLS_VERSION[highest]
        )

    @maximum_version.setter
    def maximum_version(self, value: ssl.TLSVersion) -> None:
        version = self._version("maximum_version", value)
        with self._lock:
            if self._base.highest_supported_version != version:
                self._changed(_base=replace(self._base, highest_supported_version=version))

    @staticmethod
    def _version(field: str, value: ssl.TLSVersion) -> unitls.TLSVersion:
        version = _TO_UNITLS_VERSION.get(ssl.TLSVersion(value))
        if version is None:
            raise unitls.ConfigurationError(
                f"{field}: unitls negotiates TLS 1.2 and TLS 1.3 only, "
                f"not {ssl.TLSVersion(value).name}"
            )
        return version

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
        missing = _FIXED_OPTIONS & ~value
        if missing:
            raise unitls.ConfigurationError(
                f"options: unitls always applies {_flag_names(missing, ssl.Options)}"
            )
        unknown = value & ~(_FIXED_OPTIONS | _NOOP_OPTIONS | ssl.OP_IGNORE_UNEXPECTED_EOF)
        if unknown:
            raise unitls.ConfigurationError(
                f"options: unitls cannot honour {_flag_names(unknown, ssl.Options)}"
            )
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
                raise _closed_error()
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


def _alpn_values(protocols: tuple[str, ...]) -> tuple[unitls.NextProtocol | bytes, ...]:
    """ALPN names checked as the stdlib does, as unitls values."""
    for name in protocols:
        if isinstance(name, str) and not 1 <= len(name.encode("ascii", "replace")) <= 255:
            raise ValueError(f"ALPN protocol {name!r} must be 1 to 255 bytes long")
    return alpn_protocols(protocols)


# -- connections ---------------------------------------------------------------------


class _Connection:
    """What `SSLSocket` and `SSLObject` share: the information methods."""

    __slots__ = ("_buffer", "_context", "_done", "_peercert", "_server_hostname", "_verified")

    _buffer: unitls.TLSBuffer
    _context: SSLContext
    _done: bool  # the handshake completed
    _peercert: PeerCertificate | None
    _server_hostname: str | None
    _verified: bool

    def _handshook(self) -> bool:
        if not self._done and self._buffer.negotiated_tls_version is not None:
            self._done = True
        return self._done

    @property
    def context(self) -> SSLContext:
        """The `SSLContext` this connection was created from."""
        return self._context

    @property
    def server_hostname(self) -> str | None:
        """The name given to `wrap_socket` / `wrap_bio` (verified and sent as SNI)."""
        return self._server_hostname

    @property
    def server_side(self) -> bool:
        """Always `False`: connections from this module are clients."""
        return False

    @property
    def session(self) -> None:
        """Always `None`: unitls resumes sessions itself, per server name."""
        return None

    @overload
    def getpeercert(self, binary_form: Literal[False] = ...) -> PeerCertificate | None: ...

    @overload
    def getpeercert(self, binary_form: Literal[True]) -> bytes | None: ...

    def getpeercert(self, binary_form: bool = False) -> PeerCertificate | bytes | None:
        """The server's certificate, as `ssl.SSLSocket.getpeercert` returns it.

        Args:
            binary_form: `True` for the DER bytes; `False` (default) for the
                dictionary CPython builds (`subject`, `issuer`, `version`,
                `serialNumber`, `notBefore`, `notAfter`, `subjectAltName`, ...).
                It is empty (`{}`) when the certificate was not verified
                (`verify_mode = CERT_NONE`), as in the stdlib.

        Returns:
            The certificate, or `None` if the server sent none.

        Raises:
            ValueError: Before the handshake.
        """
        if not self._handshook():
            raise ValueError("handshake not done yet")
        der = self._buffer.getpeercert()
        if der is None or binary_form:
            return der
        if not self._verified:
            return {}
        if self._peercert is None:
            self._peercert = _decode_certificate(der)
        return self._peercert

    def version(self) -> str | None:
        """The negotiated TLS version (`"TLSv1.2"` or `"TLSv1.3"`), `None` before the handshake."""
        version = self._buffer.negotiated_tls_version
        return None if version is None else version.value

    def cipher(self) -> tuple[str, str, int | None] | None:
        """`(OpenSSL name, protocol, secret bits)` of the negotiated suite, or `None`."""
        suite = self._buffer.cipher()
        if suite is None:
            return None
        entry = _cipher_table().get(int(suite))
        if entry is not None:
            return entry
        label = suite.name if isinstance(suite, unitls.CipherSuite) else f"0x{int(suite):04X}"
        return (label, self.version() or "", None)

    def shared_ciphers(self) -> None:
        """Always `None`: unitls does not report the suites both sides support."""
        return None

    def compression(self) -> None:
        """Always `None`: unitls never compresses."""
        return None

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN selected (e.g. `"h2"`, `"http/1.1"`), or `None`."""
        protocol = self._buffer.negotiated_protocol()
        if protocol is None:
            return None
        raw = protocol.value if isinstance(protocol, unitls.NextProtocol) else protocol
        return raw.decode("utf-8", "replace")

    def selected_npn_protocol(self) -> None:
        """Always `None`: NPN is obsolete; see `selected_alpn_protocol`."""
        return None


class SSLSocket(_Connection):
    """A client TLS connection over a socket, shaped like `ssl.SSLSocket`.

    Returned by `SSLContext.wrap_socket`; not constructed directly. Blocking with the
    `socket.socket` timeout model (`settimeout`, `gettimeout`, `setblocking`), and
    `makefile` works as on sockets: `close()` is deferred while a file made from the
    socket is open, so `http.client` responses can be read after the connection is
    closed. One thread may read while another writes.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_io_refs",
        "_raw",
        "_stream",
        "_suppress_ragged_eofs",
        "_timeout",
    )

    _raw: socket.socket
    _stream: TLSStream | None
    _timeout: float | None
    _suppress_ragged_eofs: bool
    _closed: bool
    _io_refs: int

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: sockets come from `SSLContext.wrap_socket()`."""
        raise TypeError("SSLSocket has no public constructor; use SSLContext.wrap_socket()")

    @classmethod
    def _create(
        cls,
        context: SSLContext,
        raw: socket.socket,
        stream: TLSStream,
        *,
        server_hostname: str | None,
        verified: bool,
        timeout: float | None,
        suppress_ragged_eofs: bool,
    ) -> SSLSocket:
        self = object.__new__(cls)
        self._context = context
        self._raw = raw
        self._stream = stream
        self._buffer = stream.buffer
        self._server_hostname = server_hostname
        self._verified = verified
        self._timeout = timeout
        self._suppress_ragged_eofs = suppress_ragged_eofs
        self._closed = False
        self._io_refs = 0
        self._peercert = None
        self._done = False
        return self

    def _live(self) -> TLSStream:
        stream = self._stream
        if stream is None:
            raise _closed_error()
        if not self._done:
            self.do_handshake()
        return stream

    def do_handshake(self) -> None:
        """Complete the TLS handshake (done by `wrap_socket` unless told otherwise).

        On failure the connection is closed.

        Raises:
            ssl.SSLCertVerificationError: If the certificate fails verification.
            ssl.SSLError: If the handshake fails otherwise.
            TimeoutError: If it outlasts the socket's timeout.
            OSError: If the transport fails.
        """
        stream = self._stream
        if stream is None:
            raise _closed_error()
        timeout = self._timeout
        try:
            stream.handshake(deadline_after(timeout))
            self._done = True
        except unitls.TLSError as exc:
            self._abort()
            raise _ssl_error(exc) from exc
        except TimeoutError:
            if timeout == 0.0:
                raise ssl.SSLWantReadError(
                    ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)"
                ) from None
            self._abort()
            raise
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    # -- reading -----------------------------------------------------------------------

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Read decrypted bytes into `buffer`; 0 at the end of the stream.

        Args:
            buffer: A writable buffer.
            nbytes: Read at most this many bytes (0: the buffer's size).
            flags: Must be 0.

        Raises:
            TimeoutError: If nothing arrives within the timeout.
            ssl.SSLEOFError: On a close without close_notify, if ragged EOFs are not
                suppressed.
            ssl.SSLError: If the connection fails.
            OSError: If the socket is closed or the transport fails.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv_into()")
        stream = self._stream
        if stream is None or not self._done:
            stream = self._live()
        view = buffer if type(buffer) is memoryview else memoryview(buffer)
        if view.itemsize != 1:
            view = view.cast("B")
        if nbytes:
            if nbytes > len(view):
                raise ValueError("nbytes is greater than the length of the buffer")
            view = view[:nbytes]
        timeout = self._timeout
        try:
            return stream.recv_into(view, None if timeout is None else _monotonic() + timeout)
        except unitls.TLSError as exc:
            return self._read_failed(exc)
        except TimeoutError:
            if timeout == 0.0:
                raise ssl.SSLWantReadError(
                    ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)"
                ) from None
            raise

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Read up to `bufsize` decrypted bytes; `b""` at the end of the stream.

        Raises:
            As `recv_into`.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv()")
        stream = self._stream
        if stream is None or not self._done:
            stream = self._live()
        if bufsize <= 0:
            if bufsize < 0:
                raise ValueError("negative buffersize in recv")
            return b""
        timeout = self._timeout
        try:
            return stream.recv(bufsize, None if timeout is None else _monotonic() + timeout)
        except unitls.TLSError as exc:
            self._read_failed(exc)
            return b""
        except TimeoutError:
            if timeout == 0.0:
                raise ssl.SSLWantReadError(
                    ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)"
                ) from None
            raise

    def read(self, len: int = 1024, buffer: Any = None) -> bytes | int:
        """`ssl.SSLSocket.read`: `recv_into(buffer, len)` if a buffer is given, else `recv(len)`."""
        if buffer is not None:
            return self.recv_into(buffer, len)
        return self.recv(len)

    def _read_failed(self, exc: unitls.TLSError) -> int:
        if isinstance(exc, unitls.RaggedEOF) and self._suppress_ragged_eofs:
            return 0
        raise _ssl_error(exc) from exc

    # -- writing -----------------------------------------------------------------------

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Encrypt and send all of `data`.

        The timeout bounds each wait for progress (every 16 KiB), as it bounds each
        write in the stdlib, not the whole call.

        Raises:
            TimeoutError: If the peer takes no data within the timeout.
            ssl.SSLError: If the connection fails.
            OSError: If the socket is closed or the transport fails.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to sendall()")
        stream = self._stream
        if stream is None or not self._done:
            stream = self._live()
        if type(data) is not bytes:  # bytes take the stream's fast path as they are
            data = memoryview(data).cast("B")
        timeout = self._timeout
        try:
            if timeout is None or len(data) <= _SEND_CHUNK:
                stream.sendall(data, None if timeout is None else _monotonic() + timeout)
                return
            view = memoryview(data)
            for start in range(0, len(view), _SEND_CHUNK):
                stream.sendall(view[start : start + _SEND_CHUNK], _monotonic() + timeout)
        except unitls.TLSError as exc:
            raise _ssl_error(exc) from exc
        except TimeoutError:
            if timeout == 0.0:
                raise ssl.SSLWantWriteError(
                    ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write)"
                ) from None
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        """Send all of `data` (as `sendall`) and return its length."""
        view = memoryview(data).cast("B")
        self.sendall(view, flags)
        return len(view)

    def write(self, data: Any) -> int:
        """`ssl.SSLSocket.write`: send all of `data` and return its length."""
        return self.send(data)

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        """A file object reading and writing through the TLS connection (`socket.makefile`)."""
        # socket.makefile only needs recv_into, send/sendall and _io_refs from `self`.
        makefile: Any = socket.socket.makefile
        return makefile(self, mode, buffering, encoding=encoding, errors=errors, newline=newline)

    def _decref_socketios(self) -> None:
        # socket.SocketIO.close() calls this; the real close waits for the last file.
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    # -- the socket --------------------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        """Set the timeout of each blocking call (`None`: wait forever; 0: non-blocking)."""
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        """The timeout of each blocking call, as `socket.socket.gettimeout`."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """`settimeout(None)` if `flag`, else `settimeout(0.0)`."""
        self.settimeout(None if flag else 0.0)

    def fileno(self) -> int:
        """The underlying socket's file descriptor (-1 once closed)."""
        return self._raw.fileno()

    def getpeername(self) -> Any:
        """The remote address of the underlying socket."""
        return self._raw.getpeername()

    def getsockname(self) -> Any:
        """The local address of the underlying socket."""
        return self._raw.getsockname()

    def setsockopt(self, *args: Any) -> None:
        """`socket.socket.setsockopt` on the underlying socket."""
        self._raw.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        """`socket.socket.getsockopt` on the underlying socket."""
        return self._raw.getsockopt(*args)

    @property
    def family(self) -> socket.AddressFamily:
        """The underlying socket's address family."""
        return self._raw.family

    @property
    def type(self) -> socket.SocketKind:
        """The underlying socket's type (`SOCK_STREAM`)."""
        return self._raw.type

    @property
    def proto(self) -> int:
        """The underlying socket's protocol number."""
        return self._raw.proto

    def shutdown(self, how: int) -> None:
        """Shut the underlying TCP connection down (no close_notify), as the stdlib does."""
        self._raw.shutdown(how)

    def close(self) -> None:
        """Send close_notify (without waiting for the peer's) and close the socket.

        Deferred while a file from `makefile()` is open.
        """
        self._closed = True
        if self._io_refs <= 0:
            self._abort()

    def __enter__(self) -> SSLSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._stream is None else (self.version() or "handshaking")
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} fd={self.fileno()} "
            f"server_hostname={self._server_hostname!r} {state}>"
        )


def _want_read() -> ssl.SSLWantReadError:
    return ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)")


class SSLObject(_Connection):
    """A client TLS connection over two `ssl.MemoryBIO`s, shaped like `ssl.SSLObject`.

    Returned by `SSLContext.wrap_bio`; not constructed directly. Each call moves what
    is waiting in `incoming` into the unitls buffer and what the buffer produced into
    `outgoing`; when more data from the peer is needed it raises
    `ssl.SSLWantReadError`, as the stdlib does.
    """

    __slots__ = ("__weakref__", "_backlog", "_eof_fed", "_incoming", "_outgoing")

    _incoming: ssl.MemoryBIO
    _outgoing: ssl.MemoryBIO
    _backlog: bytes
    _eof_fed: bool

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: objects come from `SSLContext.wrap_bio()`."""
        raise TypeError("SSLObject has no public constructor; use SSLContext.wrap_bio()")

    @classmethod
    def _create(
        cls,
        context: SSLContext,
        buffer: unitls.TLSBuffer,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        *,
        server_hostname: str | None,
        verified: bool,
    ) -> SSLObject:
        self = object.__new__(cls)
        self._context = context
        self._buffer = buffer
        self._incoming = incoming
        self._outgoing = outgoing
        self._server_hostname = server_hostname
        self._verified = verified
        self._peercert = None
        self._done = False
        self._backlog = b""
        self._eof_fed = False
        return self

    def _feed(self) -> None:
        data = self._backlog + self._incoming.read()
        if data:
            try:
                self._buffer.process_incoming(data)
            except unitls.WantReadError:
                self._backlog = data  # the buffer is full: kept for the next call
            else:
                self._backlog = b""
        elif self._incoming.eof and not self._eof_fed:
            self._eof_fed = True
            self._buffer.process_incoming(b"")

    def _drain(self) -> None:
        while data := self._buffer.process_outgoing(65536):
            self._outgoing.write(data)

    def _failed(self, exc: unitls.TLSError) -> NoReturn:
        self._drain()  # an alert explains the failure to the peer
        if isinstance(exc, unitls.WantReadError):
            raise _want_read() from None
        raise _ssl_error(exc) from exc

    def do_handshake(self) -> None:
        """Advance the handshake.

        Raises:
            ssl.SSLWantReadError: More data from the peer is needed: send what
                `outgoing` holds, put the peer's bytes into `incoming`, call again.
            ssl.SSLCertVerificationError: If the certificate fails verification.
            ssl.SSLError: If the handshake fails otherwise.
        """
        try:
            self._feed()
            self._buffer.do_handshake()
        except unitls.TLSError as exc:
            self._failed(exc)
        self._drain()

    def read(self, len: int = 1024, buffer: Any = None) -> bytes | int:
        """Read up to `len` decrypted bytes (into `buffer` if given: the count).

        Returns `b""` (or 0) after the peer's close_notify.

        Raises:
            ssl.SSLWantReadError: As `do_handshake`.
            ssl.SSLEOFError: If `incoming` reached EOF without close_notify.
            ssl.SSLError: If the connection fails.
        """
        try:
            self._feed()
            result = self._buffer.read(len, buffer)
        except unitls.TLSError as exc:
            self._failed(exc)
        self._drain()
        return result

    def write(self, data: Any) -> int:
        """Encrypt all of `data` into `outgoing` and return its length.

        Raises:
            ssl.SSLWantReadError: Before the handshake completed.
            ssl.SSLError: If the connection fails.
        """
        view = memoryview(data).cast("B")
        total = len(view)
        try:
            while view:
                try:
                    taken = self._buffer.write(view)
                except unitls.WantWriteError:
                    taken = 0
                self._drain()
                view = view[taken:]
        except unitls.TLSError as exc:
            self._failed(exc)
        return total

    def unwrap(self) -> None:
        """Send close_notify and wait (by `ssl.SSLWantReadError`) for the peer's.

        Application data arriving meanwhile is discarded, as OpenSSL does.
        """
        buffer = self._buffer
        try:
            self._feed()
            while True:
                try:
                    buffer.shutdown()
                    break
                except unitls.WantReadError:
                    self._drain()
                    buffer.read(65536)  # data before the peer's close_notify is dropped
        except unitls.TLSError as exc:
            self._failed(exc)
        self._drain()

    def pending(self) -> int:
        """Always 0: decrypted data is not held outside the TLS engine."""
        return 0
