"""Fixtures for the blob-store tests: a real moto S3 server and buckets in it.

- ``moto`` (session): ``moto_server`` from the virtualenv on a free port, stopped at
  the end; ``fresh_moto``: one of its own per test, for tests that stop and restart it.
- ``bucket``: a new empty bucket in ``moto`` per test.
- Every test runs with fake AWS credentials in the environment (boto3's usual chain,
  as callvault uses it) and no AWS files or instance metadata lookups.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class MotoServer:
    """``moto_server -p PORT`` as a subprocess (state in memory: lost when stopped)."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _client: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not MOTO_SERVER.exists():
            pytest.fail(f"{MOTO_SERVER} is missing: pip install 'moto[server]'", pytrace=False)
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Readiness, not a time limit on anything tested: moto starts in under a second.
        for _ in range(300):
            if self.process.poll() is not None:
                pytest.fail(f"moto_server exited with {self.process.returncode}", pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail("moto_server did not start listening", pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        self.process = None

    def client(self) -> Any:
        """A plain boto3 client on this server (to set up and inspect buckets)."""
        if self._client is None:
            self._client = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing"
            ).client(
                "s3",
                endpoint_url=self.url,
                region_name=REGION,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
        return self._client

    def new_bucket(self) -> str:
        name = f"cv-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


def aws_environment(tmp_path: Path) -> dict[str, str]:
    """Fake credentials in boto3's usual chain (as callvault reads them), and no AWS
    files, instance metadata or proxies."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }


@contextmanager
def running_moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def fresh_moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return moto.new_bucket()
