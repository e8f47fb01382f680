"""The cluster lab's services, checked from a client namespace of their own network.

One ``Lab.up`` per module (the sandbox pipeline against moto on 10.78.8.13, a Samba DC,
the TLS front, PostgreSQL, the shared directories), then from ``pwblab-client``
(10.78.8.100, the lab's /etc/hosts): ldapsearch over ldaps:// verifying the services
stage's CA and binding as its bind user; psql as Workbench's role with
sslmode=verify-full; S3 and Secrets Manager at the lab's AWS address. Each check has a
counterpart that must fail (another CA, a wrong password, no TLS). The last test runs
``down`` and finds nothing left; the fixture's finalizer runs ``down`` whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import load_config
from pwbcluster.lab import services
from pwbcluster.lab.network import LAB, Ledger, alive, leftovers, processes_in
from pwbcluster.pipeline import orchestrate

ROOT = Path(__file__).resolve().parents[2]
ADDRESSES = [LAB.address(n) for n in (*services.HOSTS.values(), 100)]

pytestmark = [
    pytest.mark.root,
    pytest.mark.samba,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.pcluster,
    pytest.mark.allow_hosts(ADDRESSES),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Lab]:
    reason = services.unavailable_reason()
    if reason is None and shutil.which("ldapsearch") is None:
        reason = "missing ldapsearch (apt-get install ldap-utils)"
    if reason is not None:
        pytest.skip(reason)
    if LAB.ledger_path.exists():
        pytest.skip(f"a lab is up on this machine ({LAB.ledger_path}): `invoke lab.down` first")
    tmp = tmp_path_factory.mktemp("lab")
    name = f"labtest{os.getpid() % 1000}"
    config = tmp / f"{name}.yaml"
    config.write_text(
        f"deployment:\n  name: {name}\n  region: eu-west-1\n  owner_email: lab@example.com\n"
    )
    the_lab = services.Lab(load_config(config))
    try:
        the_lab.up()
        the_lab.namespace("client", 100)
        yield the_lab
    finally:
        services.down()
        with contextlib.suppress(OSError):
            the_lab.config.build_dir.parent.rmdir()  # build/<name>/, when empty


def in_client(
    lab: services.Lab, argv: list[str], stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """``argv`` in the client namespace; an ``env`` value of "" unsets that variable."""
    full = {k: v for k, v in {**os.environ, **env}.items() if v != ""}
    return subprocess.run(
        lab.ledger.exec(LAB.netns("client"), argv),
        input=stdin,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def other_ca(tmp: Path) -> Path:
    """A CA that signed nothing of the lab's (verification against it must fail)."""
    from pwbcluster.sandbox.server import self_signed

    cert, _ = self_signed("not the lab's CA", days=1)
    path = tmp / "other-ca.pem"
    path.write_bytes(cert)
    return path


def ldapsearch(lab: services.Lab, ca: str, password: str, uri: str | None = None) -> Any:
    meta = lab.ledger.meta
    base = ",".join(f"DC={p}" for p in meta["domain"].split("."))
    user = meta["bind_user_dn"].split(",")[0].split("=", 1)[1]
    return in_client(
        lab,
        ["ldapsearch", "-x", "-LLL", "-H", uri or meta["ldap_uri"], "-D", meta["bind_user_dn"],
         "-y", "/dev/stdin", "-b", base, f"(sAMAccountName={user})", "dn"],
        stdin=password,
        LDAPTLS_CACERT=ca,
        LDAPTLS_REQCERT="hard",
    )  # fmt: skip


def test_ldaps_verifies_the_stage_ca_and_binds_as_the_bind_user(
    lab: services.Lab, tmp_path: Path
) -> None:
    meta = lab.ledger.meta
    assert meta["ldap_uri"].startswith("ldaps://") and meta["ldap_uri"].endswith(
        ".elb.amazonaws.com"
    ), "the address in ldap_uri is the stage's load balancer name"
    password = lab.secret(meta["bind_password_secret_arn"])
    found = ldapsearch(lab, meta["ldap_ca"], password)
    assert found.returncode == 0, found.stderr
    assert f"dn: {meta['bind_user_dn']}" in found.stdout.replace("\n ", "")

    # libldap says only "Can't contact LDAP server" when the handshake fails; the CA is the
    # one thing that differs from the calls before and after, which succeed.
    wrong_ca = ldapsearch(lab, str(other_ca(tmp_path)), password)
    assert wrong_ca.returncode == 255, wrong_ca.stderr
    assert ldapsearch(lab, meta["ldap_ca"], password).returncode == 0
    wrong_password = ldapsearch(lab, meta["ldap_ca"], password + "x")
    assert wrong_password.returncode == 49, wrong_password.stderr  # invalidCredentials
    # The certificate names the load balancer, not the front's address.
    by_address = ldapsearch(lab, meta["ldap_ca"], password, uri=f"ldaps://{LAB.address(11)}")
    assert by_address.returncode != 0


def psql(lab: services.Lab, password: str, sslmode: str, ca: str, sql: str) -> Any:
    db = lab.ledger.meta["db"]
    dsn = (
        f"host={db['host']} port={db['port']} dbname={db['name']} user={db['username']} "
        f"sslmode={sslmode} sslrootcert={ca} connect_timeout=10"
    )
    return in_client(
        lab, ["psql", dsn, "-X", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql], PGPASSWORD=password
    )


