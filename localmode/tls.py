"""A throw-away CA and server certificate for the emulator's HTTPS port (Fluent Bit only speaks HTTPS).

Generated at first start into the run directory; never committed. Fluent Bit gets ``ca.pem`` as ``tls.ca_file``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "localstack", "localhost.localstack.cloud")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def ensure_tls_files(directory: Path) -> TlsFiles:
    files = TlsFiles(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key")
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="CALI local CA")
    server = ca.issue_cert(*SERVER_NAMES)
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.key))
    files.key.chmod(0o600)
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert), append=True)
    return files
