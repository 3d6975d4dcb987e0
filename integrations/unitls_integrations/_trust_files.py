"""Trust anchors and client chains from files, for the `ssl.SSLContext` facade.

What `SSLContext.load_verify_locations` and `load_cert_chain` read: CA files,
`cadata`, OpenSSL hashed directories (`capath`), and PEM certificate chains with
their (possibly encrypted) private keys. Keys are decrypted in memory and handed to
unitls as buffers: nothing is ever written to disk.

urllib3 and requests load the same files again on every connection, so every read
is cached by file version (path, device, inode, mtime, size): an unchanged file is
read and parsed once, a changed one is read again.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import ssl
from collections.abc import Callable, Iterable
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

import unitls

__all__ = [
    "Password",
    "Trust",
    "ca_sources",
    "file_key",
    "password_bytes",
    "signing_chain",
]

Password = str | bytes | bytearray | Callable[[], str | bytes | bytearray]
PathArg = str | bytes | os.PathLike[Any]

#: A file's identity and version: (path, st_dev, st_ino, st_mtime_ns, st_size).
FileKey = tuple[str | bytes, int, int, int, int]


# -- files, read once per version -------------------------------------------------------


def file_key(path: PathArg) -> FileKey:
    """A file's identity and version, for caches (raises `OSError` like `open`)."""
    name = os.fspath(path)
    st = os.stat(name)
    return (name, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _read_file(key: FileKey) -> bytes:
    """A file's bytes, read once per version (`key` from `file_key`)."""
    with open(key[0], "rb") as f:
        return f.read()


# -- CA certificates ---------------------------------------------------------------------


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


_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def _ca_directory(capath: PathArg) -> tuple[tuple[object, ...], bytes]:
    """The certificates of an OpenSSL hashed directory (`c_rehash`), read now."""
    name = os.fsdecode(capath)
    keys, pems = [], []
    for entry in sorted(os.listdir(name)):
        if not _HASHED_NAME.fullmatch(entry):
            continue  # OpenSSL only looks up <subject hash>.<n> files
        key = file_key(os.path.join(name, entry))
        keys.append(key)
        pems.append(_certificates_pem(_read_file(key), repr(key[0])))
    return ("dir", name, tuple(keys)), b"".join(pems)


#: One source of CA certificates: (its identity, so a repeat is a no-op; its PEM).
Source = tuple[object, bytes]


def ca_sources(
    cafile: PathArg | None,
    capath: PathArg | None,
    cadata: str | bytes | bytearray | memoryview | None,
) -> list[Source]:
    """The sources `load_verify_locations(cafile, capath, cadata)` names, read now.

    Raises:
        OSError: If a file or directory cannot be read.
        ssl.SSLError: If a source holds no certificate.
        TypeError: If `cadata` is neither `str` nor bytes-like.
    """
    sources: list[Source] = []
    if cafile is not None:
        key = file_key(cafile)
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
    return sources


def _store_pem(store: unitls.TrustStore) -> bytes:
    """A configured trust store's certificates as PEM, to merge more into it."""
    if store.buffer is not None:
        return _certificates_pem(store.buffer, "the configured trust store")
    if store.path is not None:
        return _certificates_pem(_read_file(file_key(store.path)), repr(store.path))
    raise unitls.ConfigurationError(
        "trust_store: cannot add certificates to a trust store given by id"
    )


@dataclasses.dataclass(frozen=True)
class Trust:
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

    def adding(self, sources: Iterable[Source]) -> Trust:
        """This trust with the certificates of `sources` added; `self` if none is new.

        A "default" trust (the system store, by default only) is replaced by them.

        Raises:
            unitls.ConfigurationError: If the system store was asked for, or the
                configured store is given by id: unitls cannot merge into those.
        """
        if self.kind == "system":
            raise unitls.ConfigurationError(
                "trust_store: this context trusts the system store "
                "(set_default_verify_paths); unitls cannot add certificates to it"
            )
        if self.kind == "default":
            pems: tuple[bytes, ...] = ()
            keys: frozenset[object] = frozenset()
        else:
            keys = self.keys
            if self.pems is not None:
                pems = self.pems
            else:
                assert self.store is not None
                pems = (_store_pem(self.store),)
        new = [(key, pem) for key, pem in sources if key not in keys]
        if not new and self.kind == "certs" and self.pems is not None:
            return self  # urllib3 and requests load the same file on every connect
        pems += tuple(pem for _, pem in new)
        keys |= frozenset(key for key, _ in new)
        blob = b"".join(pems)
        store = unitls.TrustStore.from_buffer(blob) if blob else None
        return Trust("certs", store=store, pems=pems, keys=keys)


# -- client certificate chains -----------------------------------------------------------

_KEY_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S
)


def password_bytes(password: Password | None) -> bytes | None:
    """`load_cert_chain`'s `password` as bytes (calling it if it is a callable)."""
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
def signing_chain(
    cert_key: FileKey, key_key: FileKey, password: bytes | None
) -> unitls.SigningChain:
    """A unitls signing chain from PEM files, decrypted in memory (never on disk).

    Raises:
        ssl.SSLError: If no certificate or key is found, the password is wrong or
            missing, or the key does not match the certificate.
    """
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
