"""A repository's own uv configuration does not steer the hub's installs: install.py (run by the venv
buildpack in ${REPO_DIR}) installs requirements with uv, which reads uv.toml and pyproject.toml's
[tool.uv]/[tool.uv.pip] from the working directory, so a repository could name package indexes
there that its requirements files may not (c.Repo2DockerBuilder.package_indexes). Run in the real
base image, without network: what uv tries to contact is in its error."""

import os
import subprocess
import uuid

import pytest

from binderspawner.builders.buildpacks import install

BASE = "binderspawner-base:bookworm"
EVIL = "http://127.0.0.1:9/repository-chosen/simple"


def run_install(repo, *args):
    name = f"bstest-uvconfig-{uuid.uuid4().hex[:8]}"
    try:
        return subprocess.run(
            ["docker", "run", "--rm", "--name", name, "--network", "none", "--entrypoint", "sh",
             "-v", f"{install.__file__}:/opt/install.py:ro", "-v", f"{repo}:/repo:ro", "-w", "/repo",
             "-e", "UV_HTTP_RETRIES=0", BASE, "-c",
             'python3 -m venv /tmp/venv && sed "s|/srv/venv|/tmp/venv|" /opt/install.py > /tmp/install.py && '
             f'python3 /tmp/install.py {" ".join(args)}'],
            capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        raise


@pytest.mark.parametrize("files", [
    {"uv.toml": f'[pip]\nextra-index-url = ["{EVIL}"]\n'},
    {"uv.toml": f'index-url = "{EVIL}"\n'},
    {"pyproject.toml": f'[tool.uv.pip]\nindex-url = "{EVIL}"\n'},
])
def test_a_repositorys_uv_config_names_no_index_for_requirements(files, tmp_path):
    for path, text in {"requirements.txt": "six\n", **files}.items():
        (tmp_path / path).write_text(text)
    os.chmod(tmp_path, 0o755)
    done = run_install(tmp_path, "requirements requirements.txt")
    assert done.returncode != 0  # no network: nothing can be installed either way
    assert "binderspawner-install-failed:" in done.stderr
    assert "repository-chosen" not in done.stdout + done.stderr
