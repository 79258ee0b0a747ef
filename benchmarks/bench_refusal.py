#!/usr/bin/env python3
"""Time from the hub's clone to the refusal of a Python version the hub cannot build (target < 2 s).

Repo2DockerBuilder.build runs for real against a ``git daemon`` on 127.0.0.1 serving a repository
with ``runtime.txt: python-3.10`` and a requirements.txt; repo2docker is never started because the
refusal comes first. Reported per round: the clone (git), clone-to-refusal (reading the files and
deciding) and the whole build() call. A baseline from the same run: the same builder on the same
repository at the same size, with an allowed version, up to the moment repo2docker would start
(measured by a stand-in repo2docker that exits at once). Run from the repository root:
    python benchmarks/bench_refusal.py [-n 20]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from binderspawner.builders import BuildRequest, Repo2DockerBuilder  # noqa: E402
from binderspawner.builders import checkout as checkouts  # noqa: E402
from binderspawner.errors import BuildFailed, RepositoryRefused  # noqa: E402
from binderspawner.providers import RepoSource, ResolvedRepo  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402

FILES = {"requirements.txt": "numpy\npandas\n", "notebook.ipynb": "{}" * 20000,
         **{f"data/file{i}.csv": "a,b\n" * 500 for i in range(50)}}


class Timed(Repo2DockerBuilder):
    """The real builder; records when the clone ended."""

    clone_done = None

    async def prepare(self, request, checkout, emit):
        original = checkouts.fetch_checkout

        async def timed(*args, **kwargs):
            await original(*args, **kwargs)
            Timed.clone_done = time.perf_counter()
        checkouts.fetch_checkout = timed
        try:
            return await super().prepare(request, checkout, emit)
        finally:
            checkouts.fetch_checkout = original


def request_for(server, name, sha, scratch):
    url = server.url(name)
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug=name, display_name=url)
    return BuildRequest(f"bench-refusal:{sha}", ResolvedRepo(source, "main", sha, "branch main"), {},
                        {"TMPDIR": scratch})


async def one(builder, request):
    Timed.clone_done = None
    start = time.perf_counter()
    try:
        await builder.build(request, lambda *a: None)
        outcome = "built"
    except RepositoryRefused:
        outcome = "refused"
    except BuildFailed:
        outcome = "failed"
    end = time.perf_counter()
    return outcome, Timed.clone_done - start, end - Timed.clone_done, end - start


async def main(rounds):
    with tempfile.TemporaryDirectory() as tmp:
        server = GitServer(os.path.join(tmp, "git")).start()
        try:
            refused_sha = server.add_repo("pinned", files={**FILES, "runtime.txt": "python-3.10\n"})
            allowed_sha = server.add_repo("allowed", files={**FILES, "runtime.txt": "python-3.11\n"})
            scratch = os.path.join(tmp, "scratch")
            os.makedirs(scratch)
            stand_in = [sys.executable, "-c", "raise SystemExit(1)"]
            builder = Timed(repo2docker_command=stand_in)
            figures = {"refused": [], "baseline": []}
            for _ in range(rounds):
                outcome, *times = await one(builder, request_for(server, "pinned", refused_sha, scratch))
                assert outcome == "refused", outcome
                figures["refused"].append(times)
                outcome, *times = await one(builder, request_for(server, "allowed", allowed_sha, scratch))
                assert outcome == "failed", outcome  # the stand-in repo2docker exits 1 at once
                figures["baseline"].append(times)
            assert os.listdir(scratch) == [], "a checkout was left behind"
        finally:
            server.stop()
    print(f"| {rounds} rounds, median (max) in s | clone | clone to decision | build() call |")
    print("|---|---|---|---|")
    for name, rows in figures.items():
        cols = list(zip(*rows))
        print(f"| {name} | " + " | ".join(f"{statistics.median(c):.3f} ({max(c):.3f})" for c in cols) + " |")
    worst = max(r[1] for r in figures["refused"])
    print(
        f"\nclone to refusal, worst round: {worst:.3f} s (target < 2 s): {'met' if worst < 2 else 'MISSED'}")
    return 0 if worst < 2 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=20)
    sys.exit(asyncio.run(main(parser.parse_args().rounds)))
