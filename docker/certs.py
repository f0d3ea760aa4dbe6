"""One-shot: a throw-away CA and a server certificate for LocalStack's HTTPS, made at first start.

Fluent Bit's ``kinesis_streams`` output speaks only HTTPS and always verifies the server against a CA
(DESIGN.md), so LocalStack must serve a certificate Fluent Bit can check. LocalStack's gateway serves HTTP and
HTTPS on the same port (4566) with the certificate at ``CUSTOM_SSL_CERT_PATH``: one PEM file holding the private
key and the certificate chain, which it splits into ``<file>.key`` / ``<file>.crt`` next to it at start-up.

Writes into the directory given (a named volume, never the repository):
- ``server.pem``: the server's private key + certificate (for LocalStack), mode 0600;
- ``ca.pem``: the CA certificate (Fluent Bit's ``tls.ca_file``).
The CA's private key is never written: nobody can issue another certificate under this CA.

Existing files are kept while they are valid for the names below for at least RENEW_BEFORE more; otherwise both
are made anew. Usage: ``python certs.py /certs``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

import trustme
from cryptography import x509

# The compose service name (what Fluent Bit connects to), plus the names a developer might use from the host.
NAMES = ("localstack", "localhost", "localhost.localstack.cloud", "127.0.0.1")
RENEW_BEFORE = datetime.timedelta(days=7)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)  # readers never see half a file


def _san_names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def still_valid(directory: Path, now: datetime.datetime) -> bool:
    try:
        ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        leaf = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    except (OSError, ValueError):
        return False
    wanted = {str(ipaddress.ip_address(n)) if n[0].isdigit() else n for n in NAMES}
    return (leaf.issuer == ca.subject and wanted <= _san_names(leaf)
            and min(leaf.not_valid_after_utc, ca.not_valid_after_utc) - now > RENEW_BEFORE)


def make(directory: Path) -> None:
    ca = trustme.CA(organization_name="CALI docker compose CA (throw-away)", key_type=trustme.KeyType.RSA)
    server = ca.issue_cert(*NAMES, common_name="localstack", key_type=trustme.KeyType.RSA)
    chain = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    _write(directory / "server.pem", server.private_key_pem.bytes() + chain, 0o600)
    _write(directory / "ca.pem", ca.cert_pem.bytes(), 0o644)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: certs.py DIRECTORY", file=sys.stderr)  # noqa: T201
        return 2
    directory = Path(argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    if still_valid(directory, datetime.datetime.now(datetime.UTC)):
        print(f"certs: {directory}/ca.pem and server.pem are valid; kept")  # noqa: T201
        return 0
    make(directory)
    print(f"certs: made a new CA ({directory}/ca.pem) and server certificate for {', '.join(NAMES)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
