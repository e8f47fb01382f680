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
        except Exception as exc:
            if (message := aws_problem(exc)) is None:
                raise
            raise Exit(f"error: {message}", code=1) from None
        except EOFError:
            # A question met the end of its input (stdin closed or a pipe): nothing was done.
            raise Exit(
                "error: a confirmation got no answer (no terminal, or end of input); "
                "nothing was changed. Pass --yes to go on without asking",
                code=1,
            ) from None
        except KeyboardInterrupt:
            raise Exit(
                "interrupted (Ctrl-C). Run the same command again to go on: up and down "
                "resume where they stopped (finished stages are kept); `invoke status` "
                "shows where that is",
                code=130,
            ) from None

    return wrapper  # type: ignore[return-value]


# Credentials problems, said as what to do (the codes AWS answers a bad or missing key with).
_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}
NO_CREDENTIALS = (
    "no usable AWS credentials: set AWS_PROFILE (or run `aws configure` / `aws sso login`) "
    "for the account; the sandbox needs none (--sandbox)"
)


def aws_problem(exc: BaseException) -> str | None:
    """A person-readable line for an AWS error a person can fix; None for anything else."""
    try:
        from botocore import exceptions as boto
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, boto.NoRegionError):
        return "no AWS region: set deployment.region in the deployment file"
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return f"cannot reach AWS ({exc}): check the network or proxy settings"
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _CREDENTIAL_CODES:
            return f"{NO_CREDENTIALS} (AWS said {code}: {error.get('Message', '')})"
        operation = getattr(exc, "operation_name", "a call")
        return f"AWS refused {operation}: {code}: {error.get('Message', '')}"
    return None


def setup_logging() -> None:
    if logging.getLogger().handlers:
        return
    from rich.logging import RichHandler

    # The terminal shows warnings and worse (tasks print their own progress); the run log
    # under build/<deployment>/logs/ gets everything from INFO up.
    console = RichHandler(show_time=False, show_path=False, markup=False)
    console.setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[console])


def ask(question: str, yes: bool, what: str) -> bool:
    """A yes/no confirmation: True with --yes; refuses (ToolkitError) without a terminal to
    ask on, instead of reading an empty answer from a pipe."""
    import sys

    if yes:
        return True
    if not sys.stdin.isatty():
        raise ToolkitError(f"not {what} without confirmation: there is no terminal; pass --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def confirm_name(name: str, yes: bool, doing: str, to: str) -> None:
    """Ask for ``name`` typed back before ``doing`` (e.g. "removing a real deployment");
    refuses without a terminal unless --yes, and when what is typed differs."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise ToolkitError(
            f"not {doing} without confirmation: there is no terminal to ask on; "
            "pass --yes, or --dry-run to see the plan"
        )
    if input(f"Type the deployment's name ({name}) to {to}: ").strip() != name:
        raise ToolkitError("not confirmed; nothing changed")


def require_config(config: str | None) -> Path:
    if not config:
        raise ToolkitError("--config is required (for example --config config/example.yaml)")
    return Path(config)