def test_psql_verify_full_as_the_workbench_role(lab: services.Lab, tmp_path: Path) -> None:
    meta = lab.ledger.meta
    password = lab.secret(meta["db"]["password_secret_arn"])
    sql = (
        "SELECT current_user, s.ssl, r.rolsuper, r.rolcreaterole, r.rolcreatedb "
        "FROM pg_stat_ssl s, pg_roles r WHERE s.pid = pg_backend_pid() AND r.rolname = current_user"
    )
    done = psql(lab, password, "verify-full", meta["rds_ca"], sql)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{meta['db']['username']}|t|f|f|f"

    assert psql(lab, password + "x", "verify-full", meta["rds_ca"], "SELECT 1").returncode != 0
    other = psql(lab, password, "verify-full", str(other_ca(tmp_path)), "SELECT 1")
    assert other.returncode != 0 and "certificate" in other.stderr, other.stderr
    plain = psql(lab, password, "disable", meta["rds_ca"], "SELECT 1")
    assert plain.returncode != 0 and "pg_hba.conf" in plain.stderr, "TLS is forced (rds.force_ssl)"


AWS_CLIENT = """
import json, sys, boto3
region, bucket, prefix, arn = sys.argv[1:5]
s3 = boto3.client("s3", region_name=region)
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
body = s3.get_object(Bucket=bucket, Key=prefix + "node.env")["Body"].read().decode()
secret = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)
lbs = boto3.client("elbv2", region_name=region).describe_load_balancers()["LoadBalancers"]
vpcs = boto3.client("ec2", region_name=region).describe_vpcs()["Vpcs"]
groups = boto3.client("autoscaling", region_name=region).describe_auto_scaling_groups()
print(json.dumps({"keys": keys, "node_env": body, "secret": secret["SecretString"],
                  "lbs": [lb["DNSName"] for lb in lbs], "vpcs": [v["CidrBlock"] for v in vpcs],
                  "groups": len(groups["AutoScalingGroups"])}))
"""


def test_s3_and_secrets_at_the_lab_address(lab: services.Lab) -> None:
    uri = lab.node_env_uri()
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    prefix = key.removesuffix("node.env")
    arn = lab.ledger.meta["bind_password_secret_arn"]
    env = lab.aws_env()
    done = in_client(
        lab, [sys.executable, "-c", AWS_CLIENT, lab.config.region, bucket, prefix, arn], **env
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert {
        prefix + k for k in ("node.env", "head-node.sh", "login-node.sh", "compute-node.sh")
    } <= set(got["keys"])
    written = (lab.config.build_dir / "workbench" / "node.env").read_text()
    assert got["node_env"] == written, "S3 holds the node.env the cluster stage wrote"
    assert got["secret"] == lab.secret(arn) and len(got["secret"]) >= 16
    # EC2 and ELB hold what the stages made (the VPC, the LDAPS front's balancer, whose
    # name the lab's front answers for); Auto Scaling answers (the cluster is simulated:
    # no groups yet).
    network = orchestrate.recorded(lab.config, "sandbox", "network")
    assert network is not None and network.vpc_cidr in got["vpcs"]
    assert lab.ledger.meta["ldap_uri"].removeprefix("ldaps://") in got["lbs"]
    assert got["groups"] == 0

    # The stand-in's certificate is the lab's own: without it, TLS verification fails.
    untrusted = in_client(
        lab, [sys.executable, "-c", AWS_CLIENT, lab.config.region, bucket, prefix, arn],
        **{**env, "AWS_CA_BUNDLE": ""},
    )  # fmt: skip
    assert untrusted.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_a_directory_per_file_system(lab: services.Lab) -> None:
    shared = lab.ledger.meta["shared"]
    declared = {s["Name"] for s in lab.cluster_config()["SharedStorage"]}
    assert declared and declared <= set(shared)
    for fs in shared.values():
        assert Path(fs["path"]).is_dir() and fs["standin"] == "plain directory"


def test_up_again_keeps_what_runs(lab: services.Lab) -> None:
    before = {o["name"]: o["pid"] for o in Ledger(LAB).objects if o["kind"] == "process"}
    assert set(before) == {services.MOTO, services.SAMBA, services.FRONT, services.POSTGRES}
    lab.ledger = Ledger(LAB)
    lab.up()
    after = {o["name"]: o["pid"] for o in Ledger(LAB).objects if o["kind"] == "process"}
    assert after == before


def test_down_leaves_nothing(lab: services.Lab) -> None:
    recorded = [o for o in Ledger(LAB).objects if o["kind"] == "process"]
    workdir = lab.workdir
    removed, left = services.down()
    assert left == [] and leftovers(LAB) == []
    assert {f"process {o['name']} ({o['pid']})" for o in recorded} <= set(removed)
    assert not any(alive(int(o["pid"]), o["starttime"]) for o in recorded)
    assert processes_in([workdir, lab.config.build_dir]) == []
    assert not workdir.exists() and not lab.config.build_dir.exists()
    assert not list(Path("/etc/netns").glob("pwblab-*"))
