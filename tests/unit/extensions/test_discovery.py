"""Plugin discovery: lazy (built-in names never list entry points), cached, and a broken plugin reported once with
its package name while the built-in task types and the other specs keep working."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from supervisor_lib import extensions
from supervisor_lib.spec import SpecError, TaskType, load_specs
from tests.support.plugins import make_distribution, on_path

GOOD = """
from supervisor_lib.extensions import TaskTypePlugin
LOADS = []
LOADS.append(1)
SUMMARY = TaskTypePlugin(name="summary", builder="good_types:build")
"""
BROKEN = """
import missing_dependency_of_the_plugin
"""
WRONG_KIND = """
NOT_A_PLUGIN = {"name": "wrong"}
"""
SPEC = """
dag_id: {dag_id}
tasks:
  - id: t
    type: {type}
    provider: anthropic
    model: claude-haiku-4-5
    instructions: do it
"""


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[Path]:
    """Three installed distributions: a good task type, one whose module fails to import, one of the wrong kind."""
    make_distribution(tmp_path, "good-types", {extensions.TASK_TYPES: {"summary": "good_types:SUMMARY"}},
                      {"good_types": GOOD})  # fmt: skip
    make_distribution(tmp_path, "broken-types", {extensions.TASK_TYPES: {"broken": "broken_types:BROKEN"}},
                      {"broken_types": BROKEN})  # fmt: skip
    make_distribution(tmp_path, "wrong-types", {extensions.TASK_TYPES: {"wrong": "wrong_types:NOT_A_PLUGIN"}},
                      {"wrong_types": WRONG_KIND})  # fmt: skip
    with on_path(tmp_path):
        yield tmp_path


def _write(folder: Path, name: str, task_type: str) -> None:
    (folder / f"{name}.yaml").write_text(SPEC.format(dag_id=name, type=task_type))


def test_built_in_task_types_never_list_entry_points(plugins: Path, tmp_path: Path) -> None:
    _write(tmp_path, "builtin_only", "code_analysis")
    with mock.patch("importlib.metadata.entry_points", side_effect=AssertionError("listed")) as listing:
        specs, errors = load_specs(tmp_path / "builtin_only.yaml")
    assert not errors and specs[0].tasks[0].type is TaskType.CODE_ANALYSIS
    listing.assert_not_called()


def test_only_the_entry_point_a_spec_names_is_loaded_and_both_steps_are_cached(plugins: Path, tmp_path: Path) -> None:
    import sys

    with mock.patch("importlib.metadata.entry_points", wraps=extensions.metadata.entry_points) as listing:
        for name in ("first", "second"):
            _write(tmp_path, name, "summary")
            specs, errors = load_specs(tmp_path / f"{name}.yaml")
            assert not errors and specs[0].tasks[0].type == "summary"
    assert listing.call_count == 1, "the entry points are listed once per process"
    assert sys.modules["good_types"].LOADS == [1], "the plugin's module is imported once"
    assert "broken_types" not in sys.modules and "wrong_types" not in sys.modules, "only the named one is loaded"


def test_a_broken_plugin_is_reported_once_with_its_package_and_hides_nothing(
    plugins: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name, task_type in (("uses_broken", "broken"), ("also_broken", "broken"), ("builtin", "code_analysis"),
                            ("uses_good", "summary")):  # fmt: skip
        _write(tmp_path, name, task_type)
    with caplog.at_level(logging.WARNING, logger="supervisor_lib.extensions"):
        specs, errors = load_specs(tmp_path)
        load_specs(tmp_path)  # a second parse in the same process: no second report
    assert sorted(spec.dag_id for spec in specs) == ["builtin", "uses_good"]
    assert sorted(Path(file).name for file in errors) == ["also_broken.yaml", "uses_broken.yaml"]
    message = str(errors[str(tmp_path / "uses_broken.yaml")])
    assert message.startswith(f"{tmp_path / 'uses_broken.yaml'}:5: [tasks[0].type] plugin task type 'broken' "
                              "(package broken-types 1.0, entry point 'broken_types:BROKEN') could not be loaded: "
                              "ModuleNotFoundError: No module named 'missing_dependency_of_the_plugin'")  # fmt: skip
    reports = [r.getMessage() for r in caplog.records if "broken-types" in r.getMessage()]
    assert len(reports) == 1, reports


def test_an_entry_point_of_the_wrong_kind_names_its_package(plugins: Path) -> None:
    with pytest.raises(extensions.PluginError, match=r"'wrong' \(package wrong-types 1.0.*is a dict, not a "):
        extensions.task_type("wrong")


def test_an_unknown_type_lists_the_plugins_too_and_keeps_its_line(plugins: Path, tmp_path: Path) -> None:
    _write(tmp_path, "typo", "sumary")
    _write(tmp_path, "nothing_close", "xyzzy")
    _, errors = load_specs(tmp_path)
    typo, far = errors[str(tmp_path / "typo.yaml")], errors[str(tmp_path / "nothing_close.yaml")]
    assert str(typo).endswith("typo.yaml:5: [tasks[0].type] unknown task type 'sumary' (did you mean 'summary'?)")
    assert "unknown task type 'xyzzy' (expected one of: pr_review," in str(far)
    listed = str(far).rpartition("(expected one of: ")[2].removesuffix(")").split(", ")
    # the built-in types, then every installed plugin's (the example plugin's too, once a test installed it)
    assert listed[: len(TaskType)] == [str(t) for t in TaskType] and {"broken", "summary", "wrong"} <= set(listed)
    assert isinstance(far, SpecError)


def test_two_packages_declaring_one_name_are_both_named(tmp_path: Path) -> None:
    for package in ("one-pkg", "two-pkg"):
        module = package.replace("-", "_")
        make_distribution(tmp_path / package, package, {extensions.PROVIDERS: {"twin": f"{module}:P"}},
                          {module: "P = None"})  # fmt: skip
    clash = pytest.raises(extensions.PluginError, match=r"declared by one-pkg 1\.0 and two-pkg 1\.0")
    with on_path(tmp_path / "one-pkg"), on_path(tmp_path / "two-pkg"), clash:
        extensions.provider("twin")
