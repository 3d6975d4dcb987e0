"""TLS configurations: immutable, hashable containers of settings (PEP 748 "Configuration").

A configuration holds what to negotiate; a context built from it by an
implementation applies it. Values are validated here, at construction, so a
mistake surfaces where it was made: a wrong type raises `TypeError` and an
impossible value raises `ValueError`, both naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from ._credentials import SigningChain, TrustStore
from ._enums import CipherSuite, NextProtocol, TLSVersion

__all__ = ["TLSClientConfiguration", "TLSServerConfiguration"]

# The constructor's parameters, in order (also the order of `_key()`).
_FIELDS = (
    "certificate_chain",
    "ciphers",
    "inner_protocols",
    "lowest_supported_version",
    "highest_supported_version",
    "trust_store",
)

# Open-ended members sort outside the concrete versions.
_VERSION_ORDER = {
    TLSVersion.MINIMUM_SUPPORTED: 0,
    TLSVersion.TLSv1_2: 1,
    TLSVersion.TLSv1_3: 2,
    TLSVersion.MAXIMUM_SUPPORTED: 3,
}


def _check_ciphers(ciphers: object) -> tuple[CipherSuite | int, ...] | None:
    if ciphers is None:
        return None
    if isinstance(ciphers, (str, bytes)) or not isinstance(ciphers, Sequence):
        raise TypeError(
            f"ciphers must be a sequence of CipherSuite or int, not {type(ciphers).__name__}"
        )
    result: list[CipherSuite | int] = []
    for item in ciphers:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"ciphers items must be CipherSuite or int, not {type(item).__name__}")
        if not 0 <= item <= 0xFFFF:
            raise ValueError(f"ciphers: {item!r} is not a 16-bit cipher suite id (0..0xFFFF)")
        try:
            result.append(CipherSuite(item))
        except ValueError:
            result.append(int(item))
    return tuple(result)


def _check_protocols(protocols: object) -> tuple[NextProtocol | bytes, ...]:
    if protocols is None:
        return ()
    if isinstance(protocols, (str, bytes)) or not isinstance(protocols, Sequence):
        raise TypeError(
            "inner_protocols must be a sequence of NextProtocol or bytes, "
            f"not {type(protocols).__name__}"
        )
    result: list[NextProtocol | bytes] = []
    for item in protocols:
        if isinstance(item, NextProtocol):
            result.append(item)
            continue
        if not isinstance(item, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"inner_protocols items must be NextProtocol or bytes, not {type(item).__name__}"
            )
        raw = bytes(item)
        if not 1 <= len(raw) <= 255:
            raise ValueError(f"inner_protocols: {raw!r} must be 1 to 255 bytes long (RFC 7301)")
        try:
            result.append(NextProtocol(raw))
        except ValueError:
            result.append(raw)
    return tuple(result)


def _check_versions(lowest: object, highest: object) -> tuple[TLSVersion | None, TLSVersion | None]:
    for name, value in (
        ("lowest_supported_version", lowest),
        ("highest_supported_version", highest),
    ):
        if value is not None and not isinstance(value, TLSVersion):
            raise TypeError(f"{name} must be a TLSVersion, not {type(value).__name__}")
    if lowest is TLSVersion.MAXIMUM_SUPPORTED:
        raise ValueError("lowest_supported_version cannot be MAXIMUM_SUPPORTED")
    if highest is TLSVersion.MINIMUM_SUPPORTED:
        raise ValueError("highest_supported_version cannot be MINIMUM_SUPPORTED")
    if (
        isinstance(lowest, TLSVersion)
        and isinstance(highest, TLSVersion)
        and _VERSION_ORDER[lowest] > _VERSION_ORDER[highest]
    ):
        raise ValueError(
            f"lowest_supported_version {lowest.value} is above "
            f"highest_supported_version {highest.value}"
        )
    return lowest, highest  # type: ignore[return-value]  # narrowed by the checks above


def _check_trust_store(trust_store: object) -> TrustStore | None:
    if trust_store is not None and not isinstance(trust_store, TrustStore):
        raise TypeError(f"trust_store must be a TrustStore, not {type(trust_store).__name__}")
    return trust_store


class _Configuration:
    """Behaviour shared by the client and server configurations."""

    __slots__ = (
        "_certificate_chain",
        "_ciphers",
        "_highest_supported_version",
        "_inner_protocols",
        "_lowest_supported_version",
        "_trust_store",
    )

    _certificate_chain: Any
    _ciphers: tuple[CipherSuite | int, ...] | None
    _inner_protocols: tuple[NextProtocol | bytes, ...]
    _lowest_supported_version: TLSVersion | None
    _highest_supported_version: TLSVersion | None
    _trust_store: TrustStore | None

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, "_" + name, value)

    @property
    def ciphers(self) -> Sequence[CipherSuite | int] | None:
        """The allowed cipher suites in preference order, or `None` for the secure defaults."""
        return self._ciphers

    @property
    def inner_protocols(self) -> Sequence[NextProtocol | bytes]:
        """The protocols to offer or accept through ALPN, in preference order."""
        return self._inner_protocols

    @property
    def lowest_supported_version(self) -> TLSVersion | None:
        """The lowest TLS version to negotiate, or `None` for the default (TLS 1.2)."""
        return self._lowest_supported_version

    @property
    def highest_supported_version(self) -> TLSVersion | None:
        """The highest TLS version to negotiate, or `None` for the newest supported."""
        return self._highest_supported_version

    @property
    def trust_store(self) -> TrustStore | None:
        """The certificates that verify the peer.

        On a client, `None` means the system trust store. On a server, a trust store
        turns on client authentication: clients must present a certificate it verifies.
        """
        return self._trust_store

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def _key(self) -> tuple[object, ...]:
        return (
            self._certificate_chain,
            self._ciphers,
            self._inner_protocols,
            self._lowest_supported_version,
            self._highest_supported_version,
            self._trust_store,
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Configuration)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(_FIELDS, self._key(), strict=True)
        )
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._key())


class TLSClientConfiguration(_Configuration):
    """The settings of the client side of TLS connections.

    Immutable and hashable: equal configurations can key a cache of contexts.
    Sequences are copied into tuples (mutating the list you passed changes
    nothing); credential objects are kept as given.
    """

    __slots__ = ()

    _certificate_chain: SigningChain | None

    def __init__(
        self,
        certificate_chain: SigningChain | None = None,
        ciphers: Sequence[CipherSuite | int] | None = None,
        inner_protocols: Sequence[NextProtocol | bytes] | None = None,
        lowest_supported_version: TLSVersion | None = None,
        highest_supported_version: TLSVersion | None = None,
        trust_store: TrustStore | None = None,
    ) -> None:
        """Create a client configuration.

        Args:
            certificate_chain: The client certificate and key, for servers that
                ask for client authentication; `None` for none.
            ciphers: Allowed cipher suites (members or raw 16-bit ids), or `None`
                for the secure defaults.
            inner_protocols: Protocols to offer via ALPN, most preferred first.
            lowest_supported_version: Lowest TLS version, `None` for TLS 1.2.
            highest_supported_version: Highest TLS version, `None` for the newest.
            trust_store: Certificates that verify the server; `None` for the
                system trust store.

        Raises:
            TypeError: If a field has the wrong type.
            ValueError: If a value is impossible (an id outside 0..0xFFFF, an ALPN
                protocol that is empty or over 255 bytes, versions out of order).
        """
        if certificate_chain is not None and not isinstance(certificate_chain, SigningChain):
            raise TypeError(
                f"certificate_chain must be a SigningChain, not {type(certificate_chain).__name__}"
            )
        lowest, highest = _check_versions(lowest_supported_version, highest_supported_version)
        self._set(
            certificate_chain=certificate_chain,
            ciphers=_check_ciphers(ciphers),
            inner_protocols=_check_protocols(inner_protocols),
            lowest_supported_version=lowest,
            highest_supported_version=highest,
            trust_store=_check_trust_store(trust_store),
        )

    @property
    def certificate_chain(self) -> SigningChain | None:
        """The client's own certificate chain, for client authentication."""
        return self._certificate_chain


