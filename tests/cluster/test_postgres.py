"""A real PostgreSQL, serving TLS with a certificate from a test CA, and a master user
with an RDS master's rights (no superuser): the head node creates Workbench's own role
with it (least privilege, idempotent); the generated database.conf connects as that role
with the password the login node's boot function fetched from (moto's) Secrets Manager,
over TLS verified as its connection-uri says (verify-full), and refuses a server whose
certificate chains to another CA or names another host."""

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
from pwbcluster.stages.cluster.bundle import format_env, node_env
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


def secrets_client(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Secrets Manager on the moto server, with the dummy keys the node scripts' aws uses."""
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint)


def rds_like_master(pg: dict[str, Any], master: str, password: str, database: str) -> None:
    """A master user as RDS makes one: LOGIN, CREATEROLE, CREATEDB, owner of the database
    RDS creates, and no superuser (rds_superuser is not one), so the head node's role
    setup is proven with no more rights than it has on RDS."""
    admin = f"host=127.0.0.1 port={pg['port']} dbname=postgres user=postgres"
    done = psql(
        pg,
        admin,
        pg["superpw"],
        f"CREATE ROLE {master} LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD :'pw';\n"
        f"CREATE DATABASE {database} OWNER {master};\n",
        args=["-v", f"pw={password}"],
    )
    assert done.returncode == 0, done.stderr


def boot(
    tmp_path: Path, moto_server: str, env_file: Path, script: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``script`` in bash with the node libraries sourced and node.env loaded, the aws CLI
    answered from moto."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    stub = stubs / "aws"
    stub.write_text(AWS_STUB.format(python=sys.executable, region=REGION, endpoint=moto_server))
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "ROOT_OWNER": f"{os.getuid()}:{os.getgid()}",
        **extra,
    }
    full = (
        f"set -o errexit -o nounset -o pipefail; source {ROOT}/cluster/lib/common.sh; "
        f"source {ROOT}/cluster/lib/workbench.sh; source {ROOT}/cluster/lib/database.sh; "
        f"load_env {env_file}; {script}"
    )
    return subprocess.run(["bash", "-c", full], env=env, capture_output=True, text=True, timeout=60)


def with_secrets(
    client: Any, services: Any, audit: bool, values: dict[str, str]
) -> tuple[Any, dict[str, str]]:
    """The services contract with its database secrets created in moto; (contract, ARN by
    field name)."""
    field = "audit_db" if audit else "workbench_db"
    arns: dict[str, str] = {}
    for name, value in values.items():
        arns[name] = client.create_secret(Name=f"example/{field}-{name}", SecretString=value)["ARN"]
    db = dataclasses.replace(
        getattr(services, field),
        password_secret_arn=arns["role"],
        master_password_secret_arn=arns["master"],
    )
    return dataclasses.replace(services, **{field: db}), arns


