"""A small certificate factory for the badssl-style verification scenarios.

Follows the recipe of REFERENCE.md §4.2: an RSA-2048 root (basicConstraints CA
critical, keyUsage keyCertSign + cRLSign), intermediates with pathlen 0, and leaves
with CA:FALSE, digitalSignature + keyEncipherment, an extendedKeyUsage (serverAuth by
default) and whatever subjectAltNames the scenario needs. Everything is generated at
test time and kept in memory; `Leaf.write` puts PEM files in a test's tmp_path only
for `openssl s_server`, which reads files.

cryptography (since 41) refuses SHA-1 in its certificate builder, so a SHA-1 leaf
is built with SHA-256 and then re-signed: the TBS signature algorithm OID is swapped
for sha1WithRSAEncryption (same length) and the outer structure is assembled in DER
by hand.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

import unitls

__all__ = ["Authority", "Leaf", "self_signed", "leaf_key", "SERVER_AUTH", "CLIENT_AUTH", "now"]

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

_DAY = datetime.timedelta(days=1)
_serials = itertools.count(1000)
_keys: dict[int, rsa.RSAPrivateKey] = {}

# DER of the AlgorithmIdentifier OIDs (1.2.840.113549.1.1.11 and .5); equal length.
_SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")
_SHA1_RSA_OID = bytes.fromhex("06092a864886f70d010105")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def leaf_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A shared RSA key per size: leaves may share keys, which keeps the suite fast."""
    key = _keys.get(bits)
    if key is None:
        key = _keys[bits] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unitls tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate, signed with sha1WithRSAEncryption by `issuer_key`."""
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_SHA256_RSA_OID) == 1, "expected one sha256WithRSAEncryption OID"
    tbs = tbs.replace(_SHA256_RSA_OID, _SHA1_RSA_OID)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _SHA1_RSA_OID + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    resigned = x509.load_der_x509_certificate(der)
    assert isinstance(resigned.signature_hash_algorithm, hashes.SHA1)
    return resigned


@dataclasses.dataclass(frozen=True)
class Leaf:
    """An end-entity certificate, its key and the intermediates that lead to its root."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    #: Intermediates, issuer first (empty for leaves signed by a root).
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def signing_chain(self, chain: Sequence[x509.Certificate] | None = None) -> unitls.SigningChain:
        """A unitls SigningChain from memory; `chain` overrides the certificates sent
        after the leaf (`[]` sends the leaf alone)."""
        extra = self.chain if chain is None else chain
        return unitls.SigningChain(
            leaf=(
                unitls.Certificate.from_buffer(self.cert_pem),
                unitls.PrivateKey.from_buffer(self.key_pem),
            ),
            chain=[unitls.Certificate.from_buffer(_pem(c)) for c in extra],
        )

    def server_config(
        self, chain: Sequence[x509.Certificate] | None = None, **options: Any
    ) -> unitls.TLSServerConfiguration:
        return unitls.TLSServerConfiguration(
            certificate_chain=[self.signing_chain(chain)],
            **options,
        )

    def write(
        self, directory: Path, chain: Sequence[x509.Certificate] | None = None
    ) -> tuple[Path, Path, Path | None]:
        """Write leaf.pem, leaf.key and (if there is a chain to send) chain.pem."""
        extra = self.chain if chain is None else chain
        cert_path = directory / "leaf.pem"
        key_path = directory / "leaf.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        if not extra:
            return cert_path, key_path, None
        chain_path = directory / "chain.pem"
        chain_path.write_bytes(b"".join(_pem(c) for c in extra))
        return cert_path, key_path, chain_path


class Authority:
    """A CA: an RSA-2048 root, or an intermediate (pathlen 0) below another Authority."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    parent: Authority | None

    def __init__(self, name: str = "unitls test root", *, parent: Authority | None = None):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.parent = parent
        subject = _name(name)
        issuer_name = subject if parent is None else parent.cert.subject
        signing_key = self.key if parent is None else parent.key
        start = now() - 10 * _DAY
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(self.key.public_key())
            .serial_number(next(_serials))
            .not_valid_before(start)
            .not_valid_after(start + 400 * _DAY)
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None if parent is None else 0),
                critical=True,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
        )
        if parent is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
                critical=False,
            )
        self.cert = builder.sign(signing_key, hashes.SHA256())

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The intermediates from this authority up to (not including) its root."""
        if self.parent is None:
            return ()
        return (self.cert, *self.parent.chain)

    @property
    def root(self) -> Authority:
        return self if self.parent is None else self.parent.root

    def intermediate(self, name: str = "unitls test intermediate") -> Authority:
        return Authority(name, parent=self)

    def trust_store(self) -> unitls.TrustStore:
        return unitls.TrustStore.from_buffer(self.cert_pem)

    def client_config(self, **options: Any) -> unitls.TLSClientConfiguration:
        """A client configuration that trusts this authority (a root) and nothing else."""
        return unitls.TLSClientConfiguration(
            trust_store=self.trust_store(),
            **options,
        )

    def issue(
        self,
        *dns_names: str,
        ips: Sequence[str] = (),
        common_name: str | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        key_bits: int = 2048,
        sha1: bool = False,
        usages: Sequence[x509.ObjectIdentifier] = (SERVER_AUTH,),
        ca_issuers_url: str | None = None,
    ) -> Leaf:
        """Issue a leaf.

        Args:
            dns_names: DNS subjectAltNames, written as given (wildcards, IP-looking
                strings and A-labels included).
            ips: IP-address subjectAltNames.
            common_name: The subject CN (defaults to the first name, or "unitls leaf").
                With no `dns_names` and no `ips` the leaf has no subjectAltName at all.
            not_before, not_after: The validity window (default: from a day ago for
                30 days).
            key_bits: RSA key size of the leaf.
            sha1: Sign with sha1WithRSAEncryption instead of SHA-256.
            usages: extendedKeyUsage purposes.
            ca_issuers_url: If set, an authorityInfoAccess caIssuers URL (for AIA tests).
        """
        key = leaf_key(key_bits)
        cn = common_name or (dns_names[0] if dns_names else "unitls leaf")
        start = not_before or now() - _DAY
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(next(_serials))
            .not_valid_before(start)
            .not_valid_after(not_after or start + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if ca_issuers_url is not None:
            access = x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(ca_issuers_url),
            )
            builder = builder.add_extension(
                x509.AuthorityInformationAccess([access]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        if sha1:
            cert = _resign_sha1(cert, self.key)
        return Leaf(cert=cert, key=key, chain=self.chain)


def self_signed(*dns_names: str, ips: Sequence[str] = ()) -> Leaf:
    """A self-signed end-entity certificate (CA:FALSE) for `dns_names` / `ips`."""
    key = leaf_key()
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    subject = _name(dns_names[0] if dns_names else "unitls self-signed")
    start = now() - _DAY
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(next(_serials))
        .not_valid_before(start)
        .not_valid_after(start + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Leaf(cert=cert, key=key)
