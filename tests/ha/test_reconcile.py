"""The reconciler's logic without Slurm daemons: config parsing, the list, the lock,
idempotence and the decision to start, restart or reconfigure (no root needed)."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import sys
from pathlib import Path
from types import ModuleType

import pytest

RECONCILE = Path(__file__).resolve().parents[2] / "cluster" / "ha" / "reconcile.py"


def load_reconcile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pwb_ha_reconcile", RECONCILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rc = load_reconcile()


def make_settings(tmp: Path, hostname: str = "head", role: str = "head", **extra: object):
    etc = tmp / "etc"
    etc.mkdir(exist_ok=True)
    if not (etc / "slurm.conf").exists():
        (etc / "slurm.conf").write_text(
            "ClusterName=t\nStateSaveLocation=/var/spool/slurm.state\n"
            "SlurmctldTimeout=300\ninclude slurm_parallelcluster.conf\n"
            f"SlurmctldPidFile={tmp}/slurmctld.pid\n"
        )
        (etc / "slurm_parallelcluster.conf").write_text("SlurmctldHost=head(10.0.0.10)\n")
    raw = {
        "role": role,
        "hostname": hostname,
        "address": f"10.0.0.{len(hostname)}",
        "shared_dir": str(tmp / "efs"),
        "slurm_etc": str(etc),
        "slurm_prefix": "/usr",
        "slurmctld_timeout": "5",
        "stale_after": "120",
        "init": "none",
        "slurmctld_unit": "slurmctld.service",
        "local_dir": str(tmp / "local" / hostname),
    }
    raw.update({k: str(v) for k, v in extra.items()})
    path = tmp / f"{hostname}.json"
    path.write_text(json.dumps(raw))
    return rc.Settings.load(path, None)


def backups(settings) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in settings.controllers_conf.read_text().splitlines()
        if line.startswith("SlurmctldHost=")
    ]


def test_first_run_writes_settings_list_and_include_last(tmp_path: Path) -> None:
    head = make_settings(tmp_path)
    assert rc.update_shared_config(head) is True
    ha = head.ha_conf.read_text()
    assert f"StateSaveLocation={tmp_path}/efs/state\n" in ha
    assert "SlurmctldTimeout=5\n" in ha
    assert head.slurm_conf.read_text().rstrip().endswith(f"include {head.ha_conf}")
    assert backups(head) == []  # the head itself is pcluster's line, never duplicated
    assert rc.update_shared_config(head) is False


def test_logins_are_added_in_registration_order_and_keep_their_index(tmp_path: Path) -> None:
    head = make_settings(tmp_path)
    rc.update_shared_config(head)
    for name in ("login2", "login1"):
        rc.update_shared_config(make_settings(tmp_path, name, "login"))
    assert backups(head) == ["login2(10.0.0.6)", "login1(10.0.0.6)"]
    rc.update_shared_config(make_settings(tmp_path, "login1", "login"))
    assert backups(head) == ["login2(10.0.0.6)", "login1(10.0.0.6)"]


def test_a_silent_login_is_removed_and_rejoins_last(tmp_path: Path) -> None:
    head = make_settings(tmp_path)
    for name in ("login1", "login2"):
        rc.update_shared_config(make_settings(tmp_path, name, "login"))
    beat = head.heartbeats / "login1.json"
    data = json.loads(beat.read_text())
    data["updated"] -= 300
    beat.write_text(json.dumps(data))
    assert rc.update_shared_config(head) is True
    assert backups(head) == ["login2(10.0.0.6)"]
    assert not beat.exists()
    rc.update_shared_config(make_settings(tmp_path, "login1", "login"))
    assert backups(head) == ["login2(10.0.0.6)", "login1(10.0.0.6)"]


def test_include_is_moved_back_to_the_end_and_restored_after_a_rewrite(tmp_path: Path) -> None:
    head = make_settings(tmp_path)
    rc.update_shared_config(head)
    with head.slurm_conf.open("a") as handle:
        handle.write("include pcluster/custom_slurm_settings_include_file_slurm.conf\n")
    assert rc.ensure_include_last(head) is True
    lines = head.slurm_conf.read_text().splitlines()
    assert lines[-1] == f"include {head.ha_conf}"
    assert sum(line == f"include {head.ha_conf}" for line in lines) == 1
    head.slurm_conf.write_text("ClusterName=t\ninclude slurm_parallelcluster.conf\n")
    assert rc.update_shared_config(head) is True
    assert head.slurm_conf.read_text().rstrip().endswith(f"include {head.ha_conf}")


def test_no_slurmctldhost_at_all_is_an_error(tmp_path: Path) -> None:
    head = make_settings(tmp_path)
    (tmp_path / "etc" / "slurm_parallelcluster.conf").write_text("# emptied\n")
    with pytest.raises(rc.ReconcileError, match="no SlurmctldHost"):
        rc.update_shared_config(head)


def _hold_lock(
    path: str,
    held: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
    release: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
) -> None:
    with rc.shared_lock(Path(path)):
        held.set()
        release.wait(30)


def test_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    lock = tmp_path / "reconcile.lock"
    held, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(lock), held, release))
    holder.start()
    try:
        assert held.wait(10)
        with (
            pytest.raises(rc.ReconcileError, match="held by another run"),
            rc.shared_lock(lock, wait=0.3),
        ):
            pass
        # The holder still holds it (it waits for `release`), so the refusal above was
        # the lock's doing; once it lets go, the lock is ours.
        assert holder.is_alive()
        release.set()
        with rc.shared_lock(lock, wait=30):
            holder.join(10)
            assert not holder.is_alive()
    finally:
        release.set()
        holder.join(10)


def _register(tmp: str, name: str) -> None:
    with rc.shared_lock(Path(tmp) / "efs" / "reconcile.lock"):
        rc.update_shared_config(make_settings(Path(tmp), name, "login"))


def test_concurrent_runs_leave_one_list(tmp_path: Path) -> None:
    rc.update_shared_config(make_settings(tmp_path))
    names = [f"login{i}" for i in range(6)] * 2
    procs = [multiprocessing.Process(target=_register, args=(str(tmp_path), n)) for n in names]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    listed = [b.split("(")[0] for b in backups(make_settings(tmp_path))]
    assert sorted(listed) == sorted(set(names))
    text = (tmp_path / "etc" / "slurm.conf").read_text()
    assert text.count("pwb_ha.conf") == 1


@pytest.fixture
def standby(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """login1 listed second, its slurmctld 'running' with pid 4242; records actions."""
    rc.update_shared_config(make_settings(tmp_path))
    login = make_settings(tmp_path, "login1", "login")
    rc.update_shared_config(login)
    calls: list[str] = []
    state = {"pid": 4242, "in_control": False}
    monkeypatch.setattr(rc, "slurmctld_pid", lambda s: state["pid"])
    monkeypatch.setattr(rc, "in_control", lambda s: state["in_control"])
    state["hung"] = False
    monkeypatch.setattr(rc, "hung", lambda s, pid: state["hung"])
    monkeypatch.setattr(
        rc,
        "start_local",
        lambda s, restart, grace=20.0: calls.append("restart" if restart else "start"),
    )

    def fake_run(argv, timeout=30):
        calls.append(" ".join(argv[1:]))
        return rc.subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(rc, "run", fake_run)
    return login, calls, state


def test_apply_records_and_then_leaves_a_running_controller_alone(standby) -> None:
    login, calls, _ = standby
    assert rc.apply_locally(login, list_changed=True) == "restarted"
    # No controller answered the ping: nobody to tell first, so told after the restart.
    assert calls == ["ping", "restart", "reconfigure"]
    calls.clear()
    assert rc.apply_locally(login, list_changed=False) == "unchanged"
    assert calls == []


def test_a_new_list_reaches_the_controller_in_charge_before_the_backup_starts(
    standby, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slurm 23.11+: a primary restarted by reconfigure waits up to 30 s on a backup that
    has just started (its listeners are quiesced until the primary's heartbeat exists):
    the reconfigure goes first, the backup starts once a controller answers again."""
    login, calls, state = standby
    state["pid"] = None
    answers = iter(
        [
            "Slurmctld(primary) at head is UP\nSlurmctld(backup) at login1 is DOWN\n",
            "Slurmctld(primary) at head is DOWN\nSlurmctld(backup) at login1 is DOWN\n",
            "Slurmctld(primary) at head is UP\nSlurmctld(backup) at login1 is DOWN\n",
        ]
    )

    def fake_run(argv, timeout=30):
        calls.append(" ".join(argv[1:]))
        out = next(answers) if argv[-1] == "ping" else ""
        return rc.subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(rc, "run", fake_run)
    monkeypatch.setattr(rc.time, "sleep", lambda secs: None)
    assert rc.apply_locally(login, list_changed=True) == "started"
    assert calls == ["ping", "reconfigure", "ping", "ping", "start"]


