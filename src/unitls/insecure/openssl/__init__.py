"""Insecure contexts for the pyOpenSSL backend, for testing only.

They are the ordinary `unitls.openssl` contexts built with some checks off, so
everything else (ciphers, versions, ALPN, SNI, errors) behaves exactly as in
secure use. Each step warns with `unitls.insecure.SecurityWarning`: creating a
context, and every `connect()` and `create_buffer()` (including the buffer a
listening socket's `accept()` creates for each client).

```python
import pytest
import unitls
from unitls.insecure import InsecureConfiguration, SecurityWarning
from unitls.insecure.openssl import OPENSSL_INSECURE_IMPLEMENTATION

with pytest.warns(SecurityWarning):  # in a test rig, where the warning is expected
    insecure = InsecureConfiguration(disable_hostname_check=True, disable_verification=True)
    ctx = OPENSSL_INSECURE_IMPLEMENTATION.insecure_client_context(
        unitls.TLSClientConfiguration(), insecure
    )
    buffer = ctx.create_buffer(None)  # no SNI, no certificate checks at all
```
"""

from __future__ import annotations

import contextvars

from ..._configuration import TLSClientConfiguration, TLSServerConfiguration
from ...openssl import (
    OpenSSLClientContext,
    OpenSSLServerContext,
    OpenSSLTLSBuffer,
    OpenSSLTLSSocket,
    validate_config,
)
from .. import InsecureConfiguration, InsecureTLSImplementation, _warn_insecure

__all__ = [
    "OPENSSL_INSECURE_IMPLEMENTATION",
    "OpenSSLInsecureClientContext",
    "OpenSSLInsecureServerContext",
]

# Set while an insecure `connect()` runs: the socket layer creates its buffer
# through the public `create_buffer()`, and one step should warn once.
_connecting: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "unitls_insecure_connecting", default=False
)


def _check_insecure_configuration(value: object) -> InsecureConfiguration:
    if not isinstance(value, InsecureConfiguration):
        raise TypeError(
            f"insecure_configuration must be an InsecureConfiguration, not {type(value).__name__}"
        )
    return value


class OpenSSLInsecureClientContext(OpenSSLClientContext):
    """An OpenSSL client context with server checks turned off as configured.

    With `disable_hostname_check` the chain is still verified against the trust
    store, a given hostname is still sent as SNI, and `create_buffer(None)`
    creates a buffer that sends no SNI. With `disable_verification` the server's
    certificate is not verified at all (no trust store is loaded).
    """

    __slots__ = ("_insecure_configuration",)

    _insecure_configuration: InsecureConfiguration

    def __init__(
        self,
        configuration: TLSClientConfiguration,
        insecure_configuration: InsecureConfiguration,
    ) -> None:
        """Create an insecure client context; warns with `SecurityWarning`.

        Args:
            configuration: The TLS settings, used as in secure contexts (the trust
                store is ignored when verification is disabled).
            insecure_configuration: The checks to turn off.

        Raises:
            TypeError: If an argument has the wrong type.
            ConfigurationError: If the backend cannot honour `configuration`.
        """
        insecure = _check_insecure_configuration(insecure_configuration)
        self._setup(
            configuration,
            verify=not insecure.disable_verification,
            check_hostname=not insecure.disable_hostname_check,
        )
        self._insecure_configuration = insecure
        _warn_insecure(
            f"Insecure TLS client context: {insecure._describe()}; use it for testing only"
        )

    @property
    def insecure_configuration(self) -> InsecureConfiguration:
        """The checks this context turns off."""
        return self._insecure_configuration

    def create_buffer(self, server_hostname: str | None) -> OpenSSLTLSBuffer:
        """Create an in-memory client connection; warns with `SecurityWarning`.

        Args:
            server_hostname: The name to send as SNI (and to check, unless the
                hostname check is disabled), or `None` to send no SNI, which is
                allowed only when the hostname check is disabled.

        Raises:
            ValueError: If `server_hostname` is `None` while the hostname check
                is on, or is empty or malformed.
            TypeError: If it is neither a `str` nor `None`.
        """
        insecure = self._insecure_configuration
        if not _connecting.get():
            _warn_insecure(
                f"TLS buffer from an insecure client context: {insecure._describe()}; "
                "use it for testing only"
            )
        if server_hostname is None and not insecure.disable_hostname_check:
            raise ValueError(
                "server_hostname is required unless the InsecureConfiguration "
                "disables the hostname check"
            )
        return OpenSSLTLSBuffer._create_client(
            self, server_hostname, check_name=not insecure.disable_hostname_check
        )

    def connect(
        self, address: tuple[str | None, int], *, timeout: float | None = None
    ) -> OpenSSLTLSSocket:
        """Connect to `address` and complete the handshake; warns with `SecurityWarning`.

        The host part of `address` is sent as SNI (for DNS names) and checked
        unless the hostname check is disabled.

        Args:
            address: `(host, port)`.
            timeout: Bounds the TCP connect and each wait during the handshake,
                then becomes the socket's timeout (as `OpenSSLClientContext.connect`).

        Raises:
            TLSError: If the handshake fails.
            OSError: If the TCP connection fails.
        """
        _warn_insecure(
            f"Connecting with an insecure TLS client context: "
            f"{self._insecure_configuration._describe()}; use it for testing only"
        )
        token = _connecting.set(True)
        try:
            return OpenSSLTLSSocket._create_client(self, address, timeout=timeout)
        finally:
            _connecting.reset(token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._configuration!r} {self._insecure_configuration!r}>"


