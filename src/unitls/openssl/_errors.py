"""The one place where OpenSSL errors become unitls errors.

Called from plain `except` clauses, so the success path pays nothing. Every
pyOpenSSL exception is turned into a `unitls.TLSError` subclass, chained with
`from` so the OpenSSL detail stays on `__cause__`:

1. `SSL.WantReadError` / `SSL.WantWriteError` -> `WantReadError` / `WantWriteError`.
2. A certificate check that failed during the handshake, with verification on
   -> `CertificateVerificationError` with the verify code, its reason and, for
   name mismatches, the expected and presented names.
3. A `SysCallError` or an "unexpected eof" after the caller signalled transport
   EOF (`process_incoming(b"")`) -> `RaggedEOF`.
4. Any other `SSL.Error` -> `TLSError` with OpenSSL's reasons.
5. Anything else (it would be a bug in a callback) -> `TLSError`; our ALPN and
   SNI callbacks are written so that they cannot raise.

`SSL.ZeroReturnError` (clean close_notify) is not an error; callers handle it.
"""

from __future__ import annotations

from OpenSSL import SSL, crypto

from .._errors import RaggedEOF, TLSError, WantReadError, WantWriteError
from ._lowlevel import lib
from ._verify import PeerName, verification_error

__all__ = ["translate", "describe"]


def describe(exc: BaseException) -> str:
    """OpenSSL's reason strings from a pyOpenSSL exception (`SSL.Error` or
    `crypto.Error`), joined for a message."""
    if isinstance(exc, SSL.SysCallError):
        return str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if isinstance(exc, (SSL.Error, crypto.Error)) and exc.args and isinstance(exc.args[0], list):
        reasons = [str(entry[-1]) for entry in exc.args[0] if isinstance(entry, tuple) and entry]
        if reasons:
            return "; ".join(dict.fromkeys(reasons))
        return "unknown OpenSSL error"
    return str(exc) or type(exc).__name__


def translate(
    exc: BaseException,
    conn: SSL.Connection,
    *,
    eof: bool,
    peer: PeerName | None,
    handshaking: bool = False,
) -> TLSError:
    """Map an exception from pyOpenSSL (or our callbacks) to a `TLSError`.

    Args:
        exc: What pyOpenSSL raised.
        conn: The connection it came from (for the verify result).
        eof: Whether transport EOF had been signalled.
        peer: The expected server name (clients), for mismatch messages.
        handshaking: Whether the handshake was still running.
    """
    if isinstance(exc, SSL.WantReadError):
        return WantReadError("More TLS data is needed from the peer")
    if isinstance(exc, SSL.WantWriteError):
        return WantWriteError("Outgoing TLS data must be sent first")
    if isinstance(exc, SSL.Error):
        # OpenSSL records a verify result even when it was told not to act on it
        # (VERIFY_NONE, the insecure backend), and keeps it after the handshake: it
        # explains a failure only while handshaking with verification on.
        if handshaking and lib.SSL_get_verify_mode(conn._ssl) & lib.SSL_VERIFY_PEER:
            verify = verification_error(conn, peer)
            if verify is not None:
                return verify
        reason = describe(exc)
        if eof and (isinstance(exc, SSL.SysCallError) or "unexpected eof" in reason.lower()):
            where = "during the handshake" if handshaking else "before TLS close_notify"
            return RaggedEOF(f"The peer's transport closed {where} (ragged EOF)")
        return TLSError(f"{'Handshake' if handshaking else 'Connection'} failed: {reason}")
    return TLSError(f"Unexpected error from OpenSSL: {exc!r}")
