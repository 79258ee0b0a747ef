#!/usr/bin/env python3
"""Prebuild benchmark (issue 18): the first launch after a push, with prebuild on, against a cached
launch, in one run on a real hub, Docker engine, repo2docker and git daemon.

Each round (interleaved): push a new commit of a repository and send its signed GitHub-format push
delivery (tests/support/forgehooks.py: a fixture following GitHub's documented payload), wait until
the hub logs the prebuild as done, then time the first launch of that commit (POST -> server ready;
it must find the image) and a launch of a commit launched before, the tip of another branch (the
cached baseline).
The order of the two launches alternates between rounds. Ratio of medians, target <= 1.2. For
scale, one first launch after a push without prebuild (a second repository, no webhook) is timed too.

Everything the run creates (containers, network, images tagged 'bsbench-pb-*', the git daemon) is
removed at the end. Run from the repository root: python benchmarks/bench_prebuild.py [-n 3]
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid

import docker
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench_launch import BenchHub  # noqa: E402
from tests.support.forgehooks import delivery, push_payload  # noqa: E402
from tests.support.gitserver import GitServer, git as git_cmd  # noqa: E402
from tests.support.images import SERVER_DOCKERFILE  # noqa: E402

TARGET = 1.2
SECRET = uuid.uuid4().hex
IMAGE = SERVER_DOCKERFILE
EXTRA = f"""
from binderspawner.web.handlers import binder_handlers
from binderspawner import prebuild
c.JupyterHub.extra_handlers = binder_handlers()
prebuild.configure(c)
c.Prebuild.github_secret = {SECRET!r}
c.Prebuild.specs = ["^git/git%3A%2F%2F127\\\\.0\\\\.0\\\\.1%3A[0-9]+%2Fprebuilt-"]
c.Prebuild.per_repo_per_hour = 0
"""


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_for_prebuild(hub, sha, timeout=900):
    pattern = re.compile(rf"Prebuild of \S+: image \S+:{sha} (built|was there already) in ([0-9.]+) s")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(hub.log())
        if found:
            return float(found.group(2))
        if re.search(r"Prebuild of \S+ failed", hub.log()):
            raise RuntimeError(f"the prebuild of {sha} failed:\n{hub.log()[-3000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"no prebuild of {sha}")


def launch(hub, user, url, sha):
    result = hub.timed_launch(user, {"repo": url, "ref": sha})
    hub.stop_server(user)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between the prebuild's end and the launches (default 5)")
    parser.add_argument("--again", action="store_true", help="also time a second launch of each prebuilt commit")
    parser.add_argument("--keep-log", help="copy the hub's log to this file at the end")
    parser.add_argument("--json", help="write every launch's timed progress events to this file")
    parser.add_argument("--append-results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    client = docker.from_env(version="auto")
    workdir = tempfile.mkdtemp(prefix="bench-prebuild-")
    git = GitServer(os.path.join(workdir, "git")).start()
    run_id = uuid.uuid4().hex[:6]
    hub = BenchHub(os.path.join(workdir, "hub"), run_id, "pb", extra_config=EXTRA)
    hub.image_prefix = "bsbench-pb-"
    try:
        hub.start()
        name, cold = f"prebuilt-{run_id}", f"plain-{run_id}"
        base = git.add_repo(name, files={"Dockerfile": IMAGE, "index.ipynb": "{}"})
        url = git.url(name)
        # the baseline commit is the tip of its own branch, as a pushed commit is: a full sha that is
        # no branch tip costs the resolve an extra fetch (providers/git.py), which is not what is measured
        git_cmd("push", "-q", "origin", f"{base}:refs/heads/cached", cwd=os.path.join(git.work, name))
        log("warming up: the first build of the Dockerfile and one cached commit")
        launch(hub, "warm", url, base)
        prebuilt, cached, builds, found = [], [], [], ([], [])
        prebuilt_runs, cached_runs = [], []
        before = base
        for n in range(args.rounds):
            sha = git.commit(name, {"index.ipynb": f'{{"round": {n}}}'})
            body, headers = delivery("github", push_payload("github", url, f"lab/{name}", "refs/heads/main", sha,
                                                            before=before), SECRET)
            r = requests.post(f"http://127.0.0.1:{hub.port}/hub/binder/webhooks/github", data=body,
                              headers=headers, timeout=60)
            assert r.status_code == 202, r.text
            builds.append(wait_for_prebuild(hub, sha))
            time.sleep(args.settle)  # a visitor comes after the push, not in the build's last millisecond
            if n % 2:  # alternate which launch goes first, so drifting load favours neither
                again = launch(hub, f"cache{n}", url, base)
            first = launch(hub, f"pre{n}", url, sha)
            if n % 2 == 0:
                again = launch(hub, f"cache{n}", url, base)
            if args.again:
                second = launch(hub, f"again{n}", url, sha)
                log(f"round {n}: second launch of the prebuilt commit {second['ready']:.2f} s")
            if first["found"] is None:
                raise RuntimeError("the first launch after the prebuild did not find the image")
            prebuilt.append(first["ready"])
            cached.append(again["ready"])
            found[0].append(first["found"])
            found[1].append(again["found"])
            prebuilt_runs.append([(round(t, 3), e.get("message", "")[:160]) for t, e in first["events"]])
            cached_runs.append([(round(t, 3), e.get("message", "")[:160]) for t, e in again["events"]])
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"prebuilt": prebuilt_runs, "cached": cached_runs}, f, indent=1)
            log(f"round {n}: prebuild {builds[-1]:.1f} s; first launch after push {first['ready']:.2f} s, "
                f"cached launch {again['ready']:.2f} s")
            before = sha
        plain_sha = git.add_repo(cold, files={"Dockerfile": IMAGE, "index.ipynb": '{"plain": 1}'})
        plain = launch(hub, "plain", git.url(cold), plain_sha)
        ratio = statistics.median(prebuilt) / statistics.median(cached)
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        table = "\n".join([
            "",
            "## Prebuild on push: first launch after a push vs a cached launch",
            "",
            f"`python benchmarks/bench_prebuild.py -n {args.rounds}`, {when}, this machine (2 cores, shared "
            "with other sessions' tests). A Dockerfile repository (one `pip install` layer, cached after the "
            "warm-up); each round pushes a notebook change, sends a signed GitHub-format push delivery "
            f"(fixture following GitHub's documented payload), waits for the prebuild and {args.settle:g} s "
            "more, then times both launches (their order alternating between rounds).",
            "",
            "| measurement | median | raw |",
            "|---|---|---|",
            f"| first launch after a push, prebuilt (POST -> ready) | {statistics.median(prebuilt):.2f} s | "
            + ", ".join(f"{t:.2f}" for t in prebuilt) + " s |",
            f"| cached launch (a commit launched before, tip of a branch) | {statistics.median(cached):.2f} s | "
            + ", ".join(f"{t:.2f}" for t in cached) + " s |",
            f"| of which: POST -> image found, prebuilt / cached | {statistics.median(found[0]):.2f} s / "
            f"{statistics.median(found[1]):.2f} s | |",
            f"| the prebuild itself (webhook -> image, nobody waiting) | {statistics.median(builds):.1f} s | "
            + ", ".join(f"{t:.1f}" for t in builds) + " s |",
            f"| for scale: first launch after a push without prebuild (builds; Docker's layer cache makes "
            f"this repository's build short) | {plain['ready']:.1f} s | |",
            "",
            f"- Ratio prebuilt first launch / cached launch: **{ratio:.2f}** (target <= {TARGET}).",
            "",
        ])
        print(table)
        if args.append_results:
            with open(os.path.join(ROOT, "benchmarks", "RESULTS.md"), "a") as f:
                f.write(table)
        return 0 if ratio <= TARGET else 1
    finally:
        hub.stop()
        if args.keep_log and os.path.exists(hub.log_path):
            shutil.copy(hub.log_path, args.keep_log)
        hub.cleanup()
        git.stop()
        for image in client.images.list():
            if any(tag.startswith("bsbench-pb-") for tag in image.tags):
                try:
                    client.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    pass
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
