"""Load spec files: safe YAML → ``WorkflowSpec``, with every problem located at its file and line.

Valid files take the fast path (libyaml's safe loader, then model validation). Only when a file is invalid do we
compose the YAML node tree to find the line of each problem. Results are cached per process, keyed by the file's
real path, mtime and size, and verified against a sha256 of its bytes, so re-loading an unchanged file costs a
``stat``, a read and a hash. Valid specs are also cached on disk (:mod:`supervisor_lib.spec.disk_cache`), because
the DAG processor parses every DAG file in a new process: there, an unchanged file costs a read, a hash and an
unpickle instead of YAML parsing and validation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from supervisor_lib.spec import disk_cache
from supervisor_lib.spec.errors import SpecError, SpecProblem, display_path, format_path
from supervisor_lib.spec.models import WorkflowSpec
from supervisor_lib.spec.translate import findings_from_error
from supervisor_lib.spec.validate import Loc, describe

StrPath = str | os.PathLike[str]
SPEC_SUFFIXES = (".yaml", ".yml")
#: the largest spec file read (the biggest real spec is a few KB)
MAX_SPEC_BYTES = 1024 * 1024
#: the most YAML nodes a spec may expand to through aliases (a 500-byte "billion laughs" expands to 10^9)
MAX_EXPANDED_NODES = 100_000
#: how deep values may nest (a JSON schema needs ~10 levels): hundreds of levels pass YAML but make Airflow's
#: Param copy hit Python's recursion limit when the DAG is built
MAX_DEPTH = 64
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader, refusing duplicate keys (plain YAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key, line = (key_node.tag, key_node.value), key_node.start_mark.line + 1
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key_node.value}' (first at line {seen[key]})", key_node.start_mark
                    )
                seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # PyYAML raises a bare ValueError, without a line, for an impossible date such as 2026-02-30.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as err:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date '{node.value}': {err}", node.start_mark
            ) from None

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar constructor's bare ValueError (an int past Python's 4300 digits, ``!!float x``) gets the line.
        try:
            return super().construct_object(node, deep)
        except ValueError as err:
            shown = node.value if isinstance(node.value, str) and len(node.value) <= 40 else "..."
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid {node.tag.rsplit(':', 1)[-1]} '{shown}': {err}", node.start_mark
            ) from None


_SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", _SpecLoader.construct_yaml_timestamp)


@dataclass(frozen=True)
class _Entry:
    # (path as asked for, mtime_ns, size, sha256): the default dag_id and source_path come from the path as asked
    # for, so a symlink under another name is not served the other name's spec.
    key: tuple[str, int, int, str]
    result: WorkflowSpec | SpecError


_cache: dict[str, _Entry] = {}


def load_spec(path: StrPath) -> WorkflowSpec:
    """Load and validate one spec file; raise ``SpecError`` listing every problem (file, line, field path).

    The dag_id defaults to the file name without its suffix. Results are cached in-process and valid specs on disk
    (see the module doc).
    """
    file = os.path.abspath(path)
    try:
        real = os.path.realpath(file)
        stat = os.stat(real)
        with open(real, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise SpecError([SpecProblem(file=file, message=f"cannot read the spec: {err.strerror or err}")]) from None
    sha256 = hashlib.sha256(data).hexdigest()
    key = (file, stat.st_mtime_ns, stat.st_size, sha256)
    entry = _cache.get(real)
    if entry is None or entry.key != key:
        entry = _cache[real] = _Entry(key, _load_safely(data, file, sha256))
    if isinstance(entry.result, SpecError):
        raise SpecError(entry.result.problems)
    return entry.result


def clear_cache() -> None:
    """Forget every cached spec (tests; a long-lived process that wants to reclaim memory)."""
    _cache.clear()


def load_specs(source: StrPath | Iterable[StrPath]) -> tuple[list[WorkflowSpec], dict[str, SpecError]]:
    """Load every ``*.yaml``/``*.yml`` under a directory (recursively), or the given files and directories.

    Returns the valid specs and the errors keyed by file path: one bad file never hides the others. Files are
    taken in sorted order; when two files use the same dag_id, the later one is reported, naming the other.
    """
    specs: list[WorkflowSpec] = []
    errors: dict[str, SpecError] = {}
    owners: dict[str, str] = {}
    for file in spec_files(source, errors):
        try:
            spec = load_spec(file)
        except SpecError as err:
            errors[file] = err
            continue
        if spec.dag_id in owners:
            errors[file] = _clash(spec, file, owners[spec.dag_id])
            continue
        owners[spec.dag_id] = file
        specs.append(spec)
    return specs, errors


def spec_files(source: StrPath | Iterable[StrPath], errors: dict[str, SpecError] | None = None) -> list[str]:
    """The spec files named by ``source`` (files, directories searched recursively), sorted, without duplicates.

    A path that does not exist is recorded in ``errors`` when given.
    """
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    found: set[str] = set()
    for item in map(Path, sources):
        if item.is_dir():
            found.update(
                str(p)
                for p in item.rglob("*")
                if p.suffix in SPEC_SUFFIXES and p.is_file() and not _hidden(p.relative_to(item))
            )
        elif item.is_file():
            found.add(str(item))
        elif errors is not None:
            errors[str(item)] = SpecError([SpecProblem(file=str(item), message="no such file or directory")])
    return sorted(found)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _load_safely(data: bytes, file: str, sha256: str) -> WorkflowSpec | SpecError:
    """:func:`_load`, with every failure turned into this file's error: one spec never breaks the others."""
    if len(data) > MAX_SPEC_BYTES:
        message = f"the file is {len(data):,} bytes; a spec may have at most {MAX_SPEC_BYTES:,}: split it"
        return SpecError([SpecProblem(file=file, message=message)])
    try:
        return _load(data, file, sha256)
    except (RecursionError, MemoryError) as err:
        return SpecError(
            [SpecProblem(file=file, message=f"the spec is nested too deeply to load ({type(err).__name__})")]
        )
    except Exception as err:  # a bug of ours or of a library must still say which file it was
        return SpecError([SpecProblem(file=file, message=f"could not load the spec: {type(err).__name__}: {err}")])


