"""Patches from the model: hostile paths and contents are refused with a reason; nothing outside the worktree changes.

Every answer goes through :func:`supervisor_lib.workspace.apply_answer`, the function the coding loop applies a
model's answer with, in a real worktree made the way a coding task makes one (``RepoSource.resolve`` of a git repo
into a cache, then ``Workspace.create``). The repo holds symlinks that point out of it (a folder, a file) and one
that points at the worktree's ``.git``. After every answer the suite compares hashes of every file of a sentinel
folder outside the worktree, the user's checkout, the cache repository (hooks and the worktree's git dir included)
and the worktree's ``.git`` link; a refused answer must also leave the worktree itself untouched (all or nothing),
and the worktree must stay usable by git afterwards. Full mode adds 500 seeded random variants of the hostile paths.
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.reliability import Section, timed
from supervisor_lib.workspace import RepoSource, Workspace, WorkspaceError, apply_answer, run_git
from supervisor_lib.workspace.edits import MAX_FILE_BYTES, EditError

HEADERS = ["what the model sent", "path", "expected", "outcome", "reason given", "outside the worktree and .git"]
SEED = 20240607
RANDOM_VARIANTS = {True: 40, False: 500}
#: an answer that has not returned after this long counts as hung (a FIFO once blocked the write forever)
DEADLINE_S = 20.0
CORE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"

Builder = Callable[[str], str]


@dataclass
class Lab:
    """A worktree of a repo with hostile symlinks, and what must never change outside it."""

    tmp: Path
    sentinel: Path
    source: Path
    cache: Path
    ws: Workspace
    token: str
    planted: list[Path] = field(default_factory=list)

    @property
    def up(self) -> str:
        """The relative climb from the worktree to the folder that holds the sentinel."""
        return os.path.relpath(self.tmp, self.ws.path)

    def fill(self, text: str) -> str:
        """Put this lab's paths in for ``{sentinel}``, ``{up}``, ``{token}`` and ``{cache}``."""
        for key, value in (("sentinel", self.sentinel), ("up", self.up), ("token", self.token), ("cache", self.cache)):
            text = text.replace("{" + key + "}", str(value))
        return text


