"""The sandbox: a local moto server on 127.0.0.1 that stands in for AWS.

``invoke up --sandbox`` starts it (once; it keeps running between commands, with its
address and PID in ``build/<deployment>/sandbox.json``) and points every boto3 client of
the run at it. ``invoke down --sandbox`` stops it. It is a rehearsal of wiring and
configuration, not evidence that AWS accepts them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwbcluster.errors import ToolkitError

log = logging.getLogger(__name__)

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_SESSION_TOKEN": "sandbox",
}
# Everything that could make a boto3 client talk to real AWS or read real credentials.
SHADOWED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def fake_session(region: str) -> Any:
    """A boto3 session with the sandbox's throw-away credentials, never the user's own."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=region,
    )


@dataclass(frozen=True)
class SandboxServer:
    endpoint: str
    pid: int
    port: int
    ca_bundle: str = ""

    def env(self, region: str) -> dict[str, str]:
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CA_BUNDLE": self.ca_bundle,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def record_path(build_dir: Path) -> Path:
    return build_dir / "sandbox.json"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(
    common_name: str, ips: Sequence[str] = (), dns_names: Sequence[str] = (), days: int = 30
) -> tuple[bytes, bytes]:
    """A self-signed CA certificate naming ``ips`` and ``dns_names`` (PEM), and its key
    (PEM, PKCS8, unencrypted: write it with mode 0600)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    names += [x509.DNSName(dns) for dns in dns_names]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path``, readable by its owner only from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)


def tls_material(build_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, so the sandbox speaks HTTPS like AWS.

    The scripts bucket's policy denies requests without TLS (aws:SecureTransport), and
    moto enforces it: over plain HTTP the sandbox would have to weaken the policy.
    """
    directory = build_dir / "sandbox-tls"
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed("pwbcluster sandbox", ips=["127.0.0.1"], dns_names=["localhost"])
    write_private(key_path, key)
    cert_path.write_bytes(cert)
    return cert_path, key_path


def _alive(endpoint: str, attempts: int = 3, ca_bundle: str = "") -> bool:
    import ssl

    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    for _ in range(attempts):
        try:
            url = f"{endpoint}/moto-api/"
            with urllib.request.urlopen(url, timeout=5, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.2)
    return False


def running(build_dir: Path) -> SandboxServer | None:
    path = record_path(build_dir)
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        server = SandboxServer(
            raw["endpoint"], int(raw["pid"]), int(raw["port"]), raw.get("ca_bundle", "")
        )
    except (OSError, ValueError, KeyError):
        return None
    if _alive(server.endpoint, ca_bundle=server.ca_bundle):
        return server
    if _is_moto(server.pid):
        raise ToolkitError(
            f"the sandbox server (pid {server.pid}) at {server.endpoint} does not answer; "
            f"wait and retry, or stop it with `kill {server.pid}` (its resources are lost then)"
        )
    return None


def start(build_dir: Path, timeout: float = 30.0) -> SandboxServer:
    """Start the moto server (or return the one already running for this deployment)."""
    existing = running(build_dir)
    if existing:
        log.info("sandbox: moto server already running at %s", existing.endpoint)
        return existing
    build_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    endpoint = f"https://127.0.0.1:{port}"
    cert, key = tls_material(build_dir)
    logs = build_dir / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / "moto-server.log", "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
                "-s",
                "-c",
                str(cert),
                "-k",
                str(key),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not _alive(endpoint, attempts=1, ca_bundle=str(cert)):
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise ToolkitError(
                f"the sandbox's moto server did not start on {endpoint}; "
                f"see {logs / 'moto-server.log'}"
            )
        time.sleep(0.1)
    server = SandboxServer(endpoint, proc.pid, port, str(cert))
    record = {
        "endpoint": endpoint,
        "pid": proc.pid,
        "port": port,
        "ca_bundle": str(cert),
        "started": time.time(),
    }
    record_path(build_dir).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log.info("sandbox: moto server started at %s (pid %d)", endpoint, proc.pid)
    return server


def stop(build_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the deployment's moto server; True when one was stopped."""
    path = record_path(build_dir)
    if not path.exists():
        return False
    try:
        pid = int(json.loads(path.read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError):
        path.unlink(missing_ok=True)
        return False
    stopped = False
    if not _is_moto(pid):  # the server died earlier and the PID may belong to another program
        path.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        stopped = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
                    break
            os.kill(pid, 0)
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return stopped


def _is_moto(pid: int) -> bool:
    try:
        return b"moto.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextlib.contextmanager
def environment(values: dict[str, str], removed: Sequence[str] = ()) -> Iterator[None]:
    """This process's environment with ``values`` set and ``removed`` unset, then as it was."""
    saved = {k: os.environ.get(k) for k in (*values, *removed)}
    for key in removed:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def aws_environment(server: SandboxServer, region: str) -> Iterator[None]:
    """Point every boto3 client in this process at the sandbox, then restore."""
    with environment(server.env(region), SHADOWED):
        yield
