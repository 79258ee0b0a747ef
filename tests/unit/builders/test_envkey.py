"""The environment key (builders/envkey.py): equal for commits whose environment files are equal,
different when any file the build reads or any hub setting that changes the image differs, and the
whole repository where the build may read any file. Checkouts are real directories read as the
builder reads them (checkout.read_repo_files, contentlayer.file_entries)."""

import io
import json
import os
import tarfile

import pytest

from binderspawner.builders import contentlayer
from binderspawner.builders.checkout import read_repo_files
from binderspawner.builders.environment import Policy, decide
from binderspawner.builders.envkey import KIND_READS, BuildReads, build_reads, environment_key
from binderspawner.errors import BuildFailed, LaunchError
from binderspawner.launch.images import environment_reference

HUB = Policy(("3.11", "3.13", "3.14"))
R2D = Policy(("3.11", "3.13", "3.14"), buildpacks="repo2docker")
SETTINGS = {"base_image": "binderspawner-base:bookworm", "base_image_id": "sha256:aa", "index_urls": [],
            "server_requirements": ["jupyterlab"], "extra_ca_bundle": "", "buildpacks": "venv",
            "user": [1000, "jovyan"], "versions": ["0.1.0", "2026.4", "s"]}
BASE = {"requirements.txt": "six\n", "index.ipynb": "{}", "README.md": "hello\n"}
LOCK = json.dumps({"_meta": {"requires": {"python_version": "3.11"}}, "default": {"six": {"version": "==1"}}})


def checkout(root, files, executable=()):
    root.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)
        os.chmod(full, 0o755 if path in executable else 0o644)
    return root


def reads_and_key(tmp_path, files, executable=(), settings=SETTINGS, policy=HUB):
    root = checkout(tmp_path / f"c{len(list(tmp_path.iterdir()))}", files, executable)
    repo = read_repo_files(root)
    environment = decide(repo, policy)
    reads = build_reads(environment, repo)
    if reads.whole_repository:
        return reads, None
    return reads, environment_key(environment, contentlayer.file_entries(str(root), reads.paths), settings)


def key(tmp_path, files, **kwargs):
    reads, found = reads_and_key(tmp_path, files, **kwargs)
    assert not reads.whole_repository, reads.whole_repository
    return found


def whole_reason(tmp_path, files, **kwargs):
    reads, _ = reads_and_key(tmp_path, files, **kwargs)
    return reads.whole_repository


# equality: only the repository's other files changed --------------------------------------------

@pytest.mark.parametrize("change", [
    {"index.ipynb": '{"cells": []}'},
    {"README.md": "changed\n", "data/new.csv": "a,b\n"},
    {"src/module.py": "x = 1\n"},
    {"notes/requirements.txt": "pandas\n"},  # not the build's file
    {"Pipfile.txt": "x"},
])
def test_content_only_changes_keep_the_key(tmp_path, change):
    assert key(tmp_path, BASE) == key(tmp_path, {**BASE, **change})


def test_removed_content_files_keep_the_key(tmp_path):
    assert key(tmp_path, BASE) == key(tmp_path, {"requirements.txt": "six\n"})


