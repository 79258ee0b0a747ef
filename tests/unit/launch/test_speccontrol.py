"""Banned/allowed launch specs and per-spec settings: binderspawner/launch/speccontrol.py (pure)."""

import pytest
from traitlets import TraitError

from binderspawner.errors import LaunchError
from binderspawner.providers import GitHubProvider, GitProvider, ZenodoProvider
from binderspawner.launch.speccontrol import SpecControl, effective_ref, launch_spec, settings_for, spec_refusal

gh = GitHubProvider()


@pytest.mark.parametrize("repo, ref, expected_ref, spec", [
    ("gh/org/repo", None, None, "gh/org/repo/HEAD"),
    ("gh/org/repo/HEAD", None, None, "gh/org/repo/HEAD"),
    ("gh/org/repo/main", None, "main", "gh/org/repo/main"),
    ("gh/org/repo/main", "main", "main", "gh/org/repo/main"),
    ("https://github.com/org/repo", "dev", "dev", "gh/org/repo/dev"),
    ("https://github.com/org/repo/tree/v1", None, "v1", "gh/org/repo/v1"),
])
def test_effective_ref_and_canonical_spec(repo, ref, expected_ref, spec):
    source = gh.parse(repo)
    assert effective_ref(source, ref) == expected_ref
    assert launch_spec(source, expected_ref) == spec


def test_conflicting_refs_are_refused():
    with pytest.raises(LaunchError) as info:
        effective_ref(gh.parse("gh/org/repo/main"), "dev")
    assert info.value.field == "ref" and "'main'" in str(info.value) and "'dev'" in str(info.value)


def test_git_and_record_specs():
    # the repository's identity: git's default port and '.git' are no part of it, another port is
    url = "git://127.0.0.1:9418/requirements.git"
    assert launch_spec(GitProvider().parse(url), "main") == "git/git%3A%2F%2F127.0.0.1%2Frequirements/main"
    assert launch_spec(GitProvider().parse("git://127.0.0.1:9419/r.git/"),
                       None) == "git/git%3A%2F%2F127.0.0.1%3A9419%2Fr/HEAD"
    record = ZenodoProvider().parse("10.5281/zenodo.5")
    assert launch_spec(record, None) == "zenodo/10.5281/zenodo.5"


def test_banned_and_allowed():
    assert spec_refusal("gh/org/repo/HEAD") is None
    banned = spec_refusal("gh/Evil/repo/HEAD", banned=["^gh/evil/"])
    assert banned.status_code == 403 and "gh/Evil/repo/HEAD" in banned.message and "banned" in banned.message
    assert spec_refusal("gh/lab/x/HEAD", allowed=["^gh/lab/"]) is None
    assert "allowed" in spec_refusal("gh/other/x/HEAD", allowed=["^gh/lab/"]).message
    assert spec_refusal("gh/lab/bad/HEAD", banned=["^gh/lab/bad/"], allowed=["^gh/lab/"]) is not None


def test_settings_for_merges_matching_entries_in_order():
    config = [{"pattern": "^gh/", "config": {"quota": 5, "mem": "1G"}},
              {"pattern": "^gh/lab/", "config": {"quota": 50}},
              {"pattern": "^zenodo/", "config": {"quota": 1}}]
    assert settings_for("gh/lab/x/main", config) == {"quota": 50, "mem": "1G"}
    assert settings_for("gh/other/x/main", config) == {"quota": 5, "mem": "1G"}
    assert settings_for("git/x/main", config) == {}


def test_control_check_and_config_validation():
    control = SpecControl(banned_specs=["^gh/evil/"], spec_config=[{"pattern": "^gh/", "config": {"q": 1}}])
    assert control.check(gh.parse("gh/org/repo/main"), None) == ("main", "gh/org/repo/main", {"q": 1})
    with pytest.raises(LaunchError):
        control.check(gh.parse("https://github.com/evil/repo"), None)
    with pytest.raises(TraitError, match="not a regular expression"):
        SpecControl(banned_specs=["(unclosed"])
    with pytest.raises(TraitError, match="spec_config entries"):
        SpecControl(spec_config=[{"pattern": "^gh/", "settings": {}}])