def _load(data: bytes, file: str, sha256: str) -> WorkflowSpec | SpecError:
    """The spec from the disk cache, else validated now (and then cached on disk when valid)."""
    entry = disk_cache.entry_name(file, sha256)  # before validating: it names the code and data validation reads
    cached = disk_cache.load(file, sha256, entry)
    if cached is not None:
        return cached
    result = _parse(data, file, sha256)
    if isinstance(result, WorkflowSpec):
        disk_cache.store(file, sha256, result, entry)
    return result


def _parse(data: bytes, file: str, sha256: str) -> WorkflowSpec | SpecError:
    """Validate one file's bytes: the spec, or the ``SpecError`` to raise."""
    try:
        text = data.decode("utf-8")
        if (bomb := _alias_bomb(text)) is not None:
            return SpecError([SpecProblem(file=file, message=bomb)])
        raw = yaml.load(text, Loader=_SpecLoader)  # a safe loader (libyaml when available)
    except UnicodeDecodeError as err:
        bad_line = data.count(b"\n", 0, err.start) + 1
        return SpecError([SpecProblem(file, bad_line, message=f"the file is not UTF-8 text ({err.reason})")])
    except yaml.YAMLError as err:
        return SpecError([_yaml_problem(err, file, text)])
    except ValueError as err:  # a constructor's own error, without a line
        return SpecError([SpecProblem(file=file, message=f"invalid YAML value: {err}")])
    if not isinstance(raw, dict):
        what = "empty" if raw is None else f"{describe(raw)}, not a mapping of workflow keys"
        line = None if raw is None else line_of(compose(text), ())
        return SpecError(
            [SpecProblem(file=file, line=line, message=f"the file is {what} (expected dag_id, tasks, ...)")]
        )
    if (deep := _too_deep(raw)) is not None:
        message = f"nested more than {MAX_DEPTH} levels deep: flatten it"
        return SpecError([SpecProblem(file, line_of(compose(text), deep), format_path(deep[:2]), message)])
    stem = Path(file).stem
    named = "dag_id" in raw
    dag_id = raw.get("dag_id") if named else stem
    try:
        return WorkflowSpec.model_validate(raw if named else {**raw, "dag_id": stem})._with_source(file, sha256)
    except ValidationError as err:
        dag_id = dag_id if isinstance(dag_id, str) else None
        return _located(err, text, file, dag_id, from_stem=not named)