class OpenSSLInsecureServerContext(OpenSSLServerContext):
    """An OpenSSL server context with client checks turned off as configured.

    With `disable_verification`, clients are neither asked for a certificate nor
    verified, even if the configuration has a trust store. `disable_hostname_check`
    changes nothing on a server (servers check no names).
    """

    __slots__ = ("_insecure_configuration",)

    _insecure_configuration: InsecureConfiguration

    def __init__(
        self,
        configuration: TLSServerConfiguration,
        insecure_configuration: InsecureConfiguration,
    ) -> None:
        """Create an insecure server context; warns with `SecurityWarning`.

        Raises:
            TypeError: If an argument has the wrong type.
            ConfigurationError: If the backend cannot honour `configuration`.
        """
        insecure = _check_insecure_configuration(insecure_configuration)
        self._setup(configuration, verify=not insecure.disable_verification)
        self._insecure_configuration = insecure
        _warn_insecure(
            f"Insecure TLS server context: {insecure._describe()}; use it for testing only"
        )

    @property
    def insecure_configuration(self) -> InsecureConfiguration:
        """The checks this context turns off."""
        return self._insecure_configuration

    def create_buffer(self) -> OpenSSLTLSBuffer:
        """Create an in-memory server connection; warns with `SecurityWarning`."""
        _warn_insecure(
            f"TLS buffer from an insecure server context: "
            f"{self._insecure_configuration._describe()}; use it for testing only"
        )
        return OpenSSLTLSBuffer._create_server(self)

    def connect(
        self, address: tuple[str | None, int], *, timeout: float | None = None
    ) -> OpenSSLTLSSocket:
        """Bind a listening TLS socket to `address`; warns with `SecurityWarning`.

        Each `accept()` on it warns again, as it creates a buffer for the client.

        Args:
            address: `(host, port)`, as `OpenSSLServerContext.connect`.
            timeout: The listening socket's timeout, which also bounds each
                accepted client's handshake.
        """
        _warn_insecure(
            f"Listening with an insecure TLS server context: "
            f"{self._insecure_configuration._describe()}; use it for testing only"
        )
        sock = OpenSSLTLSSocket._create_server(self, address)
        sock.settimeout(timeout)
        return sock

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._configuration!r} {self._insecure_configuration!r}>"


#: The OpenSSL backend as a `unitls.insecure.InsecureTLSImplementation`: the
#: secure contexts of `unitls.openssl.OPENSSL_IMPLEMENTATION` plus the insecure ones.
OPENSSL_INSECURE_IMPLEMENTATION: InsecureTLSImplementation[
    OpenSSLClientContext,
    OpenSSLServerContext,
    OpenSSLInsecureClientContext,
    OpenSSLInsecureServerContext,
] = InsecureTLSImplementation(
    OpenSSLClientContext,
    OpenSSLServerContext,
    validate_config,
    OpenSSLInsecureClientContext,
    OpenSSLInsecureServerContext,
)
