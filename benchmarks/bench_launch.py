#!/usr/bin/env python3
"""Launch benchmark for binderspawner: a real JupyterHub, the local Docker engine, a git daemon.

Measures, in one run, each against a baseline measured in the same run:

1. cached launch overhead: binder hub launching an already-built image vs. a plain DockerSpawner hub
   launching the same image (interleaved A,B,A,B,...); ratio of medians, target <= 1.10;
2. cold build of every example in examples/ after `docker builder prune -af`;
3. rebuild after a notebook-only change, as a fraction of that example's cold build; target <= 0.10;
4. five users launching one unbuilt commit at once: number of builds (must be 1) and wall time
   against one build + one launch of another fresh commit.

All traffic goes to 127.0.0.1 and to the containers this run creates. Everything the run creates
(containers, networks, images tagged 'bsbench-*') is removed at the end. Run from the repository
root:  python benchmarks/bench_launch.py   (see benchmarks/README.md).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.hub import Hub  # noqa: E402

EXAMPLES_DIR = os.path.join(ROOT, "examples")
EXAMPLES = ["requirements", "dockerfile", "apt-postbuild"]
IMAGE_PREFIX = "bsbench-"
GiB = 1024**3

CACHED_TARGET = 1.10
REBUILD_TARGET = 0.10


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# hubs


class BenchHub(Hub):
    """The test suite's Hub with the benchmark's own names for containers, network and images."""

    def __init__(self, workdir, run_id, name, extra_config=""):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir, extra_config=extra_config, run_id=f"{run_id}-{name}")
        self.network = f"bsbench-{run_id}-{name}"
        self.prefix = f"bsbench-{run_id}-{name}"
        self.image_prefix = IMAGE_PREFIX

    def builds_of(self, image):
        return self.log().count(f"Building image {image} ")

    def timed_launch(self, user, options, timeout=1200):
        """POST a spawn and follow its progress stream, timing every event.

        Returns a dict with t0 (perf_counter at the POST), the POST's status and the time it
        answered, the events as (seconds after t0, event), and 'ready': seconds from the POST until
        the server was ready (the 'ready' event, or a 201 answer to the POST if that came first).
        """
        self.ensure_user(user)
        path = self.server_path(user)
        result = {"user": user, "events": []}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            t0 = time.perf_counter()
            result["t0"] = t0
            result["t0_wall"] = time.time()

            def post():
                r = self.api("POST", path, json=options, timeout=timeout)
                return r, time.perf_counter() - t0

            future = pool.submit(post)
            while True:
                with self.api("GET", path + "/progress", stream=True, timeout=timeout) as r:
                    if r.status_code in (400, 404):  # not starting yet
                        if future.done() and future.result()[0].status_code >= 400:
                            break
                        time.sleep(0.02)
                        continue
                    r.raise_for_status()
                    for line in r.iter_lines(decode_unicode=True):
                        if line and line.startswith("data:"):
                            event = json.loads(line[len("data:"):])
                            result["events"].append((time.perf_counter() - t0, event))
                            if event.get("ready") or event.get("failed"):
                                break
                    break
            response, answered = future.result()
        result["status"] = response.status_code
        result["post_answered"] = answered
        if response.status_code >= 400:
            result["error"] = response.text
        ready = [t for t, e in result["events"] if e.get("ready")]
        if response.status_code == 201:  # the hub answers 201 only once the server is ready
            ready.append(answered)
        result["ready"] = min(ready) if ready else None
        if result["ready"] is None:
            tail = "\n".join(e.get("message", "") for _, e in result["events"][-25:])
            raise RuntimeError(f"launch of {options} for {user} did not become ready "
                               f"(POST {response.status_code}):\n{tail}\n{result.get('error', '')}")
        result["ready_abs"] = t0 + result["ready"]
        result["built"] = first_time(result, r"^\[built\] ")
        result["fetching"] = first_time(result, r"^\[fetching\] ")
        result["found"] = first_time(result, r"^Found image ")
        result["image"] = image_of(result)
        return result

    def containers(self, **filters):
        """This run's containers; one removed while Docker lists them (docker-py inspects each
        after listing, and other launches come and go) just means asking again."""
        for attempt in range(5):
            try:
                return super().containers(**filters)
            except docker.errors.NotFound:
                if attempt == 4:
                    raise
                time.sleep(0.2)

    def container_started_after(self, result):
        """Seconds from the launch's POST until Docker started the user's container (State.StartedAt)."""
        user = result["user"]
        (container,) = [c for c in self.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]
        started = container.attrs["State"]["StartedAt"]  # RFC 3339 with nanoseconds, UTC
        whole, _, fraction = started.rstrip("Z").partition(".")
        stamp = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
        return stamp + float("0." + (fraction or "0")) - result["t0_wall"]

    def stop_and_wait(self, user):
        self.stop_server(user)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not [c for c in self.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]:
                return
            time.sleep(0.2)
        raise TimeoutError(f"container of {user} still there 60 s after its server stopped")


def first_time(result, pattern):
    for t, event in result["events"]:
        if re.search(pattern, event.get("message", "")):
            return t
    return None


def image_of(result):
    for _, event in result["events"]:
        found = re.search(r"image (\S+:[0-9a-f]{40})", event.get("message", ""))
        if found:
            return found.group(1)
    return None


def messages(result):
    return [e.get("message", "") for _, e in result["events"]]


def cached_steps(result):
    """Of the Dockerfile's steps ('#12 [ 9/17] RUN ...' in BuildKit's plain log), how many came
    from the build cache ('#12 CACHED'), and how many there were."""
    lines = [m for m in messages(result) if m.startswith("[building] #")]
    steps = {m.split()[1] for m in lines if re.match(r"^\[building\] #\d+ \[\s*\d+/\d+\]", m)}
    cached = {m.split()[1] for m in lines if re.match(r"^\[building\] #\d+ CACHED$", m)}
    return len(cached & steps), len(steps)


# ------------------------------------------------------------------------------------------------
# measurements


def other_containers(client, run_id):
    """Running containers that are not this run's: a sign of concurrent load (e.g. the test suite)."""
    # sparse: no per-container inspect, so a container removed meanwhile cannot fail the listing
    return len([c for c in client.containers.list(sparse=True)
                if not any(run_id in name for name in c.attrs.get("Names", []))])


