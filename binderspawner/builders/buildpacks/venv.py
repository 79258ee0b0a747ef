"""A repo2docker buildpack that needs neither conda nor Docker Hub.

It renders the environment the hub decided (builders/environment.py; passed in the
BINDERSPAWNER_R2D_SETTINGS "environment"), without detecting anything itself: a virtual environment
from the base image's own Python (Debian's python3 in the images scripts/provision.sh builds), the
single-user server in it as one layer per base image, then the repository's requirements file,
Pipfile.lock (its pins and hashes, exactly) or Pipfile (resolved), uv.lock (``uv sync --locked``:
exactly, or a failure naming it), and ``pip install .`` of the repository, all with uv through
install.py. apt.txt, postBuild and start work as in repo2docker
(they come from its BaseImage), as do $REPO_DIR, the working directory and ~/.local/bin on PATH.

Files needed by an install are copied before the repository where they name nothing else of it, so a
notebook-only change rebuilds in seconds.

The class is configured by ``make_venv_buildpack`` in the repo2docker config file, because
repo2docker instantiates buildpacks itself and they are not Configurables.
"""

import json
import os
import re
import shlex
import tomllib
from functools import lru_cache

from repo2docker.buildpacks.base import BaseImage
from repo2docker.utils import is_local_pip_requirement, open_guess_encoding

from binderspawner import messages, session
from binderspawner.builders.buildpacks import install

VENV = install.VENV
EXTRA_CA_PATH = "/usr/local/share/ca-certificates/binderspawner-extra.crt"
INSTALL_PATH = "/usr/local/lib/binderspawner/install.py"
INSTALL = f"/usr/bin/python3 {INSTALL_PATH}"
FAILED = install.FAILED


def install_failure(log_lines):
    """The first line a failed install printed (install.py's FAILED line), without BuildKit's
    step prefix ("#12 3.21 "), or None: the cause to show first when a build fails."""
    for line in log_lines:
        at = line.find(FAILED)
        if at >= 0:
            return _explained(line[at + len(FAILED):].strip())
    return None


_STALE_LOCK = re.compile(re.escape(install.UV_LOCK_STALE) + r" (\S+?): (.*)$")


def _explained(failure):
    """install.py's coded failures in the words of messages.py."""
    stale = _STALE_LOCK.match(failure)
    if stale:  # uv's own words, without its "error:" and the hint the message gives anyway
        cause = re.sub(r"^error:\s*", "", stale.group(2)).split(" hint:")[0].rstrip(".")
        return messages.UV_LOCK_STALE.format(file=stale.group(1), cause=cause)
    return failure


def legacy_environment(buildpack):
    """What the hub decided before builders/environment.py existed: the binder directory's
    requirements.txt only. Used only when the settings carry no "environment"."""
    binder_dir = buildpack.binder_dir.rstrip("/")
    requirements = os.path.join(binder_dir, "requirements.txt") if binder_dir else "requirements.txt"
    return {"python": "", "binder_dir": binder_dir,
            "requirements": requirements if os.path.exists(requirements) else None,
            "pipfile": None, "pipfile_lock": None, "install_repo": False, "uv_lock": None, "index_urls": []}


def _names_other_files(path):
    """Whether a requirements file refers to other files of the repository (-r, -e, local paths),
    so it can be installed only after the repository is copied."""
    with open_guess_encoding(path) as f:
        return any(is_local_pip_requirement(line) for line in f)


def _pipfile_lock_names_paths(path):
    try:
        with open(path, encoding="utf-8") as f:
            lock = json.load(f)
        return any(isinstance(spec, dict) and "path" in spec
                   for section in ("default", "develop") for spec in lock.get(section, {}).values())
    except (OSError, ValueError, AttributeError):
        return True  # install.py reads it after the copy and says what is wrong with it


def _pipfile_names_paths(path):
    import tomllib
    try:
        with open(path, "rb") as f:
            pipfile = tomllib.load(f)
        return any(isinstance(spec, dict) and "path" in spec
                   for section in ("packages", "dev-packages") for spec in pipfile.get(section, {}).values())
    except (OSError, ValueError, AttributeError):
        return True


