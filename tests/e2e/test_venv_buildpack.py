"""The Dockerfile our venv buildpack renders for a repository: binderspawner/builders/buildpacks/venv.py.

repo2docker renders the Dockerfile from the files in the current directory (the checked-out
repository), so each test writes a small repository into tmp_path and chdirs there.
"""

import shlex
import subprocess
import sys

import pytest

from binderspawner.builders.buildpacks.venv import EXTRA_CA_PATH, VENV, VenvBuildPack, make_venv_buildpack

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


def buildpack(server=SERVER, extra_ca_bundle=""):
    return make_venv_buildpack(server, extra_ca_bundle=extra_ca_bundle)(base_image=BASE)


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


def pip_requirements_line(lines):
    return index_of(lines, lambda line: line.startswith("RUN ") and "pip install" in line and " -r " in line,
                    "pip install -r")


def run_here(command):
    """Run a RUN command of the Dockerfile on this machine, with this Python as python3."""
    if command.startswith("python3 "):
        command = shlex.quote(sys.executable) + command[len("python3"):]
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


# the environment every repository gets ---------------------------------------------------------------


def test_from_the_base_image_with_a_venv_and_the_server(repo):
    repo({"index.ipynb": "{}"})
    lines = render()
    assert f"FROM {BASE}" in lines
    assert f"ENV NB_PYTHON_PREFIX={VENV}" in lines
    assert any(line.startswith("ENV PATH=") and f"{VENV}/bin" in line for line in lines)
    venv = index_of(lines, lambda line: line.startswith("RUN ") and f"python3 -m venv {VENV}" in line, "venv")
    server = index_of(lines, lambda line: line.startswith("RUN ") and f"{VENV}/bin/pip install" in line
                      and "jupyterhub==6.1.1" in line, "server pip install")
    assert venv < server < index_containing(lines, COPY_REPO)
    assert shlex.split(lines[server][len("RUN "):])[-2:] == SERVER
    assert user_at(lines, server) == "${NB_USER}"  # the user owns the venv and can pip install later
    assert "--chown" not in lines[venv] and "chown -R ${NB_USER}" in lines[venv]


def test_server_requirements_are_single_shell_words(repo):
    repo({})
    tricky = ["jupyterlab>=4,<5", "notebook; python_version>'3'", "jupyterhub==6.1.1"]
    lines = render(server=tricky)
    server = index_of(lines, lambda line: f"{VENV}/bin/pip install" in line and "jupyterlab" in line,
                      "server")
    words = shlex.split(lines[server][len("RUN "):])
    assert words[-3:] == tricky


def test_login_shell_keeps_the_venv_on_path(repo):
    # repo2docker's entrypoint runs 'bash -l', and Debian's /etc/profile resets PATH
    repo({})
    commands = [c for c in runs(render()) if "/etc/profile.d/" in c]
    assert commands
    assert f"{VENV}/bin" in commands[0]


def test_no_requirements_no_pip_install_of_them(repo):
    repo({"index.ipynb": "{}"})
    assert not [c for c in runs(render()) if " -r " in c]


# requirements.txt --------------------------------------------------------------------------------------


def test_requirements_install_before_the_repository_is_copied(repo):
    repo({"requirements.txt": "numpy==1.26.4\npandas\n", "index.ipynb": "{}"})
    lines = render()
    copy_requirements = index_containing(
        lines, "COPY --chown=1000:1000 src/requirements.txt ${REPO_DIR}/requirements.txt")
    pip = pip_requirements_line(lines)
    copy_repo = index_containing(lines, COPY_REPO)
    assert copy_requirements < pip < copy_repo
    assert shlex.split(lines[pip][len("RUN "):])[-2:] == ["-r", "requirements.txt"]
    assert f"{VENV}/bin/pip" in lines[pip]
    assert user_at(lines, pip) == "${NB_USER}"
    # nothing else of the repository is in the image before the pip layer
    assert [line for line in lines[:pip] if "src/" in line] == [lines[copy_requirements]]


def test_notebook_only_change_keeps_the_pip_layer(repo, tmp_path):
    repo({"requirements.txt": "numpy\n", "index.ipynb": '{"cells": []}'})
    before = render()
    repo({"index.ipynb": '{"cells": [1]}', "analysis.ipynb": "{}", "data/table.csv": "a,b\n"})
    after = render()
    pip = pip_requirements_line(before)
    assert before[:pip + 1] == after[:pip + 1]


@pytest.mark.parametrize("requirements", ["-e .\n", "numpy\n-e .\n", "./mypackage\n", "-r other.txt\n",
                                          "file:///srv/pkg\n", "--editable=.\n"])
def test_local_requirements_install_after_the_repository_is_copied(repo, requirements):
    repo({"requirements.txt": requirements, "setup.py": "", "other.txt": "numpy\n"})
    lines = render()
    pip = pip_requirements_line(lines)
    assert index_containing(lines, COPY_REPO) < pip
    assert not any("src/requirements.txt" in line for line in lines)
    assert user_at(lines, pip) == "${NB_USER}"