@contextmanager
def open_lab() -> Iterator[Lab]:
    """Build the sentinel, the user's repo (with its symlinks), the cache and the worktree; remove them after."""
    with tempfile.TemporaryDirectory(prefix="reliability-patches-") as name:
        tmp = Path(name).resolve()
        sentinel = tmp / "sentinel"
        (sentinel / "hooks").mkdir(parents=True)
        (sentinel / "secret.txt").write_text("secret\n")
        (sentinel / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
        source = _make_source(tmp / "source", sentinel)
        cache = RepoSource.resolve(str(source), tmp / "cache")
        ws = Workspace.create(cache, "HEAD", tmp / "workspaces", "ws", keep="never")
        try:
            yield Lab(tmp, sentinel, source, cache, ws, uuid.uuid4().hex[:12])
        finally:
            ws.remove()


def _make_source(path: Path, sentinel: Path) -> Path:
    """The user's repo: ordinary files, a binary one, and symlinks out (folder, file), in (a file) and to ``.git``."""
    (path / "pkg").mkdir(parents=True)
    (path / "pkg" / "core.py").write_text(CORE)
    (path / "README.md").write_text("# demo\n")
    (path / "logo.bin").write_bytes(b"\x89PNG\r\n\x1a\n\xff\x00")
    os.symlink(sentinel, path / "outdir")
    os.symlink(sentinel / "secret.txt", path / "outfile.txt")
    os.symlink("pkg/core.py", path / "alias.py")
    os.symlink(".git", path / "gitlink")
    run_git(["init", "--quiet", "--initial-branch=main"], path)
    run_git(["add", "--all"], path)
    run_git(["commit", "--quiet", "-m", "initial"], path)
    return path


# -- what the model sends --------------------------------------------------------------------------------------------
def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def create(text: str = "owned\n") -> Builder:
    return lambda path: block(path, "", text)


def edit(search: str, replace: str = "owned\n") -> Builder:
    return lambda path: block(path, search, replace)


def diff_new(text: str = "owned") -> Builder:
    return lambda path: f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{text}\n"


def literal(answer: str) -> Builder:
    return lambda path: answer.replace("{path}", path)


def diff_link(target: str) -> Builder:
    head = "diff --git a/{0} b/{0}\nnew file mode 120000\n--- /dev/null\n+++ b/{0}\n@@ -0,0 +1 @@\n+{1}\n"
    return lambda path: head.format(path, target) + "\\ No newline at end of file\n"


BINARY_PATCH = (
    "diff --git a/{path} b/{path}\nnew file mode 100644\n"
    "index 0000000000000000000000000000000000000000..f63bd877fcd57b07f0339277c3de5bf7bd442cac\n"
    "GIT binary patch\nliteral 4\nLcmYdfNcs-|14{wJ\n\nliteral 0\nHcmV?d00001\n\n"
    "diff --git a/note.txt b/note.txt\nnew file mode 100644\n--- /dev/null\n+++ b/note.txt\n@@ -0,0 +1 @@\n+hi\n"
)
OVERLAP = block("{path}", "def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n") + block(
    "{path}", "    return a - b\n\n\ndef sub(a, b):\n", "    return 0\n"
)
SEQUENTIAL = block("{path}", "def add(a, b):\n", "def plus(a, b):\n") + block(
    "{path}", "def plus(a, b):\n", "def total(a, b):\n"
)
GOOD_DIFF = "--- a/{path}\n+++ b/{path}\n@@ -1,3 +1,3 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n \n"
#: a second hunk over the lines the first one changed
OVERLAP_HUNKS = GOOD_DIFF + "@@ -1,3 +1,3 @@\n def add(a, b):\n-    return a - b\n+    return a * b\n \n"


@dataclass(frozen=True)
class Case:
    """One answer: ``reason`` is what the refusal must say; ``None`` means it is legitimate and must apply."""

    name: str
    path: str
    answer: Builder
    reason: str | None
    setup: Callable[[Lab], None] | None = None
    changes: tuple[str, ...] = ()


def plant_link(name: str, target: str) -> Callable[[Lab], None]:
    """A symlink left in the worktree by something before this answer (the validation command can make one)."""

    def setup(lab: Lab) -> None:
        os.symlink(lab.fill(target), lab.ws.path / name)
        lab.planted.append(lab.ws.path / name)

    return setup


def plant_fifo(lab: Lab) -> None:
    os.mkfifo(lab.ws.path / "pipe")
    lab.planted.append(lab.ws.path / "pipe")


def control(name: str, path: str, answer: Builder, changed: str = "pkg/core.py") -> Case:
    """A legitimate answer among the hostile ones: it must apply, and change only ``changed``."""
    return Case(name, path, answer, None, changes=(changed,))


OUT = "resolves outside the repository"
GIT = "inside .git"
CASES: tuple[Case, ...] = (
    Case("../ climbs out to edit a file", "{up}/sentinel/secret.txt", edit("secret\n"), "contains '..'"),
    Case("../ buried under a folder", "pkg/../../../sentinel/new-{token}.txt", create(), "contains '..'"),
    Case("../ in a unified diff", "{up}/sentinel/new-{token}.txt", diff_new(), "contains '..'"),
    Case("absolute path", "{sentinel}/secret.txt", edit("secret\n"), "is absolute"),
    Case("absolute path, new file", "{sentinel}/new-{token}.txt", create(), "is absolute"),
    Case("~ (home folder)", "~/pwned-{token}.txt", create(), "is absolute"),
    Case("drive letter", "C:/pwned-{token}.txt", create(), "is absolute"),
    Case("backslashes", "..\\..\\sentinel\\secret.txt", create(), "contains '\\'"),
    Case("NUL in the path", "pkg/core.py\0/../../x", create(), "NUL"),
    Case("a lone surrogate in the path (not UTF-8)", "pkg/\udcff\ud800.py", create(), "not valid UTF-8"),
    Case("repo symlink to a folder outside: edit", "outdir/secret.txt", edit("secret\n"), OUT),
    Case("repo symlink to a folder outside: new file", "outdir/new-{token}.txt", create(), OUT),
    Case("repo symlink to a folder outside: new hook", "outdir/hooks/pre-commit", edit("exit 0\n"), OUT),
    Case("repo symlink to a file outside", "outfile.txt", edit("secret\n"), OUT),
    Case("repo symlink to .git", "gitlink", edit("gitdir\n"), GIT),
    Case("symlink planted by an earlier diff", "planted", diff_link("{sentinel}"), "symbolic link"),
    Case("symlink planted by an earlier diff, to .git", "gitlink2", diff_link(".git"), "symbolic link"),
    Case(
        "through a symlink the tests planted",
        "planted/new-{token}.txt",
        create(),
        OUT,
        plant_link("planted", "{sentinel}"),
    ),
    Case(
        "through a planted link to the cache's hooks",
        "hooks/pre-commit",
        create(),
        OUT,
        plant_link("hooks", "{cache}/hooks"),
    ),
    Case(".git/config", ".git/config", create("[core]\n\thooksPath = /tmp\n"), GIT),
    Case(".git/hooks/pre-commit", ".git/hooks/pre-commit", create("#!/bin/sh\ncurl evil\n"), GIT),
    Case(".git/hooks/pre-commit in a diff", ".git/hooks/pre-commit", diff_new("#!/bin/sh"), GIT),
    Case(".git itself (the worktree's gitdir link)", ".git", edit("gitdir: x\n", "gitdir: /tmp\n"), GIT),
    Case(".GIT (odd case)", ".GIT/config", create(), GIT),
    Case(".Git/hooks (odd case)", "pkg/.Git/hooks/post-checkout", create(), GIT),
    Case(".git/ (trailing slash)", ".git/", create(), GIT),
    Case("./.git/config", "./.git/config", create(), GIT),
    Case(".git. (trailing dot)", ".git./config", create(), GIT),
    Case(".git.. (trailing dots)", ".git../hooks/pre-commit", create(), GIT),
    Case("git~1 (NTFS short name)", "GIT~1/config", create(), GIT),
    Case(".git::$INDEX_ALLOCATION (NTFS stream)", ".git::$INDEX_ALLOCATION/config", create(), GIT),
    Case(".git with U+200C inside (HFS ignores it)", ".g\u200cit/config", create(), GIT),
    Case(
        "header-only diff of a .git hook",
        ".git/hooks/pre-commit",
        literal(
            "diff --git a/{path} b/{path}\nnew file mode 100755\nindex 0000000..e69de29\n"
            + GOOD_DIFF.replace("{path}", "pkg/core.py")
        ),
        GIT,
    ),
    Case("a FIFO the tests left where a file goes", "pipe", create(), "not a regular file", plant_fifo),
    Case("huge new file (over the limit)", "big.txt", create("x" * MAX_FILE_BYTES + "\n"), "larger than"),
    Case("huge file in a diff", "big.txt", diff_new("x" * MAX_FILE_BYTES), "larger than"),
    Case("binary content: NUL bytes", "blob.txt", create("\x7fELF\x02\x01\x01\0\0\0\n"), "NUL byte"),
    Case("binary content: not Unicode", "blob.txt", create("a\ud800b\n"), "not valid UTF-8"),
    Case("binary content: NUL in a diff", "blob.txt", diff_new("a\0b"), "NUL byte"),
    Case("binary content: a git binary patch", "blob.bin", literal(BINARY_PATCH), "binary patch"),
    Case("editing a binary file of the repo", "logo.bin", edit("PNG\n"), "not a UTF-8 text file"),
    Case("empty SEARCH over an existing file", "pkg/core.py", create("owned\n"), "already exists"),
    Case("SEARCH that matches nothing", "pkg/core.py", edit("def mul(a, b):\n"), "does not match"),
    Case("SEARCH that matches twice", "pkg/core.py", edit("    return a - b\n"), "in 2 places"),
    Case("overlapping edits (block 2 quotes what block 1 replaced)", "pkg/core.py", literal(OVERLAP), "does not match"),
    Case("overlapping hunks in a diff", "pkg/core.py", literal(OVERLAP_HUNKS), "does not apply"),
    control(
        "ordinary edit", "pkg/core.py", edit("def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n")
    ),
    control("ordinary diff", "pkg/core.py", literal(GOOD_DIFF)),
    control("sequential edits (block 2 edits block 1's result)", "pkg/core.py", literal(SEQUENTIAL)),
    control("through a repo symlink that stays inside", "alias.py", edit("def add(a, b):\n", "def plus(a, b):\n")),
    control(".gitignore (an ordinary tracked file)", ".gitignore", create("*.log\n"), ".gitignore"),
    control(".github/ (not .git)", ".github/workflows/ci.yml", create("on: push\n"), ".github/workflows/ci.yml"),
    control("a file of exactly the limit", "data.txt", create("x" * (MAX_FILE_BYTES - 1) + "\n"), "data.txt"),
)


# -- running one answer -----------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one answer did: ``kind`` is applied, refused, crashed (a non-EditError) or hung."""

    kind: str
    message: str
    files: tuple[str, ...] = ()
    untouched: list[str] = field(default_factory=list)
    worktree_changed: bool = False
    usable: bool = True


def digest(path: Path, skip: str | None = None) -> dict[str, str]:
    """Relative path -> sha256 (symlinks: their target, not followed) of everything under ``path``."""
    if not path.is_dir() or path.is_symlink():
        return {".": _entry(path)}
    found = {}
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != skip or Path(folder) != path]
        for name in dirs + files:
            if name != skip or Path(folder) != path:
                found[os.path.relpath(os.path.join(folder, name), path)] = _entry(Path(folder, name))
    return found


