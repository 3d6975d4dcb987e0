"""What the httpcore streams of `unitls_integrations.httpcore` share, sync and async.

The object `get_extra_info("ssl_object")` returns (the negotiated parameters in
`ssl.SSLObject`'s vocabulary, the peer certificate decoded as `ssl` decodes it), the
answers to the other `get_extra_info()` keys, and error messages.
"""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import sys
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

import unitls

__all__ = [
    "SSLObjectView",
    "address_info",
    "apply_socket_options",
    "certificate_dict",
    "reason",
    "socket_readable",
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
        protocol = self.tls_buffer.negotiated_protocol()
        if protocol is None:
            return None
        raw = protocol.value if isinstance(protocol, unitls.NextProtocol) else protocol
        return raw.decode("ascii", "replace")

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
        return certificate_dict(der)

    def compression(self) -> None:
        """Always `None`: TLS compression is never used."""
        return None

    def __repr__(self) -> str:
        return (
            f"<unitls TLS {self.version()} {self.selected_alpn_protocol()} "
            f"server_hostname={self.server_hostname!r}>"
        )


# Attribute types by OID, named as OpenSSL (and so `ssl.SSLSocket.getpeercert()`) names them.
_NAME_ATTRIBUTES = {
    "2.5.4.3": "commonName",
    "2.5.4.4": "surname",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "countryName",
    "2.5.4.7": "localityName",
    "2.5.4.8": "stateOrProvinceName",
    "2.5.4.9": "streetAddress",
    "2.5.4.10": "organizationName",
    "2.5.4.11": "organizationalUnitName",
    "2.5.4.12": "title",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.42": "givenName",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "userId",
    "0.9.2342.19200300.100.1.25": "domainComponent",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionLocalityName",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionStateOrProvinceName",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionCountryName",
}


def _name_tuple(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    return tuple(
        tuple(
            (
                _NAME_ATTRIBUTES.get(attribute.oid.dotted_string, attribute.oid.dotted_string),
                attribute.value if isinstance(attribute.value, str) else attribute.value.hex(),
            )
            for attribute in rdn
        )
        for rdn in name.rdns
    )


def _asn1_time(moment: datetime.datetime) -> str:
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S %Y} GMT"


def _serial_hex(serial: int) -> str:
    text = f"{serial:X}"
    return "0" + text if len(text) % 2 else text  # whole bytes, as OpenSSL prints it


def _general_name(general: x509.GeneralName) -> tuple[str, Any]:
    if isinstance(general, x509.DNSName):
        return "DNS", general.value
    if isinstance(general, x509.IPAddress):
        address = general.value
        if isinstance(address, ipaddress.IPv6Address):  # OpenSSL's spelling: 8 full groups
            return "IP Address", ":".join(f"{int(g, 16):X}" for g in address.exploded.split(":"))
        return "IP Address", str(address)
    if isinstance(general, x509.RFC822Name):
        return "email", general.value
    if isinstance(general, x509.UniformResourceIdentifier):
        return "URI", general.value
    if isinstance(general, x509.DirectoryName):
        return "DirName", _name_tuple(general.value)
    if isinstance(general, x509.RegisteredID):
        return "Registered ID", general.value.dotted_string
    return "othername", "<unsupported>"


def certificate_dict(der: bytes) -> dict[str, Any]:
    """`der` decoded the way `ssl.SSLSocket.getpeercert()` presents a certificate."""
    cert = x509.load_der_x509_certificate(der)
    result: dict[str, Any] = {
        "subject": _name_tuple(cert.subject),
        "issuer": _name_tuple(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": _serial_hex(cert.serial_number),
        "notBefore": _asn1_time(cert.not_valid_before_utc),
        "notAfter": _asn1_time(cert.not_valid_after_utc),
    }
    extensions = cert.extensions
    try:
        alt = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        result["subjectAltName"] = tuple(_general_name(general) for general in alt)
    except x509.ExtensionNotFound:
        pass
    try:
        access = extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        access = None
    for method, key in (
        (AuthorityInformationAccessOID.OCSP, "OCSP"),
        (AuthorityInformationAccessOID.CA_ISSUERS, "caIssuers"),
    ):
        uris = tuple(
            d.access_location.value
            for d in access or ()
            if d.access_method == method
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
        )
        if uris:
            result[key] = uris
    try:
        points = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        points = None
    crls = tuple(
        name.value
        for point in points or ()
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )
    if crls:
        result["crlDistributionPoints"] = crls
    return result


def reason(exc: BaseException) -> str:
    """The message an httpcore exception gets for `exc`: its text, never empty."""
    text = str(exc)
    if text:
        return text
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


def socket_readable(sock: socket.socket) -> bool:
    """Whether `sock` has data or an EOF waiting (or is closed: a read fails at once)."""
    if sock.fileno() < 0:
        return True
    if sys.platform == "win32":  # pragma: no cover - no poll() on Windows
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def address_info(sock: socket.socket, info: str) -> Any:
    """`"client_addr"` / `"server_addr"` of `sock`, or `None` once it is closed."""
    try:
        if info == "client_addr":
            return sock.getsockname()
        return sock.getpeername()
    except OSError:  # closed, or the peer went away
        return None


def apply_socket_options(sock: socket.socket, options: Iterable[Any] | None) -> None:
    """httpcore's `socket_options`, then TCP_NODELAY (as httpcore's own backends do)."""
    for option in options or ():
        sock.setsockopt(*option)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
