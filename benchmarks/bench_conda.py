#!/usr/bin/env python3
"""Conda benchmark: an environment.yml repository built from a conda channel on 127.0.0.1 (the hub
solves and fetches with py-rattler, the image installs offline) against a requirements.txt
repository with the same pip dependencies, through the real builder, repo2docker and Docker.

  cold      first build of each repository (a fresh nonce: a new conda package in the channel for
            environment.yml, a new comment line for requirements.txt), after one unrecorded
            warm-up build of each kind that fills the caches both share (server layer, py-rattler);
  rebuild   the same repository again after a notebook-only change.
Reports seconds and the ratio conda/requirements. conda-forge is not reachable here: the channel
holds small hand-packed noarch packages (tests/support/condachannel.py). Images 'bsbench-conda-*'
are removed at the end. Run from the repository root:  python benchmarks/bench_conda.py
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import docker  # noqa: E402
from traitlets.config import Config  # noqa: E402

from binderspawner.builders import BuildRequest, Repo2DockerBuilder  # noqa: E402
from binderspawner.providers import RepoSource, ResolvedRepo  # noqa: E402
from tests.support import condachannel  # noqa: E402
from tests.support.builds import build_events  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402

PIP = ["six==1.16.0", "attrs"]


def files(kind, nonce, notebook):
    if kind == "conda":
        env = ("dependencies:\n  - bs-tool\n  - bs-nonce-" + nonce + "\n  - pip:\n"
               + "".join(f"    - {p}\n" for p in PIP))
        return {"environment.yml": env, "index.ipynb": notebook}
    return {"requirements.txt": f"# {nonce}\n" + "".join(f"{p}\n" for p in PIP), "index.ipynb": notebook}


async def build(builder, git, name, content, images, scratch, again=False):
    sha = git.commit(name, content) if again else git.add_repo(name, files=content)
    url = git.url(name)
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug=f"127.0.0.1/{name}", display_name=url)
    request = BuildRequest(f"bsbench-conda-{name}:{sha}", ResolvedRepo(source, "main", sha, "branch main"),
                           {"binderspawner.commit": sha}, {"TMPDIR": scratch})
    start = time.monotonic()
    events, error = await build_events(builder, request)
    seconds = time.monotonic() - start
    images.append(request.image)
    if error is not None:
        raise SystemExit(f"build of {name} failed: {error}")
    steps = [m for _, m in events if " CACHED" in m or " DONE " in m]
    return seconds, sum(" CACHED" in m for m in steps), len(steps)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bsbench-conda-")
    run = uuid.uuid4().hex[:8]
    packages = dict(condachannel.PACKAGES)
    for n in ("warm", "cold"):
        packages[f"bs-nonce-{run}{n}"] = ("1.0", [], {f"share/nonce/{run}{n}": n})
    images, rows, channel, git = [], [], None, None
    try:
        channel = condachannel.ChannelServer(condachannel.make_channel(os.path.join(work, "channel"), packages))
        git = GitServer(os.path.join(work, "git")).start()
        config = Config()
        config.GitProvider.allowed_private_hosts = ["127.0.0.1"]
        config.Repo2DockerBuilder.conda_channels = [channel.url]
        config.Repo2DockerBuilder.conda_cache_dir = os.path.join(work, "cache")
        builder = Repo2DockerBuilder(config=config)
        scratch = os.path.join(work, "scratch")
        os.makedirs(scratch)
        for kind in ("requirements", "conda"):  # warm-up: shared layers (server, py-rattler tools)
            await build(builder, git, f"{kind}-warm-{run}", files(kind, run + "warm", "{}"), images, scratch)
        for kind in ("requirements", "conda"):
            name = f"{kind}-{run}"
            cold = await build(builder, git, name, files(kind, run + "cold", "{}"), images, scratch)
            rebuild = await build(builder, git, name, files(kind, run + "cold", '{"cells": []}'), images,
                                  scratch, again=True)
            rows.append({"repository": kind, "cold": cold[0], "rebuild": rebuild[0],
                         "cold_cached_steps": cold[1:], "rebuild_cached_steps": rebuild[1:]})
            print(f"{kind}: cold {cold}, rebuild {rebuild}", file=sys.stderr)
    finally:
        client = docker.from_env()
        for image in set(images):
            try:
                client.images.remove(image, force=True)
            except docker.errors.ImageNotFound:
                pass
        if git is not None:
            git.stop()
        if channel is not None:
            channel.stop()
        shutil.rmtree(work, ignore_errors=True)
    base, conda = rows
    print("| repository | cold | rebuild (notebook changed) |\n|---|---|---|")
    for row in rows:
        cached = "{}/{} steps cached".format
        print(f"| {row['repository']} | {row['cold']:.1f} s ({cached(*row['cold_cached_steps'])}) | "
              f"{row['rebuild']:.1f} s ({cached(*row['rebuild_cached_steps'])}) |")
    print(f"| ratio conda / requirements | {conda['cold'] / base['cold']:.2f} | "
          f"{conda['rebuild'] / base['rebuild']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    asyncio.run(main())
