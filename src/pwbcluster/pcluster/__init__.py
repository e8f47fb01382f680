"""ParallelCluster: the pinned venv, the login-LB patch, offline validation and synthesis.

- ``venv``: ``ensure_venv()``, ``pcluster_python()``, ``pcluster_cli()``.
- ``patch``: apply/check/revert the patches in ``patches/`` to the venv's pcluster.
- ``offline``: validate rendered configs and synthesise CloudFormation under moto.
"""

from __future__ import annotations

from pwbcluster.pcluster.venv import PCLUSTER_VERSION, ensure_venv, pcluster_cli, pcluster_python

__all__ = ["PCLUSTER_VERSION", "ensure_venv", "pcluster_cli", "pcluster_python"]
