"""Bad specs and bad REST conf: a mutation fuzzer over the valid specs, and bad confs for ``supervisor_task``.

Specs: every valid spec of ``tests/fixtures/specs/valid/`` and ``include/specs/`` is mutated (seeded, so every run
tries the same mutants) by one of :data:`KINDS`: structural mutations of the parsed YAML (wrong types, missing and
unknown keys, dependency cycles, bad cron and time zones, huge values, ``!!python`` tags) and text mutations (broken
YAML, alias bombs, binary junk, NUL bytes, text that is not UTF-8). Each mutant is written beside a valid sibling
spec and must end in one of two ways:

- it loads, and ``build_dag`` (and the model check ``load_dags`` runs) turn it into a DAG without raising; or
- the loader refuses it with one ``SpecError`` for that file only, every problem of which renders on one line as
  ``file:line: [path] message``: with a line wherever one applies (all but whole-file problems such as an empty
  file, an alias bomb or a file name that is no dag_id), without a path only for file-level problems, and never the
  loader's safety net for an unexpected exception (``could not load the spec: <Exception>``, a hidden traceback).

Always: ``load_spec`` never raises anything but ``SpecError``, loading takes at most a second, the sibling still
loads (no mutant hides another spec), and no ``!!python`` tag ever runs code (a canary file stays absent). A
sample of mutants also goes through the DAG processor's path: a folder with a ``load_dags`` DAG file and a
``raise_spec_errors`` DAG file, parsed by Airflow's ``BundleDagBag`` in a subprocess, must show the sibling's DAG
and, for a bad mutant, exactly one import error (the errors file's) naming the mutant and only it.

REST: bad confs for ``supervisor_task`` go through the code of Airflow's trigger route (``trigger_dag_run`` in
``airflow/api_fastapi/core_api/routes/public/dag_run.py``) from the request body on: the body model, then
``validate_context`` and ``create_dagrun`` of the DAG as the API server has it (serialized and deserialized), whose
``(ParamValidationError, ValueError)`` the route answers with 400. Only the ORM insert is replaced by a recorder,
so "nothing runs" is checked directly: a refused conf must create no run, and its message must name the field.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from benchmarks.reliability import Section, timed

ROOT = Path(__file__).resolve().parents[2]
SEED_DIRS = (ROOT / "tests" / "fixtures" / "specs" / "valid", ROOT / "include" / "specs")
#: mutants per run, and how many of them also go through Airflow's DagBag (about a second each)
SIZES = {True: (156, 10), False: (1_209, 50)}
RANDOM_SEED = 20_260_101
MAX_PARSE_SECONDS = 1.0
SIBLING_NAME = "sibling.yaml"
SIBLING_DAG_ID = "fuzz_sibling"
SIBLING_TEXT = f"dag_id: {SIBLING_DAG_ID}\ntasks:\n  - id: canary\n    type: llm\n    prompt: Say hi.\n"
#: a placeholder value, replaced by raw YAML text after the mutated data is dumped
RAW = "RAW_YAML_SLOT_7F3A"
HEADERS = ["kind", "mutants", "loaded as valid DAG", "refused with located error(s)", "max parse ms",
           "broken guarantees"]  # fmt: skip
#: file-level problems that have no line by nature (the whole file is the problem)
LINELESS = ("the file is empty", "YAML aliases expand", "the spec is nested too deeply", "a spec may have at most")
SAFETY_NET = "could not load the spec:"


# --- seeds and mutants ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A valid spec: its file name, text and parsed data."""

    name: str
    text: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Mutant:
    """One mutated spec file."""

    index: int
    kind: str
    name: str
    data: bytes


def seeds() -> list[Seed]:
    """The valid specs the mutants start from."""
    found = []
    for folder in SEED_DIRS:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".yaml", ".yml"):
                text = path.read_text(encoding="utf-8")
                found.append(Seed(path.name, text, yaml.safe_load(text)))
    return found


Mutation = Callable[[random.Random, Seed, Path], bytes]


def mutants(count: int, canary: Path) -> list[Mutant]:
    """``count`` mutants, the kinds taken in turn and the seed and details drawn from a seeded generator."""
    rng = random.Random(RANDOM_SEED)
    pool = seeds()
    kinds = list(KINDS)
    made = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        seed = rng.choice(pool)
        made.append(Mutant(index, kind, seed.name, KINDS[kind](rng, seed, canary)))
    return made


# --- helpers over the parsed YAML -----------------------------------------------------------------------------------


