"""The `ssl` module's settings vocabulary, mapped onto what unitls does.

Option and verify flags, TLS versions, cipher strings and ALPN lists as
`ssl.SSLContext` takes them, for the facade in `ssl_context.py`. The rule (its
theory of operation, rule 2): what unitls always does reads back as set and cannot
be cleared; what it cannot honour raises `unitls.ConfigurationError` naming the
setting, never silently ignored.
"""

from __future__ import annotations

import functools
import ssl

import unitls

from ._config import alpn_protocols

__all__ = [
    "FIXED_OPTIONS",
    "FIXED_VERIFY_FLAGS",
    "FROM_UNITLS_VERSION",
    "alpn_values",
    "check_options",
    "check_verify_flags",
    "cipher_table",
    "expand_ciphers",
    "unitls_version",
]

#: Options unitls always applies: they read back as set and cannot be cleared.
FIXED_OPTIONS = (
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
FIXED_VERIFY_FLAGS = (
    ssl.VERIFY_X509_TRUSTED_FIRST | ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
)

_TO_UNITLS_VERSION = {
    ssl.TLSVersion.MINIMUM_SUPPORTED: unitls.TLSVersion.MINIMUM_SUPPORTED,
    ssl.TLSVersion.TLSv1_2: unitls.TLSVersion.TLSv1_2,
    ssl.TLSVersion.TLSv1_3: unitls.TLSVersion.TLSv1_3,
    ssl.TLSVersion.MAXIMUM_SUPPORTED: unitls.TLSVersion.MAXIMUM_SUPPORTED,
}
FROM_UNITLS_VERSION = {value: key for key, value in _TO_UNITLS_VERSION.items()}


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


def check_options(value: int) -> None:
    """Refuse `options` that clear a fixed flag or set one unitls cannot honour.

    Raises:
        unitls.ConfigurationError: Naming the offending flags.
    """
    missing = FIXED_OPTIONS & ~value
    if missing:
        raise unitls.ConfigurationError(
            f"options: unitls always applies {_flag_names(missing, ssl.Options)}"
        )
    unknown = value & ~(FIXED_OPTIONS | _NOOP_OPTIONS | ssl.OP_IGNORE_UNEXPECTED_EOF)
    if unknown:
        raise unitls.ConfigurationError(
            f"options: unitls cannot honour {_flag_names(unknown, ssl.Options)}"
        )


def check_verify_flags(value: int) -> None:
    """Refuse `verify_flags` other than `FIXED_VERIFY_FLAGS`.

    Raises:
        unitls.ConfigurationError: Naming the flags added and those dropped.
    """
    if value == FIXED_VERIFY_FLAGS:
        return
    added, removed = value & ~FIXED_VERIFY_FLAGS, FIXED_VERIFY_FLAGS & ~value
    problems = []
    if added:
        problems.append(f"cannot add {_flag_names(added, ssl.VerifyFlags)}")
    if removed:
        problems.append(f"always uses {_flag_names(removed, ssl.VerifyFlags)}")
    raise unitls.ConfigurationError(f"verify_flags: unitls {' and '.join(problems)}")


def unitls_version(field: str, value: ssl.TLSVersion) -> unitls.TLSVersion:
    """The unitls version for `minimum_version` / `maximum_version` (named by `field`).

    Raises:
        ValueError: If `value` is not a `ssl.TLSVersion`.
        unitls.ConfigurationError: For versions below TLS 1.2.
    """
    version = _TO_UNITLS_VERSION.get(ssl.TLSVersion(value))
    if version is None:
        raise unitls.ConfigurationError(
            f"{field}: unitls negotiates TLS 1.2 and TLS 1.3 only, not {ssl.TLSVersion(value).name}"
        )
    return version


@functools.lru_cache(maxsize=1)
def cipher_table() -> dict[int, tuple[str, str, int]]:
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
def expand_ciphers(spec: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """An OpenSSL cipher string, expanded by the stdlib's OpenSSL: (TLS 1.2, TLS 1.3) ids."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # ssl.SSLError "No cipher can be selected." unless the string selects at least one
    # TLS 1.2 suite (SSL_CTX_set_cipher_list ignores TLS 1.3 suites when counting).
    context.set_ciphers(spec)
    ciphers = context.get_ciphers()
    tls12 = tuple(c["id"] & 0xFFFF for c in ciphers if c["protocol"] != "TLSv1.3")
    tls13 = tuple(c["id"] & 0xFFFF for c in ciphers if c["protocol"] == "TLSv1.3")
    return tls12, tls13


def alpn_values(protocols: tuple[str, ...]) -> tuple[unitls.NextProtocol | bytes, ...]:
    """ALPN names checked as the stdlib does, as unitls values."""
    for name in protocols:
        if isinstance(name, str) and not 1 <= len(name.encode("ascii", "replace")) <= 255:
            raise ValueError(f"ALPN protocol {name!r} must be 1 to 255 bytes long")
    return alpn_protocols(protocols)
