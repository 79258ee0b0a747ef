"""Refs git allows and commits that do not exist, resolved against a real git daemon on
127.0.0.1 (binderspawner/providers/git.py): odd branch names resolve as given, a full sha that is
no branch tip is found, one that is not in the repository is refused naming it."""

import asyncio

import pytest

from binderspawner.errors import LaunchError
from binderspawner.providers import GitProvider
from tests.support.gitserver import GitServer, git

ODD = ["issue#7147", "a,b!=c", "café-ветка", "$(id)"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = GitServer(str(tmp_path_factory.mktemp("refs"))).start()
    first = server.add_repo("odd", files={"a": "1"})
    second = server.commit("odd", {"a": "2"})
    for ref in ODD:
        git("push", "-q", "origin", f"HEAD:refs/heads/{ref}", cwd=f"{server.work}/odd")
    yield server, first, second
    server.stop()


def resolve(server, ref):
    provider = GitProvider(allowed_hosts=["127.0.0.1"], allowed_private_hosts=["127.0.0.1"],
                           resolved_ref_ttl=0)
    source = provider.parse(server.url("odd"))
    return asyncio.run(provider.resolve(source, ref))


@pytest.mark.parametrize("ref", ODD)
def test_branch_names_git_allows_resolve(served, ref):
    server, _, second = served
    resolved = resolve(server, ref)
    assert resolved.version == second and resolved.resolved_from == f"branch {ref}"


def test_full_sha_that_is_no_branch_tip_is_found(served):
    server, first, _ = served
    assert resolve(server, first).version == first


def test_full_sha_not_in_the_repository_is_refused_naming_it(served):
    server, first, _ = served
    missing = first[::-1]
    with pytest.raises(LaunchError) as info:
        resolve(server, missing)
    assert info.value.status_code == 400 and info.value.field == "ref"
    assert f"has no commit '{missing}'" in str(info.value)
