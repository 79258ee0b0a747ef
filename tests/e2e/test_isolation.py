"""Isolation end to end: resource limits, quotas and egress rules on a real JupyterHub with the local
Docker engine and iptables.

Network: every destination is created by this module on this machine. A network namespace stands in
for "the internet" (198.51.100.2, from TEST-NET-2, which no route here leads anywhere else) and for
a private address (10.213.77.2); before any traffic the test checks that the host routes both to
its own veth. Servers in that namespace listen on TCP 80 and 8080 and answer DNS on UDP 53. A
listener on the host's gateway address stands in for the host's other services. A control
container on a network of its own (without our rules) shows that every denied destination is in
fact up. Nothing is sent anywhere else.
"""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from binderspawner.dockerhost import firewall
from tests.support import EXAMPLES
from tests.support.hub import Hub

GiB, MiB = 1024**3, 1024**2
RUN = uuid.uuid4().hex[:6]
PUBLIC, PRIVATE = "198.51.100.2", "10.213.77.2"
NS, VETH_HOST, VETH_NS = f"bsiso{RUN}", f"bsi{RUN}h", f"bsi{RUN}n"
PIDS_LIMIT = 256

CONFIG = """
c.BinderSpawner.pids_limit = {pids}
c.Spawner.cpu_guarantee = 0.25
c.Spawner.mem_guarantee = "256M"
c.ResourcePolicy.sizes = {{"small": {{"cpu_limit": 0.5, "mem_limit": "512M"}},
                          "huge": {{"cpu_limit": 2, "mem_limit": "2G"}}}}
c.ResourcePolicy.max_cpu_limit = 1
c.ResourcePolicy.max_mem_limit = "1G"
c.SpecControl.spec_config = [{{"pattern": r"^git/[^/]*isoquota\\.git", "config": {{"quota": 2}}}}]
"""

# --- local stand-ins ---------------------------------------------------------------------------------

NS_SERVERS = textwrap.dedent("""
    import socket, struct, threading
    def tcp(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(16)
        while True:
            c, _ = s.accept(); c.sendall(b"hello %d\\n" % port); c.close()
    def dns(address):  # answers every A query with 198.51.100.2
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((address, 53))  # reply from it
        while True:
            q, addr = s.recvfrom(512)
            end = q.index(b"\\0", 12) + 5
            answer = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("198.51.100.2")
            s.sendto(q[:2] + b"\\x81\\x80" + q[4:6] + b"\\x00\\x01\\x00\\x00\\x00\\x00" + q[12:end] + answer, addr)
    for port in (80, 8080):
        threading.Thread(target=tcp, args=(port,), daemon=True).start()
    threading.Thread(target=dns, args=("198.51.100.2",), daemon=True).start()
    dns("10.213.77.2")
""")