def test_database_conf_connects_as_workbench_role_the_head_node_created(
    postgres: dict[str, Any],
    moto_server: str,
    data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = secrets_client(moto_server, monkeypatch)
    password, master_password = random_secret(32), random_secret(32)
    network, services, _ = upstream(db_host="localhost", db_port=postgres["port"])
    db = services.workbench_db
    assert db.username != db.master_username, "Workbench must not connect as the master"
    rds_like_master(postgres, db.master_username, master_password, db.name)
    services, _ = with_secrets(
        client, services, False, {"role": password, "master": master_password}
    )
    model = model_of(data)
    shared = tmp_path / "shared"
    write_tree(render_workbench(settings_from(model, services), "example"), shared)
    shared_conf = (shared / "etc/rstudio/database.conf").read_text()
    assert not any(line.startswith("password") for line in shared_conf.splitlines())
    env = node_env(model, network, services, "example")
    env_file = tmp_path / "node.env"
    env_file.write_text(format_env({**env, "WORKBENCH_SHARED_DIR": str(shared)}))

    etc = tmp_path / "etc-rstudio"
    head = boot(tmp_path, moto_server, env_file, "database_roles", RDS_CA_PATH=str(postgres["ca"]))
    assert head.returncode == 0, head.stderr
    assert f"database role {db.username} on localhost/{db.name} created" in head.stderr
    assert password not in head.stderr and master_password not in head.stderr
    login = boot(
        tmp_path,
        moto_server,
        env_file,
        'write_database_conf database.conf "${DB_PASSWORD_SECRET_ARN}"',
        RSTUDIO_ETC=str(etc),
    )
    assert login.returncode == 0, login.stderr
    assert password not in login.stderr

    conf_path = etc / "database.conf"
    assert stat.S_IMODE(conf_path.stat().st_mode) == 0o600
    conf = dict(
        line.split("=", 1)
        for line in conf_path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert conf["provider"] == "postgresql"
    assert conf["username"] == db.username and conf["password"] == password
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
    assert ok.stdout.strip() == f"{db.username}@{db.name} true"  # over TLS, as the role
    # Workbench creates its schema in its database.
    schema = psql(postgres, dsn, password, "CREATE TABLE wb_probe (id int); DROP TABLE wb_probe;")
    assert schema.returncode == 0, schema.stderr
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


def role_state(pg: dict[str, Any], role: str, database: str) -> str:
    """Everything the setup may change: the role's attributes and password hash, its
    memberships, the database's owner and ACL."""
    admin = f"host=127.0.0.1 port={pg['port']} dbname=postgres user=postgres"
    out = psql(
        pg,
        admin,
        pg["superpw"],
        "SELECT a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolcanlogin, a.rolpassword, "
        "(SELECT string_agg(m.member::regrole::text || '>' || m.roleid::regrole::text, ',') "
        " FROM pg_auth_members m WHERE a.oid IN (m.member, m.roleid)), "
        "pg_get_userbyid(d.datdba), d.datacl "
        "FROM pg_authid a, pg_database d WHERE a.rolname = :'role' AND d.datname = :'db';",
        args=["-v", f"role={role}", "-v", f"db={database}"],
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_role_is_least_privilege_and_a_rerun_changes_nothing(
    postgres: dict[str, Any],
    moto_server: str,
    data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = secrets_client(moto_server, monkeypatch)
    # A password with the characters quoting gets wrong: ' " $ \\ (stdin, psql quoting).
    password, master_password = random_secret(28) + "'\\\"$", random_secret(32)
    data["cluster"]["workbench"]["audit_database"] = True
    network, services, _ = upstream(audit=True, db_host="localhost", db_port=postgres["port"])
    services, arns = with_secrets(
        client, services, True, {"role": password, "master": master_password}
    )
    db = services.audit_db
    assert db is not None
    rds_like_master(postgres, db.master_username, master_password, db.name)
    env_file = tmp_path / "node.env"
    model = model_of(data)
    env_file.write_text(format_env(node_env(model, network, services, "example")))
    ca = {"RDS_CA_PATH": str(postgres["ca"])}

    first = boot(tmp_path, moto_server, env_file, "ensure_db_role AUDIT_DB", **ca)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stderr
    before = role_state(postgres, db.username, db.name)
    assert before.startswith("f|f|f|t|SCRAM-SHA-256$"), before
    assert f"|{db.username}|" in before, f"{db.name} is not owned by {db.username}: {before}"

    # Re-run: nothing changes, and the master password is not even read (gone from moto).
    client.delete_secret(SecretId=arns["master"], ForceDeleteWithoutRecovery=True)
    second = boot(tmp_path, moto_server, env_file, "ensure_db_role AUDIT_DB", **ca)
    assert second.returncode == 0, second.stderr
    assert "in place" in second.stderr and "created" not in second.stderr
    assert role_state(postgres, db.username, db.name) == before

    host = (
        f"host=localhost port={postgres['port']} sslmode=verify-full sslrootcert={postgres['ca']}"
    )
    as_role = f"{host} dbname={db.name} user={db.username}"
    for sql, refusal in (
        (f"CREATE ROLE sneaky_{db.username} LOGIN;", "permission denied to create role"),
        ("CREATE DATABASE sneaky_db;", "permission denied to create database"),
        (f"ALTER ROLE {db.username} CREATEROLE;", "permission denied"),
    ):
        refused = psql(postgres, as_role, password, sql)
        assert refused.returncode != 0 and refusal in refused.stderr, (sql, refused.stderr)
    # Its database is closed to every other role: a fresh login role cannot connect.
    admin = f"host=127.0.0.1 port={postgres['port']} dbname=postgres user=postgres"
    other_pw = random_secret(20)
    made = psql(
        postgres,
        admin,
        postgres["superpw"],
        "CREATE ROLE bystander LOGIN PASSWORD :'pw';",
        args=["-v", f"pw={other_pw}"],
    )
    assert made.returncode == 0, made.stderr
    bystander = psql(postgres, f"{host} dbname={db.name} user=bystander", other_pw, "SELECT 1;")
    assert bystander.returncode != 0 and "permission denied for database" in bystander.stderr