def _too_deep(raw: Any) -> Loc | None:
    """The location of the first value nested deeper than :data:`MAX_DEPTH` (aliases are expanded: bombs are
    refused before), or ``None``."""
    pending: list[tuple[Any, Loc]] = [(raw, ())]
    while pending:
        value, loc = pending.pop()
        if len(loc) > MAX_DEPTH:
            return loc
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        pending.extend((child, (*loc, key)) for key, child in items if isinstance(child, dict | list))
    return None


def _alias_bomb(text: str) -> str | None:
    """What is wrong when the YAML's aliases expand it past :data:`MAX_EXPANDED_NODES` or refer to themselves
    (only files with anchors pay for the check: the node tree is composed, each distinct node counted once)."""
    if "&" not in text or "*" not in text:
        return None
    root = compose(text)
    sizes: dict[int, int] = {}
    anchors = 0

    def size(node: yaml.Node) -> int:
        nonlocal anchors
        if id(node) in sizes:
            anchors += 1
            return sizes[id(node)]
        sizes[id(node)] = MAX_EXPANDED_NODES + 1  # until counted: an alias to a node it is inside expands forever
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        total = 1
        for child in children:
            total = min(total + size(child), MAX_EXPANDED_NODES + 1)
        sizes[id(node)] = total
        return total

    if root is None or size(root) <= MAX_EXPANDED_NODES:
        return None
    return (f"YAML aliases expand this file past {MAX_EXPANDED_NODES:,} values ({anchors} alias uses): an alias "
            "bomb, or a spec that should not be written with aliases")  # fmt: skip


def _yaml_problem(err: yaml.YAMLError, file: str, text: str) -> SpecProblem:
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not allow: it reports an offset, not a line
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        character = err.character if isinstance(err.character, int) else ord(err.character)
        message = f"invalid YAML: control character #x{character:04x} at column {column}: remove it"
        return SpecProblem(file=file, line=line, message=message)
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
        context = f"{context} started at line {context_mark.line + 1}"
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    # libyaml marks the end of a file that lacks its final newline one line past the last
    marked = min(mark.line + 1, text.count("\n") + 1) if mark else None
    return SpecProblem(file=file, line=marked, message=message)


def _located(err: ValidationError, text: str, file: str, dag_id: str | None, *, from_stem: bool) -> SpecError:
    """Every problem of ``err`` with its line, found by composing the YAML node tree (only on this error path)."""
    root = compose(text)
    problems = []
    keys: _KeyIndex = {}
    for finding in findings_from_error(err, WorkflowSpec):
        message, line = finding.message, line_of(root, finding.loc, keys)
        if from_stem and finding.loc == ("dag_id",):
            message, line = f"{message} (taken from the file name: set dag_id to choose another)", None
        problems.append(SpecProblem(file, line, format_path(finding.loc), message, dag_id))
    return SpecError(problems)


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of ``text`` (for :func:`line_of`), or ``None`` when it does not parse."""
    try:
        return yaml.compose(text, Loader=_BaseLoader)
    except yaml.YAMLError:
        return None


#: per mapping node (by id), its keys' lines and values: built once per node, so locating N problems stays linear
_KeyIndex = dict[int, dict[str, tuple[int, yaml.Node]]]


def line_of(node: yaml.Node | None, loc: Loc, keys: _KeyIndex | None = None) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (a key's own line for mappings); for a key that is missing,
    the line where its mapping starts. Pass the same ``keys`` dict for every lookup in one tree."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = _child(node, part, {} if keys is None else keys)
        if child is None:
            break
        line, node = child
    return line


def _child(node: yaml.Node, part: str | int, keys: _KeyIndex) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        index = keys.get(id(node))
        if index is None:
            index = keys[id(node)] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    index.setdefault(key.value, (key.start_mark.line + 1, value))
        return index.get(part)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _clash(spec: WorkflowSpec, file: str, other: str) -> SpecError:
    root = compose(Path(file).read_text(encoding="utf-8"))
    line = line_of(root, ("dag_id",)) if isinstance(root, yaml.MappingNode) and _child(root, "dag_id", {}) else None
    message = f"dag_id '{spec.dag_id}' is already used by {display_path(os.path.abspath(other))}"
    return SpecError([SpecProblem(os.path.abspath(file), line, "dag_id", message, spec.dag_id)])
