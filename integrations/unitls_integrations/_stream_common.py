"""What the httpcore streams of `unitls_integrations.httpcore` share, sync and async.

The object `get_extra_info("ssl_object")` returns (the negotiated parameters in
`ssl.SSLObject`'s vocabulary, the peer certificate decoded as `ssl` decodes it), the
answers to the other `get_extra_info()` keys, and the httpcore exception each
failure becomes (theory of operation rule 3 in `httpcore.py`). The I/O itself stays
in the sync and async streams, which mirror each other the way httpcore's own
backends do; only the logic that does no I/O lives here.

The error helpers build the exception for the caller to `raise ... from exc` in a
plain `except` clause, so they cost nothing while nothing fails.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import httpcore

import unitls

from ._certdict import decode_certificate
from ._config import protocol_name

__all__ = [
    "SSLObjectView",
    "apply_socket_options",
    "connect_error",
    "extra_info",
    "read_error",
    "reason",
    "write_error",
]


class SSLObjectView:
    """The negotiated TLS parameters, in `ssl.SSLObject`'s vocabulary.

    Returned by a unitls stream's `get_extra_info("ssl_object")`. Cipher suites are
    named as IANA names them (`unitls.CipherSuite` member names), which for TLS 1.3
    are also OpenSSL's names.
    """

    __slots__ = ("server_hostname", "tls_buffer")

    server_side = False

    def __init__(self, buffer: unitls.TLSBuffer, server_hostname: str) -> None:
        #: The unitls buffer of this connection.
        self.tls_buffer = buffer
        #: The name the certificate was checked against (and sent as SNI, unless an IP).
        self.server_hostname = server_hostname

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN selected (`"h2"`, `"http/1.1"`), or `None`."""
        return protocol_name(self.tls_buffer.negotiated_protocol())

    def version(self) -> str | None:
        """The negotiated TLS version, `"TLSv1.2"` or `"TLSv1.3"`."""
        version = self.tls_buffer.negotiated_tls_version
        return None if version is None else str(version.value)

    def cipher(self) -> tuple[str, str | None, int] | None:
        """`(suite name, TLS version, secret bits)`, as `ssl.SSLSocket.cipher()`.

        The name is the IANA one (`"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"`), or the
        suite's hex id if unitls does not know it (with 0 bits).
        """
        suite = self.tls_buffer.cipher()
        if suite is None:
            return None
        if isinstance(suite, unitls.CipherSuite):
            name = suite.name
            bits = 128 if "_128_" in name else 256 if ("_256_" in name or "CHACHA20" in name) else 0
        else:
            name, bits = f"0x{suite:04X}", 0
        return name, self.version(), bits

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The server's certificate (the connection verified it).

        Args:
            binary_form: `True` for the DER bytes; `False` for the dictionary
                `ssl.SSLSocket.getpeercert()` returns (subject, issuer, validity,
                serial number, subjectAltName).
        """
        der = self.tls_buffer.getpeercert()
        if der is None or binary_form:
            return der
        return decode_certificate(der)

    def compression(self) -> None:
        """Always `None`: TLS compression is never used."""
        return None

    def __repr__(self) -> str:
        return (
            f"<unitls TLS {self.version()} {self.selected_alpn_protocol()} "
            f"server_hostname={self.server_hostname!r}>"
        )


def reason(exc: BaseException) -> str:
    """The message an httpcore exception gets for `exc`: its text, never empty."""
    text = str(exc)
    if text:
        return text
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


def connect_error(
    exc: BaseException, *, handshake: bool = False
) -> httpcore.ConnectTimeout | httpcore.ConnectError:
    """httpcore's exception for a failed connect or TLS handshake (`TimeoutError` or not).

    A failed certificate check stays on `__cause__` (raise it `from exc`), with the
    reason in the message.
    """
    if isinstance(exc, TimeoutError):
        prefix = "TLS handshake timed out: " if handshake else ""
        return httpcore.ConnectTimeout(prefix + reason(exc))
    return httpcore.ConnectError(reason(exc))


def read_error(exc: BaseException) -> httpcore.ReadTimeout | httpcore.ReadError:
    """httpcore's exception for a failed read: a timeout, a transport or a TLS failure."""
    if isinstance(exc, TimeoutError):
        return httpcore.ReadTimeout(reason(exc))
    return httpcore.ReadError(reason(exc))


def write_error(exc: BaseException) -> httpcore.WriteTimeout | httpcore.WriteError:
    """httpcore's exception for a failed write: a timeout, a transport or a TLS failure."""
    if isinstance(exc, TimeoutError):
        return httpcore.WriteTimeout(reason(exc))
    return httpcore.WriteError(reason(exc))


def extra_info(info: str, sock: socket.socket, ssl_object: SSLObjectView | None = None) -> Any:
    """A stream's `get_extra_info(info)` for every key but `"is_readable"`.

    `"is_readable"` is the stream's own business (and the one key httpcore asks on
    every request, so the streams answer it before calling this).
    """
    if info == "ssl_object":
        return ssl_object
    if info in ("client_addr", "server_addr"):
        try:
            return sock.getsockname() if info == "client_addr" else sock.getpeername()
        except OSError:  # closed, or the peer went away
            return None
    if info == "socket":
        return sock
    return None


def apply_socket_options(sock: socket.socket, options: Iterable[Any] | None) -> None:
    """httpcore's `socket_options`, then TCP_NODELAY (as httpcore's own backends do)."""
    for option in options or ():
        sock.setsockopt(*option)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
