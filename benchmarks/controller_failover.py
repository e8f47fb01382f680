#!/usr/bin/env python3
"""Kill-and-takeover rounds on real Slurm in network namespaces; prints takeover times, jobs
lost and the failback gap.

    sudo .venv/bin/python benchmarks/controller_failover.py [--rounds 5] [--slurmctld-timeout N]
        [--hang] [--no-watch] [--watch-grace S] [--suite bookworm|trixie|forky|all]

--suite runs the rounds on that Debian suite's Slurm (22.05, 24.11, 26.05): natively when
it is the host's own, else chrooted in a debootstrap root (src/pwbcluster/lab/rootfs.py,
cached, built when absent; tests/ha/harness.py PWBHA_SLURM_ROOT), and ends with one table
row per suite. Without it: the host's Slurm (or PWBHA_SLURM_ROOT's).

Hosts head, login1 and compute1 (tests/ha/harness.py: 10.77.7.0/24, bridge pwbha0) are
set up from a ParallelCluster-shaped slurm.conf by cluster/ha/controller-ha.sh, with
SlurmctldTimeout = --slurmctld-timeout (default: cluster.ha.slurmctld_timeout in
cluster/cluster.yaml). Each round:

  1. a job is started and left running for --run-before seconds (longer than slurmctld's
     5-s state-save coalescing, SAVE_MAX_WAIT);
  2. during the last --burst seconds before the kill, one held job is submitted every
     --every seconds ("accepted in the last seconds");
  3. `kill -9` of the head's slurmctld; `sbatch` from login1 is retried until accepted
     (client-visible takeover) and the backup's log gives the moment it took over;
  4. the running job must finish COMPLETED; each burst job must still exist under its
     own name (a lost job's id is reused, so the id alone proves nothing);
  5. the head's slurmctld is restarted by the reconciler and takes control back, while
     `sinfo` from login1 is polled every 0.2 s (2-s timeout): the longest interval with
     no controller answering is the failback gap. With --hang, the backup in charge is
     frozen (SIGSTOP) just before the head returns, as the issue's backup hung in "Saving
     all slurm state" after REQUEST_CONTROL; its hand-back watcher (pwb-ha-handback,
     cluster/ha/reconcile.py --watch) runs unless --no-watch (the old behaviour: only
     the backup's next reconciler run, here right after the head is primary, ends it).

Then, unless --accounting-rounds 0, Slurm accounting (tests/ha/accounting.py: a real
MariaDB standing in for RDS, ParallelCluster's slurmdbd on the head): --accounting-rounds
fresh clusters with cluster/ha/slurmdbd-backup.sh's backup slurmdbd on login1, and one
without it, each running 7 jobs before, across and after `kill -9` of the head's slurmctld
and slurmdbd; prints jobs recorded (end time in the database) of jobs run, and the time
from the kill until a slurmdbd answers sacctmgr again.

Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ha"))
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

import harness  # noqa: E402

from pwbcluster.errors import ToolkitError  # noqa: E402
from pwbcluster.lab import rootfs  # noqa: E402
from tests.ha import accounting  # noqa: E402


def configured_slurmctld_timeout() -> int:
    text = (REPO / "cluster" / "cluster.yaml").read_text()
    match = re.search(r"^\s+slurmctld_timeout:\s*(\d+)", text, re.MULTILINE)
    if not match:
        raise SystemExit("cluster.ha.slurmctld_timeout not found in cluster/cluster.yaml")
    return int(match[1])


def job_field(cluster: harness.Cluster, job_id: str, field: str) -> str:
    out = cluster.hosts["login1"].run(["scontrol", "-o", "show", "job", job_id], check=False)
    match = re.search(rf"\b{field}=(\S+)", out)
    return match[1] if match else ""


def submit(cluster: harness.Cluster, *args: str) -> str:
    out = cluster.hosts["login1"].run(["sbatch", "--parsable", *args], timeout=120)
    return out.strip().split(";")[0]


def wait(what: str, check, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def takeover_logged_at(cluster: harness.Cluster, after: float) -> float | None:
    """Wall-clock time of the backup's 'taking over' line that follows `after`."""
    text = (cluster.base / "hosts" / "login1" / "slurmctld.log").read_text(errors="replace")
    for line in text.splitlines():
        if "taking over" in line:
            stamp = datetime.fromisoformat(line[1:24]).timestamp()
            if stamp >= after - 0.5:
                return stamp
    return None


def node_state(cluster: harness.Cluster) -> str:
    out = cluster.hosts["login1"].run(["sinfo", "-h", "-n", "compute1", "-o", "%T"], check=False)
    return out.strip()


