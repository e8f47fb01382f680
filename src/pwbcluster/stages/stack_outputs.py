"""Turn a program's outputs (mocked or from a real stack) into the typed stage contract."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pwbcluster import contracts
from pwbcluster.errors import StageError

T = TypeVar("T")


def contract_fields(cls: type) -> set[str]:
    """The contract's field names that a program must export (all but ``simulated``)."""
    return {f.name for f in dataclasses.fields(cls) if f.name != "simulated"}


def to_contract(cls: type[T], values: Mapping[str, Any], simulated: bool = False) -> T:
    """Build ``cls`` from exported values; optional fields a stack did not export are None."""
    hints = typing.get_type_hints(cls)
    defaults = {
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    data: dict[str, Any] = {}
    missing = []
    for name in contract_fields(cls):
        if name in values:
            data[name] = values[name]
        elif name in defaults:
            continue
        elif type(None) in typing.get_args(hints[name]):
            data[name] = None
        else:
            missing.append(name)
    if missing:
        raise StageError(
            f"the {cls.__name__} outputs lack {', '.join(sorted(missing))}; the stack is "
            "incomplete: run `invoke aux.up` again"
        )
    data["simulated"] = simulated
    return contracts.from_dict(cls, data)
