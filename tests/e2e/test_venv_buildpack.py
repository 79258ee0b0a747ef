"""The Dockerfile our venv buildpack renders for a repository and a decided environment:
binderspawner/builders/buildpacks/venv.py, and install.py's conversions of Pipfile(.lock).

repo2docker renders the Dockerfile from the files in the current directory (the checked-out
repository), so each test writes a small repository into tmp_path and chdirs there.
"""

import shlex
import subprocess
import sys

import pytest

from binderspawner.builders.buildpacks import install
from binderspawner.builders.buildpacks.venv import (
    EXTRA_CA_PATH, INSTALL_PATH, VENV, VenvBuildPack, install_failure, make_venv_buildpack)

BASE = "binderspawner-base:bookworm"
SERVER = ["jupyterhub==6.1.1", "jupyterlab"]
BUILD_ARGS = {"NB_USER": "jovyan", "NB_UID": "1000"}
COPY_REPO = "COPY --chown=1000:1000 src/ ${REPO_DIR}/"
HERE_PYTHON = "%d.%d" % sys.version_info[:2]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(files):
        for path, content in files.items():
            full = tmp_path / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(content)
        return tmp_path

    return write


@pytest.fixture
def ca_bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "proxy-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return str(path)


def decided(**fields):
    return {"python": "3.11", "base_image": BASE, "binder_dir": "", "requirements": None, "pipfile": None,
            "pipfile_lock": None, "install_repo": False, "index_urls": [], **fields}


def buildpack(server=SERVER, extra_ca_bundle="", environment=None):
    cls = make_venv_buildpack(server, extra_ca_bundle=extra_ca_bundle, environment=environment)
    return cls(base_image=BASE)


def render(**kwargs):
    return buildpack(**kwargs).render(BUILD_ARGS).splitlines()


def index_of(lines, predicate, what):
    found = [i for i, line in enumerate(lines) if predicate(line)]
    assert found, f"no line with {what} in the Dockerfile:\n" + "\n".join(lines)
    return found[0]


def index_containing(lines, text):
    return index_of(lines, lambda line: text in line, repr(text))


def runs(lines):
    return [line[len("RUN "):] for line in lines if line.startswith("RUN ")]


def user_at(lines, index):
    users = [line.split(None, 1)[1] for line in lines[:index] if line.startswith("USER ")]
    return users[-1] if users else "root"


def install_line(lines, kind):
    return index_of(lines, lambda line: line.startswith("RUN ") and INSTALL_PATH in line
                    and kind in shlex.split(line), f"install.py {kind}")


def install_words(lines, kind):
    return shlex.split(lines[install_line(lines, kind)][len("RUN "):])


def run_here(command):
    """Run a RUN command of the Dockerfile on this machine, with this Python as python3."""
    if command.startswith("python3 "):
        command = shlex.quote(sys.executable) + command[len("python3"):]
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


# the environment every repository gets ---------------------------------------------------------------


def test_from_the_base_image_with_a_venv_and_the_server(repo):
    repo({"index.ipynb": "{}"})
    lines = render(environment=decided())
    assert f"FROM {BASE}" in lines
    assert f"ENV NB_PYTHON_PREFIX={VENV}" in lines and f"ENV VIRTUAL_ENV={VENV}" in lines
    assert any(line.startswith("ENV PATH=") and f"{VENV}/bin" in line for line in lines)
    venv = index_of(lines, lambda line: line.startswith("RUN ") and f"python3 -m venv {VENV}" in line, "venv")
    server = install_line(lines, "server")
    assert venv < server < index_containing(lines, COPY_REPO)
    assert install_words(lines, "server")[-3:] == ["server", *SERVER]
    assert user_at(lines, server) == "${NB_USER}"  # the user owns the venv and can pip install later
    assert "--chown" not in lines[venv] and "chown -R ${NB_USER}" in lines[venv]


def test_server_layer_is_the_same_for_every_repository(repo, tmp_path):
    repo({"requirements.txt": "numpy\n", "setup.py": ""})
    one = render(environment=decided(requirements="requirements.txt", install_repo=True))
    (tmp_path / "requirements.txt").unlink()
    (tmp_path / "setup.py").unlink()
    repo({"Pipfile": "[packages]\nsix = '*'\n", "apt.txt": "curl\n"})
    other = render(environment=decided(pipfile="Pipfile"))
    server = install_line(one, "server")
    assert one[:server + 1] == other[:server + 1]


def test_server_requirements_are_single_shell_words(repo):
    repo({})
    tricky = ["jupyterlab>=4,<5", "notebook; python_version>'3'", "jupyterhub==6.1.1"]
    assert install_words(render(server=tricky, environment=decided()), "server")[-3:] == tricky