def run_round(cluster: harness.Cluster, index: int, args: argparse.Namespace) -> dict:
    # A hand-back killed mid-way can leave the head with the last save's view (a job the
    # backup saw end still holding compute1): wait until the node is free and say how long.
    free_from = time.time()
    wait("compute1 idle", lambda: node_state(cluster) == "idle", timeout=300)
    busy_wait = time.time() - free_from
    running = submit(
        cluster,
        "--job-name",
        f"run-{index}",
        "--wrap",
        f"sleep {args.run_before + args.slurmctld_timeout + 6}",
    )
    wait("running job to start", lambda: job_field(cluster, running, "JobState") == "RUNNING")
    started = time.time()
    kill_at = started + args.run_before
    burst: list[tuple[str, str, float]] = []
    next_submit = kill_at - args.burst
    while time.time() < kill_at:
        if time.time() >= next_submit:
            name = f"burst-{index}-{len(burst)}"
            burst.append(
                (submit(cluster, "--hold", "--job-name", name, "--wrap", "true"), name, time.time())
            )
            next_submit += args.every
        time.sleep(0.01)
    killed = time.time()
    cluster.kill9("head")
    accepted = None
    while accepted is None and time.time() - killed < 120:
        try:  # sbatch retries by itself, but gives up after a while: so do it again
            submit(cluster, "--hold", "--job-name", f"after-{index}", "--wrap", "true")
            accepted = time.time()
        except RuntimeError as exc:
            print(f"  sbatch gave up after {time.time() - killed:.1f} s: {exc}", flush=True)
    if accepted is None:
        raise SystemExit("no backup took over within 120 s")
    logged = takeover_logged_at(cluster, killed)
    wait(
        "running job to end",
        lambda: (
            job_field(cluster, running, "JobState")
            not in {"RUNNING", "PENDING", "COMPLETING", "CONFIGURING"}
        ),
        timeout=120,
    )
    running_lost = int(job_field(cluster, running, "JobState") != "COMPLETED")
    # A lost job's id given to a different job (what a client holding the id would see)
    # rather than simply gone.
    reused = sum(
        1 for job_id, name, _ in burst if job_field(cluster, job_id, "JobName") not in {name, ""}
    )
    lost_ages = [
        killed - at for job_id, name, at in burst if job_field(cluster, job_id, "JobName") != name
    ]
    cluster.hosts["login1"].run(["scancel", "--user", "root", "--state", "PENDING"], check=False)
    head_log = cluster.base / "hosts" / "head" / "slurmctld.log"
    primary_runs = head_log.read_text(errors="replace").count("Running as primary controller")
    backup_pid = cluster.hosts["login1"].daemon_pid("slurmctld")
    if args.hang and backup_pid is not None:
        os.kill(backup_pid, signal.SIGSTOP)
    with harness.AnswerProbe(cluster.hosts["login1"]) as probe:
        restarted = time.time()
        cluster.reconcile("head")  # restarts the head's slurmctld, which takes control back
        wait(
            "control back on the head",
            lambda: (
                head_log.read_text(errors="replace").count("Running as primary controller")
                > primary_runs
            ),
            timeout=180,
        )
        failback = time.time() - restarted
        answered = len(probe.answered)
        wait("a controller to answer", lambda: len(probe.answered) > answered, timeout=60)
    silence = probe.longest_silence()
    watcher_killed = backup_pid is not None and not harness.pid_alive(backup_pid)
    # What the new primary recovered: the job the backup saw COMPLETE before the hand-back.
    after_failback = job_field(cluster, running, "JobState")
    # The backup's own timer: restarts it if it hung while handing control back.
    backup_action = cluster.reconcile("login1").strip()
    cluster.hosts["head"].run(
        ["scontrol", "update", "nodename=compute1", "state=resume"], check=False
    )
    return {
        "client": accepted - killed,
        "failback": failback,
        "silence": silence,
        "watcher_killed": watcher_killed,
        "after_failback": after_failback,
        "busy_wait": busy_wait,
        "backup_action": backup_action,
        "logged": (logged - killed) if logged else None,
        "running_lost": running_lost,
        "burst": len(burst),
        "burst_lost": len(lost_ages),
        "lost_ages": lost_ages,
        "reused": reused,
        "newest_kept": min(
            (
                killed - at
                for job_id, name, at in burst
                if job_field(cluster, job_id, "JobName") == name
            ),
            default=None,
        ),
    }


