#!/usr/bin/env python3
"""Build fence benchmark: what the build network's egress rules cost per build.

BuildKit (the engine's built-in one) runs build steps on Docker's default bridge (docker0), so the
build rules are chains for that bridge, ensured before every build. Timed here, in one run:

  install   installing the chains and jumps on docker0 from nothing (once per host and rule change)
  check     the per-build check when they are current (what every build pays)
  build     a `docker buildx build --no-cache` of a two-step Dockerfile whose RUN opens a TCP
            connection to a listener of this run on 127.0.0.1 inside the step (no traffic leaves
            the machine), with the rules on and off, interleaved: the baseline

Everything it creates (images 'bsbench-fence-*', the chains) is removed at the end.
Run from the repository root:  python benchmarks/bench_buildfence.py [-n 8] [--json FILE]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from binderspawner.dockerhost import firewall  # noqa: E402
from binderspawner.dockerhost.iptables import iptables_rules  # noqa: E402
from binderspawner.policy.egress import EgressPolicy  # noqa: E402

DOCKERFILE = """FROM binderspawner-base:bookworm
RUN python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); \\
socket.create_connection(s.getsockname()).close(); print('{nonce}')"
"""


def timed_build(context, tag, nonce):
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE.format(nonce=nonce))
    t = time.perf_counter()
    subprocess.run(["docker", "buildx", "build", "--no-cache", "--progress", "plain", "-t", tag, context],
                   check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=8)
    parser.add_argument("--json")
    args = parser.parse_args()
    client = docker.from_env(version="auto")
    attrs = client.api.inspect_network("bridge")
    net = firewall.describe_network(attrs, "127.0.0.1", 8081, default_bridge=True)
    rules = iptables_rules(EgressPolicy().build_rules(), net)
    run = uuid.uuid4().hex[:6]
    tag = f"bsbench-fence-{run}:latest"
    results = {"install": [], "check": [], "build_on": [], "build_off": []}
    try:
        with tempfile.TemporaryDirectory() as context:
            for i in range(args.n):
                firewall.remove(rules)
                results["build_off"].append(timed_build(context, tag, f"off-{run}-{i}"))
                t = time.perf_counter()
                asyncio.run(firewall.ensure(rules))
                results["install"].append(time.perf_counter() - t)
                t = time.perf_counter()
                asyncio.run(firewall.ensure(rules))
                results["check"].append(time.perf_counter() - t)
                results["build_on"].append(timed_build(context, tag, f"on-{run}-{i}"))
    finally:
        firewall.remove(rules)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"n={args.n}, medians: install {med['install'] * 1000:.1f} ms, check {med['check'] * 1000:.1f} ms, "
          f"build on {med['build_on']:.2f} s / off {med['build_off']:.2f} s = {med['build_on'] / med['build_off']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "medians": med}, f, indent=1)


if __name__ == "__main__":
    main()