def test_admin_indexes_reach_every_install(repo):
    repo({"requirements.txt": "numpy\n"})
    indexes = ["https://pypi.example.org/simple", "https://extra.example.org/simple"]
    lines = render(environment=decided(requirements="requirements.txt", index_urls=indexes))
    for kind in ("server", "requirements"):
        words = install_words(lines, kind)
        assert words[2:6] == ["--index-url", indexes[0], "--index-url", indexes[1]]


def test_login_shell_keeps_the_venv_on_path(repo):
    # repo2docker's entrypoint runs 'bash -l', and Debian's /etc/profile resets PATH
    repo({})
    commands = [c for c in runs(render()) if "/etc/profile.d/" in c]
    assert commands
    assert f"{VENV}/bin" in commands[0]
    assert "$HOME/.local/bin" in commands[0] and "$REPO_DIR/.local/bin" in commands[0]


def test_install_script_is_copied_before_the_server(repo):
    repo({})
    lines = render(environment=decided())
    copy = index_of(lines, lambda line: line.startswith("COPY ")
                    and line.endswith(" " + INSTALL_PATH), "copy")
    assert copy < install_line(lines, "server")
    assert buildpack().get_build_script_files()[install.__file__] == INSTALL_PATH


def test_nothing_installed_that_was_not_decided(repo):
    # the buildpack renders the decision, it does not detect: the files alone install nothing
    repo({"requirements.txt": "numpy\n", "setup.py": "", "Pipfile": "[packages]\n"})
    text = "\n".join(runs(render(environment=decided())))
    for kind in (" requirements", " pipfile", " repo"):
        assert INSTALL_PATH + kind not in text.replace("--index-url", "")


# requirements ------------------------------------------------------------------------------------------


def test_requirements_install_before_the_repository_is_copied(repo):
    repo({"binder/requirements.txt": "numpy==1.26.4\npandas\n", "index.ipynb": "{}"})
    lines = render(environment=decided(binder_dir="binder", requirements="binder/requirements.txt"))
    copy_requirements = index_containing(
        lines, "COPY --chown=1000:1000 src/binder/requirements.txt ${REPO_DIR}/binder/requirements.txt")
    install_at = install_line(lines, "requirements")
    assert copy_requirements < install_at < index_containing(lines, COPY_REPO)
    assert install_words(lines, "requirements")[-2:] == ["requirements", "binder/requirements.txt"]
    assert user_at(lines, install_at) == "${NB_USER}"
    assert [line for line in lines[:install_at] if "src/" in line] == [lines[copy_requirements]]


def test_notebook_only_change_keeps_the_install_layer(repo):
    env = decided(requirements="requirements.txt")
    repo({"requirements.txt": "numpy\n", "index.ipynb": '{"cells": []}'})
    before = render(environment=env)
    repo({"index.ipynb": '{"cells": [1]}', "analysis.ipynb": "{}", "data/table.csv": "a,b\n"})
    after = render(environment=env)
    at = install_line(before, "requirements")
    assert before[:at + 1] == after[:at + 1]


@pytest.mark.parametrize("requirements", ["-e .\n", "numpy\n-e .\n", "./mypackage\n", "-r other.txt\n",
                                          "file:///srv/pkg\n", "--editable=.\n"])
def test_local_requirements_install_after_the_repository_is_copied(repo, requirements):
    repo({"requirements.txt": requirements, "setup.py": "", "other.txt": "numpy\n"})
    lines = render(environment=decided(requirements="requirements.txt"))
    at = install_line(lines, "requirements")
    assert index_containing(lines, COPY_REPO) < at
    assert not any("src/requirements.txt" in line for line in lines)
    assert user_at(lines, at) == "${NB_USER}"


# setup.py / pyproject.toml, Pipfile ------------------------------------------------------------------------


def test_install_repo_after_the_copy_and_after_the_requirements(repo):
    repo({"requirements.txt": "numpy\n", "setup.py": ""})
    lines = render(environment=decided(requirements="requirements.txt", install_repo=True))
    at = install_line(lines, "repo")
    assert install_line(lines, "requirements") < index_containing(lines, COPY_REPO) < at
    assert install_words(lines, "repo")[-1] == "repo" and user_at(lines, at) == "${NB_USER}"


def test_pipfile_lock_wins_and_installs_before_the_copy(repo):
    repo({"Pipfile": "[packages]\nsix = '*'\n",
         "Pipfile.lock": '{"default": {"six": {"version": "==1.16.0"}}}'})
    lines = render(environment=decided(pipfile="Pipfile", pipfile_lock="Pipfile.lock"))
    at = install_line(lines, "pipfile-lock")
    assert index_containing(
        lines, "src/Pipfile.lock ${REPO_DIR}/Pipfile.lock") < at < index_containing(lines, COPY_REPO)
    assert not [c for c in runs(lines) if INSTALL_PATH + " pipfile " in c]


