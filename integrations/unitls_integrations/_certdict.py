"""A peer certificate as the `ssl` module shows it: the `getpeercert()` dictionary.

One implementation for every adapter: the `ssl.SSLContext` facade's sockets and the
httpcore streams' `ssl_object` both answer `getpeercert()` with it, so urllib3's own
hostname matching (`check_hostname = False`) and any caller that reads the dictionary
see what CPython's `_ssl` module would build from the same certificate. The tests
compare it with `ssl._ssl._test_decode_cert` field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

__all__ = ["PeerCertificate", "decode_certificate"]

PeerCertificate = dict[str, Any]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: OpenSSL's long names for distinguished-name attributes (what `getpeercert()` shows).
_ATTRIBUTE_NAMES = {
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
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "givenName",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.72": "role",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "userId",
    "0.9.2342.19200300.100.1.25": "domainComponent",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionLocalityName",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionStateOrProvinceName",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionCountryName",
}


def _name(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    return tuple(
        tuple(
            (
                _ATTRIBUTE_NAMES.get(attr.oid.dotted_string, attr.oid.dotted_string),
                attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1"),
            )
            for attr in rdn
        )
        for rdn in name.rdns
    )


def _time(moment: datetime) -> str:
    # ASN1_TIME_print's format, locale-independent: "Jan  5 09:34:43 2018 GMT".
    return f"{_MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S} {moment.year} GMT"


def _serial(number: int) -> str:
    # i2a_ASN1_INTEGER: uppercase hex byte pairs, a "\\\n" every 35 bytes.
    text = f"{abs(number):X}"
    text = "0" * (len(text) % 2) + text
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    lines = ["".join(pairs[i : i + 35]) for i in range(0, len(pairs), 35)]
    return ("-" if number < 0 else "") + "\\\n".join(lines)


def _general_name(name: x509.GeneralName) -> tuple[str, Any]:
    if isinstance(name, x509.DNSName):
        return ("DNS", name.value)
    if isinstance(name, x509.IPAddress):
        packed = name.value.packed  # type: ignore[union-attr]  # SAN IPs are addresses
        if len(packed) == 4:
            return ("IP Address", ".".join(str(b) for b in packed))
        # OpenSSL's spelling of IPv6: eight full groups, uppercase, no "::".
        groups = (int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2))
        return ("IP Address", ":".join(f"{g:X}" for g in groups))
    if isinstance(name, x509.RFC822Name):
        return ("email", name.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        return ("URI", name.value)
    if isinstance(name, x509.DirectoryName):
        return ("DirName", _name(name.value))
    if isinstance(name, x509.RegisteredID):
        return ("Registered ID", name.value.dotted_string)
    return ("othername", "<unsupported>")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def decode_certificate(der: bytes) -> PeerCertificate:
    """A DER certificate as the dictionary `ssl.SSLSocket.getpeercert()` returns.

    Built with `cryptography.x509`; the same keys, value shapes and text formats as
    CPython's `_ssl` module (subject and issuer as tuples of RDNs of
    `(long name, value)` pairs, `notBefore` / `notAfter` as `"%b %e %H:%M:%S %Y GMT"`,
    `subjectAltName` entries such as `("DNS", ...)` and `("IP Address", ...)`).
    """
    cert = x509.load_der_x509_certificate(der)
    result: PeerCertificate = {
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": _serial(cert.serial_number),
        "notBefore": _time(cert.not_valid_before_utc),
        "notAfter": _time(cert.not_valid_after_utc),
    }
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is not None:
        result["subjectAltName"] = tuple(_general_name(name) for name in san)
    aia = _extension(cert, x509.AuthorityInformationAccess)
    if aia is not None:
        for key, oid in (
            ("OCSP", AuthorityInformationAccessOID.OCSP),
            ("caIssuers", AuthorityInformationAccessOID.CA_ISSUERS),
        ):
            uris = tuple(
                d.access_location.value
                for d in aia
                if d.access_method == oid
                and isinstance(d.access_location, x509.UniformResourceIdentifier)
            )
            if uris:
                result[key] = uris
    crl = _extension(cert, x509.CRLDistributionPoints)
    if crl is not None:
        uris = tuple(
            name.value
            for point in crl
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        )
        if uris:
            result["crlDistributionPoints"] = uris
    return result