def _entry(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return "-> " + os.readlink(path)
    if stat.S_ISREG(mode):
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return "dir" if stat.S_ISDIR(mode) else f"special {stat.filemode(mode)}"


def guarded(lab: Lab) -> dict[str, dict[str, str]]:
    """Everything that must not change: outside the worktree, and its ``.git``."""
    places = (Path.home(), Path("/tmp"), Path("/"), lab.tmp)
    strays = {str(p): "stray" for place in places for p in place.glob(f"*{lab.token}*")}
    return {
        "sentinel": digest(lab.sentinel),
        "user's checkout": digest(lab.source),
        "cache repo (hooks, worktree git dir)": digest(lab.cache),
        "worktree .git": digest(lab.ws.path / ".git"),
        "files named for this run in /, /tmp, home or the lab": strays,
    }


def apply_with_deadline(root: Path, answer: str) -> tuple[str, str, tuple[str, ...]]:
    """``apply_answer`` in a thread: (kind, message, files). A hung write to a FIFO is unblocked by reading it."""
    done: list[tuple[str, str, tuple[str, ...]]] = []

    def target() -> None:
        try:
            done.append(("applied", "", apply_answer(root, answer).files_changed))
        except EditError as err:
            done.append(("refused", f"{type(err).__name__}: {err}", ()))
        except Exception as err:  # the loop catches EditError only: anything else would crash the task
            done.append(("crashed", f"{type(err).__name__}: {err}", ()))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        _drain_fifos(root)
        thread.join(5)
        return "hung", f"apply_answer had not returned after {DEADLINE_S:g} s", ()
    return done[0]


def _drain_fifos(root: Path) -> None:
    for path in root.iterdir():
        if stat.S_ISFIFO(path.lstat().st_mode):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))


