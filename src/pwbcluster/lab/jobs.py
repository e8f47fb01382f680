"""A Slurm job in the cluster lab: a directory user submits on a login node, the job runs
on a compute node as that user, and its output lands in the shared /home.

The user's session is opened through PAM first (``pamtester ... open_session``: pam_sss
and pam_mkhomedir make the home directory, as a first ssh login would), then ``sbatch``
runs as the user (``runuser``), and the job's output file is read back on the login node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pwbcluster.errors import ToolkitError
from pwbcluster.lab import users

if TYPE_CHECKING:
    from pwbcluster.lab.nodes import Cluster

JOB = 'printf "user=%s uid=%s host=%s home=%s\\n" "$(id -un)" "$(id -u)" "$(hostname)" "$HOME"'


@dataclass
class JobResult:
    job_id: str
    output: dict[str, str]
    seconds: float  # from sbatch to the output file on the login node
    owner_uid: int


def submit(
    cluster: Cluster, login: str, user: str, password: str, timeout: float = 90
) -> JobResult:
    node = cluster.nodes[login]
    session = users.pam(node, user, password, "authenticate", "acct_mgmt", "open_session")
    if session.returncode != 0:
        raise ToolkitError(f"{user} cannot open a session on {login}: {session.stderr.strip()}")
    home = f"/home/{user}"
    started = time.perf_counter()
    done = node.run(
        ["runuser", "-u", user, "--", "sbatch", "--parsable", f"--chdir={home}",
         f"--output={home}/lab-job-%j.out", f"--wrap={JOB}"],
        timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise ToolkitError(f"sbatch as {user} on {login} failed: {done.stderr.strip()}")
    job_id = done.stdout.strip().split(";")[0]
    out = node.path(f"{home}/lab-job-{job_id}.out")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().strip():
            break
        time.sleep(0.2)
    else:
        state = node.run(["scontrol", "show", "job", job_id], timeout=30).stdout
        raise ToolkitError(f"job {job_id} left no output in {timeout:.0f} s:\n{state}")
    seconds = time.perf_counter() - started
    fields = dict(part.split("=", 1) for part in out.read_text().split())
    return JobResult(job_id, fields, seconds, out.stat().st_uid)