def measure_cold_builds(binder, git, report):
    log("pruning Docker's build cache (docker builder prune -af) for the cold builds")
    # Builds someone else is running now would refill the cache; the CACHED step counts below show it.
    others = subprocess.run(["pgrep", "-fc", "--", "-m repo2docker "], capture_output=True, text=True).stdout
    report["cold_prune_other_builds"] = int(others.strip() or 0)
    out = subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True, text=True)
    report["cache_pruned"] = True
    report["cold_prune_output"] = out.stdout.strip().splitlines()[-1:] or [""]
    rows = []
    for i, example in enumerate(EXAMPLES):
        log(f"cold build {i + 1}/{len(EXAMPLES)}: {example}")
        user = f"cold{i}"
        result = binder.timed_launch(user, {"repo": git.url(example)})
        assert result["built"] is not None, f"{example}: no [built] event, was the image already there?"
        assert binder.builds_of(result["image"]) == 1
        cached, steps = cached_steps(result)
        rows.append({
            "example": example, "order": i + 1, "post_to_built": result["built"],
            "post_to_ready": result["ready"], "build": result["built"] - result["fetching"],
            "cached_steps": cached, "steps": steps, "image": result["image"],
        })
        report.setdefault("build_logs", {})[f"cold {example}"] = messages(result)
        log(f"  {example}: POST->[built] {result['built']:.1f} s, POST->ready {result['ready']:.1f} s, "
            f"{cached}/{steps} BuildKit steps from cache")
        binder.stop_and_wait(user)
    report["cold"] = rows
    return rows[0]["image"]


