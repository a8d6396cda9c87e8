"""Shared helpers for the spec tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor_lib.spec import clear_cache

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "specs"
WriteSpec = Callable[..., Path]


@pytest.fixture(autouse=True)
def _fresh_spec_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def write_spec(tmp_path: Path) -> WriteSpec:
    """``write_spec(text, name="spec.yaml")`` writes ``text`` to ``tmp_path/name`` and returns the path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
