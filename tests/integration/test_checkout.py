"""The hub's one checked clone and the decisions made from it before any Docker work:
binderspawner/builders/checkout.py and Repo2DockerBuilder.build (repo2docker is a stand-in script
here, recording what it was given; tests/e2e builds for real)."""

import json
import os
import sys
import textwrap
import uuid

import pytest
from traitlets.config import Config

from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.builders.checkout import CheckoutFailed, fetch_checkout, read_repo_files
from binderspawner.builders.environment import EnvironmentRefused
from binderspawner.errors import RepositoryRefused
from binderspawner.providers import RepoSource, ResolvedRepo
from tests.support.builds import build_events

# The test git server is on loopback: admitted for these tests, as the hub's config would.
RULES = {"allowed_schemes": ["git"], "allowed_private_hosts": ["127.0.0.1"]}


def new_repo(git_server, files):
    name = f"env-{uuid.uuid4().hex[:10]}"
    sha = git_server.add_repo(name, files=files)
    return git_server.url(name), sha


async def checkout(git_server, files, tmp_path):
    url, sha = new_repo(git_server, files)
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url)
    return dest


async def test_checkout_is_at_the_commit_with_history(git_server, tmp_path):
    url, first = new_repo(git_server, {"requirements.txt": "numpy\n"})
    name = url.rsplit("/", 1)[1][:-4]
    git_server.commit(name, {"requirements.txt": "pandas\n"})
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, first, str(dest), rules=RULES, display_name=url)
    assert (dest / "requirements.txt").read_text() == "numpy\n"
    assert read_repo_files(str(dest)).files["requirements.txt"] == "numpy\n"


async def test_a_commit_the_repository_does_not_have_fails_naming_it(git_server, tmp_path):
    url, _ = new_repo(git_server, {"a": "b"})
    missing = "0" * 40
    with pytest.raises(CheckoutFailed) as info:
        await fetch_checkout(url, missing, str(tmp_path), rules=RULES, display_name=url)
    assert url in str(info.value) and missing[:12] in str(info.value)


async def test_symlinked_runtime_txt_to_a_host_file_is_refused_without_reading_it(git_server, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("python-3.11-TOPSECRET")
    url, sha = new_repo(git_server, {"requirements.txt": ""})
    name = url.rsplit("/", 1)[1][:-4]
    work = os.path.join(git_server.work, name)
    os.symlink(str(secret), os.path.join(work, "runtime.txt"))
    sha = git_server.commit(name, {})
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url)
    assert os.path.islink(dest / "runtime.txt")
    with pytest.raises(EnvironmentRefused) as info:
        read_repo_files(str(dest))
    assert str(info.value).startswith("runtime.txt is a symbolic link to a file outside")
    assert "TOPSECRET" not in str(info.value)


async def test_symlinked_binder_directory_out_of_the_checkout_is_refused(git_server, tmp_path):
    url, sha = new_repo(git_server, {"x": ""})
    name = url.rsplit("/", 1)[1][:-4]
    os.symlink("/etc", os.path.join(git_server.work, name, "binder"))
    sha = git_server.commit(name, {})
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url)
    with pytest.raises(EnvironmentRefused, match="^binder is a symbolic link"):
        read_repo_files(str(dest))


async def test_links_inside_the_checkout_and_included_requirements_are_read(git_server, tmp_path):
    url, sha = new_repo(git_server, {"binder/reqs/base.txt": "numpy\n-r more.txt\n",
                                     "binder/more.txt": "pandas\n"})
    name = url.rsplit("/", 1)[1][:-4]
    os.symlink("reqs/base.txt", os.path.join(git_server.work, name, "binder", "requirements.txt"))
    sha = git_server.commit(name, {})
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url)
    files = read_repo_files(str(dest))
    assert files.dirs == {"binder"}
    assert files.files["binder/requirements.txt"].startswith("numpy")
    assert files.files["binder/more.txt"] == "pandas\n"


async def test_included_requirements_out_of_the_checkout_are_refused(git_server, tmp_path):
    url, sha = new_repo(git_server, {"requirements.txt": "-r sub/x.txt\n"})
    name = url.rsplit("/", 1)[1][:-4]
    os.makedirs(os.path.join(git_server.work, name, "sub"))
    os.symlink("/etc/hostname", os.path.join(git_server.work, name, "sub", "x.txt"))
    sha = git_server.commit(name, {})
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url)
    with pytest.raises(EnvironmentRefused, match="^sub/x.txt is a symbolic link"):
        read_repo_files(str(dest))