def measure_cached(binder, plain, git, n, report, client, run_id):
    options = {"repo": git.url("requirements")}
    log("warm-up: one unrecorded launch on each hub")
    for hub in (binder, plain):
        result = hub.timed_launch("warm", options if hub is binder else {})
        hub.stop_and_wait("warm")
    a, b, found, others = [], [], [], []
    started = {"binder": [], "plain": []}  # POST -> container started
    lost = []  # rounds where a container vanished mid-round (concurrent load): reported, not counted
    for i in range(n):
        others.append(other_containers(client, run_id))
        round_ = {}
        try:
            for name, hub, opts in (("binder", binder, options), ("plain", plain, {})):
                result = hub.timed_launch("cached", opts)
                if hub is binder:
                    text = "\n".join(messages(result))
                    assert "Found image" in text and "[building]" not in text, "cached launch built"
                round_[name] = (result["ready"], hub.container_started_after(result), result["found"])
                log(f"  round {i + 1}/{n} {name}: {result['ready']:.2f} s "
                    f"(container started after {round_[name][1]:.2f} s)")
                hub.stop_and_wait("cached")
        except docker.errors.NotFound as e:
            log(f"  round {i + 1}/{n}: a container vanished mid-round ({e}); round left out")
            lost.append({"round": i + 1, "error": str(e)})
            for hub in (binder, plain):
                try:
                    hub.stop_and_wait("cached")
                except Exception as stop_error:  # noqa: BLE001 - already gone is fine here
                    log(f"  (stopping after the lost round: {stop_error})")
            continue
        for name, series in (("binder", a), ("plain", b)):
            series.append(round_[name][0])
            started[name].append(round_[name][1])
        found.append(round_["binder"][2])
    # Everything Binder adds happens before the container starts; from container start to ready
    # both hubs run the same code on the same image (and JupyterHub's jittered readiness poll).
    added = statistics.median(started["binder"]) - statistics.median(started["plain"])
    low, high = bootstrap_ratio(a, b)
    report["cached"] = {
        "started_binder": started["binder"], "started_plain": started["plain"],
        "started_binder_median": statistics.median(started["binder"]),
        "started_plain_median": statistics.median(started["plain"]),
        "ready_after_start_binder_median": statistics.median(x - y for x, y in zip(a, started["binder"])),
        "ready_after_start_plain_median": statistics.median(x - y for x, y in zip(b, started["plain"])),
        "added_before_start": added,
        "ratio_from_added": (statistics.median(b) + added) / statistics.median(b),
        "ratio_ci90": (low, high),
        "n": n, "binder": a, "plain": b, "binder_found_image_at": found,
        "binder_median": statistics.median(a), "plain_median": statistics.median(b),
        "binder_mean": statistics.mean(a), "plain_mean": statistics.mean(b),
        "ratio_of_medians": statistics.median(a) / statistics.median(b),
        "median_pair_ratio": statistics.median(x / y for x, y in zip(a, b)),
        "median_pre_spawn": statistics.median(found),
        "binder_min": min(a), "plain_min": min(b),
        "other_containers_per_round": others,
        "lost_rounds": lost,
    }


def bootstrap_ratio(a, b, rounds=5000, seed=1):
    """90% bootstrap interval of median(a) / median(b), resampling each series on its own."""
    rng = random.Random(seed)
    ratios = sorted(statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b)))
                    for _ in range(rounds))
    return ratios[int(0.05 * rounds)], ratios[int(0.95 * rounds) - 1]


def concurrent_launches(hub, names, options):
    """Launch every user at once (threads released together); returns the timed results."""
    for name in names:
        hub.ensure_user(name)
    barrier = threading.Barrier(len(names))

    def one(name):
        barrier.wait()
        return hub.timed_launch(name, options)

    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(one, names))
    start = min(r["t0"] for r in results)
    for r in results:
        r["since_start"] = r["ready_abs"] - start
        r["built_since_start"] = None if r["built"] is None else r["t0"] + r["built"] - start
    return results, max(r["since_start"] for r in results)