def run_suite(args: argparse.Namespace, root: Path | None) -> tuple[list[dict], str]:
    """All rounds on one Slurm (root None: the host's). Returns the rounds and the version."""
    version = harness.slurm_version(root)
    print(f"\n=== Slurm {version} ({root or 'the host'})", flush=True)
    cluster = harness.Cluster(root=root)
    rounds: list[dict] = []
    try:
        cluster.start(("head", "login1", "compute1"))
        cluster.start_slurmctld("head")
        cluster.start_slurmd("compute1")
        cluster.controller_ha("head", "head", slurmctld_timeout=args.slurmctld_timeout)
        cluster.controller_ha("login1", "login", slurmctld_timeout=args.slurmctld_timeout)
        for _ in range(3):
            cluster.reconcile("head")
            cluster.reconcile("login1")
        if not args.no_watch:
            cluster.start_watcher("login1", grace=args.watch_grace)
        for index in range(args.rounds):
            try:
                result = run_round(cluster, index, args)
            except (TimeoutError, SystemExit, RuntimeError) as exc:
                print(f"round {index + 1} failed: {exc}", flush=True)
                for name in ("head", "login1"):
                    log = cluster.base / "hosts" / name / "slurmctld.log"
                    tail = log.read_text(errors="replace").splitlines()[-12:]
                    print(f"--- {name} slurmctld.log\n" + "\n".join(tail), flush=True)
                break
            rounds.append(result)
            logged = result["logged"]
            print(
                f"round {index + 1}: takeover {result['client']:.2f} s (client), "
                f"{logged:.2f} s (backup log); running lost {result['running_lost']}; "
                f"burst lost {result['burst_lost']}/{result['burst']} "
                f"(ages at kill: {', '.join(f'{a:.1f}' for a in result['lost_ages'])}); "
                f"failback {result['failback']:.2f} s, longest no-answer "
                f"{result['silence']:.2f} s, backup "
                f"{'killed by watcher' if result['watcher_killed'] else 'kept'}, "
                f"then {result['backup_action']}; finished job as the head recovered it: "
                f"{result['after_failback'] or 'gone'}; waited {result['busy_wait']:.1f} s "
                "for compute1 idle before the round",
                flush=True,
            )
    finally:
        cluster.close()
    return rounds, version


def run_accounting(args: argparse.Namespace, root: Path | None) -> dict:
    """Accounting rounds on one Slurm: with the backup slurmdbd, then once without."""
    result: dict = {"with": [], "without": []}
    for with_backup, count in ((True, args.accounting_rounds), (False, 1)):
        for _ in range(count):
            try:
                record = accounting.head_kill_round(
                    with_backup, slurmctld_timeout=args.slurmctld_timeout, root=root
                )
            except RuntimeError as exc:
                print(f"accounting round failed: {exc}", flush=True)
                continue
            result["with" if with_backup else "without"].append(record)
            answer = record.dbd_answer_s
            print(
                f"accounting {'with' if with_backup else 'without'} the backup slurmdbd: "
                f"recorded {len(record.run & record.recorded)} of {len(record.run)} jobs run "
                f"(missing {sorted(record.missing, key=int)}), slurmdbd answering "
                f"{f'{answer:.2f} s after the kill' if answer is not None else 'never (15 s)'}",
                flush=True,
            )
    return result


def summarize_accounting(result: dict) -> str:
    """One line; also the table's cell."""
    with_backup, without = result["with"], result["without"]
    parts = []
    if with_backup:
        run = sum(len(r.run) for r in with_backup)
        got = sum(len(r.run & r.recorded) for r in with_backup)
        answers = [r.dbd_answer_s for r in with_backup if r.dbd_answer_s is not None]
        timing = (
            f"{statistics.median(answers):.2f} / {max(answers):.2f} s"
            if answers
            else "never answered"
        )
        parts.append(f"backup: {got} of {run} recorded, dbd answers {timing}")
    if without:
        run = sum(len(r.run) for r in without)
        got = sum(len(r.run & r.recorded) for r in without)
        parts.append(f"no backup: {got} of {run} recorded")
    return "; ".join(parts) or "no accounting round completed"