class TLSServerConfiguration(_Configuration):
    """The settings of the server side of TLS connections.

    A server may hold several signing chains; the implementation picks one per
    connection from the name the client asks for (SNI), the first chain being the
    default. Immutable and hashable, like `TLSClientConfiguration`.
    """

    __slots__ = ()

    _certificate_chain: tuple[SigningChain, ...] | None

    def __init__(
        self,
        certificate_chain: Sequence[SigningChain] | None = None,
        ciphers: Sequence[CipherSuite | int] | None = None,
        inner_protocols: Sequence[NextProtocol | bytes] | None = None,
        lowest_supported_version: TLSVersion | None = None,
        highest_supported_version: TLSVersion | None = None,
        trust_store: TrustStore | None = None,
    ) -> None:
        """Create a server configuration.

        Args:
            certificate_chain: The server's signing chains, the default first. A
                context needs at least one.
            ciphers: Allowed cipher suites (members or raw 16-bit ids), or `None`
                for the secure defaults.
            inner_protocols: Protocols to accept via ALPN, most preferred first.
            lowest_supported_version: Lowest TLS version, `None` for TLS 1.2.
            highest_supported_version: Highest TLS version, `None` for the newest.
            trust_store: If set, clients must present a certificate that these
                certificates verify (client authentication).

        Raises:
            TypeError: If a field has the wrong type.
            ValueError: If a value is impossible.
        """
        chains: tuple[SigningChain, ...] | None = None
        if certificate_chain is not None:
            if isinstance(certificate_chain, (SigningChain, str, bytes)) or not isinstance(
                certificate_chain, Sequence
            ):
                raise TypeError(
                    "certificate_chain must be a sequence of SigningChain, "
                    f"not {type(certificate_chain).__name__}"
                )
            chains = tuple(certificate_chain)
            for chain in chains:
                if not isinstance(chain, SigningChain):
                    raise TypeError(
                        f"certificate_chain items must be SigningChain, not {type(chain).__name__}"
                    )
        lowest, highest = _check_versions(lowest_supported_version, highest_supported_version)
        self._set(
            certificate_chain=chains,
            ciphers=_check_ciphers(ciphers),
            inner_protocols=_check_protocols(inner_protocols),
            lowest_supported_version=lowest,
            highest_supported_version=highest,
            trust_store=_check_trust_store(trust_store),
        )

    @property
    def certificate_chain(self) -> Sequence[SigningChain] | None:
        """The server's signing chains; the first is the default."""
        return self._certificate_chain
