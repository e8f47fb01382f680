"""A real PostgreSQL, serving TLS with a certificate from a test CA: the generated
database.conf connects with the password the login node's boot function fetched from
(moto's) Secrets Manager, over TLS verified as its connection-uri says (verify-full), and
refuses a server whose certificate chains to another CA or names another host."""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pwbcluster.config.model import model_of
from pwbcluster.stages.cluster.workbench import render_workbench, settings_from, write_tree
from pwbcluster.stages.cluster.workbench.settings import RDS_CA_PATH

from .fixtures import REGION, random_secret, upstream

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.postgres

AWS_STUB = """#!{python}
# aws stand-in for the test: Secrets Manager through boto3 at the moto server.
import sys, boto3
args = sys.argv[1:]
bounded = "--cli-connect-timeout" in args and "--cli-read-timeout" in args
if not bounded:
    sys.exit("unbounded aws call")
for flag in ("--cli-connect-timeout", "--cli-read-timeout"):
    at = args.index(flag)
    del args[at : at + 2]
assert args[:2] == ["secretsmanager", "get-secret-value"], args
arn = args[args.index("--secret-id") + 1]
client = boto3.client("secretsmanager", region_name="{region}", endpoint_url="{endpoint}")
print(client.get_secret_value(SecretId=arn)["SecretString"])
"""


def tool(name: str) -> str:
    found = shutil.which(name) or (str(PG_BIN / name) if (PG_BIN / name).exists() else None)
    if not found:
        pytest.skip(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_postgres(argv: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server tools as the postgres user."""
    if os.geteuid() != 0:
        return argv
    if not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    return ["runuser", "-u", "postgres", "--", *argv]


def certificate_authority(base: Path, name: str) -> tuple[Path, Any, Any]:
    """(CA file, key, certificate) of a throw-away CA, as RDS's CA stands to its servers."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = base / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def server_certificate(base: Path, ca: tuple[Path, Any, Any], host: str) -> tuple[Path, Path]:
    _, ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = base / "server.crt", base / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, Any]]:
    initdb, pg_ctl, psql = tool("initdb"), tool("pg_ctl"), tool("psql")
    base = Path(tempfile.mkdtemp(prefix="pwb-pg-", dir="/tmp"))
    ca = certificate_authority(base, "test-rds-ca")
    other_ca = certificate_authority(base, "another-ca")
    cert_file, key_file = server_certificate(base, ca, "localhost")
    if os.geteuid() == 0:
        for path in (base, cert_file, key_file):
            shutil.chown(path, "postgres", "postgres")
    superpw = random_secret()
    pwfile = base / "pw"
    pwfile.write_text(superpw)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    data, port = base / "data", free_port()
    subprocess.run(
        as_postgres(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
        f"-c ssl=on -c ssl_cert_file={cert_file} -c ssl_key_file={key_file}"
    )
    subprocess.run(
        as_postgres(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield {
            "port": port,
            "superpw": superpw,
            "psql": psql,
            "ca": ca[0],
            "other_ca": other_ca[0],
        }
    finally:
        subprocess.run(
            as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


def psql(
    pg: dict[str, Any], dsn: str, password: str, sql: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(
        [pg["psql"], dsn, "-v", "ON_ERROR_STOP=1", "-tA", *kw.pop("args", [])],
        input=sql,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        **kw,
    )


@pytest.fixture
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_database_conf_connects_with_the_secret_fetched_at_boot(
    postgres: dict[str, Any],
    moto_server: str,
    data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    password = random_secret(32)
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_server)
    arn = client.create_secret(Name="example/workbench-db-password", SecretString=password)["ARN"]

    admin = f"host=127.0.0.1 port={postgres['port']} dbname=postgres user=postgres"
    created = psql(
        postgres,
        admin,
        postgres["superpw"],
        "CREATE ROLE rstudio LOGIN PASSWORD :'pw';\nCREATE DATABASE rstudio OWNER rstudio;\n",
        args=["-v", f"pw={password}"],
    )
    assert created.returncode == 0, created.stderr

    _, services, _ = upstream(db_host="localhost", db_port=postgres["port"])
    services = dataclasses.replace(
        services, workbench_db=dataclasses.replace(services.workbench_db, password_secret_arn=arn)
    )
    shared = tmp_path / "shared"
    write_tree(render_workbench(settings_from(model_of(data), services), "example"), shared)
    shared_conf = (shared / "etc/rstudio/database.conf").read_text()
    assert not any(line.startswith("password") for line in shared_conf.splitlines())

    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub = stubs / "aws"
    stub.write_text(AWS_STUB.format(python=sys.executable, region=REGION, endpoint=moto_server))
    stub.chmod(0o755)
    etc = tmp_path / "etc-rstudio"
    env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "WORKBENCH_SHARED_DIR": str(shared),
        "RSTUDIO_ETC": str(etc),
        "ROOT_OWNER": f"{os.getuid()}:{os.getgid()}",
    }
    script = (
        f"set -o errexit -o nounset -o pipefail; source {ROOT}/cluster/lib/common.sh; "
        f"source {ROOT}/cluster/lib/workbench.sh; write_database_conf database.conf '{arn}'"
    )
    boot = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert boot.returncode == 0, boot.stderr
    assert password not in boot.stderr

    conf_path = etc / "database.conf"
    assert stat.S_IMODE(conf_path.stat().st_mode) == 0o600
    conf = dict(
        line.split("=", 1)
        for line in conf_path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert conf["provider"] == "postgresql"
    # The connection-uri as written, but for where the bundle lives (the image puts it at
    # RDS_CA_PATH; here the test CA stands in for RDS's).
    uri = conf["connection-uri"]
    assert f"sslrootcert={RDS_CA_PATH}" in uri and "sslmode=verify-full" in uri
    dsn = uri.replace(RDS_CA_PATH, str(postgres["ca"]))
    ok = psql(
        postgres,
        dsn,
        conf["password"],
        "SELECT current_user || '@' || current_database() || ' ' || ssl FROM pg_stat_ssl "
        "WHERE pid = pg_backend_pid();",
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "rstudio@rstudio true"  # over TLS
    wrong = psql(postgres, dsn, conf["password"] + "x", "SELECT 1;")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    # Verified, not merely encrypted: another CA, or another name, is refused.
    foreign = psql(
        postgres, uri.replace(RDS_CA_PATH, str(postgres["other_ca"])), conf["password"], "SELECT 1;"
    )
    assert foreign.returncode != 0 and "certificate verify failed" in foreign.stderr
    by_ip = dsn.replace("@localhost:", "@127.0.0.1:")
    renamed = psql(postgres, by_ip, conf["password"], "SELECT 1;")
    assert renamed.returncode != 0 and "does not match host name" in renamed.stderr
