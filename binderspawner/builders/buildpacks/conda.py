"""The venv buildpack plus a conda environment the hub solved and fetched (builders/conda.py).

The image installs the fetched packages offline with py-rattler (pip-installed into a tools venv
of the base image's Python, one cached layer per base image) into ``/srv/conda/envs/notebook``
(repo2docker's path), whose ``bin`` comes first on PATH for the build steps, postBuild, start and
the server's terminals and kernels' subprocesses. The environment's ``pip:`` list is installed with
uv (install.py) into the conda environment's Python when the solve put Python there
(``conda_python = "channel"``), else into the server's venv, whose Python is the kernel's.

The payload (package files + manifest) enters the build context under stable names, so a rebuild
with the same packages reuses the cached layers.
"""

import os
import shlex
from functools import lru_cache

from binderspawner.builders.buildpacks import conda_install, install
from binderspawner.builders.buildpacks.venv import VENV, VenvBuildPack

PREFIX = "/srv/conda/envs/notebook"
TOOLS = "/opt/binderspawner-conda"
PAYLOAD = "/tmp/binderspawner-conda"
CONDA_INSTALL_PATH = "/usr/local/lib/binderspawner/conda_install.py"
PIP_FILE = "pip-requirements.txt"
RATTLER_REQUIREMENT = "py-rattler==0.28.0"


class CondaBuildPack(VenvBuildPack):
    @property
    def payload(self):
        return self.environment.get("conda_payload") or ""

    def _payload_files(self):
        out = {}
        for base, _, names in os.walk(self.payload):
            for name in names:
                src = os.path.join(base, name)
                out[src] = PAYLOAD + "/" + os.path.relpath(src, self.payload)
        return out

    def generate_build_context_filename(self, src_path, hash_length=6):
        """Payload files under stable names (their paths on the hub are per build)."""
        if self.payload and src_path.startswith(self.payload.rstrip("/") + "/"):
            rel = os.path.relpath(src_path, self.payload)
            return "build_script_files/binderspawner-conda/" + rel, src_path
        return VenvBuildPack.generate_build_context_filename(src_path, hash_length)

    @property
    def target_python(self):
        return f"{PREFIX}/bin/python" if self.environment.get("conda_python") else f"{VENV}/bin/python"

    @lru_cache
    def get_build_env(self):
        return [*super().get_build_env(), ("CONDA_PREFIX", PREFIX), ("CONDA_DIR", "/srv/conda"),
                ("BINDERSPAWNER_TARGET_PYTHON", self.target_python)]

    @lru_cache
    def get_env(self):
        return [*super().get_env(), ("JUPYTER_PATH", f"{PREFIX}/share/jupyter")]

    @lru_cache
    def get_path(self):
        return [f"{PREFIX}/bin", *super().get_path()]

    @lru_cache
    def get_build_script_files(self):
        files = dict(super().get_build_script_files())
        files[conda_install.__file__] = CONDA_INSTALL_PATH
        files.update(self._payload_files())
        return files

    @lru_cache
    def get_build_scripts(self):
        index = [w for url in self.environment.get("index_urls") or () for w in ("--index-url", url)]
        tools = " ".join(shlex.quote(w) for w in [
            "uv", "pip", "install", "--no-cache", "--python", f"{TOOLS}/bin/python", *index, RATTLER_REQUIREMENT])
        profile = f'export PATH="{PREFIX}/bin:$PATH" CONDA_PREFIX="{PREFIX}"'
        scripts = list(super().get_build_scripts())
        scripts += [
            ("root", f"python3 -m venv {TOOLS} && {tools} > /dev/null"),
            ("root", f"echo {shlex.quote(profile)} > /etc/profile.d/01-binderspawner-conda.sh"
                     f" && install -d -o ${{NB_USER}} -g ${{NB_USER}} /srv/conda /srv/conda/envs"),
            ("${NB_USER}", f"{TOOLS}/bin/python {CONDA_INSTALL_PATH} {PAYLOAD} {PREFIX}"),
        ]
        if self.environment.get("conda_python"):
            # the conda environment's Python becomes the kernel's (where it is a real CPython)
            kernel = (f"if [ -x {PREFIX}/bin/python ]; then uv pip install --no-cache --python "
                      f"{PREFIX}/bin/python ipykernel && {PREFIX}/bin/python -m ipykernel install "
                      f"--prefix {PREFIX} --name python3 --display-name 'Python (conda)'; else echo "
                      f"'Note: the conda environment has no bin/python; the kernel is the server venv.'; fi")
            scripts.append(("${NB_USER}", kernel))
        return scripts

    @lru_cache
    def get_assemble_scripts(self):
        scripts = list(super().get_assemble_scripts())
        if self.environment.get("conda_pip"):
            scripts.append(("${NB_USER}", self._install("requirements", f"{PAYLOAD}/{PIP_FILE}")))
        return scripts


def make_conda_buildpack(server_requirements, extra_ca_bundle="", environment=None):
    """A CondaBuildPack subclass carrying the hub's settings and decided environment."""
    return type("CondaBuildPack", (CondaBuildPack,), {
        "server_requirements": tuple(server_requirements),
        "extra_ca_bundle": extra_ca_bundle,
        "decided_environment": dict(environment) if environment else None,
    })


FAILED = install.FAILED