def test_requirements_in_binder_directory_win(repo):
    repo({"binder/requirements.txt": "scipy\n", "requirements.txt": "ignored-package\n"})
    lines = render()
    pip = pip_requirements_line(lines)
    assert shlex.split(lines[pip][len("RUN "):])[-2:] == ["-r", "binder/requirements.txt"]
    assert index_containing(lines, "src/binder/requirements.txt ${REPO_DIR}/binder/requirements.txt") < pip
    assert pip < index_containing(lines, COPY_REPO)
    assert not any("src/requirements.txt" in line for line in lines)
    assert len([c for c in runs(lines) if " -r " in c]) == 1


# apt.txt and postBuild --------------------------------------------------------------------------------


def test_apt_packages(repo):
    repo({"apt.txt": "# tools\ncurl\ngraphviz  # for plots\n\n"})
    lines = render()
    apt = index_of(lines, lambda line: "apt-get install --yes --no-install-recommends" in line
                   and "curl" in line, "apt install")
    assert "curl graphviz" in lines[apt]
    assert apt < index_containing(lines, COPY_REPO)
    assert user_at(lines, apt) == "root"


def test_post_build(repo):
    repo({"postBuild": "#!/bin/sh\njupyter labextension list\n"})
    lines = render()
    post = index_containing(lines, "RUN ./postBuild")
    assert index_containing(lines, COPY_REPO) < post
    assert index_containing(lines, "RUN chmod +x postBuild") < post
    assert user_at(lines, post) == "${NB_USER}"


def test_everything_together_in_order(repo):
    repo({"requirements.txt": "numpy\n", "apt.txt": "curl\n", "postBuild": "echo hi\n",
          "runtime.txt": f"python-{HERE_PYTHON}\n"})
    lines = render()
    check = index_containing(lines, "runtime.txt asks for Python")
    apt = index_containing(lines, "apt-get install --yes --no-install-recommends curl")
    pip = pip_requirements_line(lines)
    copy_repo = index_containing(lines, COPY_REPO)
    post = index_containing(lines, "RUN ./postBuild")
    # a wrong runtime.txt fails before minutes of installs; nothing from the repo before pip
    assert check < apt < pip < copy_repo < post


# runtime.txt ------------------------------------------------------------------------------------------


def runtime_check(lines):
    checks = [c for c in runs(lines) if "runtime.txt asks for" in c]
    assert len(checks) == 1, lines
    return checks[0]


def test_runtime_of_the_base_image_python_passes(repo):
    repo({"runtime.txt": f"python-{HERE_PYTHON}\n"})
    result = run_here(runtime_check(render()))
    assert result.returncode == 0, result.stderr


def test_runtime_with_a_patch_version_passes(repo):
    repo({"runtime.txt": f"python-{HERE_PYTHON}.99\n"})
    assert run_here(runtime_check(render())).returncode == 0


def test_runtime_with_a_date_passes(repo):
    repo({"runtime.txt": f"python-{HERE_PYTHON}-2024-01-01\n"})
    assert run_here(runtime_check(render())).returncode == 0


def test_runtime_python_major_only_passes(repo):
    # BUG (venv_buildpack.py, get_preassemble_scripts): repo2docker reads 'python-3' as "a Python 3";
    # the check compares '3' with '3.11' and fails every build of such a repository.
    repo({"runtime.txt": f"python-{sys.version_info.major}\n"})
    result = run_here(runtime_check(render()))
    assert result.returncode == 0, result.stderr


def test_runtime_of_another_python_stops_the_build_with_a_message(repo):
    repo({"runtime.txt": "python-2.7\n"})
    result = run_here(runtime_check(render()))
    assert result.returncode != 0
    assert "runtime.txt asks for Python 2.7" in result.stderr
    assert f"base image, {HERE_PYTHON}" in result.stderr
    assert f"python-{HERE_PYTHON}" in result.stderr  # tells the user what to write instead
    assert "Repo2DockerBuilder.base_image" in result.stderr


def test_runtime_of_another_language_stops_the_build_with_a_message(repo):
    repo({"runtime.txt": "r-4.1-2022-01-01\n", "install.R": "install.packages('ggplot2')\n"})
    lines = render()
    check = runtime_check(lines)
    result = run_here(check)
    assert result.returncode == 1
    assert "runtime.txt asks for r" in result.stderr
    assert "only Python" in result.stderr
    assert lines.index("RUN " + check) < index_containing(lines, COPY_REPO)


def test_runtime_r_without_date(repo):
    repo({"runtime.txt": "r-4.1\n"})
    result = run_here(runtime_check(render()))
    assert result.returncode == 1 and "asks for r" in result.stderr


def test_no_runtime_no_check(repo):
    repo({"requirements.txt": "numpy\n"})
    assert not [c for c in runs(render()) if "runtime.txt" in c]


# extra CA bundle ------------------------------------------------------------------------------------


def test_extra_ca_bundle_is_trusted_before_anything_is_downloaded(repo, ca_bundle):
    repo({"requirements.txt": "numpy\n"})
    bp = buildpack(extra_ca_bundle=ca_bundle)
    lines = bp.render(BUILD_ARGS).splitlines()
    copy = index_of(lines, lambda line: line.startswith("COPY ") and line.endswith(" " + EXTRA_CA_PATH),
                    "CA copy")
    update = index_containing(lines, "RUN update-ca-certificates")
    server = index_of(lines, lambda line: "pip install" in line and "jupyterhub==6.1.1" in line, "server")
    assert copy < update < server < pip_requirements_line(lines)
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
