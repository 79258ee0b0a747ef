#!/usr/bin/env python3
"""Persistent homes benchmark: a cached launch with a persistent home against one without.

Two real hubs on the local Docker engine, the same built image (one git repository on a local git
daemon), launched alternately (A,B,A,B,...) by one user each; POST to ready, after one warm-up
launch per hub (which builds the image and makes the home). Target: ratio of medians <= 1.05.
Also measured, same run: a first launch (a new home: volume + the helper recording its base) against
a first launch without a home, and the merge helper's own time after new commits (from the hub log).

Everything it creates (hubs' containers, networks, volumes, images 'bsbench-homes-*') is removed at
the end. Run from the repository root:  python benchmarks/bench_homes.py [-n 11] [--json out.json]
"""

import argparse
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from binderspawner.services.cleanup import LABEL_HUB  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.hub import Hub  # noqa: E402

TARGET = 1.05
CONFIG = """
c.HubCleanup.lifecycle_dir = settings["dir"] + "/lifecycle"
c.HubCleanup.hub_id = {hub_id!r}
c.PersistentHome.enabled = {enabled}
"""


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed_launch(hub, user, options):
    started = time.monotonic()
    _, events = hub.launch(user, options)
    elapsed = time.monotonic() - started
    if not (events and events[-1].get("ready")):
        raise RuntimeError(f"launch failed: {[e.get('message') for e in events][-5:]}")
    return elapsed, [e.get("message", "") for e in events]


STAMP = r"\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) "


def hub_side_seconds(log_text, user):
    """Per launch of ``user``: seconds from the spawner's start (its note of the launch request)
    to the container's creation, from the hub log: the part of a launch that persistent homes add to."""
    from datetime import datetime

    def at(line):
        return datetime.strptime(re.match(STAMP, line).group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()

    spans, begun = [], None
    for line in log_text.splitlines():
        if f"Launch request for {user}:" in line and re.match(STAMP, line):
            begun = at(line)
        elif begun is not None and re.search(rf"Created container \S+-{user} ", line):
            spans.append(at(line) - begun)
            begun = None
    return spans


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=11, help="cached launches per hub")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    client = docker.from_env(version="auto")
    work = tempfile.mkdtemp(prefix="bsbench-homes-")
    git = GitServer(os.path.join(work, "git")).start()
    run = uuid.uuid4().hex[:6]
    hubs = {}
    try:
        git.add_repo("bench", os.path.join(ROOT, "examples", "requirements"))
        options = {"repo": git.url("bench")}
        for kind, enabled in (("home", True), ("plain", False)):
            os.makedirs(os.path.join(work, kind))
            hub = Hub(os.path.join(work, kind), run_id=f"bh{kind[0]}{run}",
                      extra_config=CONFIG.format(hub_id=f"bsbench-{kind}-{run}", enabled=enabled))
            hub.image_prefix = "bsbench-homes-"
            hubs[kind] = hub.start()
        for kind, hub in hubs.items():  # warm-up: the build (first hub) and the home
            log(f"warm-up launch on the {kind} hub")
            timed_launch(hub, "bench", options)
            hub.stop_server("bench")
        cached = {"home": [], "plain": []}
        for i in range(args.n):
            order = ("home", "plain") if i % 2 == 0 else ("plain", "home")
            for kind in order:
                elapsed, messages = timed_launch(hubs[kind], "bench", options)
                if kind == "home":
                    assert any("as you left them" in m for m in messages), messages
                cached[kind].append(elapsed)
                hubs[kind].stop_server("bench")
            log(f"cached {i + 1}/{args.n}: home {cached['home'][-1]:.2f} s, plain {cached['plain'][-1]:.2f} s")
        first = {"home": [], "plain": []}
        for i in range(3):
            for kind in ("home", "plain") if i % 2 == 0 else ("plain", "home"):
                user = f"first{i}"
                first[kind].append(timed_launch(hubs[kind], user, options)[0])
                hubs[kind].stop_server(user)
        merges = []
        for i in range(3):
            git.commit("bench", {f"added-{i}.txt": f"commit {i}\n", "README.md": f"changed {i}\n"})
            timed_launch(hubs["home"], "bench", options)  # builds the commit (notebook-only change)
            hubs["home"].stop_server("bench")
            found = re.findall(r"Merged [0-9a-f]+ into \S+ in ([0-9.]+) s", hubs["home"].log())
            merges.append(float(found[-1]))
        hub_side = {kind: hub_side_seconds(hubs[kind].log(), "bench")[1:args.n + 1] for kind in hubs}
        result = {
            "hub_side_home_median": statistics.median(hub_side["home"]),
            "hub_side_plain_median": statistics.median(hub_side["plain"]),
            "cached_home_median": statistics.median(cached["home"]),
            "cached_plain_median": statistics.median(cached["plain"]),
            "cached_ratio": statistics.median(cached["home"]) / statistics.median(cached["plain"]),
            "pair_ratio_median": statistics.median(h / p for h, p in zip(cached["home"], cached["plain"])),
            "first_home_median": statistics.median(first["home"]),
            "first_plain_median": statistics.median(first["plain"]),
            "merge_helper_seconds": merges,
            "cached": cached, "first": first, "hub_side": hub_side, "n": args.n, "target": TARGET,
        }
        print(json.dumps(result, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        return 0 if result["cached_ratio"] <= TARGET else 1
    finally:
        for kind, hub in hubs.items():
            hub.cleanup()
            for volume in client.volumes.list(filters={"label": f"{LABEL_HUB}=bsbench-{kind}-{run}"}):
                volume.remove(force=True)
        for image in client.images.list():
            if any(t.startswith("bsbench-homes-") for t in image.tags):
                client.images.remove(image.id, force=True)
        git.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
