"""invoke collections, one module per area; ``build_namespace`` assembles them.

A task parses its flags, calls one library function and turns the project's own
``ToolkitError`` into ``invoke.Exit`` (see ``pwbcluster.tasks.common.wired``).
"""

from __future__ import annotations

import importlib

from invoke import Collection

# Areas whose module defines ``ns`` (a Collection). Top-level tasks (up, down, plan,
# status) come from ``pwbcluster.tasks.top``.
AREAS = ("config", "pcluster", "patch", "aux", "image", "cluster", "users", "prices", "audit")


def build_namespace() -> Collection:
    from pwbcluster.tasks import top

    ns = Collection()
    for task in top.TASKS:
        ns.add_task(task)
    for area in AREAS:
        try:
            module = importlib.import_module(f"{__name__}.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{area}":
                continue  # area not built yet
            raise
        ns.add_collection(module.ns, name=area)
    ns.configure(top.DEFAULTS)
    return ns
