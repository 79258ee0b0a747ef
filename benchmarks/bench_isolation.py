#!/usr/bin/env python3
"""Isolation benchmark: what the egress rules and the CPU limit cost a cached launch.

Four hubs run side by side on the local Docker engine, each launching the same already-built
image (the `requirements` example) in interleaved rounds:

  on    egress rules on (the default), 1 CPU (the default)
  off   egress rules off,              1 CPU
  none  egress rules on,               no CPU limit
  half  egress rules on,               0.5 CPU
  late  egress rules on,               0.5 CPU applied once the server is up (startup_cpu_grace)

and, after each `none` launch is ready, the 0.5 CPU limit is applied to the running container with
`docker update` (what a hub could do once the server is up) and timed. The cost of installing the
iptables rules on a fresh network, and of checking them when already installed (every launch), is
timed directly as well.

All traffic goes to 127.0.0.1 and the containers this run creates; everything it creates
(containers, networks, iptables chains, images 'bsbench-*') is removed at the end.
Run from the repository root:  python benchmarks/bench_isolation.py [-n 8] [--json FILE]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
import uuid

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench_launch import BenchHub, machine, remove_images  # noqa: E402

from binderspawner.dockerhost import firewall  # noqa: E402
from binderspawner.dockerhost.iptables import iptables_rules  # noqa: E402
from binderspawner.policy import egress  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402

HUBS = {
    "on": "",
    "off": "c.EgressPolicy.enabled = False\n",
    "none": "c.DockerSpawner.cpu_limit = None\n",
    "half": "c.DockerSpawner.cpu_limit = 0.5\n",
    "late": "c.DockerSpawner.cpu_limit = 0.5\nc.ResourcePolicy.startup_cpu_grace = 30\n",
}


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def time_rules(client, run_id, rounds=10):
    """Seconds to install the rules on a fresh network, and to check them once installed."""
    network = client.networks.create(f"bsbench-{run_id}-fw", driver="bridge")
    try:
        network.reload()
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        net = firewall.describe_network(network.attrs, gateway, 8081)
        rules = iptables_rules(egress.default_rules(), net)
        installs, checks = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            asyncio.run(firewall.ensure(rules))
            installs.append(time.perf_counter() - t)
            t = time.perf_counter()
            asyncio.run(firewall.ensure(rules))
            checks.append(time.perf_counter() - t)
            firewall.remove(rules)
        return {"install": installs, "check": checks}
    finally:
        firewall.remove_chains_of(network.id[:12])
        network.remove()


def docker_update_cpu(client, container_name, cpus=0.5):
    """Apply a CPU limit to a running container; (seconds, CpuQuota after)."""
    t = time.perf_counter()
    client.api.update_container(container_name, cpu_period=100_000, cpu_quota=int(cpus * 100_000))
    took = time.perf_counter() - t
    quota = client.api.inspect_container(container_name)["HostConfig"]["CpuQuota"]
    return took, quota


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--launches", type=int, default=8, help="cached launches per hub (default 8)")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args(argv)

    client = docker.from_env(version="auto")
    client.images.get("binderspawner-base:bookworm")
    run_id = "iso" + uuid.uuid4().hex[:6]
    workdir = tempfile.mkdtemp(prefix="bsbench-iso-")
    report = {"command": " ".join(["python", "benchmarks/bench_isolation.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "run_id": run_id}
    started = time.monotonic()
    git = GitServer(os.path.join(workdir, "git")).start()
    hubs = {}
    try:
        git.add_repo("requirements", os.path.join(ROOT, "examples", "requirements"))
        options = {"repo": git.url("requirements")}
        log("timing rule installation on a fresh network")
        report["rules"] = time_rules(client, run_id)
        for name, extra in HUBS.items():
            hubs[name] = BenchHub(os.path.join(workdir, name), run_id, name, extra_config=extra).start()
        log("building the image once, and one warm-up launch per hub")
        for name, hub in hubs.items():
            hub.timed_launch("warm", options)
            hub.stop_and_wait("warm")
        series = {name: {"ready": [], "started": []} for name in hubs}
        updates = []
        for i in range(args.launches):
            for name, hub in hubs.items():
                result = hub.timed_launch("cached", options)
                series[name]["ready"].append(result["ready"])
                series[name]["started"].append(hub.container_started_after(result))
                if name == "late":  # the hub applies the limit once the server is up
                    (container,) = [c for c in hub.containers()
                                    if "JUPYTERHUB_USER=cached" in c.attrs["Config"]["Env"]]
                    while client.api.inspect_container(container.id)["HostConfig"]["CpuQuota"] != 50_000:
                        assert time.perf_counter() - result["t0"] < 60, "CPU limit not applied"
                        time.sleep(0.05)
                    series[name].setdefault("limited_after", []).append(time.perf_counter() - result["t0"])
                if name == "none":
                    (container,) = [c for c in hub.containers()
                                    if "JUPYTERHUB_USER=cached" in c.attrs["Config"]["Env"]]
                    took, quota = docker_update_cpu(client, container.name)
                    assert quota == 50_000, quota
                    updates.append(took)
                    # the limit holds: a busy loop gets about half a CPU
                    usage = container.exec_run(["python3", "-c", (
                        "import time, resource\n"
                        "t = time.time()\n"
                        "while time.time() - t < 2: pass\n"
                        "r = resource.getrusage(resource.RUSAGE_SELF)\n"
                        "print(round((r.ru_utime + r.ru_stime) / (time.time() - t), 2))")])
                    series[name].setdefault("busy_cpu_after_update", []).append(float(usage.output))
                log(f"  round {i + 1}/{args.launches} {name}: ready {result['ready']:.2f} s, "
                    f"container started {series[name]['started'][-1]:.2f} s")
                hub.stop_and_wait("cached")
        report["series"] = series
        report["docker_update"] = updates
    finally:
        tags = [client.networks.get(hub.network).id[:12] for hub in hubs.values()]
        for hub in hubs.values():
            hub.stop()
            hub.cleanup()
        git.stop()
        report["removed_images"] = remove_images(client)
        shutil.rmtree(workdir, ignore_errors=True)
        saved = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
        leftover = len([line for line in saved if any(tag in line for tag in tags)])
        report["iptables_bspawn_lines_after"] = leftover
    report["total_seconds"] = time.monotonic() - started
    report["machine"]["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    print(markdown(report))
    return 0


def markdown(report):
    s = report["series"]
    m = {name: median(v["ready"]) for name, v in s.items()}
    st = {name: median(v["started"]) for name, v in s.items()}
    r = report["rules"]
    rows = [
        "| hubs compared | POST to ready, medians | ratio | POST to container started, medians |",
        "|---|---|---|---|",
        f"| egress rules on / off (1 CPU) | {m['on']:.2f} s / {m['off']:.2f} s | {m['on'] / m['off']:.2f} | "
        f"{st['on']:.3f} s / {st['off']:.3f} s |",
        f"| CPU limit 1 / none (rules on) | {m['on']:.2f} s / {m['none']:.2f} s | {m['on'] / m['none']:.2f} | "
        f"{st['on']:.3f} s / {st['none']:.3f} s |",
        f"| CPU limit 0.5 / none (rules on) | {m['half']:.2f} s / {m['none']:.2f} s | {m['half'] / m['none']:.2f} | "
        f"{st['half']:.3f} s / {st['none']:.3f} s |",
        f"| 0.5 CPU applied once up (startup_cpu_grace) / none | {m['late']:.2f} s / {m['none']:.2f} s | "
        f"{m['late'] / m['none']:.2f} | {st['late']:.3f} s / {st['none']:.3f} s |",
        "",
        f"- with startup_cpu_grace, the 0.5 CPU limit was in force (CpuQuota seen) a median "
        f"{median(s['late']['limited_after']):.2f} s after the POST (ready at {m['late']:.2f} s)",
        f"- installing the rules on a fresh network: median {median(r['install']) * 1000:.0f} ms; checking "
        f"them when installed (every launch): median {median(r['check']) * 1000:.0f} ms ({len(r['check'])} each)",
        f"- `docker update` to 0.5 CPU on a running server: median {median(report['docker_update']) * 1000:.0f} ms "
        f"(max {max(report['docker_update']) * 1000:.0f} ms); a busy loop then got "
        f"{median(s['none'].get('busy_cpu_after_update', [])):.2f} CPU",
        "- raw POST-to-ready times: " + "; ".join(f"{k}: {', '.join(f'{x:.2f}' for x in v['ready'])}"
                                                  for k, v in s.items()),
        f"- {report['machine']['date']}, {report['machine']['nproc']} cores, load average "
        f"{tuple(round(x, 2) for x in report['machine']['loadavg_start'])} -> "
        f"{tuple(round(x, 2) for x in report['machine']['loadavg_end'])}; "
        f"total {report['total_seconds'] / 60:.1f} min; "
        f"BSPAWN lines left in iptables-save afterwards: {report['iptables_bspawn_lines_after']}",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