def test_pipfile_lock_with_a_path_installs_after_the_copy(repo):
    repo({"Pipfile.lock": '{"default": {"mine": {"path": ".", "editable": true}}}'})
    lines = render(environment=decided(pipfile="Pipfile", pipfile_lock="Pipfile.lock"))
    assert index_containing(lines, COPY_REPO) < install_line(lines, "pipfile-lock")


def test_pipfile_without_lock_is_resolved(repo):
    repo({"Pipfile": "[packages]\nsix = '*'\n"})
    lines = render(environment=decided(pipfile="Pipfile"))
    assert install_line(lines, "pipfile") < index_containing(lines, COPY_REPO)


def test_lock_entries_become_exact_requirement_lines(tmp_path):
    lock = {"default": {
        "six": {"version": "==1.16.0", "hashes": ["sha256:aa", "sha256:bb"],
                "markers": "python_version >= '3'"},
        "req": {"version": "==2.0", "extras": ["socks"]},
        "mine": {"path": ".", "editable": True},
        "dep": {"git": "https://git.example.org/dep.git", "ref": "0123abc"}},
        "develop": {"pytest": {"version": "==8.0.0"}}}
    lines = install.pipfile_lock_requirements(lock, str(tmp_path))
    assert lines == [
        "dep @ git+https://git.example.org/dep.git@0123abc",
        f"-e {tmp_path}",
        "pytest==8.0.0",
        "req[socks]==2.0",
        "six==1.16.0 ; (python_version >= '3') --hash=sha256:aa --hash=sha256:bb"]


def test_pipfile_entries_become_requirement_lines(tmp_path):
    pipfile = {"packages": {"numpy": "*", "pandas": ">=2",
                            "win": {"version": "*", "sys_platform": "== 'win32'"},
                            "local": {"path": "./pkg"}},
               "dev-packages": {"black": "==24.1.0"}}
    assert install.pipfile_requirements(pipfile, str(tmp_path)) == [
        "black==24.1.0", f"local @ file://{tmp_path}/pkg", "numpy", "pandas>=2",
        "win ; sys_platform == 'win32'"]


def test_failure_summary_is_uvs_cause_on_one_line():
    stderr = ("Using Python 3.11.2 environment at: /srv/venv\n"
              "  \u00d7 No solution found when resolving dependencies:\n"
              "  \u2570\u2500\u25b6 Because nosuch was not found in the package registry and you require "
              "nosuch, we\n"
              "      can conclude that your requirements are unsatisfiable.\n")
    assert install.failure_summary(stderr) == (
        "No solution found when resolving dependencies: Because nosuch was not found in the package registry "
        "and you require nosuch, we can conclude that your requirements are unsatisfiable.")


def test_install_failure_is_found_behind_buildkits_prefix():
    log = ["#12 [8/9] RUN /usr/bin/python3 /usr/local/lib/binderspawner/install.py requirements r.txt",
           "#12 3.21 Resolved 3 packages",
           "#12 3.40 binderspawner-install-failed: installing r.txt failed: No solution found",
           "ERROR: process did not complete successfully"]
    assert install_failure(log) == "installing r.txt failed: No solution found"
    assert install_failure(log[:2]) is None


# the Python the hub chose -------------------------------------------------------------------------------


def python_check(lines):
    checks = [c for c in runs(lines) if "this environment needs Python" in c]
    assert len(checks) == 1, lines
    return checks[0]


def test_base_image_with_the_chosen_python_passes(repo):
    repo({})
    command = python_check(render(environment=decided(python=HERE_PYTHON)))
    result = run_here("python3 " + command.split(" ", 1)[1])
    assert result.returncode == 0, result.stderr


def test_base_image_with_another_python_stops_the_build_first(repo):
    repo({"requirements.txt": "numpy\n"})
    lines = render(environment=decided(python="2.7", requirements="requirements.txt"))
    command = python_check(lines)
    assert command.startswith(f"{VENV}/bin/python -c ")
    assert lines.index("RUN " + command) < install_line(lines, "requirements")
    result = run_here("python3 " + command.split(" ", 1)[1])
    assert result.returncode != 0
    assert install_failure(result.stderr.splitlines()).startswith(
        f"the base image {BASE} has Python {HERE_PYTHON}")
    assert install.FAILED not in command  # BuildKit echoes the command: the marker must not be in it


def test_without_a_decided_environment_the_binder_requirements_are_installed(repo):
    # until the hub passes an environment: repo2docker's binder directory, its requirements.txt
    repo({"binder/requirements.txt": "scipy\n", "requirements.txt": "ignored-package\n"})
    lines = render()
    assert install_words(lines, "requirements")[-1] == "binder/requirements.txt"
    assert not [c for c in runs(lines) if "this environment needs Python" in c]


