"""The project's one exception hierarchy.

Every error a person can cause (a bad config, a missing tool, a refused patch) is a
``ToolkitError``; tasks.py turns it into ``invoke.Exit`` so nobody sees a traceback for a
mistake of their own. Messages say what was wrong, where, what was expected, what to do.
"""

from __future__ import annotations

from collections.abc import Sequence


class ToolkitError(Exception):
    """Base of every error the toolkit reports to a person."""


class ConfigError(ToolkitError):
    """The configuration has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[object], summary: str | None = None) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in problems]
        head = summary or f"{len(problems)} problem(s) in the configuration"
        super().__init__("\n".join([head, *lines]))


class MissingDependency(ToolkitError):
    """A tool or library the step needs is not installed; the message says how to get it."""


class StageError(ToolkitError):
    """A stage failed; the state file records it so the next run resumes there."""


class PatchError(ToolkitError):
    """A patch could not be applied, checked or reverted."""


class PclusterError(ToolkitError):
    """ParallelCluster rejected a rendered configuration or could not run."""
