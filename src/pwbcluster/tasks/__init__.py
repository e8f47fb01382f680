"""invoke collections, one module per area; ``build_namespace`` assembles them.

A task parses its flags, calls one library function and turns the project's own
``ToolkitError`` into ``invoke.Exit`` (see ``pwbcluster.tasks.common.wired``).
"""

from __future__ import annotations

import importlib

from invoke import Collection

# Areas whose module defines ``ns`` (a Collection). Top-level tasks (up, down, plan,
# status) come from ``pwbcluster.tasks.top``.
# Collection name -> module defining ``ns``. The aux.* collection lives in auxiliary.py:
# "aux" is a reserved file name on Windows.
AREAS = {
    "config": "config",
    "pcluster": "pcluster",
    "patch": "patch",
    "aux": "auxiliary",
    "image": "image",
    "cluster": "cluster",
    "users": "users",
    "prices": "prices",
    "audit": "audit",
    "lab": "lab",
}


def build_namespace() -> Collection:
    from pwbcluster.tasks import top

    ns = Collection()
    for task in top.TASKS:
        ns.add_task(task)
    for area, module_name in AREAS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        ns.add_collection(module.ns, name=area)
    ns.configure(top.DEFAULTS)
    return ns
