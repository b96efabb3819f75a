"""A private certificate authority and a broker certificate for the local broker's TLS listener.

Production clusters (Strimzi among them) sign their brokers' certificates with
their own CA, which clients must be given (``LAUNCHRELAY_KAFKA_SSL_CAFILE``).
The local broker does the same, so the tests exercise that path: a CA made
here, a broker certificate for 127.0.0.1 and localhost, and a PKCS#12 keystore
the JVM reads, encrypted with ``password``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  #: the CA certificate clients trust
    keystore: Path  #: the broker's key and certificate chain (PKCS#12, encrypted with ``password``)
    password: str  #: the key's password


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_broker_tls(directory: Path, password: str, days: int = 30) -> TlsFiles:
    """Write a new CA and a broker certificate signed by it under ``directory`` (kept when already there)."""
    files = TlsFiles(directory / "ca.pem", directory / "broker.p12", password)
    if files.ca.exists() and files.keystore.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("launchrelay local CA"))
        .issuer_name(_name("launchrelay local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    # PKCS#12: the JVM reads its AES/PBKDF2 encryption, where an encrypted PKCS#8 PEM key needs PBES2 it lacks.
    files.keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"broker", key, cert, [ca], serialization.BestAvailableEncryption(password.encode())
        )
    )
    files.keystore.chmod(0o600)
    return files
