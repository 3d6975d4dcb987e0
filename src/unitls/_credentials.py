"""Where certificates, private keys and trust stores come from (PEP 748 "Certificates",
"Private Keys", "Signing Chain" and "Trust Store").

These objects only record a source: a byte buffer, a file path or an opaque
identifier. They parse nothing; each backend loads the source when a context is
built, and `validate_config` tells whether a backend supports a given source.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, NoReturn, Union

__all__ = ["Certificate", "PrivateKey", "TrustStore", "SigningChain"]

_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _check_source(
    kind: str, buffer: object, path: object, id: object
) -> tuple[bytes | None, str | bytes | None, bytes | None]:
    """Validate and normalise one (buffer, path, id) triple; at most one may be set."""
    given = [
        name
        for name, value in (("buffer", buffer), ("path", path), ("id", id))
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"{kind} takes exactly one of buffer, path or id, not {' and '.join(given)}"
        )
    norm_buffer: bytes | None = None
    norm_path: str | bytes | None = None
    norm_id: bytes | None = None
    if buffer is not None:
        if not isinstance(buffer, (bytes, bytearray, memoryview)):
            raise TypeError(f"{kind} buffer must be bytes, not {type(buffer).__name__}")
        norm_buffer = bytes(buffer)
        if not norm_buffer:
            raise ValueError(f"{kind} buffer must not be empty")
    if path is not None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"{kind} path must be str or os.PathLike, not {type(path).__name__}")
        norm_path = os.fspath(path)
        if not norm_path:
            raise ValueError(f"{kind} path must not be empty")
    if id is not None:
        if not isinstance(id, (bytes, bytearray, memoryview)):
            raise TypeError(f"{kind} id must be bytes, not {type(id).__name__}")
        norm_id = bytes(id)
    return norm_buffer, norm_path, norm_id


class _Source:
    """Shared behaviour of the three source-recording classes: immutable value objects."""

    __slots__ = ("_buffer", "_id", "_path")

    _buffer: bytes | None
    _path: str | bytes | None
    _id: bytes | None

    def _init(self, buffer: object, path: object, id: object) -> None:
        b, p, i = _check_source(type(self).__name__, buffer, path, id)
        object.__setattr__(self, "_buffer", b)
        object.__setattr__(self, "_path", p)
        object.__setattr__(self, "_id", i)

    @property
    def buffer(self) -> bytes | None:
        """The PEM or DER bytes this object was created from, or `None`."""
        return self._buffer

    @property
    def path(self) -> str | bytes | None:
        """The file path this object was created from (as `os.fspath` gives it), or `None`."""
        return self._path

    @property
    def id(self) -> bytes | None:
        """The opaque identifier this object was created from, or `None`."""
        return self._id

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def _key(self) -> tuple[bytes | None, str | bytes | None, bytes | None]:
        return (self._buffer, self._path, self._id)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Source)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        if self._buffer is not None:
            return f"{type(self).__name__}.from_buffer(<{len(self._buffer)} bytes>)"
        if self._path is not None:
            return f"{type(self).__name__}.from_file({self._path!r})"
        if self._id is not None:
            return f"{type(self).__name__}.from_id({self._id!r})"
        return f"{type(self).__name__}.system()"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._key())


class Certificate(_Source):
    """A certificate used in TLS, recorded by its source.

    The source is a PEM or DER byte buffer, a file, or an implementation-specific
    identifier (for HSMs and system stores). Nothing is parsed here.
    """

    __slots__ = ()

    def __init__(
        self,
        buffer: bytes | None = None,
        path: _Path | None = None,
        id: bytes | None = None,
    ) -> None:
        """Create a certificate from exactly one of a buffer, a path or an id.

        Raises:
            ValueError: If none, or more than one, of the sources is given, or the
                buffer or path is empty.
            TypeError: If a source has the wrong type.
        """
        if buffer is None and path is None and id is None:
            raise ValueError("Certificate cannot be empty")
        self._init(buffer, path, id)

    @classmethod
    def from_buffer(cls, buffer: bytes) -> Certificate:
        """Create a certificate from PEM or DER bytes.

        PEM input must start with a `-----BEGIN CERTIFICATE-----` preamble; anything
        else is taken to be DER.
        """
        return cls(buffer=buffer)

    @classmethod
    def from_file(cls, path: _Path) -> Certificate:
        """Create a certificate from a file holding one PEM or DER certificate."""
        return cls(path=path)

    @classmethod
    def from_id(cls, id: bytes) -> Certificate:
        """Create a certificate from an implementation-specific identifier.

        The OpenSSL backend supports no identifiers and rejects such a certificate
        with `ConfigurationError`.
        """
        return cls(id=id)


class PrivateKey(_Source):
    """The private key that matches a leaf certificate, recorded by its source.

    Unencrypted PKCS#8, traditional PEM and DER keys are accepted by the OpenSSL
    backend; keys are loaded in memory and never written to disk.
    """

    __slots__ = ()

    def __init__(
        self,
        buffer: bytes | None = None,
        path: _Path | None = None,
        id: bytes | None = None,
    ) -> None:
        """Create a private key from exactly one of a buffer, a path or an id.

        Raises:
            ValueError: If none, or more than one, of the sources is given, or the
                buffer or path is empty.
            TypeError: If a source has the wrong type.
        """
        if buffer is None and path is None and id is None:
            raise ValueError("PrivateKey cannot be empty")
        self._init(buffer, path, id)

    @classmethod
    def from_buffer(cls, buffer: bytes) -> PrivateKey:
        """Create a private key from PEM (`-----BEGIN ... KEY-----`) or DER bytes."""
        return cls(buffer=buffer)

    @classmethod
    def from_file(cls, path: _Path) -> PrivateKey:
        """Create a private key from a file holding one PEM or DER key."""
        return cls(path=path)

    @classmethod
    def from_id(cls, id: bytes) -> PrivateKey:
        """Create a private key from an implementation-specific identifier (e.g. an HSM)."""
        return cls(id=id)


class TrustStore(_Source):
    """The certificates trusted to verify the peer, recorded by their source.

    `TrustStore()` with no argument, like `TrustStore.system()`, means the system's
    trust database. Two system trust stores compare equal.
    """

    __slots__ = ()

    def __init__(
        self,
        buffer: bytes | None = None,
        path: _Path | None = None,
        id: bytes | None = None,
    ) -> None:
        """Create a trust store from at most one of a buffer, a path or an id.

        With no source, the system trust store is meant.

        Raises:
            ValueError: If more than one source is given, or the buffer or path is empty.
            TypeError: If a source has the wrong type.
        """
        self._init(buffer, path, id)

    @classmethod
    def system(cls) -> TrustStore:
        """The system's trust database."""
        return cls()

    @classmethod
    def from_buffer(cls, buffer: bytes) -> TrustStore:
        """Trust the certificates in a buffer of concatenated PEM certificates (or one DER)."""
        return cls(buffer=buffer)

    @classmethod
    def from_file(cls, path: _Path) -> TrustStore:
        """Trust the certificates in a file of concatenated PEM certificates (or one DER)."""
        return cls(path=path)

    @classmethod
    def from_id(cls, id: bytes) -> TrustStore:
        """Trust an implementation-specific store named by an identifier."""
        return cls(id=id)

    def is_system(self) -> bool:
        """Whether this is the system trust store (no buffer, path or id).

        Added ahead of the PEP (python/peps#4958 proposes it).
        """
        return self._buffer is None and self._path is None and self._id is None


