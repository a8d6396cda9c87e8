"""Spec errors that say where: file, line, field path and DAG id.

``SpecError`` is a ``ValueError`` carrying every problem found in one file, so a team fixes them all in one pass.
It imports nothing heavy: ``supervisor_lib.exceptions`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec.

    :param file: the spec file, or ``None`` for a spec built in Python.
    :param line: 1-based line in ``file``, or ``None`` when unknown.
    :param path: the field path such as ``tasks[2].provider``; empty for file-level problems (YAML syntax).
    :param message: what is wrong and, when we can tell, how to fix it.
    :param dag_id: the workflow's dag_id when known.
    """

    file: str | None = None
    line: int | None = None
    path: str = ""
    message: str = ""
    dag_id: str | None = None

    def render(self) -> str:
        """Render as ``file:line: [path] message`` (the file relative to the CWD when under it), on one line:
        line breaks and control characters in the path and message are escaped."""
        where = display_path(self.file) if self.file else self.dag_id
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        parts = [f"{where}:"] if where else []
        if self.path:
            parts.append(f"[{one_line(self.path)}]")
        parts.append(one_line(self.message))
        return " ".join(parts)


class SpecError(ValueError):
    """A spec is invalid; ``problems`` lists every problem found, in file order.

    No retry can help: the file must be fixed. ``str(err)`` is one line per problem.
    """

    def __init__(self, problems: Iterable[SpecProblem]) -> None:
        self.problems: list[SpecProblem] = sorted(problems, key=_problem_order)
        if not self.problems:
            raise ValueError("SpecError needs at least one problem")
        super().__init__(self.problems[0].message)

    def __str__(self) -> str:
        return "\n".join(problem.render() for problem in self.problems)

    def __reduce__(self) -> tuple[type[SpecError], tuple[list[SpecProblem]]]:
        # The default reduce would call SpecError(message), which is not our signature.
        return (type(self), (self.problems,))

    @property
    def file(self) -> str | None:
        """The file of the first problem."""
        return self.problems[0].file

    @property
    def line(self) -> int | None:
        """The line of the first problem."""
        return self.problems[0].line

    @property
    def path(self) -> str:
        """The field path of the first problem."""
        return self.problems[0].path

    @property
    def message(self) -> str:
        """The message of the first problem."""
        return self.problems[0].message


#: control characters and line breaks, as escapes: a value quoted in a message (a cron expression, a time zone, a
#: key) may hold them, and one problem must stay one line
_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in [*range(32), 127] if code != ord("\t")},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    **{code: f"\\u{code:04x}" for code in (0x85, 0x2028, 0x2029)},
}


def one_line(text: str) -> str:
    """``text`` with its line breaks and control characters escaped (``\\n``, ``\\x00``), so it stays one line."""
    return text.translate(_ESCAPES)


def format_path(loc: Sequence[str | int]) -> str:
    """Render a location such as ``('tasks', 2, 'provider')`` as ``tasks[2].provider``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem_order(problem: SpecProblem) -> tuple[str, int, str]:
    return (problem.file or "", problem.line if problem.line is not None else 0, problem.path)


def display_path(file: str) -> str:
    """``file`` relative to the current directory when it lies under it, else as given."""
    path = Path(file)
    if not path.is_absolute():
        return file
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):  # not under the CWD, or the CWD was deleted
        return file
