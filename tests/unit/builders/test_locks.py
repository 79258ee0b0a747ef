"""Lock files decided before a build (builders/environment.py): where uv.lock is read and what it
wins over, Pipfile.lock checked against its Pipfile with pipenv's hash, other tools' locks named in
a warning; and the buildpack's side (venv.py, install.py) of installing uv.lock exactly."""

import json

import pytest
from pip._internal.models.index import PyPI

from binderspawner.builders.buildpacks import install
from binderspawner.builders.buildpacks.venv import _uv_project_self_contained, install_failure
from binderspawner.builders.environment import (EnvironmentRefused, Policy, RepoFiles, decide,
                                                pipfile_hashes)

HUB = Policy(("3.11", "3.13", "3.14"))
PYPROJECT = '[project]\nname = "x"\nversion = "1"\ndependencies = ["six"]\n'
PACKAGED = PYPROJECT + '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'


def repo(files, extra_listing=()):
    """RepoFiles as checkout.read_repo_files makes them: uv.lock and other locks are only listed."""
    dirs = {p.split("/", 1)[0] for p in [*files, *extra_listing] if p.startswith(("binder/", ".binder/"))}
    return RepoFiles(dict(files), frozenset(dirs), frozenset([*files, *extra_listing]))


def warnings(env):
    return list(env.warnings)


# uv.lock: where it is read, what it wins over ----------------------------------------------------

def test_uv_lock_beside_pyproject_at_the_root_is_the_uv_kind():
    env = decide(repo({"pyproject.toml": PACKAGED, "runtime.txt": "python-3.13"}, ["uv.lock"]), HUB)
    assert (env.kind, env.uv_lock, env.python, env.python_file) == ("uv", "uv.lock", "3.13", "runtime.txt")
    assert env.requirements is None and not env.install_repo  # uv sync installs the project itself
    assert warnings(env) == []


def test_uv_lock_takes_python_from_requires_python_as_the_python_kind_does():
    pyproject = PYPROJECT.replace('version = "1"', 'version = "1"\nrequires-python = ">=3.12"')
    env = decide(repo({"pyproject.toml": pyproject}, ["uv.lock"]), HUB)
    assert (env.kind, env.python, env.python_file) == ("uv", "3.14", "pyproject.toml")


def test_uv_lock_wins_over_requirements_and_setup_py_with_a_warning_naming_them():
    env = decide(repo({"pyproject.toml": PACKAGED, "requirements.txt": "six\n", "setup.py": ""},
                      ["uv.lock"]), HUB)
    assert env.kind == "uv"
    assert warnings(env) == ["requirements.txt is ignored: uv.lock lists the packages (add packages with "
                             "`uv add`, then commit uv.lock)."]  # setup.py builds the project: used


def test_pipfile_wins_over_uv_lock_and_the_lock_is_named():
    env = decide(repo({"Pipfile": '[packages]\nsix = "*"\n', "pyproject.toml": PYPROJECT}, ["uv.lock"]), HUB)
    assert env.kind == "pipfile" and env.uv_lock is None
    assert "uv.lock is ignored: Pipfile comes first (repo2docker's rule). This build installs Pipfile " \
           "instead." in warnings(env)
    env = decide(repo({"Pipfile.lock": "{}", "pyproject.toml": PYPROJECT}, ["uv.lock"]), HUB)
    assert "uv.lock is ignored: Pipfile.lock comes first (repo2docker's rule). This build installs " \
           "Pipfile.lock instead." in warnings(env)


@pytest.mark.parametrize("files, listing, reason, used", [
    ({"requirements.txt": "six\n"}, ["uv.lock"],
     "there is no pyproject.toml beside it, and uv needs both", "requirements.txt"),
    ({"binder/requirements.txt": "six\n", "pyproject.toml": PYPROJECT}, ["uv.lock"],
     "the repository has a 'binder' directory, and uv.lock is read only without one",
     "binder/requirements.txt"),
    ({"binder/requirements.txt": "six\n"}, ["binder/uv.lock", "binder/pyproject.toml"],
     "uv.lock is read only at the root, beside pyproject.toml", "binder/requirements.txt"),
    ({"Dockerfile": "FROM x\n", "pyproject.toml": PYPROJECT}, ["uv.lock"],
     "a Dockerfile builds this repository by itself", "what the Dockerfile installs"),
])
def test_a_uv_lock_the_rules_do_not_read_is_named_with_what_is_installed(files, listing, reason, used):
    env = decide(repo(files, listing), HUB)
    assert env.uv_lock is None
    lock = next(n for n in listing if n.endswith("uv.lock"))
    assert f"{lock} is ignored: {reason}. This build installs {used} instead." in warnings(env)