# Run inside a container: try each destination, print JSON {"host:port": "open"|error}.
PROBE = textwrap.dedent("""
    import json, socket, struct, sys
    out = {}
    for target in sys.argv[1:]:
        kind, host, port = target.split(":")
        try:
            if kind == "tcp":
                with socket.create_connection((host, int(port)), timeout=4):
                    pass
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(4)
                q = struct.pack(">HHHHHH", 4242, 0x100, 1, 0, 0, 0) + b"\\x07example\\x04test\\x00" + struct.pack(">HH", 1, 1)
                s.sendto(q, (host, int(port))); reply = s.recv(512)
                assert reply[:2] == q[:2] and socket.inet_ntoa(reply[-4:]) == "198.51.100.2"
            out[target] = "open"
        except Exception as e:
            out[target] = type(e).__name__ + ": " + str(e)
    print(json.dumps(out))
""")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def standins():
    """A network namespace with a 'public' and a 'private' address, reachable from the host only
    through our veth, and servers listening in it."""
    proc = None
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        sh("ip", "link", "set", VETH_NS, "netns", NS)
        sh("ip", "addr", "add", "198.51.100.1/24", "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "up")
        for cmd in (["ip", "addr", "add", f"{PUBLIC}/24", "dev", VETH_NS],
                    ["ip", "addr", "add", f"{PRIVATE}/32", "dev", VETH_NS],
                    ["ip", "link", "set", VETH_NS, "up"], ["ip", "link", "set", "lo", "up"],
                    ["ip", "route", "add", "default", "via", "198.51.100.1"]):
            sh("ip", "netns", "exec", NS, *cmd)
        sh("ip", "route", "add", f"{PRIVATE}/32", "dev", VETH_HOST)
        for address in (PUBLIC, PRIVATE):  # never send anything that could leave this machine
            route = sh("ip", "route", "get", address)
            assert f"dev {VETH_HOST}" in route, f"{address} is not routed to our namespace: {route}"
        proc = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c", NS_SERVERS])
        deadline = time.monotonic() + 20
        while sh("ip", "netns", "exec", NS, "ss", "-ltnu", check=False).count(":8080") == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "stand-in servers did not start"
            time.sleep(0.1)
        yield
    finally:
        if proc:
            proc.kill()
            proc.wait()
        sh("ip", "route", "del", f"{PRIVATE}/32", check=False)
        sh("ip", "link", "del", VETH_HOST, check=False)
        sh("ip", "netns", "del", NS, check=False)


class HostListener:
    """A TCP server on one of the host's addresses: one of 'the host's other ports'."""

    def __init__(self, ip):
        self.sock = socket.socket()
        self.sock.bind((ip, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.sendall(b"host\n")
            conn.close()


def probe(container, targets):
    result = container.exec_run(["python3", "-c", PROBE, *targets])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.decode().strip().splitlines()[-1])


def our_iptables_lines(tag, bridge):
    return sorted(line for line in sh("iptables-save").splitlines()
                  if (tag in line or bridge in line) and not line.startswith("#"))


# --- the module's hub ----------------------------------------------------------------------------------


def new_hub(tmp_path_factory, name, extra=""):
    hub = Hub(str(tmp_path_factory.mktemp(name)), extra_config=CONFIG.format(pids=PIDS_LIMIT) + extra,
              run_id=f"iso{RUN}{name}")
    hub.create_network()
    net = hub.docker.networks.get(hub.network)
    hub.tag, hub.bridge = net.id[:12], f"br-{net.id[:12]}"
    return hub


def finish(hub):
    hub.stop()
    hub.cleanup()
    firewall.remove_chains_of(hub.tag)


@pytest.fixture(scope="module")
def iso_hub(docker_client, git_server, tmp_path_factory):
    if not os.path.exists(os.path.join(git_server.repos, "isoquota.git")):
        git_server.add_repo("isoquota", os.path.join(EXAMPLES, "requirements"))
    hub = new_hub(tmp_path_factory, "m")
    try:
        hub.start()
        yield hub
    finally:
        finish(hub)


def ready(hub, user, options):
    r, events = hub.launch(user, options)
    assert events and events[-1].get("ready"), (r.status_code, r.text,
                                                [e.get("message") for e in events][-20:])
    return events


def container_of(hub, user):
    found = [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]
    assert len(found) == 1, [c.name for c in hub.containers()]
    return found[0]


def refusal(hub, user, options):
    """The message of a launch that must fail (answered by the POST or the progress stream)."""
    r, events = hub.launch(user, options)
    assert r.status_code >= 400 or (events and events[-1].get("failed")), [e.get("message") for e in events]
    texts = [r.json().get("message") or "" if r.status_code >= 400 else ""]
    texts += [e.get("message", "") for e in events if e.get("failed")]
    return "\n".join(texts)


@pytest.fixture(scope="module")
def server(iso_hub, git_server):
    ready(iso_hub, "iso", {"repo": git_server.url("requirements")})
    return container_of(iso_hub, "iso")


@pytest.fixture(scope="module")
def control(docker_client, server):
    """A container on a network of its own (no rules of ours), to show each destination is up."""
    network = docker_client.networks.create(f"bsiso-ctl-{RUN}", driver="bridge")
    container = docker_client.containers.run("binderspawner-base:bookworm", ["sleep", "600"], detach=True,
                                             name=f"bsiso-ctl-{RUN}", network=network.name)
    try:
        yield container
    finally:
        container.remove(force=True)
        network.remove()


# --- limits ---------------------------------------------------------------------------------------------


def test_docker_inspect_shows_each_limit(iso_hub, server):
    host = server.attrs["HostConfig"]
    assert host["Memory"] == GiB and host["MemorySwap"] == GiB
    assert (host["CpuQuota"], host["CpuPeriod"]) == (100_000, 100_000)
    assert host["PidsLimit"] == PIDS_LIMIT
    assert host["MemoryReservation"] == 256 * MiB
    assert host["CpuShares"] == 256


def test_user_picks_a_size_within_the_cap(iso_hub, git_server):
    events = ready(iso_hub, "small", {"repo": git_server.url("requirements"), "size": "small"})
    assert any("Size 'small': 0.5 CPU" in e.get("message", "") for e in events)
    host = container_of(iso_hub, "small").attrs["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["CpuQuota"]) == (512 * MiB, 512 * MiB, 50_000)
    iso_hub.stop_server("small")


def test_size_above_the_cap_is_refused_naming_the_cap(iso_hub, git_server):
    message = refusal(iso_hub, "greedy", {"repo": git_server.url("requirements"), "size": "huge"})
    assert "the cap is 1 CPU and 1G memory" in message
    message = refusal(iso_hub, "greedy", {"repo": git_server.url("requirements"), "size": "medium"})
    assert "Unknown size 'medium'" in message and "huge, small" in message
    assert [c for c in iso_hub.containers() if "JUPYTERHUB_USER=greedy" in c.attrs["Config"]["Env"]] == []


def test_fork_bomb_stops_at_the_pids_limit(iso_hub, server):
    bomb = textwrap.dedent("""
        import os, signal, time
        children = []
        try:
            for _ in range(4 * %d):
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
            print("unbounded", len(children))
        except OSError as e:
            print("stopped", len(children), e.errno)
        finally:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            for pid in children:
                os.waitpid(pid, 0)
    """ % PIDS_LIMIT)
    result = server.exec_run(["python3", "-c", bomb])
    words = result.output.decode().split()
    assert words[0] == "stopped", result.output
    assert 0 < int(words[1]) < PIDS_LIMIT and words[2] == "11"  # EAGAIN
    assert iso_hub.server_get("iso", "api/status").status_code == 200  # the server lives on
    assert int(server.exec_run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"]).output) < 50  # cleaned up


# --- quotas ---------------------------------------------------------------------------------------------


def test_per_repo_quota(iso_hub, git_server):
    repo = {"repo": git_server.url("isoquota")}
    ready(iso_hub, "q1", repo)
    ready(iso_hub, "q2", repo)
    message = refusal(iso_hub, "q3", repo)
    assert "Too many users are running this repository (2 of 2)" in message
    assert "quota" in message and "Try again later" in message
    assert iso_hub.api("GET", "/users/q3").json()["servers"] == {}
    ready(iso_hub, "q4", {"repo": git_server.url("requirements")})  # other repositories still launch
    iso_hub.stop_server("q4")
    iso_hub.stop_server("q1")
    ready(iso_hub, "q5", repo)  # (a new name: the hub replays q3's failure to a quick progress reader)
    for user in ("q2", "q5"):
        iso_hub.stop_server(user)


# --- egress ---------------------------------------------------------------------------------------------


def test_egress_rules(iso_hub, server, control, standins):
    listener = HostListener(iso_hub.gateway)
    targets = [f"tcp:{PUBLIC}:80", f"tcp:{PUBLIC}:8080", f"tcp:{PRIVATE}:80", f"udp:{PRIVATE}:53",
               f"tcp:{iso_hub.gateway}:{listener.port}", f"tcp:{iso_hub.gateway}:{iso_hub.hub_port}"]
    up = probe(control, targets)
    assert set(up.values()) == {"open"}, json.dumps(up)  # every destination is there
    seen = probe(server, targets)
    assert seen[f"tcp:{PUBLIC}:80"] == "open"  # web to a public address
    assert seen[f"udp:{PRIVATE}:53"] == "open"  # DNS, even to a private resolver
    assert seen[f"tcp:{iso_hub.gateway}:{iso_hub.hub_port}"] == "open"  # the hub API
    for denied in (f"tcp:{PUBLIC}:8080", f"tcp:{PRIVATE}:80", f"tcp:{iso_hub.gateway}:{listener.port}"):
        assert "No route to host" in seen[denied], (denied, seen)  # REJECT icmp-admin-prohibited
    # Docker's own DNS for the network works too
    names = server.exec_run(["getent", "hosts", server.name])
    assert names.exit_code == 0 and server.attrs["NetworkSettings"]["Networks"][iso_hub.network]["IPAddress"] in names.output.decode(
    )
    # the hub API answers the server's own token
    api = server.exec_run(["sh", "-c", 'python3 -c "import os, urllib.request as u; '
                           "r = u.Request(os.environ['JUPYTERHUB_API_URL'] + '/user', headers={'Authorization': "
                           "'token ' + os.environ['JUPYTERHUB_API_TOKEN']}); print(u.urlopen(r, timeout=5).status)\""])
    assert api.output.decode().strip() == "200", api.output
    # other networks' containers are not affected
    assert probe(control, [f"tcp:{PUBLIC}:8080"]) == {f"tcp:{PUBLIC}:8080": "open"}


def test_rules_are_installed_kept_across_restart_and_removed_on_clean_shutdown(
        docker_client, git_server, tmp_path_factory):
    hub = new_hub(tmp_path_factory, "r", extra="c.JupyterHub.cleanup_servers = False\n"
                  "c.ResourcePolicy.startup_cpu_grace = 30\n")
    try:
        before = our_iptables_lines(hub.tag, hub.bridge)
        assert not any("BSPAWN" in line for line in before)
        hub.start()
        ready(hub, "keep", {"repo": git_server.url("requirements")})
        # started without its CPU quota (startup_cpu_grace); it is applied once the server is up
        keep = container_of(hub, "keep")
        assert keep.labels["binderspawner.cpu_limit"] == "1.0"
        assert cpu_quota_becomes(keep, 100_000)
        installed = our_iptables_lines(hub.tag, hub.bridge)
        jumps = [line for line in installed if line.startswith(("-A DOCKER-USER", "-A INPUT"))]
        assert sorted(jumps) == sorted([
            f"-A DOCKER-USER -s {subnet(hub)} -i {hub.bridge} -j BSPAWN-FWD-{hub.tag}",
            f"-A INPUT -s {subnet(hub)} -i {hub.bridge} -j BSPAWN-IN-{hub.tag}"])
        assert f":BSPAWN-FWD-{hub.tag} - [0:0]" in installed
        # the hub stops while the server keeps running: the rules stay, and a restart reuses them
        hub.stop()
        assert container_of(hub, "keep").status == "running"
        assert rules_only(our_iptables_lines(hub.tag, hub.bridge)) == rules_only(installed)
        # as if the hub had stopped during the grace: the restarted hub's poll applies the limit
        docker_client.api.update_container(keep.id, cpu_quota=-1)
        assert not cpu_quota_becomes(keep, 100_000, timeout=0)
        hub.start()
        assert cpu_quota_becomes(keep, 100_000)
        assert hub.server_get("keep", "api/status").status_code == 200
        ready(hub, "second", {"repo": git_server.url("requirements")})
        assert rules_only(our_iptables_lines(hub.tag, hub.bridge)) == rules_only(installed)  # no duplicates
        # clean shutdown: servers stopped, hub stopped -> nothing of ours is left
        hub.stop_server("keep")
        hub.stop_server("second")
        hub.stop()
        assert our_iptables_lines(hub.tag, hub.bridge) == before
    finally:
        finish(hub)


def cpu_quota_becomes(container, quota, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.attrs["HostConfig"]["CpuQuota"] == quota:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def subnet(hub):
    return hub.docker.networks.get(hub.network).attrs["IPAM"]["Config"][0]["Subnet"]


def rules_only(lines):
    """iptables-save lines without packet counters (they change as traffic flows)."""
    return [re.sub(r"\[\d+:\d+\]", "", line) for line in lines]


def test_launch_fails_closed_when_rules_cannot_be_installed(git_server, tmp_path_factory):
    """Docker's shared default bridge cannot be confined to the hub's servers: no server starts."""
    hub = new_hub(tmp_path_factory, "f", extra='c.DockerSpawner.network_name = "bridge"\n')
    try:
        hub.start()
        message = refusal(hub, "closed", {"repo": git_server.url("requirements")})
        assert "egress rules could not be installed" in message and "network_name" in message
        assert hub.containers() == []
    finally:
        finish(hub)