def notebook(text):
    return json.dumps({
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": [text]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }, indent=1) + "\n"


def measure_rebuild(binder, git, report):
    log("rebuild after a notebook-only change to the requirements example")
    sha = git.commit("requirements", {"index.ipynb": notebook(f"# changed {uuid.uuid4().hex}")},
                     message="notebook-only change")
    result = binder.timed_launch("rebuild", {"repo": git.url("requirements")})
    assert result["image"].endswith(":" + sha), (result["image"], sha)
    assert result["built"] is not None, "the notebook-only change did not build"
    cached, steps = cached_steps(result)
    cold = report["cold"][0]
    report["rebuild"] = {
        "post_to_built": result["built"], "post_to_ready": result["ready"],
        "build": result["built"] - result["fetching"], "cached_steps": cached, "steps": steps,
        "fraction_of_cold": result["built"] / cold["post_to_built"],
    }
    report.setdefault("build_logs", {})["rebuild requirements"] = messages(result)
    log(f"  POST->[built] {result['built']:.1f} s = {report['rebuild']['fraction_of_cold']:.3f} of cold")
    binder.stop_and_wait("rebuild")


def measure_storm(binder, plain, git, users, report):
    repo = git.url("requirements")
    log("storm baseline: one build + one launch of a fresh commit")
    sha = git.commit("requirements", {"index.ipynb": notebook(f"# single {uuid.uuid4().hex}")})
    single = binder.timed_launch("single", {"repo": repo})
    assert single["image"].endswith(":" + sha) and single["built"] is not None
    binder.stop_and_wait("single")

    log(f"storm: {users} users launch one unbuilt commit at once")
    sha = git.commit("requirements", {"index.ipynb": notebook(f"# storm {uuid.uuid4().hex}")})
    names = [f"storm{i}" for i in range(users)]
    results, wall = concurrent_launches(binder, names, {"repo": repo})
    images = {r["image"] for r in results}
    assert len(images) == 1 and results[0]["image"].endswith(":" + sha), images
    builds = binder.builds_of(results[0]["image"])
    log(f"  builds: {builds}; all ready after {wall:.1f} s; single build+launch {single['ready']:.1f} s")
    for name in names:
        binder.stop_and_wait(name)

    log(f"contention baseline: {users} users launch the built image at once on the plain DockerSpawner hub")
    plain_results, plain_wall = concurrent_launches(plain, [f"crowd{i}" for i in range(users)], {})
    log(f"  all ready after {plain_wall:.1f} s")
    for r in plain_results:
        plain.stop_and_wait(r["user"])
    built = [r["built_since_start"] for r in results if r["built_since_start"] is not None]
    report["storm"] = {
        "users": users, "builds": builds, "wall": wall,
        "ready_each": sorted(r["since_start"] for r in results),
        "built_each": sorted(built), "saw_found_instead_of_built": sum(r["built"] is None for r in results),
        "single_post_to_built": single["built"], "single_post_to_ready": single["ready"],
        "ratio_to_single": wall / single["ready"],
        "plain_concurrent_wall": plain_wall,
        "plain_concurrent_ready_each": sorted(r["since_start"] for r in plain_results),
        "ratio_to_build_plus_concurrent_plain": wall / (max(built or [0]) + plain_wall),
    }


# ------------------------------------------------------------------------------------------------
# report


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    version = docker.from_env(version="auto").version()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "memory_gib": round(mem / GiB, 1),
        "docker": version.get("Version"), "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def status(ok):
    return "met" if ok else "NOT met"


def markdown(report):
    m, c = report["machine"], report.get("cached")
    out = [
        f"- date: {m['date']}; machine: {m['nproc']} cores, {m['memory_gib']} GiB RAM, Docker engine "
        f"{m['docker']}, kernel {m['kernel']}, Python {m['python']}",
        f"- load average at start {tuple(round(x, 2) for x in m['loadavg_start'])}, at end "
        f"{tuple(round(x, 2) for x in m.get('loadavg_end', (0, 0, 0)))}; other containers running at "
        f"start: {m.get('other_containers', '?')}",
        f"- command: `{report['command']}`; total run time {report.get('total_seconds', 0) / 60:.1f} min",
        "",
        "| measurement | figure | baseline (same run) | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    if c:
        out.append(
            f"| 1. cached launch, POST to ready (median of {c['n']}) | {c['binder_median']:.2f} s "
            f"| plain DockerSpawner, same image: {c['plain_median']:.2f} s "
            f"| {c['ratio_of_medians']:.3f} (median of pair ratios {c['median_pair_ratio']:.3f}) "
            f"| <= {CACHED_TARGET:.2f} | {status(c['ratio_of_medians'] <= CACHED_TARGET)} "
            f"(90% bootstrap interval {c['ratio_ci90'][0]:.2f}-{c['ratio_ci90'][1]:.2f}) |")
        out.append(
            f"| 1a. cached launch, POST to container started (median) | {c['started_binder_median']:.2f} s "
            f"| plain: {c['started_plain_median']:.2f} s | Binder adds {c['added_before_start']:+.2f} s, "
            f"i.e. ratio {c['ratio_from_added']:.3f} on the plain median | <= {CACHED_TARGET:.2f} "
            f"| {status(c['ratio_from_added'] <= CACHED_TARGET)} |")
    if "cold_prune_other_builds" in report:
        out.insert(3, f"- repo2docker builds running elsewhere when the build cache was pruned: "
                      f"{report['cold_prune_other_builds']}")
    for row in report.get("cold", []):
        if not report.get("cache_pruned"):
            label = "build cache NOT pruned: not a cold build"
        elif row["order"] == 1:
            label = "first after the prune, truly cold"
        else:
            label = f"#{row['order']} after the prune, shares base layers"
        out.append(
            f"| 2. cold build `{row['example']}` ({label}), POST to [built] | {row['post_to_built']:.1f} s "
            f"(POST to ready {row['post_to_ready']:.1f} s) | - | - | - | "
            f"{row['cached_steps']}/{row['steps']} steps from cache |")
    rb = report.get("rebuild")
    if rb:
        cold = report["cold"][0]
        out.append(
            f"| 3. rebuild after notebook-only change (`requirements`), POST to [built] "
            f"| {rb['post_to_built']:.1f} s | its cold build: {cold['post_to_built']:.1f} s "
            f"| {rb['fraction_of_cold']:.3f} | <= {REBUILD_TARGET:.2f} "
            f"| {status(rb['fraction_of_cold'] <= REBUILD_TARGET)} |")
    st = report.get("storm")
    if st:
        out.append(
            f"| 4. {st['users']} concurrent launches of one unbuilt commit: builds | {st['builds']} | - | - "
            f"| 1 | {status(st['builds'] == 1)} |")
        out.append(
            f"| 4. same: wall time until all {st['users']} ready | {st['wall']:.1f} s "
            f"| one build + one launch of another fresh commit: {st['single_post_to_ready']:.1f} s "
            f"| {st['ratio_to_single']:.2f} | (none set) | - |")
        out.append(
            f"| 4a. same, against the shared build + {st['users']} concurrent plain DockerSpawner "
            f"launches | {st['wall']:.1f} s | {max(st['built_each'] or [0]):.1f} s + "
            f"{st['plain_concurrent_wall']:.1f} s "
            f"| {st['ratio_to_build_plus_concurrent_plain']:.2f} | (none set) | - |")
    out.append("")
    if c:
        out.append("Cached launches, seconds from POST to ready, in run order:")
        out.append("")
        out.append("- binder: " + ", ".join(f"{x:.2f}" for x in c["binder"]))
        out.append("- plain:  " + ", ".join(f"{x:.2f}" for x in c["plain"]))
        out.append(f"- fastest: binder {c['binder_min']:.2f} s, plain {c['plain_min']:.2f} s, ratio "
                   f"{c['binder_min'] / c['plain_min']:.3f}")
        out.append("- other (not this run's) containers running at the start of each round: "
                   + ", ".join(str(x) for x in c["other_containers_per_round"]))
        out.append(f"- means: binder {c['binder_mean']:.2f} s, plain {c['plain_mean']:.2f} s, ratio "
                   f"{c['binder_mean'] / c['plain_mean']:.3f}")
        for name in ("binder", "plain"):
            out.append(f"- POST to container started, {name}: "
                       + ", ".join(f"{x:.2f}" for x in c[f"started_{name}"]))
        out.append(f"- container started to ready (median): binder "
                   f"{c['ready_after_start_binder_median']:.2f} s, "
                   f"plain {c['ready_after_start_plain_median']:.2f} s")
        out.append("- binder, POST to 'Found image' (resolve + image check): median "
                   f"{c['median_pre_spawn']:.3f} s")
    if st:
        out.append("- storm, each user's [built] event after (s): "
                   + ", ".join(f"{x:.1f}" for x in st["built_each"])
                   + f"; single launch's [built] after {st['single_post_to_built']:.1f} s")
        out.append("- storm, each user ready after (s): " + ", ".join(f"{x:.1f}" for x in st["ready_each"]))
        out.append(f"- {st['users']} concurrent plain launches of the built image, each ready after (s): "
                   + ", ".join(f"{x:.1f}" for x in st["plain_concurrent_ready_each"]))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# main


def remove_images(client):
    removed = []
    for image in client.images.list():
        if any(tag.startswith(IMAGE_PREFIX) for tag in image.tags):
            try:
                client.images.remove(image.id, force=True)
                removed.append(image.tags[0])
            except docker.errors.APIError as e:
                log(f"could not remove {image.tags}: {e}")
    return removed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--launches", type=int, default=7,
                        help="cached launches per hub (default 7)")
    parser.add_argument("--storm-users", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true",
                        help="do not prune the build cache; the first build is then NOT a cold build")
    parser.add_argument("--json", help="also write the raw figures and the build logs to this file")
    parser.add_argument("--keep-workdir", action="store_true", help="keep hub logs and git repos")
    args = parser.parse_args(argv)

    client = docker.from_env(version="auto")
    client.ping()
    client.images.get("binderspawner-base:bookworm")  # built by scripts/provision.sh

    started = time.monotonic()
    run_id = "bench" + uuid.uuid4().hex[:6]
    workdir = tempfile.mkdtemp(prefix="bsbench-")
    report = {"command": " ".join(["python", "benchmarks/bench_launch.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "run_id": run_id}
    report["machine"]["other_containers"] = len(client.containers.list())
    log(f"run {run_id}, work directory {workdir}")

    git = GitServer(os.path.join(workdir, "git")).start()
    binder = plain = None
    try:
        for name in EXAMPLES:
            git.add_repo(name, os.path.join(EXAMPLES_DIR, name))
        binder = BenchHub(os.path.join(workdir, "binder"), run_id, "b").start()

        if args.skip_cold:
            log("--skip-cold: first build of the requirements example (build cache NOT pruned)")
            result = binder.timed_launch("first", {"repo": git.url("requirements")})
            binder.stop_and_wait("first")
            image = result["image"]
            cached, steps = cached_steps(result)
            report["cold"] = [{"example": "requirements (cache not pruned)", "order": 1,
                               "post_to_built": result["built"] or 0, "post_to_ready": result["ready"],
                               "build": 0, "cached_steps": cached, "steps": steps, "image": image}]
        else:
            image = measure_cold_builds(binder, git, report)

        plain_config = f"""
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = {image!r}
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.cpu_limit = 1.0
c.DockerSpawner.mem_limit = "1G"
c.DockerSpawner.remove = True
# The host settings binderspawner adds (policy.docker_host_config), so only the Binder work differs.
c.DockerSpawner.extra_host_config = {{"memswap_limit": {GiB}, "pids_limit": 1024}}
"""
        plain = BenchHub(os.path.join(workdir, "plain"), run_id, "p", extra_config=plain_config).start()
        measure_cached(binder, plain, git, args.launches, report, client, run_id)
        measure_rebuild(binder, git, report)
        measure_storm(binder, plain, git, args.storm_users, report)
    finally:
        log("cleaning up")
        for hub in (plain, binder):
            if hub:
                hub.stop()
                hub.cleanup()
        git.stop()
        report["removed_images"] = remove_images(client)
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report["machine"]["loadavg_end"] = os.getloadavg()
    report["total_seconds"] = time.monotonic() - started
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    print(markdown(report))
    ok = (report["cached"]["ratio_of_medians"] <= CACHED_TARGET
          and report["rebuild"]["fraction_of_cold"] <= REBUILD_TARGET
          and report["storm"]["builds"] == 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
