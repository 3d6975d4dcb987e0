"""Configuration plumbing the adapters share: defaults, ALPN, one context per ALPN list."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

import unitls
from unitls.openssl import OPENSSL_IMPLEMENTATION

__all__ = [
    "ContextCache",
    "Implementation",
    "alpn_protocols",
    "check_configuration",
    "protocol_name",
    "replace",
]

Implementation = unitls.TLSImplementation[Any, Any]


def check_configuration(
    configuration: unitls.TLSClientConfiguration | None,
) -> unitls.TLSClientConfiguration:
    """`configuration`, or the secure default (system trust store, TLS 1.2+)."""
    if configuration is None:
        return unitls.TLSClientConfiguration()
    if not isinstance(configuration, unitls.TLSClientConfiguration):
        raise TypeError(
            "configuration must be a unitls.TLSClientConfiguration or None, "
            f"not {type(configuration).__name__}"
        )
    return configuration


def replace(
    configuration: unitls.TLSClientConfiguration, **changes: Any
) -> unitls.TLSClientConfiguration:
    """A copy of an (immutable) client configuration with some fields changed."""
    fields: dict[str, Any] = {
        "certificate_chain": configuration.certificate_chain,
        "ciphers": configuration.ciphers,
        "inner_protocols": configuration.inner_protocols,
        "lowest_supported_version": configuration.lowest_supported_version,
        "highest_supported_version": configuration.highest_supported_version,
        "trust_store": configuration.trust_store,
    }
    fields.update(changes)
    return unitls.TLSClientConfiguration(**fields)


def alpn_protocols(names: Iterable[str]) -> tuple[unitls.NextProtocol | bytes, ...]:
    """ALPN names as an HTTP library spells them (`"h2"`, `"http/1.1"`) -> unitls values."""
    result: list[unitls.NextProtocol | bytes] = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"ALPN protocol names must be str, not {type(name).__name__}")
        raw = name.encode("ascii")
        try:
            result.append(unitls.NextProtocol(raw))
        except ValueError:
            result.append(raw)
    return tuple(result)


@overload
def protocol_name(protocol: unitls.NextProtocol | bytes) -> str: ...
@overload
def protocol_name(protocol: None) -> None: ...
@overload
def protocol_name(protocol: unitls.NextProtocol | bytes | None) -> str | None: ...
def protocol_name(protocol: unitls.NextProtocol | bytes | None) -> str | None:
    """A negotiated ALPN protocol as the `ssl` module names it (`"h2"`), or `None`.

    The inverse of `alpn_protocols`, for `selected_alpn_protocol()` and the facade's
    ALPN list; decoded as UTF-8 like CPython's `_ssl` module.
    """
    if protocol is None:
        return None
    raw = protocol.value if isinstance(protocol, unitls.NextProtocol) else protocol
    return raw.decode("utf-8", "replace")


class ContextCache:
    """Client contexts for one base configuration, one per ALPN list, built on first use.

    Building a context builds an OpenSSL `SSL_CTX` (trust store parsing included),
    so adapters must not do it per connection. Thread-safe.
    """

    def __init__(
        self,
        configuration: unitls.TLSClientConfiguration,
        implementation: Implementation | None = None,
        factory: Callable[[unitls.TLSClientConfiguration], unitls.ClientContext] | None = None,
    ) -> None:
        self.configuration = configuration
        self.implementation: Implementation = (
            OPENSSL_IMPLEMENTATION if implementation is None else implementation
        )
        self._factory = factory or self.implementation.client_context
        self._contexts: dict[tuple[unitls.NextProtocol | bytes, ...], unitls.ClientContext] = {}
        self._lock = threading.Lock()

    def get(self, protocols: Sequence[unitls.NextProtocol | bytes]) -> unitls.ClientContext:
        key = tuple(protocols)
        context = self._contexts.get(key)
        if context is None:
            with self._lock:
                context = self._contexts.get(key)
                if context is None:
                    config = replace(self.configuration, inner_protocols=key)
                    context = self._factory(config)
                    self._contexts[key] = context
        return context
