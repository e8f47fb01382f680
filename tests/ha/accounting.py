"""Slurm accounting in the HA lab: a real MariaDB standing in for RDS, ParallelCluster's
slurmdbd on the head, and cluster/ha/slurmdbd-backup.sh on a login node.

Used by tests/ha/test_accounting_failover.py and benchmarks/controller_failover.py.

- MariaDB (Debian's mariadb-server, the host's even when Slurm runs in a Debian root: it
  stands for RDS, which is not part of the Slurm version matrix) runs in the namespace of
  host ``rds``, listening on its address only, its files under the cluster's base.
- The head's slurmdbd gets the files ParallelCluster writes (aws-parallelcluster-cookbook:
  templates/default/slurm/slurmdbd.conf.erb, files/.../slurm_parallelcluster_slurmdbd.conf
  and update_slurm_database_password.sh.erb, which appends StoragePass as read from the
  secret), 0600 owned by SlurmUser, and pcluster's bootstrap (cluster, pcdefault account).
- Secrets Manager is a stub `aws` on PATH that answers the one call the script makes,
  from a 0600 file, and refuses any other argv.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .harness import ADDRESSES, LOCAL_MOUNT, SUBNET, Cluster, stop_pid, user_ids

DB_NAME = "pwbha_acct"
DB_USER = "slurm"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pwbha-slurmdb-AbCdEf"
REGION = "eu-west-1"
RDS = "rds"
SAVE_WINDOW = 6  # slurmctld saves job state at most every 5 s (SAVE_MAX_WAIT)


def unavailable_reason() -> str | None:
    for tool in ("mariadbd", "mariadb-install-db", "mariadb"):
        if shutil.which(tool) is None:
            return f"needs {tool} (requirements/apt-test.txt: mariadb-server)"
    return None


def password() -> str:
    """Like the services stage's generated secrets (secrets.py SAFE_SPECIALS) minus '#',
    which ParallelCluster's update_slurm_database_password.sh writes unescaped, so a '#'
    would cut its own StoragePass short (slurmdbd.conf(5): '#' starts a comment)."""
    return secrets.token_urlsafe(18) + "!%^*-_=+$"


@dataclass
class Accounting:
    cluster: Cluster
    password: str = field(default_factory=password)
    mariadbd: subprocess.Popen[str] | None = None

    @property
    def dir(self) -> Path:
        return self.cluster.base / "mariadb"

    @property
    def socket(self) -> Path:
        return self.dir / "mysqld.sock"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{ADDRESSES[RDS]}"

    @property
    def stub_dir(self) -> Path:
        return self.cluster.base / "aws-stub"

    # -- the database (RDS) --------------------------------------------------------------

    def start_database(self) -> None:
        if RDS not in self.cluster.hosts:
            self.cluster.add_host(RDS)
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        uid, gid = user_ids("mysql")
        for path in (self.dir, data):
            os.chown(path, uid, gid)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        log = open(self.dir / "mariadbd.out", "a")  # noqa: SIM115
        self.mariadbd = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.cluster.hosts[RDS].netns}",
                "--",
                "mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                f"--socket={self.socket}",
                f"--pid-file={self.dir / 'mariadbd.pid'}",
                f"--log-error={self.dir / 'mariadbd.err'}",
                f"--bind-address={self.address}",
                "--port=3306",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
            ],
            stdout=log,
            stderr=log,
            text=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while self.sql("SELECT 1", check=False).returncode != 0:
            if time.monotonic() > deadline or self.mariadbd.poll() is not None:
                raise RuntimeError(f"mariadbd did not start; see {self.dir / 'mariadbd.err'}")
            time.sleep(0.2)
        # What the services stage gets from RDS: a master user that may create the
        # database; ParallelCluster's slurmdbd creates StorageLoc itself. The password is
        # passed on stdin, not argv.
        quoted = self.password.replace("\\", "\\\\").replace("'", "\\'")
        self.sql(
            f"CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{quoted}';"
            f"GRANT ALL ON `{DB_NAME}`.* TO '{DB_USER}'@'%';"
        )

    def sql(self, statements: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """As the database's root over its socket (the test's view of RDS)."""
        proc = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-N", "-B"],
            input=statements,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"SQL failed: {proc.stderr.strip()}")
        return proc

    def recorded_jobs(self) -> set[str]:
        """Ids of the jobs whose end the database holds (a job recorded whole; a start
        record alone is not enough)."""
        out = self.sql(
            f"SELECT id_job FROM `{DB_NAME}`.`pwbha_job_table` WHERE time_end > 0", check=False
        )
        return set(out.stdout.split()) if out.returncode == 0 else set()

    # -- ParallelCluster's head-node side -------------------------------------------------

    def write_pcluster_files(self) -> None:
        """slurmdbd.conf and slurm_parallelcluster_slurmdbd.conf as the cookbook leaves
        them, the password appended as update_slurm_database_password.sh does."""
        etc = self.cluster.etc
        uid, gid = user_ids("slurm", self.cluster.root)
        files = {
            "slurmdbd.conf": (
                "AuthType=auth/munge\n"
                f"AuthInfo=socket={self.cluster.munge_socket}\n"
                f"LogFile={LOCAL_MOUNT}/slurmdbd.log\n"
                f"PidFile={LOCAL_MOUNT}/slurmdbd.pid\n"
                "DbdPort=6819\nSlurmUser=slurm\nStorageType=accounting_storage/mysql\n"
                "include slurm_parallelcluster_slurmdbd.conf\n"
            ),
            "slurm_parallelcluster_slurmdbd.conf": (
                "# slurm_parallelcluster_slurmdbd.conf is managed by the pcluster processes.\n"
                f"DbdHost=head\nStorageHost={self.address}\nStoragePort=3306\n"
                f"StorageLoc={DB_NAME}\nStorageUser={DB_USER}\n"
                f"StoragePass={self.password}\n"
            ),
        }
        for name, text in files.items():
            path = etc / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chown(path, uid, gid)

    def start_slurmdbd(self, name: str = "head") -> None:
        self.cluster.hosts[name].run(["slurmdbd"])

    def answers(self, via: str, timeout: float = 5) -> bool:
        """A slurmdbd round trip (sacctmgr, to AccountingStorageHost or its backup)."""
        try:
            out = self.cluster.hosts[via].run(
                ["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"],
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return False
        return "pwbha" in out.split()

    def bootstrap(self, via: str = "head") -> None:
        """ParallelCluster's "bootstrap slurm database" (config_slurm_accounting.rb)."""
        host = self.cluster.hosts[via]
        deadline = time.monotonic() + 60
        while not host.run(["sacctmgr", "-n", "show", "clusters"], check=False).strip():
            host.run(["sacctmgr", "-iQ", "add", "cluster", "pwbha"], check=False)
            if time.monotonic() > deadline:
                raise RuntimeError("slurmdbd did not accept the cluster within 60 s")
            time.sleep(0.5)
        host.run(["sacctmgr", "-iQ", "add", "account", "pcdefault", "Cluster=pwbha"], check=False)
        host.run(
            ["sacctmgr", "-iQ", "add", "user", "root", "Account=pcdefault", "AdminLevel=Admin"],
            check=False,
        )

    # -- the project's backup -------------------------------------------------------------

    def write_secret_stub(self) -> None:
        """`aws` answering exactly update_slurm_database_password.sh's call for SECRET_ARN."""
        self.stub_dir.mkdir(parents=True, exist_ok=True)
        self.stub_dir.chmod(0o700)
        value = self.stub_dir / "secret-value"
        fd = os.open(value, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        (self.stub_dir / "aws").write_text(
            "#!/bin/bash\n"
            "# Secrets Manager stand-in: one call, one secret.\n"
            'args=" $* "\n'
            'want=" secretsmanager get-secret-value --secret-id '
            f'{SECRET_ARN} --region {REGION} --query SecretString --output text "\n'
            'case "$args" in\n'
            '  *"$want") ;;\n'
            '  *) echo "aws stub: unexpected call: $*" >&2; exit 254 ;;\n'
            "esac\n"
            f"cat {value}\n"
        )
        (self.stub_dir / "aws").chmod(0o700)

    def backup(self, name: str, *extra: str) -> str:
        """Run cluster/ha/slurmdbd-backup.sh on a login node as login-node.sh would."""
        self.write_secret_stub()
        host = self.cluster.hosts[name]
        path = f"{self.stub_dir}:{host.env['PATH']}"
        return host.run(
            [
                "env",
                f"PATH={path}",
                "bash",
                str(self.cluster.scripts / "slurmdbd-backup.sh"),
                "--shared-dir",
                str(self.cluster.shared),
                "--password-secret-arn",
                SECRET_ARN,
                "--region",
                REGION,
                "--slurm-etc",
                str(self.cluster.etc),
                "--slurm-prefix",
                "/usr",
                "--hostname",
                name,
                "--conf-dir",
                str(LOCAL_MOUNT / "ha" / "slurmdbd"),
                "--run-dir",
                str(LOCAL_MOUNT),
                "--init",
                "none",
                *extra,
            ],
            timeout=120,
        )

    def close(self) -> None:
        for host in self.cluster.hosts.values():
            pid = host.daemon_pid("slurmdbd")
            if pid is not None:
                stop_pid(pid, grace=5)
        if self.mariadbd is not None:
            with contextlib.suppress(ProcessLookupError):
                self.mariadbd.terminate()
            try:
                self.mariadbd.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.mariadbd.kill()
                self.mariadbd.wait(timeout=5)


# -- the scenario the test and the benchmark run ---------------------------------------


@dataclass
class FailoverRecord:
    """What one head-kill round saw: job ids by phase and what the database holds."""

    with_backup: bool
    phases: dict[str, list[str]] = field(default_factory=dict)
    recorded: set[str] = field(default_factory=set)
    sacct: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)  # COMPLETED as slurmctld says
    dbd_answer_s: float | None = None  # kill -> a slurmdbd answers sacctmgr again
    backup_output: str = ""
    conf_mode: str = ""  # the backup's slurmdbd.conf: "0o600 slurm"
    password_in_logs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> s since start

    @property
    def run(self) -> set[str]:
        return {job for ids in self.phases.values() for job in ids}

    @property
    def missing(self) -> set[str]:
        return self.run - self.recorded