def test_root_files_are_ignored_with_a_binder_directory(tmp_path):
    files = {"binder/requirements.txt": "six\n", "index.ipynb": "{}"}
    ignored = {"requirements.txt": "pandas\n", "runtime.txt": "python-3.13\n", "apt.txt": "curl\n",
               "pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.13"\n'}
    assert key(tmp_path, files) == key(tmp_path, {**files, **ignored})


def test_key_ignores_warnings_and_is_stable(tmp_path):
    first = key(tmp_path, BASE)
    assert first == key(tmp_path, {**BASE, "postBuild.sh": "echo near miss\n"})  # a warning only
    assert len(first) == 64 and first == key(tmp_path, dict(BASE))


# inequality: every file the build reads ----------------------------------------------------------

@pytest.mark.parametrize("files, changed", [
    ({"requirements.txt": "six\n"}, {"requirements.txt": "six==1.16.0\n"}),
    ({"requirements.txt": "-r base.txt\n", "base.txt": "six\n"}, {"base.txt": "attrs\n"}),
    ({"requirements.txt": "-c pins.txt\nsix\n", "pins.txt": "six==1\n"}, {"pins.txt": "six==2\n"}),
    ({"binder/requirements.txt": "-r ../shared/reqs.txt\n", "shared/reqs.txt": "six\n"},
     {"shared/reqs.txt": "attrs\n"}),
    ({"requirements.txt": "six\n"}, {"runtime.txt": "python-3.13\n"}),
    ({"requirements.txt": "six\n", "runtime.txt": "python-3.11\n"}, {"runtime.txt": "python-3.11 \n"}),
    ({"requirements.txt": "six\n"}, {"apt.txt": "curl\n"}),
    ({"requirements.txt": "six\n", "apt.txt": "curl\n"}, {"apt.txt": "curl\nwget\n"}),
    ({"requirements.txt": "six\n"}, {"start": "#!/bin/sh\nexec \"$@\"\n"}),
    ({"requirements.txt": "six\n"}, {".dockerignore": "data\n"}),
    ({"requirements.txt": "six\n"}, {".containerignore": "data\n"}),
    ({"requirements.txt": "six\n"}, {"pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3"\n'}),
    ({"Pipfile": '[packages]\nsix = "*"\n'}, {"Pipfile": '[packages]\nattrs = "*"\n'}),
    ({"Pipfile": '[packages]\nsix = "*"\n'}, {"Pipfile.lock": LOCK}),
    ({"Pipfile.lock": LOCK}, {"Pipfile.lock": LOCK.replace("==1", "==2")}),
    ({"Pipfile": '[packages]\nsix = "*"\n'}, {"apt.txt": "curl\n"}),
    ({"binder/requirements.txt": "six\n"}, {"binder/apt.txt": "curl\n"}),
    ({"binder/requirements.txt": "six\n"}, {"binder/runtime.txt": "python-3.13\n"}),
    ({"binder/requirements.txt": "six\n"}, {"binder/start": "#!/bin/sh\n"}),
    ({"binder/requirements.txt": "six\n"}, {"binder/.dockerignore": "data\n"}),
    ({"index.ipynb": "{}"}, {"requirements.txt": "six\n"}),  # no file -> a file
])
def test_each_environment_file_changes_the_key(tmp_path, files, changed):
    assert key(tmp_path, files) != key(tmp_path, {**files, **changed})


def test_the_binder_directory_choice_changes_the_key(tmp_path):
    at_root = key(tmp_path, {"requirements.txt": "six\n"})
    assert at_root != key(tmp_path, {"binder/requirements.txt": "six\n"})
    assert at_root != key(tmp_path, {"requirements.txt": "six\n", "binder/README.md": "x"})
    assert key(tmp_path, {"binder/requirements.txt": "six\n"}) != key(tmp_path, {".binder/requirements.txt": "six\n"})


def test_the_start_scripts_executable_bit_changes_the_key(tmp_path):
    files = {**BASE, "start": "#!/bin/sh\nexec \"$@\"\n"}
    assert key(tmp_path, files) != key(tmp_path, files, executable=("start",))


@pytest.mark.parametrize("setting, value", [
    ("base_image", "binderspawner-base:trixie"), ("base_image_id", "sha256:bb"),
    ("index_urls", ["https://index.example/simple"]), ("server_requirements", ["jupyterlab==4"]),
    ("extra_ca_bundle", "0" * 64), ("buildpacks", "repo2docker"), ("user", [1001, "jovyan"]),
    ("versions", ["0.2.0", "2026.4", "s"]),
])
def test_each_hub_setting_changes_the_key(tmp_path, setting, value):
    assert key(tmp_path, BASE) != key(tmp_path, BASE, settings={**SETTINGS, setting: value})


# the whole repository ----------------------------------------------------------------------------

@pytest.mark.parametrize("files, reason", [
    ({**BASE, "postBuild": "cp data/x ~/\n"}, "postBuild may read any file"),
    ({"binder/requirements.txt": "six\n", "binder/postBuild": "x"}, "binder/postBuild may read any file"),
    ({**BASE, "setup.py": "from setuptools import setup; setup()\n"}, "installed as a package"),
    ({**BASE, "pyproject.toml": '[project]\nname = "x"\n[build-system]\nrequires = ["hatchling"]\n'},
     "installed as a package"),
    ({"Dockerfile": "FROM binderspawner-base:bookworm\n", **BASE}, "a Dockerfile builds"),
    ({"requirements.txt": "-e .\n"}, "requirements.txt installs files of the repository"),
    ({"requirements.txt": "./pkg\n"}, "requirements.txt installs files of the repository"),
    ({"requirements.txt": "-r more.txt\n", "more.txt": "file:///home/x\n"}, "more.txt installs files"),
    ({"Pipfile": '[packages]\nmine = {path = "."}\n'}, "Pipfile installs files of the repository"),
])
def test_builds_that_may_read_any_file_are_keyed_by_the_whole_repository(tmp_path, files, reason):
    assert reason in whole_reason(tmp_path, files)


def test_repo2dockers_own_buildpacks_and_unknown_kinds_are_whole(tmp_path):
    assert "repo2docker's own buildpacks" in whole_reason(
        tmp_path, {"environment.yml": "dependencies: [python]\n"}, policy=R2D)

    from binderspawner.builders.environment import Environment
    assert "has no list" in build_reads(Environment("newkind", "venv"), read_repo_files(
        checkout(tmp_path / "x", BASE))).whole_repository


def test_a_pyproject_without_build_system_is_read_not_installed(tmp_path):
    files = {**BASE, "pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.11"\n'}
    reads, _ = reads_and_key(tmp_path, files)
    assert "pyproject.toml" in reads.paths


def test_requirement_options_that_name_no_local_file_stay_keyed(tmp_path):
    files = {"requirements.txt": "--pre\n-r base.txt\n--requirement=more.txt\nsix @ https://x.example/six.whl\n",
             "base.txt": "six\n", "more.txt": "attrs\n"}
    reads, _ = reads_and_key(tmp_path, files)
    assert {"requirements.txt", "base.txt", "more.txt"} <= set(reads.paths)


def test_other_kinds_extend_one_table(tmp_path):
    from binderspawner.builders.environment import Environment
    environment = Environment("newkind", "rattler")  # a hub buildpack of its own
    KIND_READS["newkind"] = lambda env, repo: BuildReads(("kind.lock",))
    try:
        assert build_reads(environment, read_repo_files(checkout(tmp_path / "x", BASE))).paths == ("kind.lock",)
    finally:
        del KIND_READS["newkind"]


# names and the content layer ---------------------------------------------------------------------

def test_environment_image_name_shares_the_launch_images_repository():
    key_hex = "ab" * 32
    assert environment_reference("bstest-x-12345678:" + "c" * 40, key_hex) == f"bstest-x-12345678:env-{key_hex}"
    assert environment_reference("reg.example:5000/binder/x-1:abc", key_hex) == \
        f"reg.example:5000/binder/x-1:env-{key_hex}"
    assert environment_reference("reg.example:5000/x", key_hex) == f"reg.example:5000/x:env-{key_hex}"
    with pytest.raises(ValueError):
        environment_reference("x:y", "not-hex")
    with pytest.raises(LaunchError):
        environment_reference("bad..name:y", key_hex)


def test_repo_dir_must_be_a_plain_absolute_path():
    assert contentlayer.check_repo_dir("x:env-ab", "/home/jovyan") == "/home/jovyan"
    for bad in ("home", "/home/$USER", "/home/../etc", "/a b"):
        with pytest.raises(BuildFailed):
            contentlayer.check_repo_dir("x:env-ab", bad)


def test_content_archive_applies_the_ignore_file_and_keeps_links(tmp_path):
    root = checkout(tmp_path / "repo", {"index.ipynb": "{}", "data/big.csv": "x", "binder/.dockerignore": "data\n",
                                        "binder/requirements.txt": "six\n", "sub/dir/f.txt": "f"})
    os.symlink("/etc/passwd", root / "link")
    patterns = contentlayer.ignore_patterns(str(root), "binder")
    assert patterns == ["data"]
    with tarfile.open(fileobj=io.BytesIO(contentlayer.content_archive(str(root), patterns, 1000))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {"index.ipynb", "binder/requirements.txt", "sub", "sub/dir", "sub/dir/f.txt"} <= set(members)
    assert members["sub"].isdir()  # directories are entries of their own, owned like the files
    assert not any(name.startswith("data") for name in members)
    assert members["link"].issym() and members["link"].linkname == "/etc/passwd"
    assert {(m.uid, m.gid) for m in members.values()} == {(1000, 1000)}


def test_key_only_copy_holds_only_the_keys_files(tmp_path):
    root = checkout(tmp_path / "repo", {"binder/requirements.txt": "six\n", "binder/start": "#!/bin/sh\n",
                                        "index.ipynb": "{}"}, executable=("binder/start",))
    os.symlink("/etc/passwd", root / "binder" / "apt.txt")
    dest = tmp_path / "only"
    dest.mkdir()
    contentlayer.key_only_copy(str(root), ("binder/requirements.txt", "binder/start", "binder/apt.txt",
                                           "binder/runtime.txt"), "binder", str(dest))
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert found == ["binder", "binder/requirements.txt", "binder/start"]
    assert os.access(dest / "binder" / "start", os.X_OK)
    assert not os.access(dest / "binder" / "requirements.txt", os.X_OK)


def test_repo_dir_comes_from_the_image():
    assert contentlayer.repo_dir_of({"Config": {"Env": ["A=1", "REPO_DIR=/home/jovyan"]}}) == "/home/jovyan"
    with pytest.raises(BuildFailed):
        contentlayer.repo_dir_of({"Config": {"Env": []}})


def test_hub_settings_follow_the_builders_settings(tmp_path):
    from binderspawner.builders import Repo2DockerBuilder
    from binderspawner.builders.environment import Environment

    env = Environment("python", "venv", python="3.13")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("one")
    first = contentlayer.hub_settings(Repo2DockerBuilder(extra_ca_bundle=str(bundle)), env, "sha256:1")
    bundle.write_text("two")  # the same path with other certificates is another environment
    second = contentlayer.hub_settings(Repo2DockerBuilder(extra_ca_bundle=str(bundle)), env, "sha256:1")
    assert first["extra_ca_bundle"] != second["extra_ca_bundle"] and first["base_image_id"] == "sha256:1"
    assert first["base_image"] == "binderspawner-base:trixie"
    other = contentlayer.hub_settings(Repo2DockerBuilder(package_indexes=["https://i.example/simple"],
                                                         server_requirements=["jupyterlab"]), env, "")
    assert other["index_urls"] == ["https://i.example/simple"] and other["server_requirements"] == ["jupyterlab"]
    assert contentlayer.hub_settings(Repo2DockerBuilder(), Environment("python", "venv"), "")["base_image"] == \
        "binderspawner-base:bookworm"


def test_an_include_on_a_first_line_after_a_byte_order_mark_is_keyed(tmp_path):
    """uv reads '\\ufeff-r more.txt' as an include: changing more.txt must not reuse the old image."""
    files = {**BASE, "requirements.txt": "\ufeff-r more.txt\n", "more.txt": "six==1.15.0\n"}
    assert key(tmp_path, files) != key(tmp_path, {**files, "more.txt": "six==1.16.0\n"})
