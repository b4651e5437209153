"""Fixtures shared by the unit tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

KEY_PASSWORD = "k3y-Unit-b81d40"  # noqa: S105 - a made-up secret that must never show
"""The password of the client key in the ``pem`` fixture."""


@dataclass(frozen=True)
class Pem:
    """A CA certificate, a client certificate it signed, and the client's key encrypted with KEY_PASSWORD."""

    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Pem:
    """Throwaway PEM files made with openssl."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    d = tmp_path_factory.mktemp("pem")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args, *subject(args)], cwd=d, check=True, capture_output=True)

    def subject(args: tuple[str, ...]) -> list[str]:
        return ["-subj", "/CN=unit"] if args[0] == "req" else []

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1")
    openssl("req", "-newkey", "rsa:2048", "-keyout", "client.key", "-passout", f"pass:{KEY_PASSWORD}", "-out", "c.csr")
    openssl("x509", "-req", "-in", "c.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "1", "-out", "client.pem")
    return Pem(d / "ca.pem", d / "client.pem", d / "client.key")
