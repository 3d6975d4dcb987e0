"""Server-name handling and certificate-verification reporting.

Hostname and IP checks run inside OpenSSL's chain verification, during the
handshake: a mismatch aborts with an alert before any application data flows.
The expected name goes on the connection's own `X509_VERIFY_PARAM` (OpenSSL does
not copy host flags from the `SSL_CTX`, bpo-43522) with partial wildcards and the
subject-CN fallback disabled (RFC 6125 / RFC 9525).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from OpenSSL import SSL

from .._errors import CertificateVerificationError
from ._lowlevel import ffi, lib

__all__ = ["PeerName", "parse_server_hostname", "expect_peer", "verification_error"]

_HOST_FLAGS = lib.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | lib.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT

# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH (x509_vfy.h)
NAME_MISMATCH_CODES = frozenset({62, 64})


@dataclass(frozen=True)
class PeerName:
    """The server name a client expects, parsed once per buffer."""

    #: The name as the caller gave it (for messages).
    text: str
    #: ASCII (A-label) DNS name for SNI and the host check, or `None` for IP literals.
    dns: bytes | None
    #: Packed IP address for the IP check, or `None` for DNS names.
    ip: bytes | None

    @property
    def key(self) -> str:
        """A canonical form, for caches keyed by server (e.g. sessions)."""
        if self.dns is not None:
            return self.dns.decode("ascii")
        assert self.ip is not None
        return str(ipaddress.ip_address(self.ip))


@functools.lru_cache(maxsize=1024)
def _parse(name: str) -> PeerName:
    if not name:
        raise ValueError("server_hostname must not be empty")
    if "\x00" in name or any(c.isspace() for c in name):
        raise ValueError(f"server_hostname {name!r} contains NUL or whitespace")
    # Only names with a colon (IPv6) or a final digit (IPv4) can be IP literals;
    # skipping ipaddress for the rest keeps create_buffer() cheap.
    if ":" in name or name[-1:].isdigit() or name.endswith("]"):
        candidate = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            pass
        else:
            return PeerName(text=name, dns=None, ip=address.packed)
    if name.startswith("."):
        raise ValueError(f"server_hostname {name!r} starts with a dot")
    stripped = name[:-1] if name.endswith(".") else name
    if not stripped or ".." in stripped:
        raise ValueError(f"server_hostname {name!r} has an empty label")
    try:
        dns = stripped.lower().encode("ascii" if stripped.isascii() else "idna")
    except UnicodeError as exc:
        raise ValueError(f"server_hostname {name!r} is not a valid IDNA hostname") from exc
    if len(dns) > 253:
        raise ValueError(f"server_hostname {name!r} is longer than 253 characters")
    return PeerName(text=name, dns=dns, ip=None)


def parse_server_hostname(server_hostname: object) -> PeerName:
    """Validate a server hostname (DNS name or IP literal) and normalise it.

    Raises:
        TypeError: If it is not a `str`.
        ValueError: If it is empty, contains NUL or whitespace, starts with a dot,
            or is not valid IDNA.
    """
    if not isinstance(server_hostname, str):
        raise TypeError(f"server_hostname must be a str, not {type(server_hostname).__name__}")
    return _parse(server_hostname)


def expect_peer(conn: SSL.Connection, peer: PeerName, *, check_name: bool = True) -> None:
    """Send SNI for DNS names and, if `check_name`, make OpenSSL check the name."""
    if peer.dns is not None:
        # RFC 6066 §3: SNI carries DNS names only, never IP literals.
        conn.set_tlsext_host_name(peer.dns)
    if not check_name:
        return
    param = lib.SSL_get0_param(conn._ssl)
    lib.X509_VERIFY_PARAM_set_hostflags(param, _HOST_FLAGS)
    if peer.dns is not None:
        ok = lib.X509_VERIFY_PARAM_set1_host(param, peer.dns, len(peer.dns))
    else:
        assert peer.ip is not None
        ok = lib.X509_VERIFY_PARAM_set1_ip(param, peer.ip, len(peer.ip))
    if ok != 1:  # pragma: no cover - only on allocation failure
        raise MemoryError("X509_VERIFY_PARAM_set1_host/ip failed")


def presented_names(cert: x509.Certificate | None) -> tuple[str, ...]:
    """The DNS and IP subjectAltNames of a certificate, as `DNS:...` / `IP:...`."""
    if cert is None:
        return ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    names = [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def verification_error(
    conn: SSL.Connection, peer: PeerName | None
) -> CertificateVerificationError | None:
    """The verification failure recorded on a connection, or `None` if there was none."""
    code = lib.SSL_get_verify_result(conn._ssl)
    if code == 0:
        return None
    reason = ffi.string(lib.X509_verify_cert_error_string(code)).decode("ascii", "replace")
    if code in NAME_MISMATCH_CODES and peer is not None:
        # After a failed check OpenSSL keeps the chain the peer sent, not a peer
        # certificate; its first element is the leaf.
        try:
            sent = conn.get_peer_cert_chain(as_cryptography=True)
        except Exception:
            # OpenSSL reads certificates lazily (it checks the name before the dates),
            # cryptography's parser is strict: a peer certificate it cannot parse must
            # still fail as a verification error, not as ValueError/InvalidVersion.
            names: tuple[str, ...] = ()
            shown = "names that cannot be read (cryptography cannot parse the certificate)"
        else:
            names = presented_names(sent[0] if sent else None)
            shown = ", ".join(names) if names else "no DNS or IP subjectAltName"
        return CertificateVerificationError(
            f"Certificate verify failed: {reason} (code {code}): expected {peer.text!r}, "
            f"certificate presents {shown}",
            verify_code=code,
            verify_message=reason,
            expected_name=peer.text,
            presented_names=names,
        )
    return CertificateVerificationError(
        f"Certificate verify failed: {reason} (code {code})",
        verify_code=code,
        verify_message=reason,
    )
