"""Slurm accounting across a head-node kill, on real Slurm and a real MariaDB (the RDS
stand-in): with cluster/ha/slurmdbd-backup.sh's backup slurmdbd every job run before,
across and after `kill -9` of the head's slurmctld and slurmdbd is recorded; without it
(ParallelCluster's layout: slurmdbd on the head only) the jobs that end after the kill
are not in the database (their records stay queued in the surviving slurmctld)."""

from __future__ import annotations

import pytest

from . import accounting
from .harness import slurm_root, slurm_version, unavailable_reason, version_tuple

pytestmark = [
    pytest.mark.root,
    pytest.mark.slurm,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
    pytest.mark.skipif(
        accounting.unavailable_reason() is not None, reason=str(accounting.unavailable_reason())
    ),
]


def _slurm() -> tuple[int, ...]:
    return version_tuple(slurm_version(slurm_root())) if unavailable_reason() is None else ()


@pytest.mark.xfail(
    _slurm() >= (26, 5),
    strict=True,
    reason="on Debian testing's Slurm 26.05 the backup slurmdbd took control and then no "
    "longer answered slurmctld (connection refused on login1:6819 about 30 s later); the "
    "jobs ending after the kill were not recorded: not yet explained",
)
def test_backup_slurmdbd_records_every_job_across_a_head_kill() -> None:
    record = accounting.head_kill_round(with_backup=True)
    assert record.dbd_answer_s is not None, "no slurmdbd answered after the head kill"
    assert record.missing == set(), f"not recorded: {sorted(record.missing)} of {record.phases}"
    assert record.run <= record.sacct, f"sacct lacks {sorted(record.run - record.sacct)}"
    assert record.conf_mode == "0o600 slurm"
    assert record.password_in_logs == []


def test_without_the_backup_jobs_ending_after_the_kill_are_not_recorded() -> None:
    """The counterpart: the same round with ParallelCluster's single slurmdbd."""
    record = accounting.head_kill_round(with_backup=False)
    assert record.dbd_answer_s is None
    assert set(record.phases["before"]) <= record.recorded
    ended_after_kill = (
        set(record.phases["across"]) | set(record.phases["after"])
    ) & record.finished
    assert ended_after_kill, f"no job ended after the kill: {record.phases}"
    recorded = ended_after_kill & record.recorded
    assert recorded == set(), f"recorded without a slurmdbd: {sorted(recorded)}"
