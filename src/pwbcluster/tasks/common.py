"""Shared helpers for the invoke task modules."""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import invoke
from invoke import Exit
from invoke.exceptions import ParseError
from invoke.parser import Argument

from pwbcluster.errors import ToolkitError

F = TypeVar("F", bound=Callable[..., Any])
_UnionType = type(int | None)

CONFIG_HELP = "deployment file, e.g. config/example.yaml"

# The one meaning of each short flag, in every task. invoke would otherwise give each flag
# the first free letter of its name, task by task, so `-t` meant --stage in `up`, --timeout
# in `users.*` and --strict in `config.validate`. A flag not named here has no short form.
SHORT_FLAGS = {
    "config": "c",
    "sandbox": "s",
    "yes": "y",
    "dry-run": "d",
    "json": "j",
    "force": "f",
    "timeout": "t",
    "part": "p",
    "region": "r",
    "image": "i",
}


class _WholeNumber(Argument):
    """An integer flag that answers a bad value with one line, not a traceback.

    invoke casts with ``int(value)`` while parsing and lets the ValueError escape; a
    ParseError is what its Program prints as a plain message.
    """

    def set_value(self, value: Any, cast: bool = True) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            raise ParseError(
                f"error: --{self.names[0]} {value!r}: give a whole number, e.g. --{self.names[0]}=4"
            ) from None
        if cast and self._value is not None and self._value < 0:
            raise ParseError(
                f"error: --{self.names[0]} {value!r}: give a whole number of 0 or more"
            )


class ToolkitTask(invoke.Task):
    """invoke's Task with the toolkit's flag conventions.

    - short flags from ``SHORT_FLAGS`` only (the same letter means the same everywhere);
    - a parameter annotated ``int`` or ``int | None`` is an integer flag even when its
      default is None, so ``--help`` shows ``--count=INT`` (invoke infers the kind from the
      default alone and showed STRING), and a bad value is a one-line error.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    @functools.cached_property
    def _integer_params(self) -> set[str]:
        """The parameters annotated int or int | None (read once per task)."""
        try:
            hints = typing.get_type_hints(inspect.unwrap(self.body))
        except Exception:  # an annotation that does not resolve: leave kinds to invoke
            return set()
        return {
            name
            for name, hint in hints.items()
            if hint is int
            or (
                typing.get_origin(hint) in (typing.Union, _UnionType)
                and set(typing.get_args(hint)) == {int, type(None)}
            )
        }

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(opts["names"][0])
        if short is not None and short not in taken_names:
            opts["names"].append(short)
        if name in self._integer_params and opts.get("kind", int) in (int, str):
            opts["kind"] = int
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        # invoke pops each help text as it uses it, so a second call (a second Program
        # over the same task, a test) would find flags without help: keep them.
        kept = dict(self.help)
        try:
            arguments: list[Argument] = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = kept
        return [_whole_number(a) if a.kind is int else a for a in arguments]


def _whole_number(arg: Argument) -> Argument:
    return _WholeNumber(
        names=arg.names,
        kind=int,
        default=arg.default,
        help=arg.help,
        positional=arg.positional,
        optional=arg.optional,
        incrementable=arg.incrementable,
        attr_name=arg.attr_name,
    )


def task(*args: Any, **kwargs: Any) -> Any:
    """``invoke.task`` making a ``ToolkitTask``: use it for every task of the toolkit."""
    kwargs.setdefault("klass", ToolkitTask)
    return invoke.task(*args, **kwargs)


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