def _wait(check: object, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(every)
    return False


def _state(cluster: Cluster, job: str) -> str:
    out = cluster.hosts["login1"].run(["scontrol", "-o", "show", "job", job], check=False)
    for word in out.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return "UNKNOWN"


def _submit(cluster: Cluster, command: str) -> str:
    out = cluster.hosts["login1"].run(["sbatch", "--parsable", "--wrap", command], timeout=90)
    return out.strip().split(";")[0]


def head_kill_round(
    with_backup: bool, slurmctld_timeout: int = 5, root: Path | str | None = "env"
) -> FailoverRecord:
    """head (slurmctld + ParallelCluster's slurmdbd), login1 (backup slurmctld, and the
    backup slurmdbd when `with_backup`), compute1, rds. Jobs run before, across (running
    at, or submitted right after, the kill) and after `kill -9` of the head's slurmctld
    and slurmdbd; returns which of them the database recorded. `root`: the Debian root
    Slurm runs in, None for the host's, "env" for PWBHA_SLURM_ROOT's (the harness default)."""
    cluster = (
        Cluster(accounting=True)
        if root == "env"
        else Cluster(accounting=True, root=None if root is None else Path(root))
    )
    acct = Accounting(cluster)
    record = FailoverRecord(with_backup)
    began = time.monotonic()

    def mark(phase: str) -> None:
        record.timings[phase] = round(time.monotonic() - began, 1)

    try:
        cluster.start(("head", "login1", "compute1", RDS))
        acct.start_database()
        acct.write_pcluster_files()
        acct.start_slurmdbd("head")
        acct.bootstrap("head")
        cluster.start_slurmctld("head")
        cluster.start_slurmd("compute1")
        if not _wait(
            lambda: "idle" in cluster.hosts["head"].run(["sinfo", "-h", "-o", "%T"], check=False),
            60,
        ):
            raise RuntimeError("compute1 never became idle")
        cluster.controller_ha("head", "head", slurmctld_timeout=slurmctld_timeout)
        mark("setup")
        if with_backup:
            # Before the backup slurmctld joins, so its first start reads the include.
            cluster.controller_ha("login1", "login", slurmctld_timeout=slurmctld_timeout)
            record.backup_output = acct.backup("login1")
            conf = cluster.hosts["login1"].local_dir / "ha" / "slurmdbd" / "slurmdbd.conf"
            info = conf.stat()
            owner = user_ids("slurm", cluster.root)
            slurm = "slurm" if (info.st_uid, info.st_gid) == owner else str(info.st_uid)
            record.conf_mode = f"{oct(info.st_mode & 0o777)} {slurm}"
        else:
            cluster.controller_ha("login1", "login", slurmctld_timeout=slurmctld_timeout)
        for _ in range(4):
            actions = [cluster.reconcile(n).strip() for n in ("head", "login1")]
            if all(a == "unchanged" for a in actions):
                break
        before = [_submit(cluster, "true") for _ in range(2)]
        if not _wait(lambda: all(_state(cluster, j) == "COMPLETED" for j in before), 60):
            raise RuntimeError(f"jobs {before} did not complete before the kill")
        running = _submit(cluster, "sleep 8")
        if not _wait(lambda: _state(cluster, running) == "RUNNING", 30):
            raise RuntimeError(f"job {running} did not start")
        # slurmctld saves job state at most every 5 s: a job accepted just before the
        # kill can be lost with it (issue 16's accepted-job window, not accounting's).
        time.sleep(SAVE_WINDOW)
        mark("before")
        cluster.kill9("head", "slurmctld")
        cluster.kill9("head", "slurmdbd")
        killed = time.monotonic()

        # sacctmgr talks to slurmdbd (AccountingStorageHost, then its backup), not to
        # slurmctld: probed alongside the submissions, from the kill on.
        def probe() -> None:
            if _wait(lambda: acct.answers("login1", timeout=3), 30 if with_backup else 15):
                record.dbd_answer_s = time.monotonic() - killed

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        across = [running, *(_submit(cluster, "true") for _ in range(2))]
        prober.join(timeout=40)
        mark("across")
        # After takeover: in these rounds (22.05) a job submitted to the backup waited
        # about 60 s before it started, with or without the backup slurmdbd (seen, not
        # explained); the counterpart needs none (the jobs across the kill end after it).
        after = [_submit(cluster, "true") for _ in range(2 if with_backup else 0)]
        record.phases = {"before": before, "across": across, "after": after}
        mark("after")
        done = {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT"}
        # Without a slurmdbd a pending job can stay pending (the scheduler waits on
        # accounting); only the backup case must see every job end.
        _wait(
            lambda: all(_state(cluster, j) in done for j in record.run), 150 if with_backup else 30
        )
        record.finished = {j for j in record.run if _state(cluster, j) == "COMPLETED"}
        if with_backup and record.finished != record.run:
            states = {
                j: cluster.hosts["login1"]
                .run(["scontrol", "-o", "show", "job", j], check=False)
                .split(" JobState=")[-1][:80]
                for j in sorted(record.run - record.finished)
            }
            queue = cluster.hosts["login1"].run(["squeue", "-a", "-o", "%i %T %r %P"], check=False)
            node = cluster.hosts["login1"].run(["sinfo", "-N", "-o", "%N %T %E"], check=False)
            raise RuntimeError(f"jobs did not finish after the kill: {states}; {queue}; {node}")
        # The end records reach the database shortly after the jobs end; give both
        # cases the same 15 s.
        _wait(lambda: record.run <= acct.recorded_jobs(), 15, every=0.5)
        mark("finished")
        record.recorded = acct.recorded_jobs()
        mark("recorded")
        out = cluster.hosts["login1"].run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "now-1hour"], check=False, timeout=10
        )
        record.sacct = set(out.split())
        for path in cluster.base.glob("hosts/*/*.log"):
            if acct.password in path.read_text(errors="replace"):
                record.password_in_logs.append(str(path))
        return record
    finally:
        acct.close()
        cluster.close()
