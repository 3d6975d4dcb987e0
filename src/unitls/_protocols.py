"""The interfaces every implementation provides (PEP 748 "Context", "Socket",
"Buffer" and "Runtime Access").

These are `typing.Protocol` classes: implementations need not inherit from them.
`TLSImplementation` is concrete; an implementation exposes one instance of it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from typing_extensions import Buffer

from ._configuration import TLSClientConfiguration, TLSServerConfiguration
from ._enums import CipherSuite, NextProtocol, TLSVersion

__all__ = ["ClientContext", "ServerContext", "TLSBuffer", "TLSSocket", "TLSImplementation"]


class TLSSocket(Protocol):
    """A `socket.socket`-like object whose traffic is protected by TLS.

    Created by `ClientContext.connect` (connected, handshake done) and by
    `ServerContext.connect` (listening); never constructed directly.
    """

    @abstractmethod
    def __init__(self, *args: object, **kwargs: object) -> None:
        """Not for users: contexts create sockets."""

    @abstractmethod
    def recv(self, bufsize: int) -> bytes:
        """Receive up to `bufsize` bytes of plaintext; `b""` once the peer has closed."""

    @abstractmethod
    def send(self, bytes: Buffer) -> int:
        """Send plaintext and return how many bytes were sent."""

    @abstractmethod
    def close(self, force: bool = False) -> None:
        """Send close_notify and close the socket.

        With `force=False` in non-blocking mode, raises `WantReadError` until the
        peer's close_notify has arrived; `WantWriteError` if the close_notify
        cannot be sent yet.
        """

    @abstractmethod
    def listen(self, backlog: int) -> None:
        """Enable a server socket to accept connections."""

    @abstractmethod
    def accept(self) -> tuple[TLSSocket, tuple[str | None, int]]:
        """Accept a connection: return the new TLS socket and the peer's address."""

    @abstractmethod
    def getsockname(self) -> tuple[str | None, int]:
        """The local address of the socket."""

    @abstractmethod
    def getpeercert(self) -> bytes | None:
        """The DER bytes of the peer's certificate, or `None` if it sent none."""

    @abstractmethod
    def getpeername(self) -> tuple[str | None, int]:
        """The remote address of the socket."""

    @property
    @abstractmethod
    def context(self) -> ClientContext | ServerContext:
        """The context this socket was created from."""

    @abstractmethod
    def cipher(self) -> CipherSuite | int | None:
        """The negotiated cipher suite (a raw id if not in `CipherSuite`), `None` before."""

    @abstractmethod
    def negotiated_protocol(self) -> NextProtocol | bytes | None:
        """The protocol chosen by ALPN (raw bytes if not in `NextProtocol`), else `None`."""

    @property
    @abstractmethod
    def negotiated_tls_version(self) -> TLSVersion | None:
        """The negotiated TLS version, `None` before the handshake completes."""