# the builder: decisions before repo2docker runs --------------------------------------------------------

STAND_IN = """
import json, os, sys
path = sys.argv[-1]
json.dump({"argv": sys.argv[1:], "settings": json.loads(os.environ["BINDERSPAWNER_R2D_SETTINGS"]),
           "files": sorted(os.listdir(path)) if os.path.isdir(path) else None}, open(RECORD, "w"))
print("built", flush=True)
"""


class FoundImages(Repo2DockerBuilder):
    async def image_exists(self, image):
        return True


def make_builder(tmp_path, **traits):
    record = tmp_path / "record.json"
    script = tmp_path / "fake_repo2docker.py"
    script.write_text(f"RECORD = {str(record)!r}\n" + textwrap.dedent(STAND_IN))
    config = Config()
    config.GitProvider.allowed_private_hosts = ["127.0.0.1"]  # the test git server
    traits.setdefault("environment_images", False)  # what repo2docker gets for a whole-repository build
    return FoundImages(repo2docker_command=[sys.executable, str(script)], config=config, **traits), record


def make_request(url, sha, scratch):
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug="local/env", display_name=url)
    return BuildRequest(f"binder-test:{sha}", ResolvedRepo(source, "main", sha, "branch main"),
                        {}, {"TMPDIR": str(scratch)})


async def test_build_hands_repo2docker_the_checkout_and_the_decision(git_server, tmp_path):
    url, sha = new_repo(git_server, {"binder/requirements.txt": "numpy\n",
                                     "binder/runtime.txt": "python-3.13\n",
                                     "setup.py": "", "requirement.txt": ""})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    builder, record = make_builder(tmp_path, package_indexes=["https://pypi.example.org/simple"])
    events, error = await build_events(builder, make_request(url, sha, scratch))
    assert error is None, error
    recorded = json.loads(record.read_text())
    assert "binder" in recorded["files"] and recorded["argv"][-1].startswith(str(scratch))
    settings = recorded["settings"]
    assert settings["buildpacks"] == "venv" and settings["content_providers"] == ["Local"]
    assert settings["base_image"] == "binderspawner-base:trixie"
    assert settings["environment"] == {
        "python": "3.13", "base_image": "binderspawner-base:trixie", "binder_dir": "binder",
        "requirements": "binder/requirements.txt", "pipfile": None, "pipfile_lock": None,
        "install_repo": False, "uv_lock": None, "index_urls": ["https://pypi.example.org/simple"]}
    warnings = [m for phase, m in events if phase == "warning"]
    assert any("setup.py is ignored" in w for w in warnings)
    assert any("requirement.txt is ignored" in w for w in warnings)
    assert ("fetching", "Building with Python 3.13 (from binder/runtime.txt), environment files from "
                        "binder/.") in events
    assert os.listdir(scratch) == []  # the checkout is gone after the build


async def test_other_kinds_go_to_repo2dockers_buildpacks_when_allowed(git_server, tmp_path):
    url, sha = new_repo(git_server, {"environment.yml": "dependencies: [numpy]\n", "apt.txt": "ffmpeg\n"})
    builder, record = make_builder(tmp_path, buildpacks="repo2docker")
    _, error = await build_events(builder, make_request(url, sha, tmp_path))
    assert error is None, error
    settings = json.loads(record.read_text())["settings"]
    assert settings["buildpacks"] == "repo2docker" and settings["base_image"] == ""
    assert settings["environment"]["python"] is None


@pytest.mark.parametrize("files, first", [
    ({"runtime.txt": "python-3.10\n"}, "runtime.txt asks for Python 3.10"),
    ({"apt.txt": "apt-get install -y ffmpeg\n"}, "apt.txt line 1: 'apt-get install -y ffmpeg'"),
    ({"install.R": "install.packages('x')\n", "runtime.txt": "r-4.3-2024-05-01"}, "runtime.txt asks for R"),
    ({"requirements.txt": "--index-url https://evil.example/simple\nnumpy\n"}, "requirements.txt line 1"),
])
async def test_refusals_come_before_repo2docker_and_leave_nothing(git_server, tmp_path, files, first):
    url, sha = new_repo(git_server, files)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    builder, record = make_builder(tmp_path)
    events, error = await build_events(builder, make_request(url, sha, scratch))
    assert isinstance(error, RepositoryRefused) and error.status_code == 422
    assert str(error).startswith(first), str(error)
    assert not record.exists()  # repo2docker never ran
    assert os.listdir(scratch) == []