def attempt(lab: Lab, path: str, answer: str) -> Outcome:
    """Apply one answer and compare everything guarded before and after; then put the worktree back."""
    before, tree = guarded(lab), digest(lab.ws.path, skip=".git")
    kind, message, files = apply_with_deadline(lab.ws.path, answer)
    after = guarded(lab)
    outcome = Outcome(kind, message, files, [name for name in before if before[name] != after[name]])
    outcome.worktree_changed = digest(lab.ws.path, skip=".git") != tree
    for planted in lab.planted:
        planted.unlink()
    lab.planted.clear()
    try:
        lab.ws.diff()
    except WorkspaceError:
        outcome.usable = False
    lab.ws.reset()
    return outcome


def names_path(message: str, path: str) -> bool:
    """True when the refusal names the path, as written or as Python shows it."""
    return path in message or repr(path) in message or path.strip() in message or repr(path.strip()) in message


# -- the fixed cases --------------------------------------------------------------------------------------------------
def run_case(section: Section, lab: Lab, case: Case) -> bool:
    """Run one case, record its row and any broken guarantee; True when it behaved as expected."""
    if case.setup:
        case.setup(lab)
    path = lab.fill(case.path)
    outcome = attempt(lab, path, lab.fill(case.answer(path)))
    expected = "refused" if case.reason else "applied"
    ok = section.check(outcome.kind == expected, f"{case.name}: {expected} expected, {outcome.kind}: {outcome.message}")
    if ok and case.reason:
        ok = section.check(
            case.reason in outcome.message, f"{case.name}: reason lacks {case.reason!r}: {outcome.message}"
        )
        ok = section.check(names_path(outcome.message, path), f"{case.name}: the refusal does not name {path!r}") and ok
        ok = section.check(not outcome.worktree_changed, f"{case.name}: refused, yet the worktree changed") and ok
    elif ok:
        ok = section.check(outcome.files == case.changes, f"{case.name}: changed {outcome.files}, not {case.changes}")
    ok = _check_guarded(section, case.name, outcome) and ok
    section.rows.append(_row(case, path, expected, outcome))
    return ok


