"""The users stage: see pipeline.STAGES for what it creates.

Not built yet: issue #8 provides the real and sandbox adapters. Until then the stage
says so instead of pretending.
"""

from __future__ import annotations

from typing import Any

from ..errors import StageError
from .pipeline import section_inputs
from .runner import StageContext


def inputs(ctx: StageContext) -> Any:
    return section_inputs(ctx, "aux.users")


def run(ctx: StageContext) -> Any:
    raise StageError(f"the users stage ({ctx.mode}) is not built yet (issue #8)")


def destroy(ctx: StageContext, outputs: Any) -> None:
    raise StageError(f"the users stage ({ctx.mode}) cannot be destroyed yet (issue #8)")