def test_with_package_indexes_the_uv_lock_says_it_installs_from_its_own_urls():
    policy = Policy(("3.11",), package_indexes=("https://mirror.example/simple",))
    env = decide(repo({"pyproject.toml": PYPROJECT}, ["uv.lock"]), policy)
    assert any(w.startswith("uv.lock is installed from the package URLs it records, not from this hub's")
               for w in warnings(env))


def test_the_summary_says_the_lock_is_installed_exactly():
    from binderspawner.messages import environment_summary
    env = decide(repo({"pyproject.toml": PYPROJECT}, ["uv.lock"]), HUB)
    assert environment_summary(env) == "Building with uv.lock, exactly, on Python 3.11 (the hub's default)."


# other tools' lock files -------------------------------------------------------------------------

@pytest.mark.parametrize("lock", ["poetry.lock", "pdm.lock", "requirements.lock", "pylock.toml"])
@pytest.mark.parametrize("files, listed, used", [
    ({"requirements.txt": "six\n"}, [], "requirements.txt"),
    ({"setup.py": ""}, [], "the repository itself (pip install .)"),
    ({"README.md": ""}, [], "no packages of the repository (only the single-user server)"),
    ({"Pipfile.lock": "{}"}, [], "Pipfile.lock"),
    ({"pyproject.toml": PYPROJECT}, ["uv.lock"], "uv.lock"),
    ({"Dockerfile": "FROM x\n"}, [], "what the Dockerfile installs"),
])
def test_other_tools_lock_files_are_named_with_what_is_used_instead(lock, files, listed, used):
    env = decide(repo(files, [*listed, lock]), HUB)
    assert (f"{lock} is ignored: this hub does not install from it; this build installs {used} "
            "instead. Export it to requirements.txt, or use uv.lock or Pipfile.lock.") in warnings(env)


def test_a_lock_file_in_the_binder_directory_is_named_too():
    env = decide(repo({"binder/requirements.txt": "six\n"}, ["binder/poetry.lock"]), HUB)
    assert warnings(env) == ["binder/poetry.lock is ignored: this hub does not install from it; this build "
                             "installs binder/requirements.txt instead. Export it to requirements.txt, or use "
                             "uv.lock or Pipfile.lock."]


# Pipfile.lock against its Pipfile: pipenv's _meta.hash ---------------------------------------------

# A Pipfile and the two hashes pipenv records for it: plette's Pipfile.get_hash() (names as written,
# pipenv up to 2025) and pipenv 2026.10's (names PEP 503-normalized), both computed by pipenv itself.
PIPFILE = """[[source]]
url = "INDEX"
verify_ssl = true
name = "pypi"

[packages]
Django_Rest = "*"
six = {version = "==1.16.0"}

[dev-packages]
Py_Test = "*"

[requires]
python_version = "3.11"
""".replace("INDEX", PyPI.simple_url)  # pip's own default index, read from pip
PLETTE_HASH = "2dd3c737be1650c0e4ca5a9c2f376a8b667dee03c84de8f771e52cc456e7ed0e"
PIPENV_2026_HASH = "bbf01ae8cf6dee24b791de64d689fefe7bb425b6187098c312361d0176fedf9a"


def test_pipfile_hashes_are_pipenvs():
    assert pipfile_hashes(PIPFILE) == {PLETTE_HASH, PIPENV_2026_HASH}


def test_pipfile_without_sources_hashes_with_pipenvs_default_source():
    # plette's hash of this Pipfile, computed by pipenv 2026.10.3's vendored plette
    text = ('[packages]\nsix = "==1.16.0"\nattrs = {version = ">=20", extras = ["tests"]}\n\n'
            '[dev-packages]\npytest = "*"\n\n[requires]\npython_version = "3.11"\n\n[custom]\ntqdm = "*"\n')
    assert "3a1c80eacc253c91b96b67ba8f16206e6fcfdaaff6786edef9ead9f4cc47258f" in pipfile_hashes(text)


def lock_with(digest):
    return json.dumps({"_meta": {"hash": {"sha256": digest}, "requires": {"python_version": "3.11"}},
                       "default": {}, "develop": {}})


