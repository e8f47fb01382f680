"""Fixtures for the cluster tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .fixtures import example_data


@pytest.fixture(scope="session")
def _example() -> dict[str, Any]:
    return example_data()


@pytest.fixture
def data(_example: dict[str, Any]) -> dict[str, Any]:
    """The merged example config (a private copy, safe to change)."""
    return copy.deepcopy(_example)