class SigningChain:
    """A leaf certificate with its private key, and the intermediates to send with it.

    Unlike the PEP's sketch this object is immutable (`chain` is a tuple), so
    configurations holding it stay hashable and can key caches.
    """

    __slots__ = ("_chain", "_leaf")

    _leaf: tuple[Certificate, PrivateKey | None]
    _chain: tuple[Certificate, ...]

    def __init__(
        self,
        leaf: tuple[Certificate, PrivateKey | None],
        chain: Iterable[Certificate] | None = None,
    ) -> None:
        """Create a signing chain.

        Args:
            leaf: The leaf certificate and its private key. The key may be `None`
                only for implementations that find it from the certificate (the
                OpenSSL backend requires it).
            chain: Intermediate certificates, leaf-most first, sent after the leaf.

        Raises:
            TypeError: If an element has the wrong type.
        """
        if not isinstance(leaf, tuple) or len(leaf) != 2:
            raise TypeError("SigningChain leaf must be a (Certificate, PrivateKey | None) tuple")
        cert, key = leaf
        if not isinstance(cert, Certificate):
            raise TypeError(
                f"SigningChain leaf certificate must be a Certificate, not {type(cert).__name__}"
            )
        if key is not None and not isinstance(key, PrivateKey):
            raise TypeError(
                f"SigningChain leaf key must be a PrivateKey or None, not {type(key).__name__}"
            )
        intermediates = tuple(chain) if chain is not None else ()
        for item in intermediates:
            if not isinstance(item, Certificate):
                raise TypeError(
                    f"SigningChain chain items must be Certificates, not {type(item).__name__}"
                )
        object.__setattr__(self, "_leaf", (cert, key))
        object.__setattr__(self, "_chain", intermediates)

    @property
    def leaf(self) -> tuple[Certificate, PrivateKey | None]:
        """The leaf certificate and its private key."""
        return self._leaf

    @property
    def chain(self) -> tuple[Certificate, ...]:
        """The intermediate certificates sent after the leaf."""
        return self._chain

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("SigningChain objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("SigningChain objects are immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningChain):
            return NotImplemented
        return self._leaf == other._leaf and self._chain == other._chain

    def __hash__(self) -> int:
        return hash((self._leaf, self._chain))

    def __repr__(self) -> str:
        return f"SigningChain(leaf={self._leaf!r}, chain={list(self._chain)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (SigningChain, (self._leaf, self._chain))
