"""repo2docker loads binderspawner's config file in a fresh process: it must import, and a config
that fails to load must fail the build rather than fall back to repo2docker's own defaults."""

import json
import subprocess
import sys
from types import SimpleNamespace

from binderspawner.builders.repo2docker import CONFIG_FILE, Repo2DockerBuilder


def test_the_config_file_imports_in_a_fresh_process(tmp_path):
    settings = Repo2DockerBuilder().r2d_settings()
    code = ("import runpy, traitlets.config; "
            f"runpy.run_path({CONFIG_FILE!r}, init_globals={{'get_config': traitlets.config.Config}})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"BINDERSPAWNER_R2D_SETTINGS": json.dumps(settings), "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": ":".join(sys.path)})
    assert done.returncode == 0, done.stderr[-2000:]


def test_repo2docker_is_told_to_fail_on_a_broken_config(tmp_path):
    request = SimpleNamespace(resolved=SimpleNamespace(source=SimpleNamespace(content_provider="Git",
                                                                              provider="git")),
                              env={"TMPDIR": str(tmp_path)}, credentials=None, labels={})
    env = Repo2DockerBuilder().environment(request)
    assert env["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] == "1"
