"""Git LFS files fetched after a clone (binderspawner/builders/lfs.py), with real parts: git-lfs,
a giftless LFS server and a git daemon, both on 127.0.0.1."""

import os
import subprocess

import pytest

from binderspawner.builders import lfs
from binderspawner.providers.git import git_environment
from tests.support.gitserver import GitServer, git
from tests.support.lfsserver import DATA, LfsServer, add_lfs_repo


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    git_server = GitServer(str(tmp_path_factory.mktemp("lfsgit"))).start()
    lfs_server = LfsServer(str(tmp_path_factory.mktemp("lfs"))).start()
    yield git_server, lfs_server
    lfs_server.stop()
    git_server.stop()


def clone(url, tmp_path):
    checkout = str(tmp_path / "checkout")
    env = git_environment(["git"])
    subprocess.run(["git", "clone", "-q", "--", url, checkout], env=env, check=True, capture_output=True)
    return checkout, env


def read(checkout):
    with open(os.path.join(checkout, "data.csv")) as f:
        return f.read()


def test_lfs_files_are_fetched_after_the_clone(servers, tmp_path):
    url = add_lfs_repo(*servers, "withlfs")
    checkout, env = clone(url, tmp_path)
    assert read(checkout).startswith("version https://git-lfs.github.com/spec/v1")  # pointer text
    lines = lfs.fetch(checkout, env)
    assert read(checkout) == DATA
    assert lines == ["Fetched 1 Git LFS file(s) (*.csv): data.csv"]
    assert git(*lfs.LFS_CONFIG, "status", "--porcelain", cwd=checkout) == ""


def test_objects_missing_on_the_server_are_reported(servers, tmp_path):
    git_server, lfs_server = servers
    url = add_lfs_repo(git_server, lfs_server, "unpushed", push_objects=False)
    checkout, env = clone(url, tmp_path)
    with pytest.raises(lfs.LfsNotFetched) as info:
        lfs.fetch(checkout, env)
    assert "git lfs pull said" in str(info.value)
    assert read(checkout).startswith("version https://git-lfs")


def test_an_lfs_server_on_another_host_is_not_used(servers, tmp_path):
    git_server, lfs_server = servers
    url = add_lfs_repo(git_server, lfs_server, "otherhost", lfs_url="http://localhost:9/tests/x",
                       push_objects=False)
    checkout, env = clone(url, tmp_path)
    with pytest.raises(lfs.LfsNotFetched) as info:
        lfs.fetch(checkout, env)
    assert "'localhost', not on its own host '127.0.0.1'" in str(info.value)


def test_a_repository_without_lfs_needs_nothing(servers, tmp_path):
    git_server, _ = servers
    git_server.add_repo("nolfs", files={"a.csv": "1\n"})
    checkout, env = clone(git_server.url("nolfs"), tmp_path)
    assert lfs.fetch(checkout, env) == []


def test_without_git_lfs_the_reason_is_given(servers, tmp_path):
    checkout, env = clone(servers[0].url("withlfs"), tmp_path)
    with pytest.raises(lfs.LfsNotFetched) as info:
        lfs.fetch(checkout, {**env, "PATH": "/nonexistent"})
    assert "git-lfs is not installed" in str(info.value)


def test_lfs_files_past_the_checkout_limit_are_not_fetched_and_the_log_says_why(servers, tmp_path):
    """LFS files count against c.Repo2DockerBuilder.checkout_max_size too, from their pointers'
    sizes, before anything is downloaded (the build goes on with pointer text, and says so)."""
    checkout, env = clone(add_lfs_repo(*servers, "withlfs-limit"), tmp_path)
    data = f"{DATA}withlfs-limit\n"  # add_lfs_repo's object of its own
    with pytest.raises(lfs.LfsNotFetched, match=r"they take 0.00 GiB, and with the repository's other files that "
                                                r"is more than this hub checks out for a build \(c.Repo2DockerBuilder"
                                                r".checkout_max_size\)"):
        lfs.fetch(checkout, env, max_bytes=len(data) - 1)
    assert read(checkout).startswith("version https://git-lfs")
    assert lfs.fetch(checkout, env, max_bytes=len(data)) == ["Fetched 1 Git LFS file(s) (*.csv): data.csv"]
    assert read(checkout) == data
    assert lfs.pointed_bytes("not json") == float("inf")
