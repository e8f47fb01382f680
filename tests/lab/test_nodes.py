"""The cluster lab's nodes: the project's node scripts boot a whole cluster here.

One lab per module: the services (test_services.py checks those), then the head node and
two login and two compute nodes in ParallelCluster's order (pwbcluster.lab.nodes), and
directory users from pwb-users. Each property is checked with a counterpart that must
fail: a node without the file system, a tampered file the second run repairs, a wrong
password, a user outside the access filter, a broken database password, every
controller killed. The last test runs ``down`` and finds nothing left; the fixture's
finalizer runs ``down`` whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pwbcluster.config import load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.lab import jobs, nodes, services, users
from pwbcluster.lab.network import LAB, Ledger, leftovers, processes_in

ADDRESSES = [LAB.address(n) for n in (*services.HOSTS.values(), *(s.host for s in nodes.SPECS))]
LOGIN = [s.name for s in nodes.SPECS if s.kind == "LoginNode"]
COMPUTE = [s.name for s in nodes.SPECS if s.kind == "ComputeFleet"]

pytestmark = [
    pytest.mark.root,
    pytest.mark.samba,
    pytest.mark.postgres,
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.pcluster,
    pytest.mark.allow_hosts(ADDRESSES),
]


class Booted:
    def __init__(self, lab: services.Lab, cluster: nodes.Cluster, made: users.Users) -> None:
        self.lab, self.cluster, self.users = lab, cluster, made
        self.records: list[nodes.BootRecord] = []

    def node(self, name: str) -> nodes.Node:
        return self.cluster.nodes[name]


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    reason = services.unavailable_reason()
    for tool, package in (("sssd", "sssd-ldap"), ("pamtester", "pamtester"), ("slurmd", "slurmd")):
        if reason is None and shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            reason = f"missing {tool} (apt-get install {package})"
    if reason is not None:
        pytest.skip(reason)
    if LAB.ledger_path.exists():
        pytest.skip(f"a lab is up on this machine ({LAB.ledger_path}): `invoke lab.down` first")
    tmp = tmp_path_factory.mktemp("labnodes")
    name = f"labnodes{os.getpid() % 1000}"
    config = tmp / f"{name}.yaml"
    config.write_text(
        f"deployment:\n  name: {name}\n  region: eu-west-1\n  owner_email: lab@example.com\n"
    )
    lab = services.Lab(load_config(config))
    try:
        lab.up()
        cluster = nodes.Cluster(lab)
        records = cluster.up()
        the = Booted(lab, cluster, users.make(lab))
        the.records = records
        yield the
    finally:
        services.down()
        with contextlib.suppress(OSError):
            lab.config.build_dir.parent.rmdir()


def test_every_node_boots_with_parallelclusters_layout(booted: Booted) -> None:
    assert [r.node for r in booted.records] == [s.name for s in nodes.SPECS], "head first"
    for record in booted.records:
        assert "[custom-action-standin] s3://" in record.scripts[0], record.node
    key = booted.node("head").path("/etc/munge/munge.key").read_bytes()
    for spec in nodes.SPECS:
        node = booted.node(spec.name)
        cfn = node.path("/etc/parallelcluster/cfnconfig").read_text()
        assert f"cfn_node_type={spec.kind}\n" in cfn, spec.name
        assert ("cfn_head_node_private_ip=10.78.8.20" in cfn) == (spec.kind == "ComputeFleet")
        munge = node.path("/etc/munge/munge.key")
        assert munge.read_bytes() == key and oct(munge.stat().st_mode & 0o777) == "0o600"
        assert node.path(f"{nodes.SHARED}/.munge/.munge.key").read_bytes() == key
        assert node.path("/opt/slurm/etc/slurm.conf").is_file()
        assert node.path("/opt/pwbcluster/cluster/node.env").read_bytes() == booted.lab.node_env()
        # shared_login_nodes is mounted on the head and login nodes only
        # (mount_internal_use_ebs.rb); a compute node sees the image's empty path or none.
        login_shared = node.path(f"{nodes.SHARED_LOGIN}/.munge/.munge.key")
        assert login_shared.exists() == (spec.kind != "ComputeFleet"), spec.name
    # The head published Workbench's configuration, the login nodes installed it.
    for name in LOGIN:
        conf = booted.node(name).path("/etc/rstudio/database.conf")
        assert oct(conf.stat().st_mode & 0o777) == "0o600" and "password=" in conf.read_text()


def test_a_second_run_changes_nothing_and_a_tampered_file_shows(booted: Booted) -> None:
    assert booted.cluster.rerun() == {name: [] for name in [*booted.cluster.nodes, "shared"]}
    # Counterpart: a file the scripts own, changed by hand, is put back by the next run,
    # and the digest sees that run change it.
    conf = booted.node("ln1").path("/etc/rstudio/launcher.conf")
    conf.chmod(0o666)
    changed = booted.cluster.rerun(only=[LOGIN[0]])
    assert changed == {LOGIN[0]: ["etc/rstudio/launcher.conf"], "shared": []}, changed
    assert oct(conf.stat().st_mode & 0o777) == "0o644"


def test_directory_users_resolve_everywhere_kinit_and_the_access_filter(booted: Booted) -> None:
    made = booted.users
    assert made.allowed and made.outsiders
    uids = set()
    for spec in nodes.SPECS:
        for user in made.allowed + made.outsiders:
            found = users.getent(booted.node(spec.name), user)
            assert found.returncode == 0, (spec.name, user, found.stderr)
            uids.add((user, found.stdout.split(":")[2]))
    # ldap_id_mapping: one uid per user, the same on every node.
    assert len(uids) == len(made.allowed + made.outsiders)
    assert users.getent(booted.node("cn1"), "labnobody").returncode == 2
    ln = booted.node(LOGIN[0])
    for user in made.allowed + made.outsiders:
        password = made.passwords[user]
        assert users.kinit(booted.lab, ln, user, password).returncode == 0, user
        assert users.kinit(booted.lab, ln, user, password + "x").returncode != 0, user
    for user in made.allowed:
        allowed = users.pam(ln, user, made.passwords[user], "authenticate", "acct_mgmt")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    # Outside pwb-users/pwb-admins: the password is right, the account is refused.
    outsider = made.outsiders[0]
    refused = users.pam(ln, outsider, made.passwords[outsider], "authenticate", "acct_mgmt")
    assert refused.returncode != 0 and "successfully authenticated" in refused.stdout
    assert "Permission denied" in refused.stdout + refused.stderr


def test_a_user_job_runs_on_a_compute_node_with_home_shared(booted: Booted) -> None:
    user = booted.users.allowed[0]
    result = jobs.submit(booted.cluster, LOGIN[0], user, booted.users.passwords[user])
    computes = {booted.node(n).spec.hostname(booted.lab) for n in COMPUTE}
    assert result.output["user"] == user and result.output["host"] in computes, result
    uid = users.getent(booted.node(LOGIN[1]), user).stdout.split(":")[2]
    assert result.output["uid"] == uid and result.owner_uid == int(uid)
    # Written on the compute node, read on the login node: the same /home.
    home = Path(booted.cluster.shared_root("home")) / user
    assert (home / f"lab-job-{result.job_id}.out").is_file()
    # Counterpart: the user outside the access filter gets no session, so no job.
    outsider = booted.users.outsiders[0]
    with pytest.raises(ToolkitError, match="cannot open a session"):
        jobs.submit(booted.cluster, LOGIN[0], outsider, booted.users.passwords[outsider])


def test_login_nodes_match_but_for_their_own_entry_and_survive_each_other(
    booted: Booted,
) -> None:
    one, two = (booted.node(n) for n in LOGIN)
    a, b = one.workbench_config(), two.workbench_config()
    assert set(a) == set(b) and "rserver.conf" in a
    differing = sorted(k for k in a if a[k] != b[k])
    assert differing == ["load-balancer"], differing
    diff = set(a["load-balancer"].decode().splitlines()) ^ set(
        b["load-balancer"].decode().splitlines()
    )
    assert diff == {f"www-host-name={one.spec.address(booted.lab)}",
                    f"www-host-name={two.spec.address(booted.lab)}"}  # fmt: skip
    assert one.health() == (200, "standin: ok (not Posit Workbench)")
    # Counterpart: the stand-in's health check asks the database with the written
    # credentials; a wrong password fails it (and the next boot run repairs it).
    conf = one.path("/etc/rstudio/database.conf")
    good = conf.read_text()
    conf.write_text(good.replace("password=", "password=wrong"))
    code, body = one.health()
    assert code == 503 and "refused the credentials" in body
    conf.write_text(good)
    booted.cluster.remove(LOGIN[1])
    assert not two.alive()
    assert one.health()[0] == 200


def test_head_slurmctld_killed_scheduling_continues(booted: Booted) -> None:
    head, login = booted.node("head"), booted.node(LOGIN[0])
    pid = int(head.path("/run/slurmctld.pid").read_text())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "slurmctld"
    os.kill(pid, signal.SIGKILL)
    ping = login.run(["scontrol", "ping"], timeout=30).stdout
    assert "(primary) at" in ping and "DOWN" in ping.splitlines()[0], ping
    user = booted.users.allowed[-1]
    password = booted.users.passwords[user]
    assert jobs.submit(booted.cluster, LOGIN[0], user, password).output["user"] == user
    # Not checked: the whole head node lost. A job submitted seconds after it stayed
    # PENDING (Reason=None) on the backup for 240 s (docs/lab.md, "Limits").
    # Counterpart: with every controller gone, nothing schedules.
    booted.cluster.remove("head")
    booted.cluster.remove(LOGIN[0])
    failed = booted.node(COMPUTE[0]).run(
        ["timeout", "30", "sbatch", "--wrap=true", "--parsable"], timeout=60
    )
    assert failed.returncode != 0, failed.stdout


def test_down_removes_every_node(booted: Booted) -> None:
    workdir = booted.lab.workdir
    removed, left = services.down()
    assert left == [] and leftovers(LAB) == []
    assert any(f"node-{COMPUTE[0]}-standin-init" in r for r in removed), removed
    assert processes_in([workdir, booted.lab.config.build_dir]) == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "pwblab-" not in mounts
    assert not Ledger(LAB).objects
