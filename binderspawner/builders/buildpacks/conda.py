"""The venv buildpack plus a conda environment the hub solved and fetched (builders/conda.py).

The image installs the fetched packages offline with py-rattler (pip-installed into a tools venv
of the base image's Python, one cached layer per base image) into ``/srv/conda/envs/notebook``
(repo2docker's path), whose ``bin`` comes first on PATH for the build steps, postBuild, start and
the server's terminals and kernels' subprocesses. The environment's ``pip:`` list is installed with
uv (install.py) into the conda environment's Python when the solve put Python there
(``conda_python = "channel"``), else into the server's venv, whose Python is the kernel's.

The payload (package files + manifest) is a directory the hub writes into its checkout; it is
copied in before the repository (a pre-assemble step), so the server layer is shared with every
other build on the base image and a notebook-only change reuses the conda layers. It is removed
from the repository directory after the repository is copied. Should the repository's
.dockerignore exclude it, it enters through repo2docker's build-script files instead (before the
server layer: correct, only slower).
"""

import os
import shlex
from functools import lru_cache

from binderspawner.builders.buildpacks import conda_install, install
from binderspawner.builders.buildpacks.venv import VENV, VenvBuildPack, _names_other_files
from binderspawner.builders.ignorefiles import exclude_paths

PREFIX = "/srv/conda/envs/notebook"
TOOLS = "/opt/binderspawner-conda"
CONDA_INSTALL_PATH = "/usr/local/lib/binderspawner/conda_install.py"
SCRIPT_PAYLOAD = "/tmp/binderspawner-conda"
PIP_FILE = "pip-requirements.txt"
RATTLER_REQUIREMENT = "py-rattler==0.28.0"
FAILED = install.FAILED


class CondaBuildPack(VenvBuildPack):
    @property
    def payload(self):
        """The payload directory, relative to the checkout (repo2docker's working directory)."""
        return self.environment.get("conda_payload") or ""

    @lru_cache
    def _in_context(self):
        """Whether the repository's .dockerignore leaves the payload in the build context."""
        exclude = []
        for name in (".dockerignore", ".containerignore"):
            path = self.binder_path(name)
            if os.path.exists(path):
                with open(path) as f:
                    exclude += [line.strip() for line in f.read().splitlines()
                                if line.strip() and not line.strip().startswith("#")]
        if not exclude:
            return True
        wanted = {os.path.join(base, n) for base, _, names in os.walk(self.payload) for n in names}
        return wanted <= set(exclude_paths(".", exclude))

    @property
    def payload_dir(self):
        """Where the payload is in the image while it is installed (relative: to $REPO_DIR, the
        working directory of the build steps)."""
        return self.payload if self._in_context() else SCRIPT_PAYLOAD

    def generate_build_context_filename(self, src_path, hash_length=6):
        """Payload files under stable names (the fallback path; the hub's paths are per build)."""
        root = os.path.abspath(self.payload) + "/" if self.payload else None
        if root and src_path.startswith(root):
            return "build_script_files/binderspawner-conda/" + src_path[len(root):], src_path
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
        if not self._in_context():
            for base, _, names in os.walk(self.payload):
                for name in names:
                    src = os.path.abspath(os.path.join(base, name))
                    files[src] = SCRIPT_PAYLOAD + "/" + os.path.relpath(src, os.path.abspath(self.payload))
        return files

    @lru_cache
    def get_build_scripts(self):
        index = [w for url in self.environment.get("index_urls") or () for w in ("--index-url", url)]
        tools = " ".join(shlex.quote(w) for w in [
            "uv", "pip", "install", "--no-config", "--no-cache", "--python", f"{TOOLS}/bin/python", *index,
            RATTLER_REQUIREMENT])
        profile = f'export PATH="{PREFIX}/bin:$PATH" CONDA_PREFIX="{PREFIX}"'
        return [*super().get_build_scripts(),
                ("root", f"python3 -m venv {TOOLS} && {tools} > /dev/null"),
                ("root", f"echo {shlex.quote(profile)} > /etc/profile.d/01-binderspawner-conda.sh"
                         f" && install -d -o ${{NB_USER}} -g ${{NB_USER}} /srv/conda /srv/conda/envs")]

    def _pip_early(self):
        path = os.path.join(self.payload, PIP_FILE)
        return bool(self.environment.get("conda_pip")) and not _names_other_files(path)

    def _conda_scripts(self):
        scripts = [("${NB_USER}", f"{TOOLS}/bin/python {CONDA_INSTALL_PATH} {self.payload_dir} {PREFIX}")]
        if self.environment.get("conda_python"):
            # the conda environment's Python becomes the kernel's (where it is a real CPython)
            scripts.append(("${NB_USER}", (
                f"if [ -x {PREFIX}/bin/python ]; then uv pip install --no-config --no-cache --python "
                f"{PREFIX}/bin/python ipykernel && {PREFIX}/bin/python -m ipykernel install "
                f"--prefix {PREFIX} --name python3 --display-name 'Python (conda)'; else echo "
                f"'Note: the conda environment has no bin/python; the kernel is the server venv.'; fi")))
        return scripts

    @lru_cache
    def get_preassemble_script_files(self):
        files = dict(super().get_preassemble_script_files())
        if self._in_context():
            files[self.payload] = self.payload
        return files

    @lru_cache
    def get_preassemble_scripts(self):
        scripts = [*self._conda_scripts(), *super().get_preassemble_scripts()]
        if self._pip_early():
            scripts.append(("${NB_USER}", self._install("requirements", f"{self.payload_dir}/{PIP_FILE}")))
        return scripts

    @lru_cache
    def get_assemble_scripts(self):
        scripts = list(super().get_assemble_scripts())
        if self.environment.get("conda_pip") and not self._pip_early():
            # as conda does: the list beside the environment file, pip run in that directory, so
            # -r/-c and local paths (-e .) mean what they mean there
            where = self.environment.get("binder_dir") or "."
            local = f"{where}/.binderspawner-pip-requirements.txt"
            scripts.append(("${NB_USER}", (
                f"cp {shlex.quote(self.payload_dir + '/' + PIP_FILE)} {shlex.quote(local)} && cd {shlex.quote(where)}"
                f" && {self._install('requirements', '.binderspawner-pip-requirements.txt')}"
                f" && rm .binderspawner-pip-requirements.txt")))
        if self._in_context():  # the repository's copy of the payload is not the user's
            scripts.append(("root", f"rm -rf ${{REPO_DIR}}/{shlex.quote(self.payload)}"))
        return scripts


def make_conda_buildpack(server_requirements, extra_ca_bundle="", environment=None):
    """A CondaBuildPack subclass carrying the hub's settings and decided environment."""
    return type("CondaBuildPack", (CondaBuildPack,), {
        "server_requirements": tuple(server_requirements),
        "extra_ca_bundle": extra_ca_bundle,
        "decided_environment": dict(environment) if environment else None,
    })
