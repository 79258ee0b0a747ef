"""A repo2docker buildpack that needs neither conda nor Docker Hub.

It installs the repository's requirements.txt with pip into a virtual environment made from the base
image's own Python (Debian's python3 in the image scripts/provision.sh builds). apt.txt, postBuild
and start work as in repo2docker (they come from its BaseImage). runtime.txt may only ask for the
base image's Python; the build stops with a message saying so otherwise.

The class is configured by ``make_venv_buildpack`` in the repo2docker config file that the builder
writes, because repo2docker instantiates buildpacks itself and they are not Configurables.
"""

import os
import shlex
from functools import lru_cache

from repo2docker.buildpacks.base import BaseImage
from repo2docker.utils import is_local_pip_requirement, open_guess_encoding

VENV = "/srv/venv"
EXTRA_CA_PATH = "/usr/local/share/ca-certificates/binderspawner-extra.crt"


class VenvBuildPack(BaseImage):
    # Set by make_venv_buildpack; these come from the hub admin, never from the repository.
    server_requirements = ("jupyterhub", "jupyterlab")
    extra_ca_bundle = ""

    @lru_cache
    def get_build_env(self):
        return [*super().get_build_env(), ("NB_PYTHON_PREFIX", VENV)]

    @lru_cache
    def get_path(self):
        return [f"{VENV}/bin"]

    @lru_cache
    def get_build_script_files(self):
        files = dict(super().get_build_script_files())
        if self.extra_ca_bundle:
            files[self.extra_ca_bundle] = EXTRA_CA_PATH
        return files

    @lru_cache
    def get_build_scripts(self):
        scripts = list(super().get_build_scripts())
        if self.extra_ca_bundle:
            # Debian's pip trusts the system store, so this is all pip needs.
            scripts.append(("root", "update-ca-certificates > /dev/null"))
        # Debian's /etc/profile resets PATH for the login shell repo2docker's entrypoint uses.
        profile = f'export PATH="{VENV}/bin:$HOME/.local/bin:$PATH"'
        scripts.append(("root", f"echo {shlex.quote(profile)} > /etc/profile.d/00-binderspawner-venv.sh"))
        scripts.append(("root", f"python3 -m venv {VENV} && chown -R ${{NB_USER}}:${{NB_USER}} {VENV}"))
        requirements = " ".join(shlex.quote(r) for r in self.server_requirements)
        scripts.append(
    ("${NB_USER}", f"{VENV}/bin/pip install --no-cache-dir --disable-pip-version-check {requirements}"))
        return scripts

    def _requirements(self):
        path = self.binder_path("requirements.txt")
        if not os.path.exists(path):
            return None, False
        with open_guess_encoding(path) as f:
            local = any(is_local_pip_requirement(line) for line in f)
        return path, local

    @lru_cache
    def get_preassemble_script_files(self):
        files = dict(super().get_preassemble_script_files())
        path, local = self._requirements()
        if path and not local:
            files[path] = path
        return files

    @lru_cache
    def get_preassemble_scripts(self):
        scripts = list(super().get_preassemble_scripts())
        name, version, _ = self.runtime
        if name == "python" and version:
            wanted = ".".join(version.split(".")[:2])
            check = (
                "import sys; have = '%d.%d' % sys.version_info[:2]; "
                f"sys.exit(0 if have == '{wanted}' or have.startswith('{wanted}.') else 'runtime.txt asks for Python {wanted}, but this hub builds "
                "with the Python of its base image, ' + have + '. Change runtime.txt to python-' + have + "
                "' or remove it, or ask the hub admin for a base image with Python "
                f"{wanted} (Repo2DockerBuilder.base_image).')"
            )
            scripts.insert(0, ("root", f"python3 -c {shlex.quote(check)}"))
        elif name is not None and name != "python":
            scripts.insert(
    0,
    ("root",
     f"echo {shlex.quote(f'runtime.txt asks for {name}, which this hub cannot build: only Python is available.')} >&2 && exit 1"))
        path, local = self._requirements()
        if path and not local:
            scripts.append(
    ("${NB_USER}", f"{VENV}/bin/pip install --no-cache-dir --disable-pip-version-check -r {shlex.quote(path)}"))
        return scripts

    @lru_cache
    def get_assemble_scripts(self):
        scripts = list(super().get_assemble_scripts())
        path, local = self._requirements()
        if path and local:
            scripts.append(
    ("${NB_USER}", f"{VENV}/bin/pip install --no-cache-dir --disable-pip-version-check -r {shlex.quote(path)}"))
        return scripts


def make_venv_buildpack(server_requirements, extra_ca_bundle=""):
    """A VenvBuildPack subclass carrying the admin's settings (see the module docstring)."""
    return type("VenvBuildPack", (VenvBuildPack,), {
        "server_requirements": tuple(server_requirements),
        "extra_ca_bundle": extra_ca_bundle,
    })