def summarize(args: argparse.Namespace, rounds: list[dict], version: str) -> None:
    client = [r["client"] for r in rounds]
    logged = [r["logged"] for r in rounds if r["logged"] is not None]
    lost_ages = [a for r in rounds for a in r["lost_ages"]]
    print(f"\nSlurmctldTimeout={args.slurmctld_timeout}, {len(rounds)} rounds, Slurm {version}")
    print(
        f"takeover (kill -9 -> sbatch accepted): median {statistics.median(client):.2f} s, "
        f"max {max(client):.2f} s"
    )
    if logged:
        print(
            f"takeover (kill -9 -> backup 'taking over'): median "
            f"{statistics.median(logged):.2f} s, max {max(logged):.2f} s"
        )
    failback = [r["failback"] for r in rounds]
    print(
        f"failback (head restarted -> head primary again): median "
        f"{statistics.median(failback):.2f} s, max {max(failback):.2f} s; backups found hung "
        f"and restarted: {sum(r['backup_action'] == 'restarted-hung' for r in rounds)}"
    )
    silence = [r["silence"] for r in rounds]
    print(
        f"failback, longest time no controller answered (sinfo from login1; "
        f"{'backup frozen, ' if args.hang else ''}"
        f"{'no watcher' if args.no_watch else f'watcher grace {args.watch_grace:g} s'}): "
        f"median {statistics.median(silence):.2f} s, max {max(silence):.2f} s; over 10 s: "
        f"{sum(x > 10 for x in silence)} of {len(rounds)}"
    )
    stale = sum(r["after_failback"] != "COMPLETED" for r in rounds)
    print(
        f"failback, state the head recovered: job finished under the backup not COMPLETED in "
        f"{stale} of {len(rounds)} rounds; longest wait for compute1 idle before a round "
        f"{max(r['busy_wait'] for r in rounds):.1f} s"
    )
    print(
        f"jobs lost, running at the kill: {sum(r['running_lost'] for r in rounds)} of {len(rounds)}"
    )
    print(
        f"jobs lost, accepted in the last {args.burst:.0f} s: {len(lost_ages)} of "
        f"{sum(r['burst'] for r in rounds)}; oldest lost was accepted "
        f"{max(lost_ages, default=0):.1f} s before the kill; their ids given to another "
        f"job after takeover: {sum(r['reused'] for r in rounds)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="kill-and-takeover rounds")
    parser.add_argument(
        "--slurmctld-timeout",
        type=int,
        default=None,
        help="SlurmctldTimeout (default: cluster.ha.slurmctld_timeout)",
    )
    parser.add_argument(
        "--run-before", type=float, default=8.0, help="seconds the running job runs before the kill"
    )
    parser.add_argument(
        "--burst",
        type=float,
        default=6.0,
        help="submit held jobs during this many seconds before the kill",
    )
    parser.add_argument("--every", type=float, default=0.5, help="seconds between burst jobs")
    parser.add_argument(
        "--hang",
        action="store_true",
        help="freeze (SIGSTOP) the backup in charge just before the head returns",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="do not run the hand-back watcher on login1 (the behaviour before it)",
    )
    parser.add_argument(
        "--suite",
        choices=[*rootfs.MATRIX, "all"],
        default=None,
        help="Debian suite whose Slurm to run on, or all three [the host's]",
    )
    parser.add_argument(
        "--accounting-rounds",
        type=int,
        default=1,
        help="accounting rounds with the backup slurmdbd (plus one without); 0 skips [1]",
    )
    parser.add_argument(
        "--watch-grace",
        type=float,
        default=4.0,
        help="the watcher's --watch-grace (controller-ha.sh --handback-grace) [4]",
    )
    args = parser.parse_args()
    args.slurmctld_timeout = args.slurmctld_timeout or configured_slurmctld_timeout()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still clean up when killed
    reason = harness.unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    suites = list(rootfs.MATRIX) if args.suite == "all" else [args.suite] if args.suite else []
    results: list[tuple[str, str, list[dict], str]] = []
    try:
        for suite in suites or [""]:
            root = harness.slurm_root()
            if suite:
                root = (
                    None if rootfs.runs_natively(suite) else rootfs.ensure(rootfs.RootSpec(suite))
                )
            rounds, version = run_suite(args, root)
            if not rounds:
                print("no round completed")
            else:
                summarize(args, rounds, version)
            acct = ""
            if args.accounting_rounds > 0 and accounting.unavailable_reason() is None:
                acct = summarize_accounting(run_accounting(args, root))
                print(f"accounting (kill -9 of the head's slurmctld and slurmdbd): {acct}")
            elif args.accounting_rounds > 0:
                acct = f"not run: {accounting.unavailable_reason()}"
                print(f"accounting {acct}")
            results.append((suite or "host", version, rounds, acct))
    except ToolkitError as exc:  # no debootstrap, not root, a failed build
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if len(results) > 1:
        print_table(results)
    return 0 if all(rounds for _, _, rounds, _ in results) else 1


def print_table(results: list[tuple[str, str, list[dict], str]]) -> None:
    """One row per Slurm: the figures issue 16 asks for, per version."""
    print(
        "\n| suite | Slurm | rounds | takeover median / max (s) | running jobs lost | "
        "accepted-before-kill lost | failback no-controller gap median / max (s) | "
        "accounting across a head kill |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for suite, version, rounds, acct in results:
        if not rounds:
            print(f"| {suite} | {version} | 0 | no round completed | | | | {acct} |")
            continue
        client = [r["client"] for r in rounds]
        silence = [r["silence"] for r in rounds]
        print(
            f"| {suite} | {version.split()[-1]} | {len(rounds)} | "
            f"{statistics.median(client):.2f} / {max(client):.2f} | "
            f"{sum(r['running_lost'] for r in rounds)} of {len(rounds)} | "
            f"{sum(r['burst_lost'] for r in rounds)} of {sum(r['burst'] for r in rounds)} | "
            f"{statistics.median(silence):.2f} / {max(silence):.2f} | {acct} |"
        )


if __name__ == "__main__":
    sys.exit(main())
