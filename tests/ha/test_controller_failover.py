"""Controller HA on real Slurm: head, login1, login2, compute1 in network namespaces.

The cluster starts from a slurm.conf shaped like ParallelCluster's (one SlurmctldHost,
local StateSaveLocation, SlurmctldTimeout=300); every HA setting comes from
cluster/ha/controller-ha.sh and its reconciler. One cluster serves the whole module and
the tests run in file order, each one a step of the story (failover, failback, a login
node disappears, a new one appears, pcluster rewrites its include, concurrent runs).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from .harness import AnswerProbe, Cluster, pid_alive, unavailable_reason

pytestmark = [
    pytest.mark.root,
    pytest.mark.slurm,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]

SLURMCTLD_TIMEOUT = 5  # SlurmctldTimeout for the tests (the benchmark measures the configured one)
SAVE_WINDOW = 6  # slurmctld saves job state at most every 5 s (SAVE_MAX_WAIT)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def job_state(cluster: Cluster, job_id: str, via: str = "login1") -> str:
    out = cluster.hosts[via].run(["scontrol", "-o", "show", "job", job_id], check=False)
    match = re.search(r"JobState=(\S+)", out)
    return match[1] if match else "UNKNOWN"


def submit(cluster: Cluster, command: str, via: str = "login1") -> str:
    out = cluster.hosts[via].run(["sbatch", "--parsable", "--wrap", command], timeout=90)
    return out.strip().split(";")[0]


def wait_completed(cluster: Cluster, job_id: str, timeout: float = 60) -> None:
    wait_for(
        f"job {job_id} to complete",
        lambda: (
            job_state(cluster, job_id)
            in {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT"}
        ),
        timeout,
    )
    assert job_state(cluster, job_id) == "COMPLETED"


def controllers(cluster: Cluster) -> list[str]:
    text = (cluster.etc / "pwb_ha_controllers.conf").read_text()
    return re.findall(r"^SlurmctldHost=(\S+)\(", text, re.MULTILINE)


def ping(cluster: Cluster, via: str = "head") -> list[tuple[str, str]]:
    out = cluster.hosts[via].run(["scontrol", "ping"], check=False)
    return re.findall(r"Slurmctld\(\S+\) at (\S+) is (UP|DOWN)", out)


def log_text(cluster: Cluster, host: str) -> str:
    path = cluster.base / "hosts" / host / "slurmctld.log"
    return path.read_text(errors="replace") if path.exists() else ""


def converge(cluster: Cluster, names: list[str]) -> None:
    """Timer runs on every node until nothing changes (a bounded number of rounds)."""
    for _ in range(4):
        actions = [cluster.reconcile(name).strip() for name in names]
        if all(action == "unchanged" for action in actions):
            return
    raise AssertionError(f"reconcilers did not converge: last actions {actions}")


@pytest.fixture(scope="module")
def ha_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        # As ParallelCluster leaves it: slurmctld on the head, slurmd on the compute node.
        cluster.start_slurmctld("head")
        cluster.start_slurmd("compute1")
        wait_for(
            "compute1 idle",
            lambda: "idle" in cluster.hosts["head"].run(["sinfo", "-h", "-o", "%T"], check=False),
        )
        cluster.notes["pre_ha_job"] = submit(cluster, "sleep 600", via="head")
        cluster.controller_ha("head", "head", slurmctld_timeout=SLURMCTLD_TIMEOUT)
        # Users keep a controller while backups join (Slurm 23.11+ stalled 30 s here).
        with AnswerProbe(cluster.hosts["head"]) as probe:
            cluster.controller_ha("login1", "login", slurmctld_timeout=SLURMCTLD_TIMEOUT)
            cluster.controller_ha("login2", "login", slurmctld_timeout=SLURMCTLD_TIMEOUT)
            converge(cluster, ["head", "login1", "login2"])
        cluster.notes["join_silence"] = str(probe.longest_silence())
        yield cluster
    finally:
        cluster.close()


def test_ha_settings_come_from_the_scripts(ha_cluster: Cluster) -> None:
    # The first backups joined without a gap longer than issue 16's 10 s: since Slurm 23.11
    # the primary restarted by `scontrol reconfigure` waited 30 s on a backup started
    # before it (reconcile.py, tell_first).
    assert float(ha_cluster.notes["join_silence"]) < 10, ha_cluster.notes["join_silence"]
    config = ha_cluster.hosts["login1"].run(["scontrol", "show", "config"])
    assert re.search(rf"^StateSaveLocation\s*=\s*{ha_cluster.shared}/state$", config, re.M)
    assert re.search(rf"^SlurmctldTimeout\s*=\s*{SLURMCTLD_TIMEOUT} sec$", config, re.M)
    assert ping(ha_cluster) == [("head", "UP"), ("login1", "UP"), ("login2", "UP")]
    assert controllers(ha_cluster) == ["login1", "login2"]
    # The job queued before HA survived the move of StateSaveLocation to shared storage.
    assert job_state(ha_cluster, ha_cluster.notes["pre_ha_job"]) in {"PENDING", "RUNNING"}
    ha_cluster.hosts["head"].run(["scancel", ha_cluster.notes["pre_ha_job"]])
    assert (
        (ha_cluster.etc / "slurm.conf")
        .read_text()
        .rstrip()
        .endswith(f"include {ha_cluster.etc}/pwb_ha.conf")
    )
    units = ha_cluster.base / "hosts"
    assert (units / "head" / "ha" / "systemd" / "pwb-ha-reconcile.path").is_file()
    assert (units / "login1" / "ha" / "systemd" / "pwb-slurmctld.service").is_file()
    assert (units / "login1" / "ha" / "systemd" / "pwb-ha-reconcile.timer").is_file()


def test_reconciler_twice_changes_nothing(ha_cluster: Cluster) -> None:
    files = [ha_cluster.etc / n for n in ("slurm.conf", "pwb_ha.conf", "pwb_ha_controllers.conf")]
    before = [(f.read_bytes(), f.stat().st_mtime_ns) for f in files]
    pids = {n: ha_cluster.hosts[n].daemon_pid("slurmctld") for n in ("head", "login1", "login2")}
    for name in ("head", "login1", "login2", "head"):
        assert ha_cluster.reconcile(name).strip() == "unchanged"
    assert [(f.read_bytes(), f.stat().st_mtime_ns) for f in files] == before
    assert {n: ha_cluster.hosts[n].daemon_pid("slurmctld") for n in pids} == pids


def test_failover_keeps_running_job_and_accepts_new_ones(ha_cluster: Cluster) -> None:
    running = submit(ha_cluster, "sleep 12")
    wait_for(f"job {running} running", lambda: job_state(ha_cluster, running) == "RUNNING")
    time.sleep(SAVE_WINDOW)  # past the asynchronous state save (measured by the benchmark)
    ha_cluster.kill9("head")
    after = submit(ha_cluster, "true")  # sbatch retries until a backup is in charge
    assert "taking over" in log_text(ha_cluster, "login1")
    wait_completed(ha_cluster, after)
    wait_completed(ha_cluster, running)


def test_control_returns_to_the_head(ha_cluster: Cluster) -> None:
    primary_runs = log_text(ha_cluster, "head").count("Running as primary controller")
    assert ha_cluster.reconcile("head").strip() == "started"  # the timer restarts it
    # The returning primary asks the backup in charge for control (REQUEST_CONTROL) and
    # runs as primary once the backup has saved its state.
    wait_for(
        "the head to run as primary again",
        lambda: log_text(ha_cluster, "head").count("Running as primary controller") > primary_runs,
    )
    assert "REQUEST_CONTROL" in log_text(ha_cluster, "login1").split("taking over")[-1]
    # With both backups gone, only the head can accept and run this job.
    ha_cluster.kill9("login1")
    ha_cluster.kill9("login2")
    wait_completed(ha_cluster, submit(ha_cluster, "true", via="head"))
    assert ha_cluster.reconcile("login1").strip() == "started"
    assert ha_cluster.reconcile("login2").strip() == "started"
    assert ping(ha_cluster) == [("head", "UP"), ("login1", "UP"), ("login2", "UP")]


def test_hung_hand_back_is_killed_within_seconds(ha_cluster: Cluster) -> None:
    """The issue's failback gap: the backup in charge does not answer the head's
    REQUEST_CONTROL (hung in "Saving all slurm state"; here frozen with SIGSTOP, which
    hangs it at any point of the hand-back). The head waits for it; only its watcher,
    not the 30-s reconciler timer (never run here), can end the wait."""
    running = submit(ha_cluster, "sleep 45")
    wait_for(f"job {running} running", lambda: job_state(ha_cluster, running) == "RUNNING")
    time.sleep(SAVE_WINDOW)  # past the asynchronous state save (the benchmark measures it)
    ha_cluster.kill9("head")
    wait_completed(ha_cluster, submit(ha_cluster, "true"))  # login1 is in charge
    # Let login1 save that finished job before it freezes. Otherwise the head reads an
    # older save in which the job still runs on compute1, and holds the node until
    # compute1's slurmd reports otherwise (over 100 s here): the known, documented loss of
    # the last <= 5 s, which is not what this test measures, and which starved the tests
    # after it.
    # (A file's mtime cannot say it: the save may come before the test sees the job end.)
    time.sleep(SAVE_WINDOW)
    for name in ("login1", "login2"):
        ha_cluster.start_watcher(name)
    try:
        hung_pid = ha_cluster.hosts["login1"].daemon_pid("slurmctld")
        assert hung_pid is not None
        primary_runs = log_text(ha_cluster, "head").count("Running as primary controller")
        os.kill(hung_pid, signal.SIGSTOP)
        with AnswerProbe(ha_cluster.hosts["login2"]) as probe:
            assert ha_cluster.reconcile("head").strip() == "started"
            wait_for(
                "the head to run as primary again",
                lambda: (
                    log_text(ha_cluster, "head").count("Running as primary controller")
                    > primary_runs
                ),
                timeout=90,
            )
            wait_for("a controller to answer", lambda: bool(probe.answered), timeout=30)
            last = probe.answered[-1]
            wait_for("a later answer", lambda: probe.answered[-1] > last, timeout=30)
        watch_log = (ha_cluster.base / "hosts" / "login1" / "handback-watch.log").read_text()
        assert f"slurmctld {hung_pid} in charge (or handing back) silent" in watch_log
        assert not pid_alive(hung_pid)
        # login2's watcher saw the same silence but login2 was not in charge: left alone.
        assert (
            "killing it"
            not in (ha_cluster.base / "hosts" / "login2" / "handback-watch.log").read_text()
        )
        # Issue 16's bound is 10 s; this allows for a loaded 2-core machine and still
        # fails on the old code, where the head waits out Slurm's CONTROL_TIMEOUT (30 s)
        # or the backup's next timer tick. The benchmark prints the measured figures.
        assert probe.longest_silence() < 20, probe.longest_silence()
        wait_completed(ha_cluster, running, timeout=90)  # the running job was not lost
        wait_for(
            "login1 back as a standby",
            lambda: ping(ha_cluster) == [("head", "UP"), ("login1", "UP"), ("login2", "UP")],
        )
        wait_for("compute1 idle for the next test", lambda: node_state(ha_cluster) == "idle")
    finally:
        for name in ("login1", "login2"):
            ha_cluster.stop_watcher(name)


def node_state(cluster: Cluster, node: str = "compute1") -> str:
    out = cluster.hosts["login1"].run(["sinfo", "-h", "-n", node, "-o", "%T"], check=False)
    return out.strip().rstrip("*~#")


def test_vanished_login_node_is_removed(ha_cluster: Cluster) -> None:
    ha_cluster.remove_host("login2")
    time.sleep(2.5)
    # login1's timer fires after login2's heartbeat went stale (2 s here, 120 s by default)
    action = ha_cluster.reconcile("login1", "--stale-after", "2").strip()
    assert action in {"restarted", "restarted-hung"}
    assert controllers(ha_cluster) == ["login1"]
    assert ha_cluster.reconcile("head").strip() == "reconfigured"
    assert ping(ha_cluster) == [("head", "UP"), ("login1", "UP")]
    # The remaining controllers keep working: login1 takes over from a dead head.
    ha_cluster.kill9("head")
    wait_completed(ha_cluster, submit(ha_cluster, "true"))
    primary_runs = log_text(ha_cluster, "head").count("Running as primary controller")
    assert ha_cluster.reconcile("head").strip() == "started"
    wait_for(
        "the head to run as primary again",
        lambda: log_text(ha_cluster, "head").count("Running as primary controller") > primary_runs,
    )


def test_new_login_node_is_added(ha_cluster: Cluster) -> None:
    ha_cluster.add_host("login3")
    ha_cluster.controller_ha("login3", "login", slurmctld_timeout=SLURMCTLD_TIMEOUT)
    assert controllers(ha_cluster) == ["login1", "login3"]
    converge(ha_cluster, ["head", "login1", "login3"])
    assert ping(ha_cluster, via="login3") == [("head", "UP"), ("login1", "UP"), ("login3", "UP")]
    wait_completed(ha_cluster, submit(ha_cluster, "true", via="login3"))


def test_reasserts_after_pcluster_rewrites_its_config(ha_cluster: Cluster) -> None:
    # update-cluster rewrites slurm_parallelcluster.conf; a re-render of slurm.conf would
    # drop our include as well: simulate both.
    (ha_cluster.etc / "slurm_parallelcluster.conf").write_text(
        "# rewritten by pcluster update-cluster\n" + ha_cluster.pcluster_include()
    )
    conf = ha_cluster.etc / "slurm.conf"
    conf.write_text(conf.read_text().split("# pwb-ha:")[0])
    login1_pid = ha_cluster.hosts["login1"].daemon_pid("slurmctld")
    assert ha_cluster.reconcile("head").strip() == "reconfigured"
    assert conf.read_text().rstrip().endswith(f"include {ha_cluster.etc}/pwb_ha.conf")
    assert ha_cluster.reconcile("login1").strip() in {"restarted", "restarted-hung"}
    assert ha_cluster.hosts["login1"].daemon_pid("slurmctld") != login1_pid
    config = ha_cluster.hosts["login3"].run(["scontrol", "show", "config"])
    assert re.search(rf"^StateSaveLocation\s*=\s*{ha_cluster.shared}/state$", config, re.M)
    converge(ha_cluster, ["head", "login1", "login3"])
    assert ping(ha_cluster) == [("head", "UP"), ("login1", "UP"), ("login3", "UP")]


def test_concurrent_runs_leave_one_correct_list(ha_cluster: Cluster) -> None:
    (ha_cluster.etc / "pwb_ha_controllers.conf").write_text("SlurmctldHost=bogus(10.77.7.99)\n")
    names = ["head", "login1", "login3"]
    procs = [
        subprocess.Popen(
            ha_cluster.hosts[n].argv(
                [
                    "python3",
                    "/run/pwbha/ha/bin/reconcile.py",
                    "--config",
                    "/run/pwbha/ha/reconcile.json",
                    "--no-apply",
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in names
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert controllers(ha_cluster) == ["login1", "login3"]
    text = (ha_cluster.etc / "slurm.conf").read_text()
    assert text.count(f"include {ha_cluster.etc}/pwb_ha.conf") == 1
    converge(ha_cluster, names)
    assert ping(ha_cluster) == [("head", "UP"), ("login1", "UP"), ("login3", "UP")]
