"""TLS files for the HTTPS test servers, made in-process with ``trustme`` (no openssl).

A throwaway CA issues a certificate for ``127.0.0.1``; the client trusts the CA
(``ca_bundle``), the server presents the certificate chain with its key (``server``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path  # what a client passes as its CA bundle
    cert_chain: Path  # the server's certificate, then the CA's
    key: Path  # the server's private key

    @property
    def server(self) -> tuple[Path, Path]:
        """``(certificate chain, private key)`` as :class:`SourceServer` takes ``tls=``."""
        return self.cert_chain, self.key


def make_tls_files(folder: Path, host: str = "127.0.0.1") -> TlsFiles:
    ca = trustme.CA()
    issued = ca.issue_cert(host)
    files = TlsFiles(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca_bundle))
    for i, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(files.cert_chain), append=i > 0)
    issued.private_key_pem.write_to_path(str(files.key))
    return files
