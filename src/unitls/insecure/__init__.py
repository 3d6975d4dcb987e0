"""Insecure options, for testing only (PEP 748 "Insecure Usage").

Nothing here is needed to talk to a server whose certificate you can get hold
of: put that certificate (or its CA) in a `unitls.TrustStore` instead. This
module exists for test rigs, and it is loud about it: constructing an
`InsecureConfiguration`, creating an insecure context, and every `connect()` or
`create_buffer()` on one emits a `SecurityWarning`.

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
```

The core of unitls never imports this module; backends provide their insecure
contexts in a submodule of their own (`unitls.insecure.openssl`).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from .._configuration import TLSClientConfiguration, TLSServerConfiguration
from .._protocols import ClientContext, ServerContext, TLSImplementation

__all__ = [
    "SecurityWarning",
    "InsecureConfiguration",
    "InsecureClientContext",
    "InsecureServerContext",
    "InsecureTLSImplementation",
]


class SecurityWarning(Warning):
    """Emitted at every step of building or using an insecure TLS connection.

    It is a plain `Warning`, so Python shows it by default. Silence it only in
    test suites that disable verification on purpose, e.g. with
    `pytest.warns(SecurityWarning)` or a `filterwarnings` entry.
    """


def _warn_insecure(message: str, *, stacklevel: int = 3) -> None:
    """Emit a `SecurityWarning` attributed to the caller's caller (the user's code)."""
    warnings.warn(message, SecurityWarning, stacklevel=stacklevel)


class InsecureConfiguration:
    """The security checks an insecure context turns off.

    Immutable and hashable, like the TLS configurations. Creating one emits a
    `SecurityWarning`, whatever its values.

    Turning off the hostname check lets anyone holding *any* certificate that
    your trust store accepts impersonate the server; turning off verification
    lets anyone at all do so. Prefer a `TrustStore` with the server's
    certificate in it.
    """

    __slots__ = ("_disable_hostname_check", "_disable_verification")

    _disable_hostname_check: bool
    _disable_verification: bool

    def __init__(
        self, disable_hostname_check: bool = False, disable_verification: bool = False
    ) -> None:
        """Create an insecure configuration.

        Args:
            disable_hostname_check: Client side: do not check that the server's
                certificate names the host connected to. The chain is still
                verified, and the name is still sent as SNI. A client buffer may
                then be created without a hostname (`create_buffer(None)`: no SNI).
            disable_verification: Client side: do not verify the server's
                certificate chain at all. Server side: do not ask for or verify
                client certificates, even if the configuration has a trust store.
                Requires `disable_hostname_check` (a name check on an unverified
                certificate proves nothing).

        Raises:
            TypeError: If a flag is not a `bool`.
            ValueError: If `disable_verification` is set without
                `disable_hostname_check`.
        """
        for name, value in (
            ("disable_hostname_check", disable_hostname_check),
            ("disable_verification", disable_verification),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
        if disable_verification and not disable_hostname_check:
            raise ValueError(
                "disable_verification requires disable_hostname_check: "
                "a hostname check on an unverified certificate proves nothing"
            )
        object.__setattr__(self, "_disable_hostname_check", disable_hostname_check)
        object.__setattr__(self, "_disable_verification", disable_verification)
        _warn_insecure(f"{self!r} turns off TLS security checks; use it for testing only")

    @property
    def disable_hostname_check(self) -> bool:
        """Whether a client skips checking the server certificate's names."""
        return self._disable_hostname_check

    @property
    def disable_verification(self) -> bool:
        """Whether certificate chains go unverified (implies no hostname check)."""
        return self._disable_verification

    def _describe(self) -> str:
        """What is turned off, for warning messages."""
        if self._disable_verification:
            return "certificates are not verified"
        if self._disable_hostname_check:
            return "server hostnames are not checked"
        return "no check is disabled yet"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("InsecureConfiguration objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("InsecureConfiguration objects are immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InsecureConfiguration):
            return NotImplemented
        return (self._disable_hostname_check, self._disable_verification) == (
            other._disable_hostname_check,
            other._disable_verification,
        )

    def __hash__(self) -> int:
        return hash(
            ("InsecureConfiguration", self._disable_hostname_check, self._disable_verification)
        )

    def __repr__(self) -> str:
        return (
            f"InsecureConfiguration(disable_hostname_check={self._disable_hostname_check}, "
            f"disable_verification={self._disable_verification})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickling constructs again, so it warns again: that is intended.
        return (InsecureConfiguration, (self._disable_hostname_check, self._disable_verification))


class InsecureClientContext(ClientContext, Protocol):
    """A `ClientContext` that may skip server certificate checks.

    Like `ClientContext`, plus the `InsecureConfiguration` it was built with.
    `create_buffer` accepts `None` (no SNI, no name check) when the hostname
    check is disabled.
    """

    @abstractmethod
    def __init__(
        self,
        configuration: TLSClientConfiguration,
        insecure_configuration: InsecureConfiguration,
    ) -> None:
        """Create an insecure client context; warns with `SecurityWarning`."""

    @property
    @abstractmethod
    def insecure_configuration(self) -> InsecureConfiguration:
        """The checks this context turns off."""


class InsecureServerContext(ServerContext, Protocol):
    """A `ServerContext` that may skip client certificate verification."""

    @abstractmethod
    def __init__(
        self,
        configuration: TLSServerConfiguration,
        insecure_configuration: InsecureConfiguration,
    ) -> None:
        """Create an insecure server context; warns with `SecurityWarning`."""

    @property
    @abstractmethod
    def insecure_configuration(self) -> InsecureConfiguration:
        """The checks this context turns off."""


_ClientContext = TypeVar("_ClientContext", bound=ClientContext)
_ServerContext = TypeVar("_ServerContext", bound=ServerContext)
_InsecureClientContext = TypeVar("_InsecureClientContext", bound=InsecureClientContext)
_InsecureServerContext = TypeVar("_InsecureServerContext", bound=InsecureServerContext)


class InsecureTLSImplementation(
    TLSImplementation[_ClientContext, _ServerContext],
    Generic[_ClientContext, _ServerContext, _InsecureClientContext, _InsecureServerContext],
):
    """A `TLSImplementation` that also offers insecure context classes.

    Creating the implementation object does not warn (backends create it when
    their insecure module is imported); creating an insecure context does.
    """

    __slots__ = ("_insecure_client_context", "_insecure_server_context")

    def __init__(
        self,
        client_context: type[_ClientContext],
        server_context: type[_ServerContext],
        validate_config: Callable[[TLSClientConfiguration | TLSServerConfiguration], None],
        insecure_client_context: type[_InsecureClientContext],
        insecure_server_context: type[_InsecureServerContext],
    ) -> None:
        """Bundle the secure and insecure context classes and the config validator."""
        super().__init__(client_context, server_context, validate_config)
        self._insecure_client_context = insecure_client_context
        self._insecure_server_context = insecure_server_context

    @property
    def insecure_client_context(self) -> type[_InsecureClientContext]:
        """The implementation's insecure client context class.

        Call it as `insecure_client_context(configuration, insecure_configuration)`.
        """
        return self._insecure_client_context

    @property
    def insecure_server_context(self) -> type[_InsecureServerContext]:
        """The implementation's insecure server context class.

        Call it as `insecure_server_context(configuration, insecure_configuration)`.
        """
        return self._insecure_server_context

    def __repr__(self) -> str:
        return (
            f"InsecureTLSImplementation(client_context={self._client_context.__qualname__}, "
            f"server_context={self._server_context.__qualname__}, "
            f"insecure_client_context={self._insecure_client_context.__qualname__}, "
            f"insecure_server_context={self._insecure_server_context.__qualname__})"
        )
