"""invoke tasks: wiring only. Each area's tasks live in pwbcluster.tasks.<area>.

`invoke --list` shows them all; `invoke --help TASK` shows a task's flags. Defaults
live in ``ns.configure`` so invoke.yaml or INVOKE_* environment variables override them.
"""

from __future__ import annotations

from pwbcluster.tasks import build_namespace

ns = build_namespace()
