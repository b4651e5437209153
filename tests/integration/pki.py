"""Throwaway certificates for the TLS tests, made with openssl.

In a directory: ``ca.pem``/``ca.key`` and ``other.pem``/``other.key`` (two CAs);
``broker.pem``/``broker.key`` for 127.0.0.1 and localhost signed by ``ca`` (also in
``broker.p12``, password STORE_PASSWORD); ``client.pem``/``client.key`` signed by
``ca``, the key encrypted with KEY_PASSWORD; ``rogue.pem``/``rogue.key`` signed by
``other``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

KEY_PASSWORD = "client-K3y-7c20fa"  # noqa: S105 - distinctive, so that any leak is found
STORE_PASSWORD = "broker-store-pass"  # noqa: S105


def make_pki(d: Path) -> None:
    """A CA, a broker certificate for 127.0.0.1/localhost in a PKCS12 keystore, client certificates, another CA."""

    def openssl(*args: str) -> None:
        done = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"openssl {' '.join(args)} failed:\n{done.stderr}")

    def signed(name: str, ca: str, *key_args: str, ext: tuple[str, ...] = ()) -> None:
        openssl(
            "req", "-newkey", "rsa:2048", *key_args, "-keyout", f"{name}.key", "-out", f"{name}.csr", *subject(name)
        )
        sign = ["-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2"]
        openssl("x509", "-req", "-in", f"{name}.csr", *sign, "-out", f"{name}.pem", *ext)

    def subject(name: str) -> tuple[str, str]:
        return ("-subj", f"/CN={name}")

    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca in ("ca", "other"):
        self_signed = ["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *subject(f"{ca} test CA")]
        openssl("req", *self_signed, "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    signed("broker", "ca", "-nodes", ext=("-extfile", "san.ext"))
    keystore = ["-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem", "-name", "broker"]
    openssl("pkcs12", "-export", *keystore, "-out", "broker.p12", "-passout", f"pass:{STORE_PASSWORD}")
    signed("client", "ca", "-passout", f"pass:{KEY_PASSWORD}")
    signed("rogue", "other", "-nodes")