class TLSBuffer(Protocol):
    """An in-memory ("sans-I/O") TLS connection.

    The caller moves bytes: ciphertext from the network goes into
    `process_incoming`, ciphertext for the network comes out of
    `process_outgoing`, and plaintext goes through `read` and `write`.
    """

    @abstractmethod
    def read(self, amt: int, buffer: Buffer | None = None) -> bytes | int:
        """Read up to `amt` bytes of plaintext.

        Returns bytes, or the count written into `buffer` when one is given. Returns
        `b""` (or 0) once the peer has closed cleanly. Raises `WantReadError` when
        more ciphertext is needed and `RaggedEOF` when the transport ended without
        close_notify. May queue bytes for `process_outgoing`.
        """

    @abstractmethod
    def write(self, buf: Buffer) -> int:
        """Encrypt plaintext for `process_outgoing` and return how much was taken.

        May write short: call again with the rest. Raises `WantReadError` or
        `WantWriteError` if nothing could be written yet.
        """

    @abstractmethod
    def do_handshake(self) -> None:
        """Run the handshake, including certificate and hostname verification.

        Raises `WantReadError` until the handshake completes; call again after
        feeding more ciphertext.
        """

    @abstractmethod
    def cipher(self) -> CipherSuite | int | None:
        """The negotiated cipher suite (a raw id if not in `CipherSuite`), `None` before."""

    @abstractmethod
    def negotiated_protocol(self) -> NextProtocol | bytes | None:
        """The protocol chosen by ALPN (raw bytes if not in `NextProtocol`), else `None`."""

    @property
    @abstractmethod
    def context(self) -> ClientContext | ServerContext:
        """The context this buffer was created from."""

    @property
    @abstractmethod
    def negotiated_tls_version(self) -> TLSVersion | None:
        """The negotiated TLS version, `None` before the handshake completes."""

    @abstractmethod
    def shutdown(self) -> None:
        """Start a clean TLS close by queueing close_notify for `process_outgoing`."""

    @abstractmethod
    def process_incoming(self, data_from_network: Buffer) -> None:
        """Store ciphertext received from the network.

        Raises `WantReadError`, storing nothing, when the incoming buffer is full.
        """

    @abstractmethod
    def incoming_bytes_buffered(self) -> int:
        """How many bytes of ciphertext wait to be processed."""

    @abstractmethod
    def process_outgoing(self, amount_bytes_for_network: int) -> bytes:
        """Remove and return up to that many bytes of ciphertext to send."""

    @abstractmethod
    def outgoing_bytes_buffered(self) -> int:
        """How many bytes of ciphertext wait to be sent."""

    @abstractmethod
    def getpeercert(self) -> bytes | None:
        """The DER bytes of the peer's certificate, or `None` if it sent none."""


class ClientContext(Protocol):
    """A factory of client-side TLS buffers and sockets for one configuration."""

    @abstractmethod
    def __init__(self, configuration: TLSClientConfiguration) -> None:
        """Create a client context from a configuration."""

    @property
    @abstractmethod
    def configuration(self) -> TLSClientConfiguration:
        """The configuration this context was created from."""

    @abstractmethod
    def connect(self, address: tuple[str | None, int]) -> TLSSocket:
        """Connect to `address` and complete the TLS handshake; return the socket."""

    @abstractmethod
    def create_buffer(self, server_hostname: str) -> TLSBuffer:
        """Create an in-memory TLS buffer that connects to `server_hostname`."""


class ServerContext(Protocol):
    """A factory of server-side TLS buffers and sockets for one configuration."""

    @abstractmethod
    def __init__(self, configuration: TLSServerConfiguration) -> None:
        """Create a server context from a configuration."""

    @property
    @abstractmethod
    def configuration(self) -> TLSServerConfiguration:
        """The configuration this context was created from."""

    @abstractmethod
    def connect(self, address: tuple[str | None, int]) -> TLSSocket:
        """Bind a listening TLS socket to `address` and return it."""

    @abstractmethod
    def create_buffer(self) -> TLSBuffer:
        """Create an in-memory server-side TLS buffer."""


_ClientContext = TypeVar("_ClientContext", bound=ClientContext)
_ServerContext = TypeVar("_ServerContext", bound=ServerContext)


class TLSImplementation(Generic[_ClientContext, _ServerContext]):
    """The handle through which code finds a TLS implementation's context classes.

    Libraries accept a `TLSImplementation` and build contexts with
    `implementation.client_context(config)`, without knowing the backend.
    """

    __slots__ = ("_client_context", "_server_context", "_validate_config")

    def __init__(
        self,
        client_context: type[_ClientContext],
        server_context: type[_ServerContext],
        validate_config: Callable[[TLSClientConfiguration | TLSServerConfiguration], None],
    ) -> None:
        """Bundle an implementation's context classes and its config validator."""
        self._client_context = client_context
        self._server_context = server_context
        self._validate_config = validate_config

    @property
    def client_context(self) -> type[_ClientContext]:
        """The implementation's `ClientContext` class."""
        return self._client_context

    @property
    def server_context(self) -> type[_ServerContext]:
        """The implementation's `ServerContext` class."""
        return self._server_context

    @property
    def validate_config(self) -> Callable[[TLSClientConfiguration | TLSServerConfiguration], None]:
        """A function that raises `ConfigurationError` if the implementation cannot
        honour a configuration."""
        return self._validate_config

    def __repr__(self) -> str:
        return (
            f"TLSImplementation(client_context={self._client_context.__qualname__}, "
            f"server_context={self._server_context.__qualname__})"
        )