@pytest.mark.parametrize("digest", [PLETTE_HASH, PIPENV_2026_HASH, PIPENV_2026_HASH.upper()])
def test_a_current_pipfile_lock_gives_no_warning(digest):
    env = decide(repo({"Pipfile": PIPFILE, "Pipfile.lock": lock_with(digest)}), HUB)
    assert env.pipfile_lock == "Pipfile.lock" and warnings(env) == []


def test_a_stale_pipfile_lock_is_installed_with_a_warning_naming_both_files():
    changed = PIPFILE.replace('Py_Test = "*"', 'Py_Test = "*"\nmypy = "*"')
    env = decide(repo({"binder/Pipfile": changed, "binder/Pipfile.lock": lock_with(PLETTE_HASH)}), HUB)
    assert env.pipfile_lock == "binder/Pipfile.lock"  # installed as it is, as repo2docker does
    assert warnings(env) == [
        "binder/Pipfile.lock was not made from this binder/Pipfile (its _meta.hash does not match): the "
        "build installs binder/Pipfile.lock as it is, as repo2docker does, so changes to binder/Pipfile "
        "since it was locked are not installed. Run `pipenv lock` and commit binder/Pipfile.lock "
        "(`pipenv install --deploy` refuses such a lock)."]


@pytest.mark.parametrize("lock", ["{}", '{"_meta": {"hash": {}}}', '{"_meta": []}', "[]"])
def test_a_pipfile_lock_without_a_hash_says_it_cannot_be_checked(lock):
    env = decide(repo({"Pipfile": PIPFILE, "Pipfile.lock": lock}), HUB)
    assert warnings(env) == ["Pipfile.lock has no hash of Pipfile (_meta.hash) that the hub can check: it "
                             "is installed as it is. Run `pipenv lock` to record one."]


def test_a_pipfile_lock_alone_is_not_checked_and_a_broken_pipfile_is_refused():
    assert warnings(decide(repo({"Pipfile.lock": lock_with(PLETTE_HASH)}), HUB)) == []
    with pytest.raises(EnvironmentRefused, match="^Pipfile cannot be read"):
        decide(repo({"Pipfile": "[packages\n", "Pipfile.lock": lock_with(PLETTE_HASH)}), HUB)


def test_a_pipfile_with_values_json_cannot_hold_is_unchecked_not_an_error():
    text = PIPFILE + "\n[custom]\nwhen = 2024-01-01\n"
    env = decide(repo({"Pipfile": text, "Pipfile.lock": lock_with(PLETTE_HASH)}), HUB)
    assert warnings(env)[0].startswith("Pipfile.lock has no hash of Pipfile")


# the buildpack's side ----------------------------------------------------------------------------

def test_a_stale_uv_lock_failure_reads_as_the_message_naming_uv_lock():
    log = ["#14 2.1 error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided.",
           f"#14 2.1 {install.FAILED} {install.UV_LOCK_STALE} uv.lock: error: The lockfile at `uv.lock` "
           "needs to be updated, but `--locked` was provided. hint: To update the lockfile, run `uv lock`."]
    assert install_failure(log) == (
        "uv.lock does not match pyproject.toml (uv sync --locked: The lockfile at `uv.lock` needs "
        "to be updated, but `--locked` was provided). Run `uv lock` and commit uv.lock: the hub installs "
        "a lock only as it is, never re-solving it")
    assert install_failure([f"{install.FAILED} installing uv.lock failed: no network"]) == \
        "installing uv.lock failed: no network"


@pytest.mark.parametrize("pyproject, lock_source, early", [
    (PYPROJECT, 'source = { virtual = "." }', True),
    (PACKAGED, 'source = { editable = "." }', True),
    (PYPROJECT + '[tool.uv.workspace]\nmembers = ["pkgs/*"]\n', 'source = { virtual = "." }', False),
    (PYPROJECT.replace('version = "1"', 'dynamic = ["version"]'), 'source = { editable = "." }', False),
    (PYPROJECT, 'source = { directory = "vendor/lib" }', False),
    (PYPROJECT, 'source = { path = "wheels/x-1-py3-none-any.whl" }', False),
    ("[project", 'source = { virtual = "." }', False),
])
def test_uv_lock_installs_before_the_repository_only_when_it_needs_nothing_else(
        tmp_path, pyproject, lock_source, early):
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "uv.lock").write_text(f'version = 1\n\n[[package]]\nname = "x"\nversion = "1"\n{lock_source}\n')
    assert _uv_project_self_contained(str(tmp_path / "uv.lock"), str(tmp_path / "pyproject.toml")) is early


