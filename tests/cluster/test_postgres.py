"""A real PostgreSQL: the generated database.conf connects with the password the login
node's boot function fetched from (moto's) Secrets Manager."""

from __future__ import annotations

import dataclasses
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

from pwbcluster.config.model import model_of
from pwbcluster.stages.cluster.workbench import render_workbench, settings_from, write_tree

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


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, Any]]:
    initdb, pg_ctl, psql = tool("initdb"), tool("pg_ctl"), tool("psql")
    base = Path(tempfile.mkdtemp(prefix="pwb-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
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
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base}"
    subprocess.run(
        as_postgres(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield {"port": port, "superpw": superpw, "psql": psql}
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

    _, services, _ = upstream(db_host="127.0.0.1", db_port=postgres["port"])
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
    dsn = (
        f"host={conf['host']} port={conf['port']} dbname={conf['database']} user={conf['username']}"
    )
    ok = psql(postgres, dsn, conf["password"], "SELECT current_user || '@' || current_database();")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "rstudio@rstudio"
    wrong = psql(postgres, dsn, conf["password"] + "x", "SELECT 1;")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