def _uv_project_self_contained(lock_path, pyproject_path):
    """Whether `uv sync --locked --no-install-project` can run with only pyproject.toml and uv.lock
    (copied before the repository, so a notebook-only change keeps the layer): no workspace, no
    local path sources and no dynamic metadata, which uv would read from the rest of the repository."""
    try:
        with open(pyproject_path, "rb") as f:
            pyproject = tomllib.load(f)
        with open(lock_path, "rb") as f:
            lock = tomllib.load(f)
        uv = pyproject.get("tool", {}).get("uv", {})
        if "workspace" in uv or pyproject.get("project", {}).get("dynamic"):
            return False
        for package in lock.get("package", []):
            source = package.get("source", {})
            for key in ("path", "directory", "editable", "virtual"):
                if key in source and source[key] != ".":
                    return False
        return True
    except (OSError, ValueError, AttributeError, TypeError):
        return False  # uv reads them after the copy and says what is wrong


class VenvBuildPack(BaseImage):
    # Set by make_venv_buildpack; these come from the hub, never from the repository.
    server_requirements = ("jupyterhub", "jupyterlab")
    extra_ca_bundle = ""
    decided_environment = None

    @property
    def environment(self):
        return self.decided_environment or legacy_environment(self)

    def _install(self, *args, indexes=True):
        """install.py's command line; uv.lock installs from the URLs it records (indexes=False)."""
        index = [w for url in self.environment.get("index_urls") or () for w in ("--index-url", url)
                 if indexes]
        return " ".join(shlex.quote(word) for word in [*INSTALL.split(), *index, *args])

    @lru_cache
    def get_build_env(self):
        return [*super().get_build_env(), ("NB_PYTHON_PREFIX", VENV), ("VIRTUAL_ENV", VENV)]

    @lru_cache
    def get_path(self):
        return [f"{VENV}/bin"]

    @lru_cache
    def get_build_script_files(self):
        files = dict(super().get_build_script_files())
        files[install.__file__] = INSTALL_PATH
        files.update(session.build_script_files())  # when the session is stopped, told inside it
        if self.extra_ca_bundle:
            files[self.extra_ca_bundle] = EXTRA_CA_PATH
        return files

    @lru_cache
    def get_build_scripts(self):
        scripts = list(super().get_build_scripts())
        if self.extra_ca_bundle:
            # Debian's pip and uv (UV_NATIVE_TLS in the base image) trust the system store.
            scripts.append(("root", "update-ca-certificates > /dev/null"))
        # Debian's /etc/profile resets PATH for the login shell repo2docker's entrypoint uses.
        profile = f'export PATH="{VENV}/bin:$HOME/.local/bin:$REPO_DIR/.local/bin:$PATH"'
        scripts.append(("root", f"echo {shlex.quote(profile)} > /etc/profile.d/00-binderspawner-venv.sh"))
        # Images from an older base without uv get it from the package index here.
        scripts.append(("root", "command -v uv > /dev/null || { python3 -m venv /opt/binderspawner-tools"
                                " && /opt/binderspawner-tools/bin/pip install -q --no-cache-dir uv"
                                " && ln -s /opt/binderspawner-tools/bin/uv /usr/local/bin/uv; }"))
        scripts.append(("root", f"python3 -m venv {VENV} && chown -R ${{NB_USER}}:${{NB_USER}} {VENV}"))
        scripts.append(("${NB_USER}", self._install("server", *self.server_requirements)))
        scripts.append(("${NB_USER}", session.install_command(f"{VENV}/bin/python")))
        return scripts

    def _python_check(self):
        wanted = self.environment.get("python") or ""
        if not wanted:
            return []
        check = (
            "import sys; have = '%d.%d' % sys.version_info[:2]; "
            # the marker is split so that BuildKit's echo of this command does not contain it
            f"sys.exit(0 if have == {wanted!r} else '{FAILED[:13]}' '{FAILED[13:]} the base image "
            f"{self.base_image} has "
            f"Python ' + have + ', but this environment needs Python {wanted}: the hub admin maps "
            "Python versions to base images (scripts/provision.sh builds them).')")
        return [("root", f"{VENV}/bin/python -c {shlex.quote(check)}")]

    def _early(self):
        """(file, install.py kind) pairs installed before the repository is copied."""
        env, early = self.environment, []
        if env.get("requirements") and not _names_other_files(env["requirements"]):
            early.append((env["requirements"], "requirements"))
        if env.get("pipfile_lock"):
            if not _pipfile_lock_names_paths(env["pipfile_lock"]):
                early.append((env["pipfile_lock"], "pipfile-lock"))
        elif env.get("pipfile") and not _pipfile_names_paths(env["pipfile"]):
            early.append((env["pipfile"], "pipfile"))
        return early

    def _uv_project(self):
        """The directory of the uv.lock to install ('.': the root), or None."""
        lock = self.environment.get("uv_lock")
        return (os.path.dirname(lock) or ".") if lock else None

    def _uv_early_files(self):
        project = self._uv_project()
        if project is None:
            return []
        lock, pyproject = os.path.join(project, "uv.lock"), os.path.join(project, "pyproject.toml")
        if not _uv_project_self_contained(lock, pyproject):
            return []
        extra = [os.path.join(project, n) for n in ("uv.toml", ".python-version")
                 if os.path.isfile(os.path.join(project, n))]
        return [os.path.normpath(p) for p in (pyproject, lock, *extra)]

    def _late(self):
        env, early = self.environment, [path for path, _ in self._early()]
        late = []
        if env.get("requirements") and env["requirements"] not in early:
            late.append((env["requirements"], "requirements"))
        if env.get("pipfile_lock"):
            if env["pipfile_lock"] not in early:
                late.append((env["pipfile_lock"], "pipfile-lock"))
        elif env.get("pipfile") and env["pipfile"] not in early:
            late.append((env["pipfile"], "pipfile"))
        return late

    def _package_files(self):
        """The repository's packaging files, copied early to install its dependencies first."""
        if not self.environment.get("install_repo"):
            return []
        return [name for name in ("setup.py", "setup.cfg", "pyproject.toml") if os.path.isfile(name)]

    @lru_cache
    def get_preassemble_script_files(self):
        files = dict(super().get_preassemble_script_files())
        for path in [*(path for path, _ in self._early()), *self._package_files(), *self._uv_early_files()]:
            files[path] = path
        return files

    @lru_cache
    def get_preassemble_scripts(self):
        scripts = [*self._python_check(), *super().get_preassemble_scripts()]
        scripts += [("${NB_USER}", self._install(kind, path)) for path, kind in self._early()]
        if self._package_files():
            scripts.append(("${NB_USER}", self._install("repo-deps")))
        if self._uv_early_files():  # the locked dependencies; the project itself comes after the copy
            deps_only = self._install("uv-lock", self._uv_project(), "--no-install-project", indexes=False)
            scripts.append(("${NB_USER}", deps_only))
        return scripts

    @lru_cache
    def get_assemble_scripts(self):
        scripts = list(super().get_assemble_scripts())
        scripts += [("${NB_USER}", self._install(kind, path)) for path, kind in self._late()]
        if self.environment.get("install_repo"):
            scripts.append(("${NB_USER}", self._install("repo")))
        if self._uv_project():  # the lock checked and installed again with the whole repository
            scripts.append(("${NB_USER}", self._install("uv-lock", self._uv_project(), indexes=False)))
        return scripts


def make_venv_buildpack(server_requirements, extra_ca_bundle="", environment=None):
    """A VenvBuildPack subclass carrying the hub's settings and decided environment."""
    return type("VenvBuildPack", (VenvBuildPack,), {
        "server_requirements": tuple(server_requirements),
        "extra_ca_bundle": extra_ca_bundle,
        "decided_environment": dict(environment) if environment else None,
    })