# where the uv.lock install sits in the Dockerfile -------------------------------------------------

COPY_REPO = "COPY --chown=1000:1000 src/ ${REPO_DIR}/"


def rendered(tmp_path, monkeypatch, files):
    from binderspawner.builders.buildpacks.venv import make_venv_buildpack
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    monkeypatch.chdir(tmp_path)
    environment = {"python": "3.11", "base_image": "binderspawner-base:bookworm", "binder_dir": "",
                   "requirements": None, "pipfile": None, "pipfile_lock": None, "install_repo": False,
                   "uv_lock": "uv.lock", "index_urls": ["https://mirror.example/simple"]}
    cls = make_venv_buildpack(["jupyterhub"], environment=environment)
    return cls(base_image="binderspawner-base:bookworm").render({"NB_USER": "jovyan", "NB_UID": "1000"}).splitlines()


def uv_runs(lines):
    return [(i, line) for i, line in enumerate(lines) if line.startswith("RUN ") and " uv-lock " in line]


LOCK = 'version = 1\n\n[[package]]\nname = "x"\nversion = "1"\nsource = { editable = "." }\n'


def test_the_locked_dependencies_install_before_the_repository_and_the_project_after(tmp_path, monkeypatch):
    lines = rendered(tmp_path, monkeypatch, {"pyproject.toml": PACKAGED, "uv.lock": LOCK, "index.ipynb": "{}"})
    copy_repo = lines.index(COPY_REPO)
    (early, early_run), (late, late_run) = uv_runs(lines)
    assert early < copy_repo < late
    assert early_run.endswith("install.py uv-lock . --no-install-project")
    assert late_run.endswith("install.py uv-lock .")  # the lock's own URLs: no --index-url
    copied = [line for line in lines[:early] if "src/" in line]
    assert copied == ["COPY --chown=1000:1000 src/pyproject.toml ${REPO_DIR}/pyproject.toml",
                      "COPY --chown=1000:1000 src/uv.lock ${REPO_DIR}/uv.lock"]


def test_a_notebook_only_change_keeps_the_locked_dependencies_layer(tmp_path, monkeypatch):
    files = {"pyproject.toml": PACKAGED, "uv.lock": LOCK, "index.ipynb": '{"cells": []}'}
    before = rendered(tmp_path, monkeypatch, files)
    after = rendered(tmp_path, monkeypatch, {**files, "index.ipynb": '{"cells": [1]}', "more.ipynb": "{}"})
    early = uv_runs(before)[0][0]
    assert before[:early + 1] == after[:early + 1]


def test_a_workspace_lock_installs_only_with_the_whole_repository(tmp_path, monkeypatch):
    workspace = PACKAGED + '[tool.uv.workspace]\nmembers = ["pkgs/*"]\n'
    lines = rendered(tmp_path, monkeypatch, {"pyproject.toml": workspace, "uv.lock": LOCK})
    [(at, run)] = uv_runs(lines)
    assert lines.index(COPY_REPO) < at and run.endswith("install.py uv-lock .")


def test_a_repositorys_uv_configuration_is_named_where_the_hubs_installs_ignore_it():
    """install.py runs uv with --no-config (tests/e2e/test_uv_config.py): uv.toml and [tool.uv] are
    not read for requirements or Pipfiles, and the warning says so; uv sync of a uv.lock reads them."""
    config = "[tool.uv.pip]\nindex-url = 'https://elsewhere.example/simple'\n"
    env = decide(RepoFiles({"requirements.txt": "six\n", "pyproject.toml": config},
                           listing=frozenset({"requirements.txt", "pyproject.toml", "uv.toml"})), Policy(("3.11",)))
    assert [w for w in env.warnings if "uv" in w] == [
        "uv.toml is not read: requirements.txt is installed with the hub's uv settings and package indexes "
        "(c.Repo2DockerBuilder.package_indexes), whatever the repository's uv configuration says.",
        "pyproject.toml's [tool.uv] is not read: requirements.txt is installed with the hub's uv settings and "
        "package indexes (c.Repo2DockerBuilder.package_indexes), whatever the repository's uv configuration says."]
    locked = decide(RepoFiles({"pyproject.toml": config + "[project]\nname = 'x'\nversion = '1'\n"},
                              listing=frozenset({"pyproject.toml", "uv.lock", "uv.toml"})), Policy(("3.11",)))
    assert locked.kind == "uv" and not [w for w in locked.warnings if "is not read" in w]