# apt.txt and postBuild --------------------------------------------------------------------------------


def test_apt_packages(repo):
    repo({"apt.txt": "# tools\ncurl\ngraphviz  # for plots\n\n"})
    lines = render(environment=decided())
    apt = index_of(lines, lambda line: "apt-get install --yes --no-install-recommends" in line
                   and "curl" in line, "apt install")
    assert "curl graphviz" in lines[apt]
    assert apt < index_containing(lines, COPY_REPO)
    assert user_at(lines, apt) == "root"


def test_post_build(repo):
    repo({"postBuild": "#!/bin/sh\njupyter labextension list\n"})
    lines = render(environment=decided())
    post = index_containing(lines, "RUN ./postBuild")
    assert index_containing(lines, COPY_REPO) < post
    assert index_containing(lines, "RUN chmod +x postBuild") < post
    assert user_at(lines, post) == "${NB_USER}"


# extra CA bundle ------------------------------------------------------------------------------------


def test_extra_ca_bundle_is_trusted_before_anything_is_downloaded(repo, ca_bundle):
    repo({"requirements.txt": "numpy\n"})
    bp = buildpack(extra_ca_bundle=ca_bundle)
    lines = bp.render(BUILD_ARGS).splitlines()
    copy = index_of(lines, lambda line: line.startswith("COPY ") and line.endswith(" " + EXTRA_CA_PATH),
                    "CA copy")
    update = index_containing(lines, "RUN update-ca-certificates")
    server = install_line(lines, "server")
    assert copy < update < server < install_line(lines, "requirements")
    assert user_at(lines, update) == "root"
    assert EXTRA_CA_PATH.startswith("/usr/local/share/ca-certificates/") and EXTRA_CA_PATH.endswith(".crt")
    # repo2docker puts the hub's file into the build context under the name the COPY uses
    context_name = lines[copy].split()[-2]
    files = bp.get_build_script_files()
    assert files[ca_bundle] == EXTRA_CA_PATH
    assert VenvBuildPack.generate_build_context_filename(ca_bundle) == (context_name, ca_bundle)


def test_no_extra_ca_bundle_no_trust_store_change(repo):
    repo({"requirements.txt": "numpy\n"})
    text = "\n".join(render())
    assert "update-ca-certificates" not in text
    assert EXTRA_CA_PATH not in text


def test_settings_do_not_leak_between_buildpack_classes(repo, ca_bundle):
    repo({})
    with_ca = make_venv_buildpack(["jupyterlab==4.2.0"], extra_ca_bundle=ca_bundle)
    plain = make_venv_buildpack(["jupyterlab==4.0.0"])
    text_plain = plain(base_image=BASE).render(BUILD_ARGS)
    text_ca = with_ca(base_image=BASE).render(BUILD_ARGS)
    assert "jupyterlab==4.0.0" in text_plain and "jupyterlab==4.2.0" not in text_plain
    assert "update-ca-certificates" in text_ca and "update-ca-certificates" not in text_plain
    assert issubclass(plain, VenvBuildPack) and VenvBuildPack.extra_ca_bundle == ""


def test_repository_dependencies_install_before_the_copy(repo):
    repo({"setup.py": "from setuptools import setup\nsetup()\n", "setup.cfg": "", "mytool/__init__.py": ""})
    lines = render(environment=decided(install_repo=True))
    early = install_line(lines, "repo-deps")
    copies = [line for line in lines[:early] if "src/" in line]
    assert sorted(copies) == ["COPY --chown=1000:1000 src/setup.cfg ${REPO_DIR}/setup.cfg",
                              "COPY --chown=1000:1000 src/setup.py ${REPO_DIR}/setup.py"]
    assert early < index_containing(lines, COPY_REPO) < install_line(lines, "repo")


def test_static_and_dynamic_pyproject_dependencies():
    assert install.static_dependencies({"project": {"dependencies": ["six>=1"]}}) == ["six>=1"]
    assert install.static_dependencies({"project": {"dynamic": ["dependencies"]}}) is None
    assert install.static_dependencies({"tool": {}}) is None


def test_pipfile_sources_other_than_the_hubs_indexes_are_named():
    default = {"name": "pypi", "url": "https://index.example.org/simple", "verify_ssl": True}
    private = {"name": "lab", "url": "https://lab.example.org/simple"}
    assert install.ignored_sources([default], []) == []
    assert install.ignored_sources([default, private], []) == ["https://lab.example.org/simple"]
    assert install.ignored_sources([private], ["https://lab.example.org/simple"]) == []
    assert install.ignored_sources([default], ["https://mirror.example.org/simple"]) == [default["url"]]