def _check_guarded(section: Section, name: str, outcome: Outcome) -> bool:
    ok = section.check(not outcome.untouched, f"{name}: changed outside the worktree: {', '.join(outcome.untouched)}")
    return section.check(outcome.usable, f"{name}: git can no longer add the worktree's files afterwards") and ok


def _row(case: Case, path: str, expected: str, outcome: Outcome) -> list[object]:
    shown = repr(path) if not path.isprintable() else f"`{path}`"
    reason = outcome.message.split(": ", 1)[-1] if outcome.kind != "applied" else _allowed(outcome)
    broken = outcome.untouched + ([] if outcome.usable else ["git can no longer add the worktree's files"])
    guard = "CHANGED: " + ", ".join(broken) if broken else "unchanged"
    return [case.name, shown, expected, outcome.kind, _short(reason), guard]


def _allowed(outcome: Outcome) -> str:
    return f"legitimate; wrote {', '.join(outcome.files) or 'nothing'} in the worktree"


def _short(text: str, limit: int = 150) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- seeded random variants -------------------------------------------------------------------------------------------
HFS = "\u200c\u200d\u200e\u200f\u202a\u202e\u206a\u206f\ufeff"


def _dotgit(rng: random.Random) -> str:
    name = rng.choice([".git", "git~1"])
    name = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in name)
    name += rng.choice(["", "", ".", "..", ". .", " .", "::$INDEX_ALLOCATION", ":stream", "::$DATA"])
    if rng.random() < 0.2:
        at = rng.randrange(1, len(name))
        name = name[:at] + rng.choice(HFS) + name[at:]
    folders = rng.sample(["pkg", "tests", "docs", "."], rng.randrange(0, 3))
    rest = rng.choice(["config", "hooks/pre-commit", "hooks/post-checkout", "HEAD", "info/exclude", "objects/aa/bb"])
    return "/".join([*folders, name, rest])


def _escape(rng: random.Random) -> str:
    folders = rng.sample(["pkg", "tests", "docs", "."], rng.randrange(0, 4))
    real = sum(1 for f in folders if f != ".")
    climbs = [rng.choice(["..", "../.", "./.."]) for _ in range(real)]  # back to the worktree's root, then out
    target = rng.choice(["sentinel/secret.txt", "sentinel/new-{token}.txt", "pwned-{token}", "sentinel/hooks/x"])
    return "/".join([*folders, *climbs, "{up}", target])


def _absolute(rng: random.Random) -> str:
    return rng.choice(
        [
            "{sentinel}/secret.txt",
            "/{sentinel}/new-{token}.txt",
            "{sentinel}/./hooks/pre-commit",
            "~/pwned-{token}",
            "~root/pwned-{token}",
            "~/pwned-{token}/x",
            "C:/pwned-{token}",
            "c:pwned-{token}",
            "/proc/self/root{sentinel}/new-{token}",
            "/tmp/pwned-{token}",
        ]
    )


def _through_link(rng: random.Random) -> str:
    link = rng.choice(["outdir", "outdir/.", "./outdir", "outdir/hooks", "outfile.txt", "gitlink"])
    return link if link.endswith((".txt", "gitlink")) else f"{link}/{rng.choice(['secret.txt', 'new-{token}.x'])}"


def _nul(rng: random.Random) -> str:
    base = rng.choice(["pkg/core.py", "README.md", "pkg/new.py", "../x"])
    at = rng.randrange(len(base) + 1)
    return base[:at] + rng.choice(["\0", "\0", "\ud800", "\udcff", "\udfff"]) + base[at:]


FAMILIES: dict[str, Callable[[random.Random], str]] = {
    "`.git` spellings": _dotgit,
    "`../` climbs": _escape,
    "absolute and `~` paths": _absolute,
    "through symlinks that point out": _through_link,
    "NUL or lone surrogate in a path": _nul,
}


