#!/usr/bin/env python3
"""Build benchmark for the venv buildpack: uv (binderspawner/builders/buildpacks/install.py) against
the pip path it replaced (pip install -r / pip install . in the same venv), in one run, same repos.

For each of a requirements repository and a setup.py repository, and each installer:
  cold      a build whose dependency layers are not cached (a fresh nonce in the installed files);
            the server layer (one per base image, shared by every repository) is built first, once
            per installer, and is not part of the figure;
  rebuild   the same repository again after a notebook-only change.
Reports seconds and the ratio uv/pip (target: cold <= 0.5). Builds run through repo2docker with the
hub's config file and a decided environment, as the hub does; images tagged 'bsbench-build-*' are
removed at the end. Run from the repository root:  python benchmarks/bench_build.py
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jupyterhub  # noqa: E402

from binderspawner.builders.repo2docker import CONFIG_FILE  # noqa: E402

SERVER = [f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", "jupyter-offlinenotebook"]
PACKAGES = ["pandas", "matplotlib", "scipy", "requests", "sympy"]
# The pip path: the same buildpack, with every repository install done by pip instead of install.py.
PIP_CONFIG = f'''
load_subconfig({CONFIG_FILE!r})
import shlex
VENV = "/srv/venv"
Base = c.Repo2Docker.default_buildpack

class PipBuildPack(Base):
    def _install(self, kind, *args):
        pip = f"{{VENV}}/bin/pip install --no-cache-dir --disable-pip-version-check"
        if kind == "requirements":
            return f"{{pip}} -r {{shlex.quote(args[0])}}"
        if kind == "repo":
            return f"{{pip}} ."
        if kind == "repo-deps":
            return "true"
        return super()._install(kind, *args)

c.Repo2Docker.buildpacks = [*c.Repo2Docker.buildpacks[:-1], PipBuildPack]
c.Repo2Docker.default_buildpack = PipBuildPack
'''


def environment(**decided):
    return {"python": "3.11", "base_image": "binderspawner-base:bookworm", "binder_dir": "",
            "requirements": None, "pipfile": None, "pipfile_lock": None, "install_repo": False,
            "index_urls": [], **decided}


def write(root, files):
    for path, content in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)


def build(root, env, config, images):
    image = f"bsbench-build-{uuid.uuid4().hex[:10]}:latest"
    settings = {"buildpacks": "venv", "base_image": env["base_image"], "server_requirements": SERVER,
                "extra_ca_bundle": "", "content_providers": ["Local"], "environment": env}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--config", config, "--no-run", "--user-id", "1000",
         "--user-name", "jovyan", "--image-name", image, root],
        env={**os.environ, "BINDERSPAWNER_R2D_SETTINGS": json.dumps(settings), "PYTHONPATH": ROOT},
        capture_output=True, text=True)
    seconds = time.monotonic() - start
    images.append(image)
    if done.returncode != 0:
        sys.exit(f"build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def repository(kind, nonce):
    """Files of one benchmark repository; the nonce makes its dependency layers new."""
    if kind == "requirements":
        return ({"requirements.txt": f"# {nonce}\n" + "\n".join(PACKAGES) + "\n", "index.ipynb": "{}"},
                environment(requirements="requirements.txt"))
    setup = ("from setuptools import setup\n"
             f"# {nonce}\nsetup(name='benchpkg', version='1.0', packages=['benchpkg'],"
             f" install_requires={PACKAGES!r})\n")
    return ({"setup.py": setup, "benchpkg/__init__.py": "", "index.ipynb": "{}"},
            environment(install_repo=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args()
    images, rows, figures = [], [], {}
    with tempfile.TemporaryDirectory() as work:
        pip_config = os.path.join(work, "pip_config.py")
        with open(pip_config, "w") as f:
            f.write(PIP_CONFIG)
        configs = {"uv": CONFIG_FILE, "pip": pip_config}
        try:
            for installer, config in configs.items():  # the shared server layer, not timed
                root = os.path.join(work, f"warm-{installer}")
                write(root, {"index.ipynb": "{}"})
                print(f"server layer ({installer}) ...", file=sys.stderr)
                build(root, environment(), config, images)
            for kind in ("requirements", "setup.py"):
                for installer, config in configs.items():
                    root = os.path.join(work, f"{kind}-{installer}")
                    files, env = repository(kind, uuid.uuid4().hex)
                    write(root, files)
                    cold = build(root, env, config, images)
                    write(root, {"index.ipynb": '{"cells": []}'})
                    rebuild = build(root, env, config, images)
                    figures[(kind, installer)] = (cold, rebuild)
                    print(f"{kind} {installer}: cold {cold:.1f} s, rebuild {rebuild:.1f} s", file=sys.stderr)
        finally:
            subprocess.run(["docker", "rmi", "-f", *images], capture_output=True)
    ok = True
    print("| repository | pip cold | uv cold | uv/pip cold | pip rebuild | uv rebuild |")
    print("|---|---|---|---|---|---|")
    for kind in ("requirements", "setup.py"):
        (pip_cold, pip_re), (uv_cold, uv_re) = figures[(kind, "pip")], figures[(kind, "uv")]
        ratio = uv_cold / pip_cold
        ok &= ratio <= 0.5
        rows.append({"repository": kind, "pip_cold": pip_cold, "uv_cold": uv_cold, "ratio": ratio,
                     "pip_rebuild": pip_re, "uv_rebuild": uv_re})
        print(f"| {kind} | {pip_cold:.1f} s | {uv_cold:.1f} s | {ratio:.2f} "
              f"| {pip_re:.1f} s | {uv_re:.1f} s |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"packages": PACKAGES, "rows": rows}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
