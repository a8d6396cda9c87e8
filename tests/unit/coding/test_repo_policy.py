"""Which repositories a REST-triggered task may name: only folders under the configured roots (symlinks followed)
and remotes under the configured prefixes; every refusal names the setting to change."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from supervisor_lib.coding.repo_policy import REMOTES_ENV, ROOTS_ENV, RepoPolicy, RepoRefused, check_ref


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, RepoPolicy]:
    project = tmp_path / "project"
    allowed = project / "include" / "repos"
    _git_repo(allowed / "payments")
    _git_repo(tmp_path / "elsewhere" / "secret")
    (allowed / "a_file").write_text("not a folder")
    (allowed / "link_out").symlink_to(tmp_path / "elsewhere" / "secret")
    return project, RepoPolicy((allowed.resolve(),), ("https://github.com/acme/", "git@github.com:acme/"))


def test_a_repository_under_a_root_is_accepted_relative_or_absolute(layout: tuple[Path, RepoPolicy]) -> None:
    project, policy = layout
    expected = str((project / "include" / "repos" / "payments").resolve())
    assert policy.check("include/repos/payments", project) == expected
    assert policy.check(expected, project) == expected


@pytest.mark.parametrize(
    ("repo", "words"),
    [
        ("include/repos/link_out", ROOTS_ENV),  # a symlink out of the root
        ("include/repos/../../../elsewhere/secret", "'..'"),
        ("~/anything", "'~'"),
        ("/etc", ROOTS_ENV),
        ("include/repos/a_file", "not a folder"),
        ("file:///tmp/x", "transport"),
        ("ext::sh -c touch% /tmp/pwned", "transport"),
        ("--upload-pack=touch /tmp/pwned", "option"),
        ("https://github.com/acme-evil/repo.git", REMOTES_ENV),  # a prefix only at a path boundary
        ("https://gitlab.com/acme/repo.git", REMOTES_ENV),
        ("https://user:token@github.com/acme/repo.git", "credentials"),
        ("https://token@github.com/acme/repo.git", "credentials"),
        ("https://github.com/acme/../other/repo.git", "'..'"),
        ("include/repos/payments\x00", "control characters"),
        ("", "empty"),
    ],
)
def test_refused_repositories_name_why_and_the_setting(layout: tuple[Path, RepoPolicy], repo: str, words: str) -> None:
    project, policy = layout
    with pytest.raises(RepoRefused, match=r"^repo: ") as refused:
        policy.check(repo, project)
    assert words in str(refused.value)


def test_allowed_remotes_are_returned_as_given(layout: tuple[Path, RepoPolicy]) -> None:
    project, policy = layout
    for url in ("https://github.com/acme/payments.git", "git@github.com:acme/payments.git"):
        assert policy.check(url, project) == url
    open_ssh = RepoPolicy((), ("ssh://git@git.example.com/team/",))
    assert open_ssh.check("ssh://git@git.example.com/team/x.git", project) == "ssh://git@git.example.com/team/x.git"


def test_the_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    monkeypatch.delenv(REMOTES_ENV, raising=False)
    default = RepoPolicy.from_env(tmp_path)
    assert default.roots == ((tmp_path / "include" / "repos").resolve(),) and default.remotes == ()
    monkeypatch.setenv(ROOTS_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv(REMOTES_ENV, "https://h/x/, git@h:y/")
    configured = RepoPolicy.from_env(tmp_path)
    assert configured.roots == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    assert configured.remotes == ("https://h/x/", "git@h:y/")
    monkeypatch.setenv(ROOTS_ENV, "")
    with pytest.raises(RepoRefused, match="none configured"):
        RepoPolicy.from_env(tmp_path).check("include/repos/x", tmp_path)


@pytest.mark.parametrize("ref", ["main", "v1.2.3", "feature/x", "HEAD~1", "a1b2c3d", "origin/main"])
def test_ordinary_refs_pass(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.parametrize("ref", ["--output=/tmp/x", "-b", "a..b", "main.lock", "", "x y", "feature/"])
def test_option_like_or_odd_refs_are_refused(ref: str) -> None:
    with pytest.raises(RepoRefused, match=r"^ref: "):
        check_ref(ref)