def _slots(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside mappings and lists, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from _slots(value, (*path, key))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _mappings(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [data, *(value for path in _slots(data) if isinstance(value := _get(data, path), dict))]


def _tasks(data: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = data.get("tasks")
    return [task for task in tasks if isinstance(task, dict)] if isinstance(tasks, list) else []


def _dump(data: dict[str, Any], raw: str | None = None) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1 << 20)
    if raw is not None:
        text = text.replace(RAW, raw, 1)
    return text.encode("utf-8")


def _structural(change: Callable[[random.Random, dict[str, Any]], str | None]) -> Mutation:
    """A mutation of the parsed seed; ``change`` edits a copy in place and may return raw YAML for :data:`RAW`."""

    def mutate(rng: random.Random, seed: Seed, canary: Path) -> bytes:
        data = copy.deepcopy(seed.data)
        return _dump(data, change(rng, data))

    return mutate


def _at_random_slot(rng: random.Random, data: dict[str, Any], raw: str) -> str:
    """Put :data:`RAW` at a random value (or a new top-level key) and return ``raw`` to replace it."""
    paths = list(_slots(data))
    if paths and rng.random() < 0.8:
        _set(data, rng.choice(paths), RAW)
    else:
        data["description"] = RAW
    return raw


# --- structural mutations -------------------------------------------------------------------------------------------

WRONG_VALUES: tuple[Any, ...] = (42, -1, 3.5, True, False, None, "text", "", ["a", 1], [], {"key": "value"}, {},
                                 date(2020, 1, 2))  # fmt: skip
REQUIRED_KEYS = ("tasks", "id", "type", "prompt", "instructions", "command", "subject", "dag_id")
UNKNOWN_KEYS = ("modle", "dependson", "schedul", "retry", "x-extra", "__class__", "Type", "ID", "tasks ", "dag-id",
                "💥", "python_callable", "executor_config", "on_failure_callback", "!!python/object", "default", "0",
                "a\nb")  # fmt: skip
SMALL_VALUES: tuple[Any, ...] = ("x", 1, None, True, [], {}, ["a"], {"b": 2})


def _wrong_type(rng: random.Random, data: dict[str, Any]) -> None:
    path = rng.choice(list(_slots(data)))
    current = _get(data, path)
    _set(data, path, copy.deepcopy(rng.choice([v for v in WRONG_VALUES if type(v) is not type(current)])))


def _missing_key(rng: random.Random, data: dict[str, Any]) -> None:
    keys = [path for path in _slots(data) if isinstance(path[-1], str)]
    required = [path for path in keys if path[-1] in REQUIRED_KEYS]
    items = [path for path in _slots(data) if isinstance(path[-1], int)]
    roll = rng.random()
    path = rng.choice(items if items and roll < 0.2 else required if required and roll < 0.6 else keys)
    del _get(data, path[:-1])[path[-1]]


def _unknown_key(rng: random.Random, data: dict[str, Any]) -> None:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        rng.choice(_mappings(data))[rng.choice(UNKNOWN_KEYS)] = copy.deepcopy(rng.choice(SMALL_VALUES))


def _cycle(rng: random.Random, data: dict[str, Any]) -> None:
    tasks = [task for task in _tasks(data) if isinstance(task.get("id"), str)]
    ring = rng.sample(tasks, k=rng.randint(1, min(len(tasks), 4)))
    for task, upstream in zip(ring, ring[1:] + ring[:1], strict=True):
        deps = task.get("depends_on") or []
        task["depends_on"] = [*([deps] if isinstance(deps, str) else deps), upstream["id"]]


BAD_CRONS = ("* * * *", "* * * * * *", "61 * * * *", "* 24 * * *", "* * 32 * *", "* * * 13 *", "* * * * 8",
             "*/0 * * * *", "5-1 * * * *", "1,,2 * * * *", "@fortnightly", "@daily ", "@", "", " ", "0 0 31 2 *",
             "0 0 * * *\n0 1 * * *", "\u0661 * * * *", "0x1 * * * *", "-1 * * * *", "* * * * MON-XYZ", "? * * * *",
             "H * * * *", "0 0 L * *", "{{ params.cron }}", "0 0 * * 7", "* * * * * * * * * *",
             "999999999999999999999 * * * *")  # fmt: skip
CRON_TOKENS = ("*", "0", "59", "60", "99", "-5", "1-", "*/", "a", "1/0", "#", "L", "W", "1,2", "MON", "JAN", "%",
               "1-100/3", "*/15", "0-59", "1#2", "", "\t")  # fmt: skip


def _bad_cron(rng: random.Random, data: dict[str, Any]) -> None:
    if rng.random() < 0.5:
        data["schedule"] = rng.choice(BAD_CRONS)
    else:
        fields = rng.choice((3, 4, 5, 5, 5, 6))
        data["schedule"] = " ".join(rng.choice(CRON_TOKENS) for _ in range(fields))


BAD_TIMEZONES = ("Mars/Olympus_Mons", "", " ", "UTC+5", "GMT+25", "Europe/Berlin ", "europe/berlin", "EUROPE/BERLIN",
                 "../../etc/passwd", "/etc/localtime", "Europe/../UTC", "Europe//Berlin", "Europe/Berlin\x00",
                 "Europe/Berlin\n", "CET/", ".", "..", "zone.tab", "tzdata.zi", "Factory", "Etc/GMT+14",
                 "Etc/GMT+15", "A" * 300, "A" * 5_000, "Europe/" + "B" * 255, "😀/😀", "Asia/Kolkata\u200b",
                 "America/New York", "US/Pacific-New", "+05:00", "Z", "utc", "localtime")  # fmt: skip
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "UTC")


def _bad_timezone(rng: random.Random, data: dict[str, Any]) -> None:
    if rng.random() < 0.6:
        data["timezone"] = rng.choice(BAD_TIMEZONES)
        return
    zone = list(rng.choice(ZONES))
    at = rng.randrange(len(zone))
    edit = rng.choice(("drop", "case", "insert"))
    if edit == "drop":
        del zone[at]
    elif edit == "case":
        zone[at] = zone[at].swapcase()
    else:
        zone.insert(at, rng.choice("/._-+ 0é\t"))
    data["timezone"] = "".join(zone)


PY_TAGS = ("!!python/object/apply:os.system ['touch {canary}']", "!!python/object/new:os.system ['touch {canary}']",
           "!!python/object/apply:subprocess.check_output [['touch', '{canary}']]", "!!python/name:os.system",
           "!!python/module:os", "!!python/tuple [1, 2]", "!!python/str x", "!!python/object:builtins.object {{}}",
           "!ruby/object:Gem::Installer {{i: x}}", "!<tag:yaml.org,2002:python/object/apply:os.system> ['true']",
           "!!binary aGVsbG8=", "!!set {{a, b}}", "!!omap [{{a: 1}}]", "!custom x", "!!str 42", "!!int '7'",
           "!!float x", "!!timestamp 2026-13-45", "!!binary '%%%'")  # fmt: skip


def _python_tag(rng: random.Random, seed: Seed, canary: Path) -> bytes:
    data = copy.deepcopy(seed.data)
    return _dump(data, _at_random_slot(rng, data, rng.choice(PY_TAGS).format(canary=canary)))


# --- huge values ----------------------------------------------------------------------------------------------------

NUMERIC_KEYS = ("retries", "max_tokens", "max_active_runs", "max_iterations", "budget_usd", "timeout_s",
                "retry_delay_s", "dagrun_timeout_s", "temperature")  # fmt: skip
HUGE_NUMBERS = (".inf", "-.inf", ".nan", "1.0e+308", "1.0e+309", "-1.0e+308", "1.0e+15", "4.9e-324",
                "9" * 20, "9" * 400, "9" * 4_000, "9" * 5_000, "-" + "9" * 30, "0x" + "f" * 64)  # fmt: skip
HUGE_TEXTS = ("x", "{{", "{", "{%", "{#", "}}", "{{ x }", "é", "\\", "%", "'", "{% if x %}")


def _huge_string(rng: random.Random, data: dict[str, Any]) -> None:
    size = rng.choice((10_000, 100_000, 400_000))
    if rng.random() < 0.3:
        text = "".join(rng.choices(string.printable, k=size))
    else:
        unit = rng.choice(HUGE_TEXTS)
        text = unit * (size // len(unit))
    paths = [path for path in _slots(data) if isinstance(_get(data, path), str)]
    _set(data, rng.choice(paths), text) if paths else data.update(description=text)


def _huge_number(rng: random.Random, data: dict[str, Any]) -> str:
    target = rng.choice([data, *_tasks(data), data.get("defaults") or data])
    target[rng.choice(NUMERIC_KEYS)] = RAW
    return rng.choice(HUGE_NUMBERS)


def _huge_list(rng: random.Random, data: dict[str, Any]) -> None:
    size = rng.choice((1_000, 5_000, 10_000))
    key = rng.choice(("tags", "depends_on", "paths", "options", "capabilities", "foreach"))
    target = data if key == "tags" else rng.choice(_tasks(data) or [data])
    target[key] = [f"x{i}" for i in range(size)]


def _deep_nesting(rng: random.Random, data: dict[str, Any]) -> str:
    depth = rng.choice((50, 500, 999, 1_001, 5_000))
    opener, closer = rng.choice((("[", "]"), ("{a: ", "}")))
    return _at_random_slot(rng, data, opener * depth + "1" + closer * depth)


def _many_tasks(rng: random.Random, data: dict[str, Any]) -> None:
    data["tasks"] = _tasks(data) * rng.choice((10, 100, 500))


def _many_keys(rng: random.Random, data: dict[str, Any]) -> None:
    target = rng.choice(_mappings(data))
    for i in range(rng.choice((100, 2_000, 10_000))):
        target[f"unknown_{i}"] = i


HUGE: tuple[Callable[[random.Random, dict[str, Any]], str | None], ...] = (
    _huge_string, _huge_string, _huge_number, _huge_list, _deep_nesting, _many_tasks, _many_keys,
)  # fmt: skip


def _huge_value(rng: random.Random, data: dict[str, Any]) -> str | None:
    return rng.choice(HUGE)(rng, data)


# --- text mutations -------------------------------------------------------------------------------------------------

YAML_JUNK = (": :", "- - -", "? ", "&", "*nope", "%YAML 1.1\n", "\n---\n", "!", "|", ">", "@", "`", "{{", "}}",
             "\n...\n", ",", "[", "]", "{", "}", "'", '"', "\t", "#", ": ", "- ", "&a ", "<<: ")  # fmt: skip


def _lines_edit(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    at = rng.randrange(len(lines))
    edit = rng.choice(("indent", "dedent", "tab", "duplicate", "swap"))
    if edit == "indent":
        lines[at] = " " * rng.randint(1, 3) + lines[at]
    elif edit == "dedent":
        lines[at] = lines[at].lstrip(" ")
    elif edit == "tab":
        stripped = lines[at].lstrip(" ")
        lines[at] = "\t" * max(1, (len(lines[at]) - len(stripped)) // 2) + stripped
    elif edit == "duplicate":
        lines.insert(at, lines[at])
    else:
        other = rng.randrange(len(lines))
        lines[at], lines[other] = lines[other], lines[at]
    return "".join(lines)


def _broken_yaml(rng: random.Random, seed: Seed, canary: Path) -> bytes:
    text = seed.text
    for _ in range(rng.choice((1, 1, 2))):
        roll = rng.random()
        if roll < 0.2:
            text = text[: rng.randrange(1, len(text))]
        elif roll < 0.6:
            text = _lines_edit(rng, text)
        else:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(YAML_JUNK) + text[at:]
    return text.encode("utf-8")


def _laughs(rng: random.Random) -> str:
    breadth, depth = rng.randint(3, 10), rng.randint(3, 10)
    lines = [f"  l0: &l0 [{', '.join(['lol'] * breadth)}]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * breadth)}]" for i in range(1, depth)]
    return "fuzz_bomb:\n" + "\n".join(lines) + f"\n  all: *l{depth - 1}\n"


def _merge_bomb(rng: random.Random) -> str:
    depth = rng.randint(3, 20)
    lines = ["  m0: &m0 {a: 1, b: 2, c: 3}"]
    lines += [f"  m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: [*m{i - 1}, *m{i - 1}, *m{i - 1}]}}" for i in
              range(1, depth)]  # fmt: skip
    return "fuzz_merge:\n" + "\n".join(lines) + "\n"


ALIAS_SNIPPETS = ("fuzz_loop: &loop\n  - *loop\n", "fuzz_map: &map\n  self: *map\n", "fuzz_alias: *undefined\n",
                  "fuzz_a: &dup 1\nfuzz_b: &dup 2\nfuzz_c: *dup\n", "fuzz_ok: &ok [1, 2]\nfuzz_use: *ok\n")  # fmt: skip


def _alias_bomb(rng: random.Random, seed: Seed, canary: Path) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return _reuse_with_alias(seed.text).encode("utf-8")
    snippet = _laughs(rng) if roll < 0.6 else _merge_bomb(rng) if roll < 0.8 else rng.choice(ALIAS_SNIPPETS)
    if rng.random() < 0.5:
        return (seed.text.rstrip("\n") + "\n" + snippet).encode("utf-8")
    return (snippet + seed.text).encode("utf-8")


def _reuse_with_alias(text: str) -> str:
    """A spec that uses an anchor the ordinary way: the first task's type given again by alias to the second."""
    types = list(re.finditer(r"^(\s*-?\s*type: )(\w+)$", text, re.MULTILINE))
    if len(types) < 2:
        return text.replace("tasks:", "tasks: &all", 1) + "fuzz_copy: *all\n"
    first, second = types[0], types[1]
    return (text[: first.end(1)] + "&kind " + text[first.end(1) : second.start(2)] + "*kind"
            + text[second.end(2) :])  # fmt: skip


def _insert(rng: random.Random, data: bytes, junk: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + junk + data[at:]


def _binary_junk(rng: random.Random, seed: Seed, canary: Path) -> bytes:
    size = rng.choice((1, 16, 256, 4_096, 65_536))
    junk = rng.randbytes(size)
    if rng.random() < 0.3:  # valid UTF-8 of random code points: past the decoder, into YAML's reader
        junk = "".join(chr(rng.choice((rng.randrange(0x20), rng.randrange(0x80, 0xD800)))) for _ in range(
            min(size, 512))).encode("utf-8")  # fmt: skip
    data = seed.text.encode("utf-8")
    roll = rng.random()
    if roll < 0.25:
        return junk
    if roll < 0.5:
        return data + junk
    if roll < 0.75:
        return _insert(rng, data, junk)
    at = rng.randrange(len(data))
    return data[:at] + junk + data[at + len(junk) :]


def _nul_byte(rng: random.Random, seed: Seed, canary: Path) -> bytes:
    if rng.random() < 0.3:  # a NUL inside a value (YAML's "\0" escape) reaches validation and the builder
        data = copy.deepcopy(seed.data)
        return _dump(data, _at_random_slot(rng, data, rng.choice(('"a\\0b"', '"\\0"', '"Europe/Berlin\\0"'))))
    data = seed.text.encode("utf-8")
    for _ in range(rng.choice((1, 1, 2, 5))):
        data = _insert(rng, data, b"\x00")
    return data


BAD_UTF8 = (b"\xff", b"\xfe", b"\xc3\x28", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
            b"\x93smart\x94", b"caf\xe9", b"\xef\xbb\xbf")  # fmt: skip


def _non_utf8(rng: random.Random, seed: Seed, canary: Path) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return seed.text.encode(rng.choice(("utf-16", "utf-32", "utf-16-be")))
    if roll < 0.25:
        return b"\xef\xbb\xbf" + seed.text.encode("utf-8")  # a UTF-8 BOM: valid
    if roll < 0.35:
        return seed.text.encode("utf-8").rstrip(b"\n") + rng.choice((b"\xe2\x82", b"\xc3"))  # cut inside a character
    return _insert(rng, seed.text.encode("utf-8"), rng.choice(BAD_UTF8))


KINDS: dict[str, Mutation] = {
    "wrong type": _structural(_wrong_type),
    "missing key": _structural(_missing_key),
    "unknown key": _structural(_unknown_key),
    "dependency cycle": _structural(_cycle),
    "bad cron": _structural(_bad_cron),
    "bad time zone": _structural(_bad_timezone),
    "huge value": _structural(_huge_value),
    "!!python tag": _python_tag,
    "broken YAML": _broken_yaml,
    "alias bomb": _alias_bomb,
    "binary junk": _binary_junk,
    "NUL byte": _nul_byte,
    "not UTF-8": _non_utf8,
}


# --- checking one mutant --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one mutant."""

    mutant: Mutant
    path: Path
    loaded: bool = False
    dag_id: str | None = None
    problems: list[Any] = field(default_factory=list)
    parse_ms: float = 0.0
    broken: list[str] = field(default_factory=list)


def check_mutant(mutant: Mutant, workdir: Path) -> Outcome:
    """Write the mutant beside a valid sibling, load it, build it, and check every guarantee."""
    from supervisor_lib.spec import SpecError, clear_cache

    folder = workdir / f"m{mutant.index:04d}"
    folder.mkdir()
    path = folder / mutant.name
    path.write_bytes(mutant.data)
    (folder / SIBLING_NAME).write_text(SIBLING_TEXT, encoding="utf-8")
    outcome = Outcome(mutant, path)
    result = _timed_load(path, outcome)
    if isinstance(result, SpecError):
        outcome.problems = result.problems
        outcome.broken += _unlocated(result, path, mutant.data)
    elif isinstance(result, BaseException):
        outcome.broken.append(f"load_spec raised {type(result).__name__}: {_short(result)}")
    else:
        outcome.loaded, outcome.dag_id = True, result.dag_id
        outcome.broken += _unbuilt(result)
    outcome.broken += _hidden(folder, outcome)
    clear_cache()
    return outcome


def _timed_load(path: Path, outcome: Outcome) -> Any:
    """``load_spec(path)``, its result or exception, timed; a slow load is timed once more (a busy machine)."""
    from supervisor_lib.spec import clear_cache, load_spec

    best, result = float("inf"), None
    for _ in range(2):
        clear_cache()
        started = time.perf_counter()
        try:
            result = load_spec(path)
        except Exception as error:
            result = error
        best = min(best, time.perf_counter() - started)
        if best <= MAX_PARSE_SECONDS:
            break
    outcome.parse_ms = best * 1000
    if best > MAX_PARSE_SECONDS:
        outcome.broken.append(f"parsing took {best:.2f} s (at most {MAX_PARSE_SECONDS:g} s)")
    return result


def _unlocated(error: Any, path: Path, data: bytes) -> list[str]:
    """What is wrong with the way a ``SpecError`` reports its problems (nothing when every one is located)."""
    from supervisor_lib.spec.errors import display_path

    lines = data.count(b"\n") + 1
    where = re.escape(display_path(str(path)))
    shape = re.compile(rf"^{where}(?::(?P<line>\d+))?: (?:\[(?P<path>[^\n]+?)\] )?(?P<message>[^\n]+)$")
    broken = []
    for problem in error.problems:
        rendered = problem.render()
        if problem.file != str(path):
            broken.append(f"a problem names another file: {_short(rendered)}")
        elif not shape.match(rendered):
            broken.append(f"not one 'file:line: [path] message' line: {_short(rendered)!r}")
        elif problem.message.startswith(SAFETY_NET):
            broken.append(f"an unexpected exception, caught by the loader's safety net: {_short(rendered)}")
        elif problem.line is None and _needs_line(problem):
            broken.append(f"no line: {_short(rendered)}")
        elif problem.line is not None and not 1 <= problem.line <= lines:
            broken.append(f"line {problem.line} is outside the file ({lines} lines): {_short(rendered)}")
    return broken


def _needs_line(problem: Any) -> bool:
    if problem.path == "dag_id" and "taken from the file name" in problem.message:
        return False
    return problem.path != "" or not any(marker in problem.message for marker in LINELESS)


def _unbuilt(spec: Any) -> list[str]:
    """Build the DAG as ``load_dags`` does (model warnings, then ``build_dag``); anything raised is broken."""
    from supervisor_lib.build import build_dag
    from supervisor_lib.spec.model_check import model_warnings

    try:
        model_warnings(spec)
        dag = build_dag(spec)
    except Exception as error:
        return [f"loaded, but building the DAG raised {type(error).__name__}: {_short(error)}"]
    if dag.dag_id != spec.dag_id or not dag.tasks:
        return [f"built DAG {dag.dag_id!r} with {len(dag.tasks)} tasks from spec {spec.dag_id!r}"]
    return []


def _hidden(folder: Path, outcome: Outcome) -> list[str]:
    """The folder loads as the mutant's outcome plus the sibling: no other spec is hidden or reported."""
    from supervisor_lib.spec import load_specs

    try:
        specs, errors = load_specs(folder)
    except Exception as error:
        return [f"load_specs raised {type(error).__name__}: {_short(error)}"]
    broken = []
    ids = {spec.dag_id for spec in specs}
    if SIBLING_DAG_ID not in ids:
        broken.append(f"the valid sibling spec is hidden (errors: {_short(errors)})")
    expected_errors = set() if outcome.loaded else {str(outcome.path)}
    if set(errors) != expected_errors:
        broken.append(f"load_specs reported errors for {sorted(errors)}, expected {sorted(expected_errors)}")
    if outcome.loaded and outcome.dag_id not in ids:
        broken.append(f"the mutant loaded alone but not beside the sibling: {_short(errors)}")
    return broken


def _short(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the DAG processor's path, for a sample -------------------------------------------------------------------------

PROBE = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import BundleDagBag
    results = {}
    for folder in json.loads(sys.stdin.read()):
        dags = folder + "/dags"
        bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
        results[folder] = {"dags": sorted(bag.dags), "errors": {str(k): str(v) for k, v in bag.import_errors.items()}}
    print("RESULTS=" + json.dumps(results))
""")
DAG_FILES = {"specs.py": "load_dags", "spec_errors.py": "raise_spec_errors"}


def dagbag_sample(outcomes: list[Outcome], size: int) -> list[Outcome]:
    """``size`` mutants for the DagBag: the first of each kind, then more drawn by a seeded generator."""
    firsts = {}
    for outcome in outcomes:
        firsts.setdefault(outcome.mutant.kind, outcome)
    chosen = list(firsts.values())[:size]
    rest = [outcome for outcome in outcomes if outcome not in chosen]
    chosen += random.Random(RANDOM_SEED + 1).sample(rest, k=max(0, min(size - len(chosen), len(rest))))
    return chosen


def check_dagbag(sample: list[Outcome], workdir: Path) -> dict[int, list[str]]:
    """Parse each sampled mutant's folder with Airflow's ``BundleDagBag`` (one subprocess for all); broken
    guarantees by mutant index."""
    folders = {_bag_folder(outcome, workdir / "bag"): outcome for outcome in sample}
    env = {**os.environ, "AIRFLOW_HOME": str(workdir / "airflow_home"), "PYTHONPATH": str(ROOT),
           "SUPERVISOR_SPEC_CACHE_DIR": str(workdir / "bag_spec_cache"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}  # fmt: skip
    run = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(list(folders)), capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)  # fmt: skip
    marker = [line for line in run.stdout.splitlines() if line.startswith("RESULTS=")]
    if run.returncode != 0 or not marker:
        return {-1: [f"the DagBag probe failed (exit {run.returncode}): {_short(run.stderr[-2000:], 2000)}"]}
    results = json.loads(marker[-1].removeprefix("RESULTS="))
    return {outcome.mutant.index: _bag_broken(outcome, results[folder]) for folder, outcome in folders.items()}


def _bag_folder(outcome: Outcome, root: Path) -> str:
    folder = root / f"m{outcome.mutant.index:04d}"
    (folder / "include" / "specs").mkdir(parents=True)
    (folder / "dags").mkdir()
    shutil.copy(outcome.path, folder / "include" / "specs" / outcome.path.name)
    (folder / "include" / "specs" / SIBLING_NAME).write_text(SIBLING_TEXT, encoding="utf-8")
    for name, call in DAG_FILES.items():
        source = f'"""airflow dag"""\nfrom supervisor_lib import {call}\n{call}(globals(), specs_dir="include/specs")\n'
        (folder / "dags" / name).write_text(source, encoding="utf-8")
    return str(folder)


def _bag_broken(outcome: Outcome, result: dict[str, Any]) -> list[str]:
    from supervisor_lib.spec import SpecProblem

    expected = sorted({SIBLING_DAG_ID, outcome.dag_id} if outcome.loaded else {SIBLING_DAG_ID})
    broken = [] if result["dags"] == expected else [f"DagBag has DAGs {result['dags']}, expected {expected}"]
    errors = {Path(name).name: text for name, text in result["errors"].items()}
    if outcome.loaded:
        return broken + ([f"DagBag reports import errors for a valid mutant: {_short(errors)}"] if errors else [])
    if list(errors) != ["spec_errors.py"]:
        return [*broken, f"DagBag import errors are in {sorted(errors)}, expected only spec_errors.py"]
    text = errors["spec_errors.py"]
    if SIBLING_NAME in text or outcome.path.name not in text:
        broken.append(f"the import error does not name the mutant alone: {_short(text)}")
    for problem in outcome.problems:
        tail = SpecProblem(path=problem.path, message=problem.message).render()[:200]
        if tail not in text:
            broken.append(f"the import error lacks the problem {tail!r}")
    return broken


# --- REST conf ------------------------------------------------------------------------------------------------------

GOOD_CONF: dict[str, Any] = {"repo": "include/repos/payments", "task_type": "bug_fix", "instructions": "Fix the fee."}


@dataclass(frozen=True)
class Conf:
    """A conf to trigger ``supervisor_task`` with: its group, the field it gets wrong (none: a good conf), and
    whether Airflow's API must refuse it."""

    group: str
    field: str | None
    conf: Any


def _with(field: str, value: Any) -> dict[str, Any]:
    return {**GOOD_CONF, field: value}


def _without(*fields: str) -> dict[str, Any]:
    return {key: value for key, value in GOOD_CONF.items() if key not in fields}


WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "repo": (5, True, None, [], {}), "ref": (1, None, ["main"]), "task_type": (1, None, ["bug_fix"]),
    "instructions": (None, 3.5, ["x"], {"a": 1}), "validate": (1, [], {}), "validate_timeout": ("300", 1.5, True, None),
    "provider": (None, 1), "model": (1, []), "reviewer_provider": (False,), "reviewer_model": (2,),
    "budget_usd": ("1.0", True, None, [1]), "max_tokens": ("512", 512.5, False), "max_iterations": ("3", None, 2.5),
    "approval": ("false", 0, None), "paths": ("src/*", [1], [""], {"a": "b"}), "issue": (7,), "base_ref": (1,),
    "head_ref": ([],),
}  # fmt: skip
HUGE_CONFS: dict[str, tuple[Any, ...]] = {
    "instructions": ("x" * 20_001, "x" * 1_000_000), "repo": ("r" * 501,), "issue": ("i" * 50_001,),
    "validate": ("v" * 2_001,), "model": ("m" * 201,), "reviewer_model": ("m" * 201,), "ref": ("a" * 201,),
    "paths": (["*"] * 51, ["p" * 301]), "validate_timeout": (10**30, 3_601), "max_tokens": (10**30, 64_001),
    "budget_usd": (1e308, float("inf"), 5.000_001), "max_iterations": (11, 10**18),
}  # fmt: skip
OUT_OF_RANGE: dict[str, tuple[Any, ...]] = {
    "validate_timeout": (9, -1), "budget_usd": (0, -1.0, -0.0), "max_tokens": (255, -1), "max_iterations": (0,),
    "task_type": ("rewrite", "BUG_FIX", ""), "provider": ("gemini", ""), "reviewer_provider": ("both",),
    "instructions": ("",), "repo": ("",),
}  # fmt: skip
INJECTIONS = ("--upload-pack=touch /tmp/pwned", "-c", "main; rm -rf /", "$(id)", "`id`", "main\n--exec=x",
              "main && curl evil", "'; DROP TABLE dag_run; --", "../../etc/passwd", " main", "main\x00",
              "{{ var.value.secret }}", "ma in", "ext::sh -c touch% /tmp/pwned")  # fmt: skip
REPO_INJECTIONS = ("--upload-pack=touch /tmp/pwned", "-c core.sshCommand=touch", "ext::sh -c touch% /tmp/pwned",
                   "file:///etc", "/etc", "../../../../etc", "~root", "include/repos/../../..",
                   "https://user:secret@example.com/x.git", "include/repos/payments\x00", "a\nb",
                   "$(id)", "; rm -rf /")  # fmt: skip
GOOD_CONFS: tuple[dict[str, Any], ...] = (
    GOOD_CONF,
    {**GOOD_CONF, "ref": "release/2.4", "validate": "python -m pytest -q", "validate_timeout": 10, "provider": "openai",
     "model": "gpt-5-mini", "reviewer_provider": "none", "budget_usd": 5, "max_tokens": 64_000, "max_iterations": 10,
     "approval": True, "paths": ["*"] * 50, "issue": None, "base_ref": None, "head_ref": None},
    {**GOOD_CONF, "task_type": "pr_review", "base_ref": "main", "head_ref": "feature/x", "max_tokens": 256,
     "budget_usd": 0.01, "validate_timeout": 3_600, "max_iterations": 1, "instructions": "x" * 20_000},
    {**GOOD_CONF, "validate_timeout": 300.0, "ref": "v1.2.3", "paths": None, "model": None},
)  # fmt: skip


def bad_confs() -> list[Conf]:
    """Every conf tried, grouped by what is wrong with it."""
    confs = [Conf("rest: good conf", None, conf) for conf in GOOD_CONFS]
    confs += [Conf("rest: wrong type", name, _with(name, v)) for name, values in WRONG_TYPES.items() for v in values]
    confs += [Conf("rest: missing required", name, _without(name)) for name in ("repo", "task_type", "instructions")]
    confs.append(Conf("rest: missing required", "repo", {}))
    confs += [Conf("rest: huge value", name, _with(name, v)) for name, values in HUGE_CONFS.items() for v in values]
    confs += [Conf("rest: out of range", name, _with(name, v)) for name, values in OUT_OF_RANGE.items() for v in values]
    confs += [Conf("rest: injection in a ref", name, _with(name, v)) for name in ("ref", "base_ref", "head_ref")
              for v in INJECTIONS]  # fmt: skip
    return confs


@dataclass
class Trigger:
    """The API's answer to one conf: the status, the message, how many runs were created, how long it took."""

    status: int
    message: str
    runs: int
    ms: float


class RestApi:
    """The trigger route's code path for ``supervisor_task``, in-process, with the ORM insert recorded instead."""

    def __init__(self) -> None:
        from airflow.serialization.serialized_objects import DagSerialization

        from supervisor_lib.build.rest_task import supervisor_task_dag

        dag = supervisor_task_dag(dag_file=str(ROOT / "dags" / "supervisor_task.py"))
        # what the API server reads: the DAG as the DAG processor serialized it into the database
        stored = json.loads(json.dumps(DagSerialization.to_dict(dag)))
        self.dag = DagSerialization.from_dict(stored)

    def trigger(self, conf: Any) -> Trigger:
        """POST /api/v2/dags/supervisor_task/dagRuns with ``{"logical_date": null, "conf": conf}``."""
        import pydantic
        from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
        from airflow.exceptions import ParamValidationError

        started = time.perf_counter()
        wire = json.loads(json.dumps({"logical_date": None, "conf": conf}))  # JSON on the wire, NaN included
        created: list[dict[str, Any]] = []
        try:
            body = TriggerDAGRunPostBody.model_validate(wire)
        except pydantic.ValidationError as error:  # FastAPI answers 422 for a body its model refuses
            return Trigger(422, str(error), 0, (time.perf_counter() - started) * 1000)
        try:
            with self._recording(created):
                self._create(body)
        except (ParamValidationError, ValueError) as error:  # what trigger_dag_run answers with 400
            return Trigger(400, str(error), len(created), (time.perf_counter() - started) * 1000)
        return Trigger(200, "", len(created), (time.perf_counter() - started) * 1000)

    def _create(self, body: Any) -> None:
        """The two calls of ``trigger_dag_run`` inside its ``try``: ``validate_context`` and ``create_dagrun``."""
        from types import SimpleNamespace

        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType

        params = body.validate_context(self.dag)
        self.dag.create_dagrun(
            run_id=params["run_id"], logical_date=params["logical_date"], data_interval=params["data_interval"],
            run_after=params["run_after"], conf=params["conf"], run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name="spec_fuzz", state=DagRunState.QUEUED,
            partition_key=params["partition_key"], partition_date=params["partition_date"], session=SimpleNamespace(),
        )  # fmt: skip

    @staticmethod
    @contextlib.contextmanager
    def _recording(created: list[dict[str, Any]]) -> Iterator[None]:
        from types import SimpleNamespace
        from unittest import mock

        from airflow.serialization.definitions import dag as serialized_dag

        def insert(**kwargs: Any) -> SimpleNamespace:
            created.append(kwargs)
            return SimpleNamespace(**kwargs)

        with mock.patch.object(serialized_dag, "_create_orm_dagrun", insert), \
                mock.patch.object(serialized_dag, "log", mock.Mock()):  # fmt: skip
            yield


def check_conf(api: RestApi, conf: Conf) -> tuple[Trigger, list[str]]:
    """Trigger with ``conf``; a good conf must create one run, a bad one a 400 naming its field and no run."""
    answer = api.trigger(conf.conf)
    shown = _short(json.dumps(conf.conf, default=repr), 120)
    if conf.field is None:
        ok = answer.status == 200 and answer.runs == 1
        return answer, [] if ok else [f"{conf.group}: {shown} was refused ({answer.status}): {_short(answer.message)}"]
    if answer.status != 400:
        return answer, [f"{conf.group}: {shown} was not refused (HTTP {answer.status}, {answer.runs} run created)"]
    broken = []
    if f"param {conf.field}:" not in answer.message:
        broken.append(f"{conf.group}: the 400 for {shown} does not name '{conf.field}': {_short(answer.message)}")
    if answer.runs:
        broken.append(f"{conf.group}: {shown} was refused but created {answer.runs} run(s)")
    return answer, broken


def check_repo_injections(api: RestApi) -> tuple[list[object], list[str]]:
    """Injection-looking ``repo`` values: the request schema cannot know the platform's repository settings, so
    the API accepts them (documented in docs/rest.md); the ``request`` task's policy check must refuse each before
    any model call."""
    from supervisor_lib.coding.repo_policy import RepoPolicy, RepoRefused

    policy = RepoPolicy.from_env(ROOT)
    accepted, refused, slowest, broken = 0, 0, 0.0, []
    for repo in REPO_INJECTIONS:
        answer = api.trigger(_with("repo", repo))
        slowest = max(slowest, answer.ms)
        accepted += answer.status == 200
        try:
            policy.check(repo, ROOT)
        except RepoRefused as error:
            refused += str(error).startswith("repo:")
            continue
        broken.append(f"rest: repo {repo!r} passes the API and the run-time repository policy")
    row = ["rest: injection in repo (checked at run time)", len(REPO_INJECTIONS), accepted, refused,
           f"{slowest:.1f}", len(broken)]  # fmt: skip
    return row, broken


def check_non_finite(api: RestApi) -> tuple[list[object], list[str]]:
    """NaN in a number param: JSON Schema cannot refuse it (every comparison with NaN is false) and the API accepts
    it (an upstream limit); the ``request`` task must refuse it, naming the param, before anything runs."""
    from supervisor_lib.build.rest_task import non_finite

    accepted, refused, slowest, broken = 0, 0, 0.0, []
    for name in ("budget_usd",):
        conf = _with(name, float("nan"))
        answer = api.trigger(conf)
        slowest = max(slowest, answer.ms)
        accepted += answer.status == 200
        problem = non_finite(conf)
        refused += bool(problem and problem.startswith(f"param {name}:"))
        if answer.status != 400 and not (problem and problem.startswith(f"param {name}:")):
            broken.append(f"rest: {name}: NaN passes the API and the request task")
    return ["rest: NaN (API accepts it: upstream; refused at run start)", 1, accepted, refused, f"{slowest:.1f}",
            len(broken)], broken  # fmt: skip


def rest_rows(section: Section) -> list[list[object]]:
    """Try every conf; one row per group, and the broken guarantees into ``section``."""
    api = RestApi()
    rows: dict[str, list[Any]] = {}
    for conf in bad_confs():
        answer, broken = check_conf(api, conf)
        row = rows.setdefault(conf.group, [conf.group, 0, 0, 0, 0.0, 0])
        row[1] += 1
        row[2] += answer.status == 200
        row[3] += answer.status == 400 and f"param {conf.field}:" in answer.message
        row[4] = max(row[4], answer.ms)
        row[5] += len(broken)
        section.failures.extend(broken)
    injection_row, broken = check_repo_injections(api)
    section.failures.extend(broken)
    nan_row, broken = check_non_finite(api)
    section.failures.extend(broken)
    return [*([*row[:4], f"{row[4]:.1f}", row[5]] for row in rows.values()), injection_row, nan_row]


# --- the section ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _spec_cache_in(folder: Path) -> Iterator[None]:
    """Point the loader's disk cache at ``folder`` for the run (valid mutants are cached there, not in the home)."""
    from supervisor_lib.spec import disk_cache

    before = os.environ.get(disk_cache.ENV_DIR)
    os.environ[disk_cache.ENV_DIR] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(disk_cache.ENV_DIR, None)
        else:
            os.environ[disk_cache.ENV_DIR] = before


def _warm_up() -> None:
    """Load every seed once, so first-use imports (jinja2, jsonschema, croniter) are not timed as parsing."""
    from supervisor_lib.spec import load_spec

    for folder in SEED_DIRS:
        for path in sorted(folder.glob("*.y*ml")):
            load_spec(path)


def spec_rows(outcomes: list[Outcome]) -> list[list[object]]:
    """One row per mutation kind, in the order of :data:`KINDS`."""
    rows = []
    for kind in KINDS:
        mine = [outcome for outcome in outcomes if outcome.mutant.kind == kind]
        loaded = sum(outcome.loaded for outcome in mine)
        refused = sum(not outcome.loaded and not outcome.broken for outcome in mine)
        slowest = max((outcome.parse_ms for outcome in mine), default=0.0)
        broken = sum(len(outcome.broken) for outcome in mine)
        rows.append([kind, len(mine), loaded, refused, f"{slowest:.1f}", broken])
    return rows


def fuzz_specs(quick: bool, section: Section, workdir: Path) -> tuple[list[Outcome], list[Outcome]]:
    """Make, check and DagBag-sample the mutants (returned, and the sample); broken guarantees go into ``section``."""
    count, sample_size = SIZES[quick]
    canary = workdir / "python_tag_ran"
    outcomes = [check_mutant(mutant, workdir / "mutants") for mutant in _made(count, canary, workdir)]
    for outcome in outcomes:
        section.failures.extend(f"{_label(outcome)}: {broken}" for broken in outcome.broken)
    section.check(not canary.exists(), "a !!python tag ran code: its canary file exists")
    by_index = {outcome.mutant.index: outcome for outcome in outcomes}
    sample = dagbag_sample(outcomes, sample_size)
    for index, broken in check_dagbag(sample, workdir).items():
        label = _label(by_index[index]) if index in by_index else "DagBag"
        section.failures.extend(f"{label} (DagBag): {line}" for line in broken)
        if index in by_index:
            by_index[index].broken += broken
    return outcomes, sample


def _made(count: int, canary: Path, workdir: Path) -> list[Mutant]:
    (workdir / "mutants").mkdir()
    return mutants(count, canary)


def _label(outcome: Outcome) -> str:
    return f"mutant {outcome.mutant.index} ({outcome.mutant.kind} of {outcome.mutant.name})"


def summary(outcomes: list[Outcome], sample: list[Outcome], rest: list[list[object]], section: Section) -> str:
    """The section's paragraph, in plain words."""
    loaded = sum(outcome.loaded for outcome in outcomes)
    slowest = max(outcome.parse_ms for outcome in outcomes)
    problems = max((len(outcome.problems) for outcome in outcomes), default=0)
    confs = sum(int(str(row[1])) for row in rest)
    bad = sum(int(str(row[1])) for row in rest if row[0] != "rest: good conf" and "repo" not in str(row[0]))
    return " ".join([
        "Guarantee: a bad spec file ends in a valid DAG or in located errors for that file only",
        "(`file:line: [path] message`, one line each), never a traceback, never more than",
        f"{MAX_PARSE_SECONDS:g} s of parsing, never hiding another spec; and a bad REST conf for `supervisor_task`",
        "gets HTTP 400 naming the field, and no run.",
        f"The fuzzer made {len(outcomes):,} mutants of the {len(seeds())} valid specs ({len(KINDS)} kinds, seeded):",
        f"{loaded:,} still loaded and built a DAG, {len(outcomes) - loaded:,} were refused (at most {problems:,}",
        f"problems in one file); the slowest load took {slowest:.0f} ms. Each was loaded beside a valid sibling spec,",
        f"and {len(sample)} of them ({sum(outcome.loaded for outcome in sample)} valid) were also parsed by Airflow's",
        "DagBag through `load_dags` and `raise_spec_errors`, with the sibling in the same folder.",
        f"REST: {confs} confs went through the code of Airflow's trigger route ({bad} bad ones, {len(GOOD_CONFS)}",
        f"good ones, {len(REPO_INJECTIONS)} injection-looking repositories, which only the run-time repository",
        "policy can judge, so the API accepts them and the `request` task must refuse them). Airflow's params",
        "accept keys they do not declare, so an unknown conf key is never refused.",
        f"Broken guarantees: {len(section.failures)}.",
    ])  # fmt: skip


def run(quick: bool) -> Section:
    """The part: mutated specs, then REST confs."""
    section = Section(key="spec_fuzz", title="Bad specs and bad REST conf", headers=list(HEADERS))
    with timed(section), tempfile.TemporaryDirectory(prefix="spec-fuzz-") as temp:
        workdir = Path(temp)
        with _spec_cache_in(workdir / "spec_cache"):
            _warm_up()
            outcomes, sample = fuzz_specs(quick, section, workdir)
        rest = rest_rows(section)
        section.rows = [*spec_rows(outcomes), *rest]
        section.summary = summary(outcomes, sample, rest, section)
        _release_memory()
    return section


def _release_memory() -> None:
    """Forget the huge templates the validator's parse cache still holds."""
    from supervisor_lib.spec import clear_cache, validate

    clear_cache()
    validate._parsed_variables.cache_clear()
