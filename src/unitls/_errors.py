"""Every exception unitls raises. Catching `TLSError` catches them all."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "TLSError",
    "WantWriteError",
    "WantReadError",
    "RaggedEOF",
    "ConfigurationError",
    "CertificateVerificationError",
]


class TLSError(Exception):
    """The base exception for all TLS errors, from any implementation.

    Catching `TLSError` is enough to catch every error a unitls backend raises,
    including the flow-control signals `WantReadError` and `WantWriteError`.
    """


class WantWriteError(TLSError):
    """Flow-control signal: the operation cannot go on until outgoing data is drained.

    Raised only by non-blocking sockets and by buffers. Send what
    `TLSBuffer.process_outgoing` returns to the network (or wait until the socket is
    writable), then call the same method again with the same arguments. It is raised
    only when no progress at all was possible: a partial write returns a count instead.
    """


class WantReadError(TLSError):
    """Flow-control signal: the operation cannot go on until more data arrives.

    Raised only by non-blocking sockets and by buffers. Read from the network and
    pass the bytes to `TLSBuffer.process_incoming` (or wait until the socket is
    readable), then call the same method again. `TLSBuffer.process_incoming` also
    raises it, storing nothing, when its incoming buffer is full: call
    `TLSBuffer.read` to make room first.
    """


class RaggedEOF(TLSError):
    """The peer's transport closed without a TLS close_notify alert (a "ragged EOF").

    All plaintext received before the EOF has already been delivered when this is
    raised. Whether it matters depends on the protocol above TLS: HTTP/1.1 with a
    Content-Length and HTTP/2 detect truncation themselves and may ignore it; a
    protocol that delimits messages by connection close must treat it as truncation.
    """


class ConfigurationError(TLSError):
    """The configuration asks for something this implementation cannot do.

    Raised by `validate_config` and by context constructors, before any connection
    exists, with a message that names the offending field.
    """


class CertificateVerificationError(TLSError):
    """The peer's certificate failed verification during the handshake.

    Attributes:
        verify_code: The backend's numeric verification result (for the OpenSSL
            backend, the `X509_V_ERR_*` value, e.g. 62 for a hostname mismatch).
        verify_message: The backend's text for `verify_code`.
        expected_name: For name mismatches, the DNS name or IP address the client
            asked for; otherwise `None`.
        presented_names: For name mismatches, the names the certificate presents in
            its subjectAltName (`"DNS:..."`, `"IP:..."`); otherwise empty.
    """

    def __init__(
        self,
        message: str,
        *,
        verify_code: int,
        verify_message: str,
        expected_name: str | None = None,
        presented_names: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.verify_code = verify_code
        self.verify_message = verify_message
        self.expected_name = expected_name
        self.presented_names = tuple(presented_names)
