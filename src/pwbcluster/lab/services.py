"""The cluster lab's services: the deployment's aux services, on the lab's own network.

``up`` stands up, in the namespace ``pwblab-svc`` and reached over the lab subnet:

- the AWS APIs (10.78.8.13, https on 443): a moto server, **a stand-in** (it accepts
  what moto accepts, not what AWS does). The project's real sandbox pipeline
  (``invoke up --sandbox``'s stages) runs against it, into build/<deployment>/lab/, so
  its secrets, the uploaded bundle and node.env are exactly what the stages produce;
- the directory (10.78.8.10): a real Samba AD DC standing in for SimpleAD (no LDAPS, as
  SimpleAD), provisioned for the stage's domain with the administrator password the
  stage generated, and the read-only bind user (``bind_user_dn``) with the bind password
  the stage generated;
- its TLS front (10.78.8.11:636): ``pwbcluster.lab.tlsfront``, **a stand-in** for the
  stage's load balancer, serving the very certificate and key the stage made (with the
  stage's CA, from ``stages/services/certs.py``) and imported into (moto's) ACM;
- the Workbench database (10.78.8.12): a real PostgreSQL standing in for RDS: TLS only
  (as ``rds.force_ssl=1``), the master user with an RDS master's rights (no superuser)
  and the password the stage generated, its certificate from **a stand-in RDS CA** the
  lab generates (Amazon's is not available here); then Workbench's own role, made by
  ``cluster/lib/database.sh`` (unmodified) from the node.env the cluster stage uploaded,
  as the head node makes it;
- one directory per file system the rendered cluster config declares (EFS, FSx for
  Lustre, ParallelCluster's internal EFS): **plain directories**, not NFS or Lustre, for
  the nodes to bind-mount.

Names resolve through /etc/netns/pwblab-<ns>/hosts (``ip netns exec`` binds it over
/etc/hosts): the load balancer's and the database's DNS names point at the lab's
addresses. Nodes are booted by ``pwbcluster.lab.nodes`` on this network.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pwbcluster.config import Config
from pwbcluster.errors import ToolkitError
from pwbcluster.lab import samba
from pwbcluster.lab.network import LAB, Ledger, Net, leftovers, run

ROOT = Path(__file__).resolve().parents[3]
WORK_ROOT = Path("/var/lib/pwbcluster-lab")
SERVICES = "svc"
OPS = "ops"
HOSTS = {"dc": 10, "ldaps": 11, "db": 12, "aws": 13, "ops": 5}
AWS_PORT = 443
MOTO = "aws-standin-moto"
FRONT = "ldaps-front-standin"
POSTGRES = "postgres"
SAMBA = "samba-dc"
RDS_CA_NAME = "pwbcluster lab RDS CA stand-in (not Amazon's RDS CA)"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def lab_config(config: Config) -> Config:
    """The deployment's configuration, writing into build/<deployment>/lab/ (a person's
    sandbox or real deployment in build/<deployment>/ is never touched)."""
    lab = replace(config, build_subdir="lab")
    lab._model = config._model
    return lab


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def unavailable_reason() -> str | None:
    """Why the lab cannot run here (one line), or None."""
    if os.geteuid() != 0:
        return (
            "the lab needs root (network namespaces, a bridge, Samba, PostgreSQL): run it with sudo"
        )
    missing = samba.missing_tools()
    if postgres_bin() is None:
        missing.append("initdb/pg_ctl (apt-get install postgresql)")
    for tool, package in (
        ("psql", "postgresql-client"),
        ("runuser", "util-linux"),
        ("aws", "awscli"),
        ("bash", "bash"),
    ):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {package})")
    if missing:
        return f"missing {'; '.join(missing)}"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "`ip netns` does not work here (no network-namespace support)"
    return None


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str, progress: Progress, what: str) -> Iterator[None]:
        progress(f"{name}: {what}...")
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started
        progress(f"{name}: ready ({self.seconds[name]:.1f} s)")


class Lab:
    """The services of one deployment's lab (one lab per machine: the bridge is fixed)."""

    def __init__(self, config: Config, net: Net = LAB, progress: Progress = _quiet) -> None:
        self.config = lab_config(config)
        self.net = net
        self.progress = progress
        self.ledger = Ledger(net)
        self.workdir = WORK_ROOT / self.config.name

    # -- addresses ------------------------------------------------------------------

    def addr(self, what: str) -> str:
        return self.net.address(HOSTS[what])

    @property
    def aws_endpoint(self) -> str:
        return f"https://{self.addr('aws')}"

    @property
    def aws_ca(self) -> Path:
        return self.workdir / "aws-standin-tls" / "cert.pem"

    @property
    def rds_ca(self) -> Path:
        return self.workdir / "rds-ca-standin.pem"

    @property
    def ldap_ca(self) -> Path:
        return self.workdir / "ldap-ca.pem"

    def aws_env(self) -> dict[str, str]:
        from pwbcluster.sandbox.server import FAKE_CREDENTIALS

        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_CA_BUNDLE": str(self.aws_ca),
            "AWS_DEFAULT_REGION": self.config.region,
            "AWS_REGION": self.config.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str) -> Any:
        from pwbcluster.sandbox.server import fake_session

        return fake_session(self.config.region).client(
            service, endpoint_url=self.aws_endpoint, verify=str(self.aws_ca)
        )

    def secret(self, arn: str) -> str:
        return str(self.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])

    def namespace(self, name: str, host: int) -> str:
        """A namespace ``pwblab-<name>`` at the subnet's ``host``-th address, resolving the
        lab's names (a test's client now; the nodes later). Needs ``up`` first."""
        hosts = self.ledger.meta.get("hosts")
        if not hosts:
            raise ToolkitError("the lab is not up: `invoke lab.up` first")
        return self.ledger.namespace(name, [self.net.address(host)], hosts=hosts)

    # -- up -------------------------------------------------------------------------

    def up(self) -> dict[str, float]:
        """Stand every service up (idempotent); the seconds each took."""
        reason = unavailable_reason()
        if reason:
            raise ToolkitError(reason)
        owner = self.ledger.meta.get("deployment")
        if owner and owner != self.config.name:
            raise ToolkitError(
                f"the lab of deployment '{owner}' is up on this machine (one lab at a time): "
                f"`invoke lab.down` first"
            )
        self.ledger.set_meta(
            deployment=self.config.name,
            config=str(self.config.deployment_file),
            workdir=str(self.workdir),
            build_dir=str(self.config.build_dir),
        )
        t = Timings()
        with t.step("network", self.progress, f"bridge {self.net.bridge}, namespaces"):
            self.ledger.directory(WORK_ROOT, 0o755)
            self.ledger.directory(self.workdir, 0o711)  # postgres traverses it
            self.ledger.directory(self.config.build_dir)
            svc = [self.addr(k) for k in ("dc", "ldaps", "db", "aws")]
            self.ledger.namespace(SERVICES, svc)
            self.ledger.namespace(OPS, [self.addr("ops")])
        with t.step("aws", self.progress, f"moto (AWS stand-in) on {self.aws_endpoint}"):
            fresh = self._moto()
        with t.step(
            "pipeline",
            self.progress,
            "the sandbox pipeline against it (network, image, services, users, cluster; "
            f"about a minute; log in {self.config.build_dir / 'logs'})",
        ):
            self._pipeline(fresh)
        services = self._services()
        hosts = self.hosts_text(services)
        self.ledger.hosts_file(self.net.netns(SERVICES), hosts)
        self.ledger.hosts_file(self.net.netns(OPS), hosts)
        with t.step(
            "directory", self.progress, "Samba AD DC (provisioning takes 10-20 s the first time)"
        ):
            self._directory(services)
        with t.step("ldaps", self.progress, f"TLS front on {self.addr('ldaps')}:636"):
            self._front(services)
        with t.step("database", self.progress, f"PostgreSQL with TLS on {self.addr('db')}"):
            self._database(services)
        with t.step("workbench-role", self.progress, "cluster/lib/database.sh (the head node's)"):
            self._workbench_role()
        with t.step("shared", self.progress, "a directory per file system of the cluster"):
            self._shared()
        self.ledger.set_meta(
            timings=t.seconds,
            hosts=hosts,
            aws_endpoint=self.aws_endpoint,
            aws_ca=str(self.aws_ca),
            rds_ca=str(self.rds_ca),
            ldap_ca=str(self.ldap_ca),
            ldap_uri=services.ldap_uri,
            domain=services.domain_name,
            bind_user_dn=services.bind_user_dn,
            bind_password_secret_arn=services.bind_password_secret_arn,
            db={
                "host": services.workbench_db.host,
                "port": services.workbench_db.port,
                "name": services.workbench_db.name,
                "username": services.workbench_db.username,
                "password_secret_arn": services.workbench_db.password_secret_arn,
            },
        )
        return t.seconds

    def _moto(self) -> bool:
        """Start moto in the services namespace (or keep the one running); True if new."""
        from pwbcluster.sandbox import server as sandbox_server

        build = self.config.build_dir
        existing = sandbox_server.running(build)
        if existing is not None and existing.endpoint == self.aws_endpoint:
            return False
        if existing is not None:
            raise ToolkitError(
                f"a sandbox server for the lab runs at {existing.endpoint} (pid {existing.pid}), "
                "not on the lab's address: `invoke lab.down`, then `invoke lab.up`"
            )
        self._aws_tls()
        logs = self.ledger.directory(build / "logs")
        argv = [sys.executable, "-m", "moto.server", "-H", self.addr("aws")]
        argv += ["-p", str(AWS_PORT), "-s", "-c", str(self.aws_ca)]
        argv += ["-k", str(self.aws_ca.with_name("key.pem"))]
        with open(logs / "moto-server.log", "ab") as out:
            proc = subprocess.Popen(
                self.ledger.exec(self.net.netns(SERVICES), argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.ledger.process(MOTO, proc.pid)
        deadline = time.monotonic() + 60
        while not sandbox_server._alive(self.aws_endpoint, 1, str(self.aws_ca)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ToolkitError(
                    f"moto did not start on {self.aws_endpoint}; see {logs / 'moto-server.log'}"
                )
            time.sleep(0.2)
        # The record `invoke up --sandbox` reads: the pipeline then uses this server.
        import json

        record = {
            "endpoint": self.aws_endpoint,
            "pid": proc.pid,
            "port": AWS_PORT,
            "ca_bundle": str(self.aws_ca),
            "started": time.time(),
            "lab": True,
        }
        sandbox_server.record_path(build).write_text(json.dumps(record, indent=2) + "\n")
        return True

    def _aws_tls(self) -> None:
        """A certificate for the AWS stand-in's address (the sandbox's own names 127.0.0.1)."""
        from pwbcluster.sandbox.server import self_signed, write_private

        cert_path = self.aws_ca
        if cert_path.exists():
            return
        self.ledger.directory(cert_path.parent, 0o700)
        cert, key = self_signed("pwbcluster lab AWS stand-in", ips=[self.addr("aws")])
        write_private(cert_path.with_name("key.pem"), key)
        cert_path.write_bytes(cert)

    def _pipeline(self, fresh: bool) -> None:
        """The sandbox pipeline, against the lab's moto, capturing the LDAPS front's
        certificate and key as (moto's) ACM receives them."""
        from rich.console import Console

        from pwbcluster.pcluster import warm
        from pwbcluster.pipeline import orchestrate
        from pwbcluster.sandbox import moto_handlers
        from pwbcluster.sandbox import server as sandbox_server

        state = orchestrate.state_path(self.config)
        if fresh and state.exists():
            # moto keeps everything in memory: the lab's previous sandbox record named
            # resources a stopped server took with it.
            state.unlink()
        front = self.workdir / "ldaps-front"
        self.ledger.directory(front, 0o700)
        wanted = f"{self.config.name}-ldaps"
        original = moto_handlers.HANDLERS["aws:acm/certificate:Certificate"]

        def capture(m: Any, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            result = original(m, name, i)
            if (i.get("tags") or {}).get("Name") == wanted:
                _write_secret(front / "key.pem", i["privateKey"])
                (front / "cert.pem").write_text(i["certificateBody"] + i["certificateChain"])
            return result

        logs = self.ledger.directory(self.config.build_dir / "logs")
        moto_handlers.HANDLERS["aws:acm/certificate:Certificate"] = capture
        try:
            with open(logs / "lab-pipeline.log", "a", encoding="utf-8") as out:
                console = Console(file=out, width=200, force_terminal=False)
                # No warm pcluster worker: it would outlive `lab.down` (pwbcluster.pcluster.warm).
                with sandbox_server.environment({**self.aws_env(), warm.ENV_SWITCH: "0"}):
                    orchestrate.up(self.config, "sandbox", console)
        finally:
            moto_handlers.HANDLERS["aws:acm/certificate:Certificate"] = original
        if not (front / "key.pem").exists():
            raise ToolkitError(
                "the services stage is recorded as done but the lab holds no LDAPS front "
                "certificate from it: `invoke lab.down`, then `invoke lab.up`"
            )

    def _services(self) -> Any:
        from pwbcluster.pipeline import orchestrate

        services = orchestrate.recorded(self.config, "sandbox", "services")
        if services is None:
            raise ToolkitError("the lab's sandbox run recorded no services stage outputs")
        if not services.ldap_tls or not services.ldap_uri.startswith("ldaps://"):
            raise ToolkitError(
                "aux.directory.ldaps is false: the lab stands up the TLS front only "
                f"(ldap_uri is {services.ldap_uri})"
            )
        self.ldap_ca.write_text(services.ldap_ca_cert_pem)
        return services

    def hosts_text(self, services: Any) -> str:
        front = services.ldap_uri.removeprefix("ldaps://").split(":")[0]
        dbs = [services.workbench_db.host]
        if services.audit_db is not None:
            dbs.append(services.audit_db.host)
        domain = services.domain_name
        return (
            f"{self.addr('dc')} dc.{domain} dc\n"
            f"{self.addr('ldaps')} {front} ldap.{domain}\n"
            f"{self.addr('db')} {' '.join(sorted(set(dbs)))}\n"
            f"{self.addr('aws')} aws.pwblab.internal\n"
        )

    def dc(self, services: Any) -> samba.SambaDC:
        return samba.SambaDC(
            workdir=self.workdir / "directory",
            netns=self.net.netns(SERVICES),
            address=self.addr("dc"),
            domain=services.domain_name,
            admin_password=self.secret(services.admin_password_secret_arn),
            strong_auth="no",
        )

    def _directory(self, services: Any) -> None:
        dc = self.dc(services)
        self.ledger.directory(dc.workdir, 0o700)
        dc.provision()
        pid = dc.start()
        self.ledger.process(SAMBA, pid)
        bind_user = services.bind_user_dn.split(",")[0].split("=", 1)[1]
        # What the jump host's user data does with adcli and `net ads password`
        # (templates/services/jump-host-user-data.sh): here with Samba's own tools.
        dc.ensure_user(bind_user, self.secret(services.bind_password_secret_arn))

    def _front(self, services: Any) -> None:
        from cryptography import x509

        front = self.workdir / "ldaps-front"
        chain = x509.load_pem_x509_certificates((front / "cert.pem").read_bytes())
        ca = x509.load_pem_x509_certificate(services.ldap_ca_cert_pem.encode())
        if chain[0].issuer != ca.subject:
            raise ToolkitError("the captured LDAPS certificate is not signed by the stage's CA")
        if self.ledger.process_alive(FRONT):
            return
        listen, target = f"{self.addr('ldaps')}:636", f"{self.addr('dc')}:389"
        log = open(self.workdir / "ldaps-front.log", "ab")  # noqa: SIM115 (the child keeps it)
        argv = [sys.executable, "-m", "pwbcluster.lab.tlsfront", listen, target]
        argv += [str(front / "cert.pem"), str(front / "key.pem")]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen(
            self.ledger.exec(self.net.netns(SERVICES), argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        log.close()
        self.ledger.process(FRONT, proc.pid)
        samba.wait_port(self.addr("ldaps"), 636, 20)

    # -- PostgreSQL -------------------------------------------------------------------

    def _database(self, services: Any) -> None:
        bindir = postgres_bin()
        assert bindir is not None
        base = self.ledger.directory(self.workdir / "postgres", 0o700)
        shutil.chown(base, "postgres", "postgres")
        dbs = [services.workbench_db]
        if services.audit_db is not None:
            dbs.append(services.audit_db)
        tls = base / "tls"
        if not (tls / "server.key").exists():
            self._rds_standin_certs(tls, sorted({d.host for d in dbs}))
        data, sockets = base / "data", base / "run"
        for path in (sockets,):
            path.mkdir(exist_ok=True)
            shutil.chown(path, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
        if not (data / "PG_VERSION").exists():
            run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                 "--auth-local=peer", "--auth-host=reject"], timeout=120)  # fmt: skip
            subnet = self.net.subnet
            # TLS only, as rds.force_ssl=1: a plain connection is refused.
            (data / "pg_hba.conf").write_text(
                "local all postgres peer\n"
                f"hostssl all all {subnet} scram-sha-256\n"
                "host all all 0.0.0.0/0 reject\n"
            )
        port = dbs[0].port
        options = (
            f"-c listen_addresses={self.addr('db')} -c port={port} "
            f"-c unix_socket_directories={sockets} -c ssl=on "
            f"-c ssl_cert_file={tls / 'server.crt'} -c ssl_key_file={tls / 'server.key'} "
            "-c ssl_min_protocol_version=TLSv1.2 -c password_encryption=scram-sha-256"
        )
        pidfile = data / "postmaster.pid"
        if not self.ledger.process_alive(POSTGRES):
            ns = ["nsenter", f"--net=/run/netns/{self.net.netns(SERVICES)}"]
            pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options]
            pg_ctl += ["-l", str(base / "postgres.log"), "-w", "start"]
            run([*ns, *as_pg, *pg_ctl], timeout=60)
            # Fast shutdown (SIGINT) at lab.down: no waiting for clients.
            self.ledger.process(POSTGRES, int(pidfile.read_text().split()[0]), signal.SIGINT)
        for db in dbs:
            self._rds_master(sockets, port, db)

    def _rds_standin_certs(self, tls: Path, hosts: list[str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        tls.mkdir(mode=0o700, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, RDS_CA_NAME)])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            # RDS names can pass the CN's 64 characters: the names are in the SAN.
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pwblab-db")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.rds_ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (tls / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(tls / "server.key", key)
        for path in (tls, tls / "server.crt", tls / "server.key"):
            shutil.chown(path, "postgres", "postgres")

    def _rds_master(self, sockets: Path, port: int, db: Any) -> None:
        """The master user and database RDS creates: LOGIN, CREATEROLE, CREATEDB, owner of
        the database, no superuser (rds_superuser is not one)."""
        password = self.secret(db.master_password_secret_arn)
        quoted = password.replace("\\", "\\\\").replace("'", "''")
        script = (
            f"\\set master {db.master_username}\n\\set database {db.name}\n"
            f"\\set password '{quoted}'\n"
            "SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'master') AS missing \\gset\n"
            "\\if :missing\n"
            "CREATE ROLE :\"master\" LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD :'password';\n"
            "\\else\n"
            "ALTER ROLE :\"master\" LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD :'password';\n"
            "\\endif\n"
            "SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') AS nodb \\gset\n"
            "\\if :nodb\n"
            'CREATE DATABASE :"database" OWNER :"master";\n'
            "\\endif\n"
        )
        run(
            ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", str(sockets), "-p", str(port), "-d", "postgres"],
            input=script,
            timeout=60,
        )  # fmt: skip

    # -- Workbench's role, by the head node's own script ------------------------------

    def cluster_config(self) -> dict[str, Any]:
        from ruamel.yaml import YAML

        path = self.config.build_dir / "cluster-config.yaml"
        return dict(YAML(typ="safe").load(path.read_text(encoding="utf-8")))

    def node_env_uri(self) -> str:
        """The --env-uri ParallelCluster passes the head node's custom actions."""
        args = self.cluster_config()["HeadNode"]["CustomActions"]["OnNodeStart"]["Args"]
        return str(args[args.index("--env-uri") + 1])

    def node_env(self) -> bytes:
        """node.env exactly as the cluster stage uploaded it (from the lab's S3)."""
        bucket, _, key = self.node_env_uri().removeprefix("s3://").partition("/")
        body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read())

    def ops_bash(self, script: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """``script`` in bash in the ops namespace, the node libraries sourced and the
        uploaded node.env loaded, the aws CLI pointed at the lab's AWS stand-in."""
        env_file = self.workdir / "node.env"
        env_file.write_bytes(self.node_env())
        lib = ROOT / "cluster" / "lib"
        full = (
            f"set -o errexit -o nounset -o pipefail; source {lib}/common.sh; "
            f"source {lib}/database.sh; load_env {env_file}; {script}"
        )
        env = {**os.environ, **self.aws_env(), **extra}
        return subprocess.run(
            self.ledger.exec(self.net.netns(OPS), ["bash", "-c", full]),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _workbench_role(self) -> None:
        done = self.ops_bash("database_roles", RDS_CA_PATH=str(self.rds_ca))
        if done.returncode != 0:
            raise ToolkitError(f"database.sh failed: {done.stderr.strip()[-500:]}")
        for line in done.stderr.strip().splitlines()[-2:]:
            self.progress(f"workbench-role: {line}")

    # -- file systems -----------------------------------------------------------------

    def file_systems(self) -> list[dict[str, str]]:
        """The cluster config's file systems: SharedStorage, and ParallelCluster's internal
        EFS when the head node's SharedStorageType is Efs."""
        doc = self.cluster_config()
        found = [
            {"name": str(s["Name"]), "type": str(s["StorageType"]), "mount": str(s["MountDir"])}
            for s in doc.get("SharedStorage") or []
        ]
        if (doc.get("HeadNode") or {}).get("SharedStorageType") == "Efs":
            found.append(
                # ParallelCluster's own EFS (/opt/parallelcluster/shared*, /opt/slurm,
                # /opt/intel, as its docs describe SharedStorageType: Efs); how the nodes
                # step maps it is that step's to settle.
                {"name": "internal_pcluster_shared", "type": "Efs", "mount": "(ParallelCluster)"}
            )
        return found

    def _shared(self) -> None:
        root = self.ledger.directory(self.workdir / "shared")
        listed = {}
        for fs in self.file_systems():
            path = root / fs["name"]
            path.mkdir(exist_ok=True)
            listed[fs["name"]] = {**fs, "path": str(path), "standin": "plain directory"}
        self.ledger.set_meta(shared=listed)

    # -- down and status --------------------------------------------------------------


def down(net: Net = LAB) -> tuple[list[str], list[str]]:
    """Remove everything the lab recorded; (what was removed, what is still there)."""
    if os.geteuid() != 0:
        raise ToolkitError("the lab needs root to remove namespaces and the bridge: use sudo")
    ledger = Ledger(net)
    removed = ledger.teardown()
    return removed, leftovers(net)


def status(net: Net = LAB) -> dict[str, Any]:
    ledger = Ledger(net)
    processes = {
        o["name"]: ("running" if ledger.process_alive(o["name"]) else "stopped")
        for o in ledger.objects
        if o["kind"] == "process"
    }
    return {"meta": ledger.meta, "processes": processes, "present": leftovers(net)}


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _write_key(path: Path, key: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_secret(path, pem.decode())
