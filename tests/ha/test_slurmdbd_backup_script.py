"""cluster/ha/slurmdbd-backup.sh's refusals and its one-backup slot, without Slurm
running: a temporary etc and shared directory, stubs for slurmdbd and `aws`."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "cluster" / "ha" / "slurmdbd-backup.sh"
ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:t-AbCdEf"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chowns files to SlurmUser")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for sub in ("etc", "shared/controllers", "prefix/sbin", "bin"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "prefix/sbin/slurmdbd").write_text("#!/bin/sh\necho started >&2\n")
    (tmp_path / "prefix/sbin/slurmdbd").chmod(0o755)
    (tmp_path / "etc/slurmdbd.conf").write_text(
        "AuthType=auth/munge\nDbdPort=6819\nSlurmUser=slurm\n"
        "StorageType=accounting_storage/mysql\ninclude slurm_parallelcluster_slurmdbd.conf\n"
    )
    (tmp_path / "etc/slurm_parallelcluster_slurmdbd.conf").write_text(
        "DbdHost=head\nStorageHost=db.example\nStoragePort=3306\nStorageLoc=c\n"
        "StorageUser=admin\nStoragePass=head-copy\n"
    )
    return tmp_path


def run(tree: Path, secret: str, name: str = "login1") -> subprocess.CompletedProcess[str]:
    (tree / "secret").write_text(secret + "\n")
    aws = tree / "bin" / "aws"
    aws.write_text(f"#!/bin/sh\ncat {tree / 'secret'}\n")
    aws.chmod(0o755)
    env = {**os.environ, "PATH": f"{tree / 'bin'}:{os.environ['PATH']}"}
    argv = ["bash", str(SCRIPT), "--shared-dir", str(tree / "shared"), "--password-secret-arn"]
    argv += [ARN, "--region", "eu-west-1", "--slurm-etc", str(tree / "etc"), "--slurm-prefix"]
    argv += [str(tree / "prefix"), "--hostname", name, "--conf-dir", str(tree / f"conf-{name}")]
    argv += ["--run-dir", str(tree / f"run-{name}"), "--init", "none"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)


def test_writes_the_backup_conf_0600_with_the_secret_and_no_password_in_output(
    tree: Path,
) -> None:
    proc = run(tree, "s3cr#t$!")
    assert proc.returncode == 0, proc.stderr
    conf = tree / "conf-login1" / "slurmdbd.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    text = conf.read_text()
    assert "DbdHost=head\n" in text and "DbdBackupHost=login1\n" in text
    assert "StoragePass=s3cr\\#t$!\n" in text  # '#' escaped: slurmdbd.conf(5) comments
    assert "head-copy" not in text  # the head's own password line is never read
    assert "s3cr" not in proc.stdout + proc.stderr
    accounting = (tree / "etc" / "pwb_ha_accounting.conf").read_text()
    assert "AccountingStorageBackupHost=login1\n" in accounting
    assert list((tree / "conf-login1").iterdir()) == [conf]  # no temporary password file


def test_refuses_a_cluster_without_accounting(tree: Path) -> None:
    (tree / "etc" / "slurm_parallelcluster_slurmdbd.conf").unlink()
    proc = run(tree, "pw")
    assert proc.returncode == 1
    assert "SlurmSettings.Database) is not enabled" in proc.stderr


def test_refuses_a_password_slurmdbd_conf_cannot_hold(tree: Path) -> None:
    proc = run(tree, "two words")
    assert proc.returncode == 1 and "cannot hold it" in proc.stderr
    assert not (tree / "conf-login1" / "slurmdbd.conf").exists()


def test_one_backup_slot_taken_over_only_from_a_silent_holder(tree: Path) -> None:
    assert run(tree, "pw", "login1").returncode == 0
    beat = tree / "shared" / "controllers" / "login1.json"
    beat.write_text("{}")
    second = run(tree, "pw", "login2")
    assert second.returncode == 0 and "login1 is the backup slurmdbd" in second.stderr
    assert not (tree / "conf-login2").exists()
    old = time.time() - 600
    os.utime(beat, (old, old))
    third = run(tree, "pw", "login2")
    assert third.returncode == 0 and "taking it" in third.stderr
    assert (tree / "shared" / "dbd-backup").read_text() == "login2\n"
