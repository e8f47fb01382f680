"""Shared helpers for the invoke task modules."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke import Exit

from pwbcluster.errors import ToolkitError

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "deployment file, e.g. config/example.yaml"


def wired(func: F) -> F:
    """Turn the toolkit's own errors into a clean ``invoke.Exit`` (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return func(*args, **kwargs)
        except ToolkitError as exc:
            raise Exit(f"error: {exc}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


def setup_logging() -> None:
    if logging.getLogger().handlers:
        return
    from rich.logging import RichHandler

    # The terminal shows warnings and worse (tasks print their own progress); the run log
    # under build/<deployment>/logs/ gets everything from INFO up.
    console = RichHandler(show_time=False, show_path=False, markup=False)
    console.setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[console])


def require_config(config: str | None) -> Path:
    if not config:
        raise ToolkitError("--config is required (for example --config config/example.yaml)")
    return Path(config)
