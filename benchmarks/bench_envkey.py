#!/usr/bin/env python3
"""Environment-keyed images: the first launch of a content-only commit against a cached launch.

Two real hubs on the local Docker engine and one git daemon on 127.0.0.1, one requirements.txt
repository. Hub 'envkey' builds with environment images (c.Repo2DockerBuilder.environment_images,
the default): a content-only commit is its environment image plus a layer of its files. Hub
'today' turns them off: every commit is a repo2docker build, with Docker's layer cache. After one
warm-up launch on each hub (not counted), each round pushes a commit that changes only a notebook
and, on each hub, times (POST to ready) its first launch and then a cached launch of it again.
Reports medians and the ratios first/cached (target for 'envkey': <= 1.3). Run from the repository
root:  python benchmarks/bench_envkey.py -n 5
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import uuid

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_launch import BenchHub, log, machine  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402

TARGET = 1.3
PREFIXES = {"envkey": "bsbench-ek-e-", "today": "bsbench-ek-t-"}
CONFIG = {"envkey": "", "today": "c.Repo2DockerBuilder.environment_images = False\n"}
NOTEBOOK = '{{"cells": [{{"cell_type": "raw", "metadata": {{}}, "source": "{}"}}], "metadata": {{}}, ' \
           '"nbformat": 4, "nbformat_minor": 5}}'


def timed(hub, user, options):
    result = hub.timed_launch(user, options)
    hub.stop_and_wait(user)
    return result


def environment_builds(hub):
    return hub.log().count("Building environment image ")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--rounds", type=int, default=5, help="content-only commits (default 5)")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    client = docker.from_env(version="auto")
    client.images.get("binderspawner-base:bookworm")
    run_id = "bek" + uuid.uuid4().hex[:6]
    workdir = tempfile.mkdtemp(prefix="bsbench-envkey-")
    git = GitServer(os.path.join(workdir, "git")).start()
    hubs, report = {}, {"command": " ".join(["python", "benchmarks/bench_envkey.py", *(argv or sys.argv[1:])]),
                        "machine": machine(), "rounds": []}
    try:
        git.add_repo("bench", files={"requirements.txt": "six\n", "index.ipynb": NOTEBOOK.format("0"),
                                     "data.csv": "a,b\n1,2\n"})
        url = git.url("bench")
        for name in PREFIXES:
            hub = BenchHub(os.path.join(workdir, name), run_id, name[0], extra_config=CONFIG[name])
            hub.image_prefix = PREFIXES[name]
            hubs[name] = hub.start()
            log(f"{name}: warm-up launch (builds the environment)")
            timed(hub, "warm", {"repo": url, "ref": "main"})
        for i in range(1, args.rounds + 1):
            sha = git.commit("bench", {"index.ipynb": NOTEBOOK.format(i)})
            row = {"commit": sha}  # the hubs take turns going first
            order = list(hubs) if i % 2 else list(reversed(hubs))
            for name in order:
                hub = hubs[name]
                before = environment_builds(hub)
                first = timed(hub, f"first{i}", {"repo": url, "ref": sha})
                cached = timed(hub, f"cached{i}", {"repo": url, "ref": sha})
                row[name] = {"first": first["ready"], "cached": cached["ready"],
                             # POST to the image being there (built / found): the part without the server start
                             "first_image": first["built"], "cached_image": cached["found"],
                             "first_built_cached_found": first["built"] is not None and cached["found"] is not None,
                             "environment_builds": environment_builds(hub) - before}
                log(f"round {i} {name}: first {first['ready']:.2f} s, cached {cached['ready']:.2f} s")
            report["rounds"].append(row)
    finally:
        for hub in hubs.values():
            hub.stop()
            hub.cleanup()
        git.stop()
        for image in client.images.list():
            if any(tag.startswith(tuple(PREFIXES.values())) for tag in image.tags):
                try:
                    client.images.remove(image.id, force=True)
                except docker.errors.APIError as e:
                    log(f"could not remove {image.tags}: {e}")
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {}
    for name in PREFIXES:
        first = statistics.median(r[name]["first"] for r in report["rounds"])
        cached = statistics.median(r[name]["cached"] for r in report["rounds"])
        summary[name] = {"first_median": first, "cached_median": cached, "ratio": first / cached,
                         "first_image_median": statistics.median(r[name]["first_image"] or 0
                                                                 for r in report["rounds"]),
                         "cached_image_median": statistics.median(r[name]["cached_image"] or 0
                                                                  for r in report["rounds"]),
                         "environment_builds": sum(r[name]["environment_builds"] for r in report["rounds"])}
    report["summary"] = summary
    report["machine"]["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    print(markdown(report))
    return 0 if summary["envkey"]["ratio"] <= TARGET and summary["envkey"]["environment_builds"] == 0 else 1


def markdown(report):
    s = report["summary"]
    lines = [
        "| path | first launch of a content-only commit (median) | cached launch (median) | ratio | "
        "POST to image there: first / cached (median) | environment builds |", "|---|---|---|---|---|---|"]
    for name, label in (("envkey", "environment image + content layer"), ("today", "repo2docker, layer cache")):
        lines.append(f"| {label} | {s[name]['first_median']:.2f} s | {s[name]['cached_median']:.2f} s | "
                     f"{s[name]['ratio']:.2f} | {s[name]['first_image_median']:.2f} s / "
                     f"{s[name]['cached_image_median']:.2f} s | "
                     f"{s[name]['environment_builds'] if name == 'envkey' else '-'} |")
    lines.append("")
    lines.append(f"Target for the environment image path: ratio <= {TARGET}. Rounds (first/cached, s): " + "; ".join(
        f"{r['envkey']['first']:.2f}/{r['envkey']['cached']:.2f} vs {r['today']['first']:.2f}/"
        f"{r['today']['cached']:.2f}" for r in report["rounds"]))
    lines.append(f"Content-only first launch, today's path / environment image path: "
                 f"{s['today']['first_median'] / s['envkey']['first_median']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