def _random_answer(rng: random.Random, path: str) -> str:
    form = rng.random()
    if form < 0.5:
        return create()(path)
    return edit("secret\n")(path) if form < 0.75 else diff_new()(path)


@dataclass
class Tally:
    """What the variants of one family did."""

    tried: int = 0
    guarded_changed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    example: str = ""


def run_variants(section: Section, lab: Lab, count: int) -> int:
    """``count`` seeded random hostile answers, spread over the families; return how many were refused."""
    rng = random.Random(SEED)
    tallies = {name: Tally() for name in FAMILIES}
    names = list(FAMILIES)
    for number in range(count):
        family = names[number % len(names)]
        path = lab.fill(FAMILIES[family](rng))
        outcome = attempt(lab, path, _random_answer(rng, path))
        _tally(section, tallies[family], family, path, outcome)
    for family, tally in tallies.items():
        section.rows.append(_variant_row(family, tally))
    return sum(t.kinds["refused"] for t in tallies.values())


def _tally(section: Section, tally: Tally, family: str, path: str, outcome: Outcome) -> None:
    tally.tried += 1
    tally.guarded_changed += bool(outcome.untouched) or not outcome.usable
    tally.kinds[outcome.kind] += 1
    tally.example = tally.example or path
    tally.reasons[_reason_kind(outcome.message)] += 1
    label = f"random {family} {path!r}"
    section.check(outcome.kind == "refused", f"{label}: {outcome.kind}: {outcome.message or outcome.files}")
    if outcome.kind == "refused":
        section.check(names_path(outcome.message, path), f"{label}: the refusal does not name the path")
        section.check(not outcome.worktree_changed, f"{label}: refused, yet the worktree changed")
    _check_guarded(section, label, outcome)


def _reason_kind(message: str) -> str:
    phrases = ("contains '..'", "is absolute", "NUL", "UTF-8", "inside .git", "outside the repository", "expected the")
    for phrase in phrases:
        if phrase in message:
            return phrase
    return message.split(": ")[-1][:40] if message else "none"


def _variant_row(family: str, tally: Tally) -> list[object]:
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(tally.kinds.items()))
    reasons = "; ".join(f"{reason} ×{n}" for reason, n in tally.reasons.most_common())
    shown = repr(tally.example) if not tally.example.isprintable() else f"`{tally.example}`"
    guard = f"CHANGED after {tally.guarded_changed}" if tally.guarded_changed else "unchanged"
    return [f"{tally.tried} random {family} (seed {SEED})", f"e.g. {shown}", "refused", kinds, reasons, guard]


# -- the part ---------------------------------------------------------------------------------------------------------
def run(quick: bool) -> Section:
    """Feed every fixed case, then the seeded random variants, through ``apply_answer`` in a real worktree."""
    section = Section(key="patches", title="Patches from the model", headers=HEADERS)
    with timed(section), open_lab() as lab:
        held = sum(run_case(section, lab, case) for case in CASES)
        refused = run_variants(section, lab, RANDOM_VARIANTS[quick])
    hostile = sum(1 for case in CASES if case.reason)
    section.summary = _summary(len(CASES), hostile, held, refused, RANDOM_VARIANTS[quick], len(section.failures))
    return section


def _summary(cases: int, hostile: int, held: int, refused: int, variants: int, broken: int) -> str:
    return (
        f"Guarantee: an answer from the model can change files inside its worktree only — never a path outside it, "
        f"through a symlink, or under `.git` in any spelling git itself treats as `.git` — and never writes binary "
        f"content or a file over {MAX_FILE_BYTES:,} bytes; a refused answer changes nothing (all or nothing) and its "
        f"message names the path, for the model. Every answer went through `apply_answer` (what the coding loop "
        f"calls) in a real worktree; after each, the hashes of every file of a sentinel folder outside it, the user's "
        f"checkout, the cache repository (hooks and the worktree's git dir) and the worktree's `.git` link were "
        f"compared. {cases} fixed cases ({hostile} hostile, {cases - hostile} legitimate controls that must apply): "
        f"{held} behaved as expected. {variants} seeded random hostile variants: {refused} refused. "
        f"{broken} broken guarantees."
    )
