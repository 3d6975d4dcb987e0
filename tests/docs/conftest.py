"""Fixtures for running the documentation: the loopback world of `world.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from world import World, build_world


@pytest.fixture(scope="session")
def docs_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("docs-world")) as world:
        yield world


@pytest.fixture
def in_docs_world(docs_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Run the test as a reader's program would run: names, trust store and files of the world."""
    with docs_world.active(monkeypatch) as world:
        yield world


@pytest.fixture(scope="session")
def docs_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "docs"