async def test_a_missing_commit_fails_before_repo2docker(git_server, tmp_path):
    url, _ = new_repo(git_server, {"a": ""})
    builder, record = make_builder(tmp_path)
    _, error = await build_events(builder, make_request(url, "f" * 40, tmp_path))
    assert isinstance(error, CheckoutFailed) and "ffffffffffff" in str(error)
    assert not record.exists()


async def test_submodules_are_checked_out_as_repo2docker_does(git_server, tmp_path):
    from tests.support.gitserver import git
    sub_url, _ = new_repo(git_server, {"data.csv": "a,b\n"})
    url, _ = new_repo(git_server, {"requirements.txt": ""})
    name = url.rsplit("/", 1)[1][:-4]
    work = os.path.join(git_server.work, name)
    git("submodule", "add", "-q", sub_url, "data", cwd=work)
    sha = git_server.commit(name, {})
    dest = tmp_path / "co"
    dest.mkdir()
    await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url)
    assert (dest / "data" / "data.csv").read_text() == "a,b\n"


async def test_a_commit_whose_files_are_too_large_is_refused_before_any_is_written(git_server, tmp_path):
    """A 'git bomb': 64 MiB of zeros travel as about 64 KiB of compressed objects; checked out, such
    files fill the hub's disk. Their size is read from the clone first, and nothing is written."""
    url, sha = new_repo(git_server, {"requirements.txt": "numpy\n", "data/zeros.bin": bytes(64 << 20)})
    dest = tmp_path / "co"
    dest.mkdir()
    with pytest.raises(CheckoutFailed) as info:
        await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url, max_bytes=16 << 20)
    assert str(info.value).startswith(f"{url} at {sha[:12]} is not fetched: its files take 0.06 GiB, more than "
                                      "this hub checks out for a build (0.02 GiB, c.Repo2DockerBuilder.")
    assert not (dest / "data").exists() and not (dest / "requirements.txt").exists()
    again = tmp_path / "again"
    again.mkdir()
    await fetch_checkout(url, sha, str(again), rules=RULES, display_name=url, max_bytes=128 << 20)
    assert (again / "data" / "zeros.bin").stat().st_size == 64 << 20


async def test_a_submodule_too_large_counts_against_the_limit_before_it_is_checked_out(git_server, tmp_path):
    """The same bomb one submodule away (cloned without credentials, from anywhere the rules admit):
    the submodule's files are counted with the repository's, from a bare clone, before checkout."""
    from tests.support.gitserver import git
    sub_url, _ = new_repo(git_server, {"zeros.bin": bytes(64 << 20)})
    url, _ = new_repo(git_server, {"requirements.txt": "x" * 1000})
    name = url.rsplit("/", 1)[1][:-4]
    work = os.path.join(git_server.work, name)
    git("submodule", "add", "-q", sub_url, "data", cwd=work)
    sha = git_server.commit(name, {})
    dest = tmp_path / "co"
    dest.mkdir()
    with pytest.raises(CheckoutFailed, match=r"is not fetched: its files take 0.06 GiB, more than this hub"):
        await fetch_checkout(url, sha, str(dest), rules=RULES, display_name=url, max_bytes=16 << 20)
    assert not (dest / "data" / "zeros.bin").exists()
    assert sorted(os.listdir(tmp_path)) == ["co"]  # the bare clone it was measured in is gone
    again = tmp_path / "again"
    again.mkdir()
    await fetch_checkout(url, sha, str(again), rules=RULES, display_name=url, max_bytes=(64 << 20) + 2000)
    assert (again / "data" / "zeros.bin").stat().st_size == 64 << 20


def test_the_checkout_limit_is_a_size_setting():
    assert Repo2DockerBuilder().checkout_max_size == "10G"
    with pytest.raises(Exception, match="checkout_max_size: 'big' is not a size"):
        Repo2DockerBuilder(checkout_max_size="big")