def test_tell_first_gives_up_waiting_after_the_settle_time(
    standby, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    login, calls, state = standby
    state["pid"] = None
    up_once = iter(["Slurmctld(primary) at head is UP\n"])

    def fake_run(argv, timeout=30):
        calls.append(" ".join(argv[1:]))
        out = next(up_once, "Slurmctld(primary) at head is DOWN\n") if argv[-1] == "ping" else ""
        return rc.subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(rc, "run", fake_run)
    monkeypatch.setattr(rc, "RECONFIGURE_SETTLE", 0.3)
    assert rc.apply_locally(login, list_changed=True) == "started"
    assert calls[:2] == ["ping", "reconfigure"] and calls[-1] == "start"
    assert calls.count("reconfigure") == 1
    assert "no controller answered within" in caplog.text


def test_apply_starts_a_stopped_controller(standby) -> None:
    login, calls, state = standby
    state["pid"] = None
    assert rc.apply_locally(login, list_changed=False) == "started"
    assert calls == ["start"]


def test_apply_reconfigures_the_controller_in_charge_restarts_a_standby(standby) -> None:
    login, calls, state = standby
    rc.apply_locally(login, list_changed=False)
    (login.slurm_etc / "slurm_parallelcluster.conf").write_text(
        "# rewritten\nSlurmctldHost=head(10.0.0.10)\n"
    )
    state["in_control"] = True
    calls.clear()
    assert rc.apply_locally(login, list_changed=False) == "reconfigured"
    assert calls == ["reconfigure"]
    with login.ha_conf.open("a") as handle:
        handle.write("# another change\n")
    state["in_control"] = False
    calls.clear()
    assert rc.apply_locally(login, list_changed=False) == "restarted"
    assert calls == ["restart"]


def test_apply_leaves_an_unlisted_node_alone(tmp_path: Path, standby) -> None:
    _, calls, _ = standby
    stranger = make_settings(tmp_path, "login9", "login")
    calls.clear()
    assert rc.apply_locally(stranger, list_changed=False) == "not-listed"
    assert calls == []


def test_ping_parsing_first_up_controller_is_in_charge(standby, monkeypatch) -> None:
    login, _, _ = standby
    monkeypatch.undo()
    out = (
        "Slurmctld(primary) at head is DOWN\nSlurmctld(backup1) at login1 is UP\n"
        "Slurmctld(backup2) at login2 is UP\n"
    )
    monkeypatch.setattr(
        rc, "run", lambda argv, timeout=30: rc.subprocess.CompletedProcess(argv, 0, out, "")
    )
    assert rc.in_control(login) is True
    out = out.replace("head is DOWN", "head is UP")
    assert rc.in_control(login) is False


def test_apply_restarts_a_hung_controller(standby) -> None:
    login, calls, state = standby
    rc.apply_locally(login, list_changed=False)
    calls.clear()
    state["hung"] = True
    assert rc.apply_locally(login, list_changed=False) == "restarted-hung"
    assert calls == ["restart"]


def test_hung_needs_two_failed_pings_on_an_old_process(standby, monkeypatch) -> None:
    login, _, _ = standby
    monkeypatch.undo()
    answers = iter([[("head", "UP"), ("login1", "DOWN")], [("head", "UP"), ("login1", "UP")]])
    monkeypatch.setattr(rc, "ping", lambda s: next(answers))
    monkeypatch.setattr(rc, "process_age", lambda pid: 60.0)
    monkeypatch.setattr(rc.time, "sleep", lambda secs: None)
    assert rc.hung(login, 4242) is False  # answered the second time
    monkeypatch.setattr(rc, "ping", lambda s: [("head", "UP"), ("login1", "DOWN")])
    assert rc.hung(login, 4242) is True
    monkeypatch.setattr(rc, "process_age", lambda pid: 3.0)
    assert rc.hung(login, 4242) is False  # just started: not answering yet is normal


def test_systemd_nodes_start_and_restart_through_their_unit(tmp_path, monkeypatch) -> None:
    login = make_settings(
        tmp_path, "login1", "login", init="systemd", slurmctld_unit="pwb-slurmctld.service"
    )
    calls: list[str] = []
    pids = iter([None, 4242, 4242, 4243])
    monkeypatch.setattr(rc, "slurmctld_pid", lambda s: next(pids))
    monkeypatch.setattr(
        rc,
        "run",
        lambda argv, timeout=30: (
            calls.append(" ".join(argv)),
            rc.subprocess.CompletedProcess(argv, 0, "", ""),
        )[1],
    )
    rc.start_local(login, restart=False)
    rc.start_local(login, restart=True)
    assert calls == [
        "systemctl start pwb-slurmctld.service",
        "systemctl restart pwb-slurmctld.service",
    ]


def test_a_unit_that_does_not_start_is_an_error(tmp_path, monkeypatch) -> None:
    head = make_settings(tmp_path, init="systemd")
    monkeypatch.setattr(rc, "slurmctld_pid", lambda s: None)
    monkeypatch.setattr(
        rc,
        "run",
        lambda argv, timeout=30: rc.subprocess.CompletedProcess(
            argv, 1, "", "Job for slurmctld.service failed"
        ),
    )
    with pytest.raises(rc.ReconcileError, match="did not start on head: Job for"):
        rc.start_local(head, restart=False)


@pytest.fixture
def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """login1's watcher with a fake clock, ping, log and kill; records what it does."""
    rc.update_shared_config(make_settings(tmp_path))
    login = make_settings(tmp_path, "login1", "login")
    log_file = tmp_path / "slurmctld.log"
    conf = login.slurm_conf
    conf.write_text(conf.read_text() + f"SlurmctldLogFile={log_file}\n")
    state: dict = {"pid": 4242, "age": 600.0, "answers": True, "killed": [], "started": 0}
    monkeypatch.setattr(rc, "slurmctld_pid", lambda s: state["pid"])
    monkeypatch.setattr(rc, "process_age", lambda pid: state["age"])
    monkeypatch.setattr(rc, "answers", lambda s, t: state["answers"])
    monkeypatch.setattr(rc.os, "kill", lambda pid, sig: state["killed"].append((pid, sig)))

    def fake_start(settings, restart, grace=20.0):
        state["started"] += 1
        state["pid"] = 4343

    monkeypatch.setattr(rc, "start_local", fake_start)
    return rc.HandbackWatch(login, grace=4.0), log_file, state


def test_watch_kills_a_silent_controller_in_charge_after_the_grace(watched) -> None:
    watch, log_file, state = watched
    log_file.write_text(
        "slurmctld running in background mode\n"
        "ControlMachine head not responding, BackupController1 login1 taking over\n"
        "Performing RPC: REQUEST_CONTROL\nSaving all slurm state\n"
    )
    assert watch.check(now=0.0) == "answers"
    state["answers"] = False
    assert watch.check(now=100.0) == "silent"
    assert watch.check(now=103.9) == "silent"
    assert state["killed"] == []
    assert watch.check(now=104.5) == "killed-hung"
    assert state["killed"] == [(4242, rc.signal.SIGKILL)]
    assert state["started"] == 1
    # The new process is watched from scratch: one silent probe is not enough.
    assert watch.check(now=105.0) == "silent"
    assert len(state["killed"]) == 1


def test_watch_leaves_a_silent_standby_and_a_young_process_alone(watched) -> None:
    watch, log_file, state = watched
    log_file.write_text(
        "ControlMachine head not responding, BackupController1 login1 taking over\n"
        "Running as primary controller\nPerforming RPC: REQUEST_CONTROL\n"
        "slurmctld running in background mode\n"  # handed back: a standby again
    )
    state["answers"] = False
    for now in (0.0, 10.0, 60.0):
        assert watch.check(now=now) == "silent"
    log_file.write_text("taking over\n")
    state["age"] = 3.0  # just (re)started: not answering yet is normal
    assert watch.check(now=70.0) == "young"
    assert state["killed"] == []


def test_watch_silence_must_be_unbroken(watched) -> None:
    watch, log_file, state = watched
    log_file.write_text("taking over\n")
    state["answers"] = False
    assert watch.check(now=0.0) == "silent"
    state["answers"] = True
    assert watch.check(now=3.0) == "answers"
    state["answers"] = False
    assert watch.check(now=5.0) == "silent"  # 5 s since the first, 0 s since this silence
    assert state["killed"] == []
