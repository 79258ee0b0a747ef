"""Isolation end to end: resource limits, quotas and egress rules on a real JupyterHub with the local
Docker engine and iptables.

Network: every destination is created by this module on this machine. A container on the
servers' network stands for "other containers". A network namespace holds one address of each
class the egress rules name: "the internet" (198.18.N.2, from the benchmarking range, N chosen
per run), 10/8,
100.64/10 (carrier-grade NAT), 169.254/16 (link-local), 172.16/12, 192.168/16 and 240/4 (reserved);
before any traffic the test checks that the host routes each to its own veth. Servers in it listen on
every TCP port the rules name (53, 80, 443, 9418) and one they do not (8080), answer DNS on UDP 53
and echo UDP 5353. Listeners on the host's gateway address stand in for the host's other services; a
control container on a network of its own (without our rules) shows that every denied destination
is in fact up. Not covered by traffic: 0.0.0.0/8 and
127/8 (a container's own loopback never reaches the bridge), 224/4 (multicast, no TCP). Nothing is
sent anywhere else.
"""

import contextlib
import ipaddress
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
from binderspawner.policy import egress
from tests.support import EXAMPLES
from tests.support.hub import Hub

GiB, MiB = 1024**3, 1024**2
RUN = uuid.uuid4().hex[:6]
NET3 = 100 + int(RUN, 16) % 50  # a third octet per run, so concurrent runs never share an address
PUBLIC, PRIVATE = f"198.18.{NET3}.2", f"10.213.{NET3}.2"  # 198.18/15: benchmarking, not a private range
NS_ADDRESSES = {"public": PUBLIC, "10/8": PRIVATE, "100.64/10": f"100.64.{NET3}.2",
                "169.254/16": f"169.254.{NET3}.2", "172.16/12": f"172.16.{NET3}.2",
                "192.168/16": f"192.168.{NET3}.2", "240/4": f"240.0.{NET3}.2"}
TCP_PORTS, UDP_PORTS = (53, 80, 443, 9418, 8080), (53, 5353)
SPOOFED = f"198.18.{NET3}.77"  # a source address no container on the hub's network has
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
c.SpecControl.spec_config = [{{"pattern": r"^git/[^/]*%2Fisoquota/", "config": {{"quota": 2}}}}]
"""

# --- local stand-ins ---------------------------------------------------------------------------------

NS_SERVERS = textwrap.dedent("""
    import socket, struct, sys, threading
    addresses, sink = sys.argv[1].split(","), sys.argv[2]
    def tcp(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64)
        while True:
            c, _ = s.accept(); c.sendall(b"hello %d\\n" % port); c.close()
    def dns(address):  # answers every A query with 198.51.100.2, from the address asked
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((address, 53))
        while True:
            q, addr = s.recvfrom(512)
            end = q.index(b"\\0", 12) + 5
            answer = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("198.51.100.2")
            s.sendto(q[:2] + b"\\x81\\x80" + q[4:6] + b"\\x00\\x01\\x00\\x00\\x00\\x00" + q[12:end] + answer, addr)
    def echo(address):  # echoes UDP 5353 and notes every datagram's source (the spoofing test reads it)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((address, 5353))
        while True:
            data, addr = s.recvfrom(512)
            with open(sink, "a") as f:
                f.write("%s %s\\n" % (addr[0], data.decode(errors="replace")))
            s.sendto(data, addr)
    for port in (53, 80, 443, 9418, 8080):
        threading.Thread(target=tcp, args=(port,), daemon=True).start()
    for address in addresses:
        threading.Thread(target=dns, args=(address,), daemon=True).start()
        threading.Thread(target=echo, args=(address,), daemon=True).start()
    threading.Event().wait()
""")

# A container of the test's own: listens on the same ports ("other containers"), probes as control.
PEER_SERVERS = textwrap.dedent("""
    import socket, threading
    def tcp(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64)
        while True:
            c, _ = s.accept(); c.close()
    def udp(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
        while True:
            data, addr = s.recvfrom(512)
            if port == 53:  # a minimal DNS answer: the probe checks the id and the address
                end = data.index(b"\\0", 12) + 5
                data = (data[:2] + b"\\x81\\x80" + data[4:6] + b"\\x00\\x01\\x00\\x00\\x00\\x00" + data[12:end]
                        + b"\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04"
                        + socket.inet_aton("198.51.100.2"))
            s.sendto(data, addr)
    for port in (53, 80, 443, 9418, 8080):
        threading.Thread(target=tcp, args=(port,), daemon=True).start()
    threading.Thread(target=udp, args=(5353,), daemon=True).start()
    udp(53)
""")

# Run inside a container: try each destination, print JSON {"proto:host:port": "open"|error}.
PROBE = textwrap.dedent("""
    import json, socket, struct, sys
    out = {}
    for target in sys.argv[1:]:
        kind, host, port = target.split(":")
        try:
            if kind == "tcp":
                with socket.create_connection((host, int(port)), timeout=3):
                    pass
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
                s.connect((host, int(port)))  # connected: an ICMP reject is reported
                if port == "53":
                    q = (struct.pack(">HHHHHH", 4242, 0x100, 1, 0, 0, 0) + b"\\x07example\\x04test\\x00"
                         + struct.pack(">HH", 1, 1))
                    s.send(q); reply = s.recv(512)
                    assert reply[:2] == q[:2] and socket.inet_ntoa(reply[-4:]) == "198.51.100.2"
                else:
                    s.send(b"probe"); assert s.recv(512) == b"probe"
            out[target] = "open"
        except Exception as e:
            out[target] = type(e).__name__ + ": " + str(e)
    for target, seen in out.items():
        print("PROBE", target, seen)
    print(json.dumps(out))
""")

# Run as root with raw sockets (an exec with NET_RAW): one UDP datagram from a forged source.
SPOOF = textwrap.dedent("""
    import socket, struct, sys
    src, dst, port, payload = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
    udp = struct.pack(">HHHH", 40000, port, 8 + len(payload), 0) + payload
    def checksum(data):
        data += b"\\0" * (len(data) % 2)
        total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        total = (total >> 16) + (total & 0xffff); total += total >> 16
        return ~total & 0xffff
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack(">H", checksum(header)) + header[12:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(header + udp, (dst, 0))
    print("sent")
""")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def standins(tmp_path_factory, docker_client, iso_hub):
    """A network namespace with one address of each class, reachable from the host only through our
    veth, and servers listening in it; yields the file where UDP 5353 notes each datagram's source."""
    proc, routed = None, []
    # Docker hands out 192.168/16 subnets too: take an address no network here has (a server would
    # take it for a neighbour on its own bridge).
    subnets = [ipaddress.ip_network(c["Subnet"]) for n in docker_client.networks.list()
               for c in (n.attrs.get("IPAM") or {}).get("Config") or [] if ":" not in c.get("Subnet", ":")]
    NS_ADDRESSES["192.168/16"] = next(
        a for a in (f"192.168.{third}.2" for third in range(NET3, 256))
        if not any(ipaddress.ip_address(a) in net for net in subnets))
    sink = str(tmp_path_factory.mktemp("ns") / "udp-sources.txt")
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        sh("ip", "link", "set", VETH_NS, "netns", NS)
        sh("ip", "addr", "add", f"198.18.{NET3}.1/24", "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{PUBLIC}/24", "dev", VETH_NS)
        for address in NS_ADDRESSES.values():
            if address != PUBLIC:
                sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{address}/32", "dev", VETH_NS)
        for cmd in (["ip", "link", "set", VETH_NS, "up"], ["ip", "link", "set", "lo", "up"],
                    ["ip", "route", "add", "default", "via", f"198.18.{NET3}.1"]):
            sh("ip", "netns", "exec", NS, *cmd)
        for address in NS_ADDRESSES.values():
            if address != PUBLIC:
                sh("ip", "route", "add", f"{address}/32", "dev", VETH_HOST)
                routed.append(address)
        for address in NS_ADDRESSES.values():  # never send anything that could leave this machine
            route = sh("ip", "route", "get", address)
            assert f"dev {VETH_HOST}" in route, f"{address} is not routed to our namespace: {route}"
        proc = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c", NS_SERVERS,
                                 ",".join(NS_ADDRESSES.values()), sink])
        deadline = time.monotonic() + 20
        while sh("ip", "netns", "exec", NS, "ss", "-lnu", check=False).count(":5353") < len(NS_ADDRESSES):
            assert time.monotonic() < deadline and proc.poll() is None, "stand-in servers did not start"
            time.sleep(0.1)
        yield sink
    finally:
        if proc:
            proc.kill()
            proc.wait()
        for address in routed:
            sh("ip", "route", "del", f"{address}/32", check=False)
        sh("ip", "link", "del", VETH_HOST, check=False)
        sh("ip", "netns", "del", NS, check=False)


class HostListener:
    """TCP and UDP (echo) servers on one of the host's addresses: 'the host's other ports'."""

    def __init__(self, ip):
        self.sock = socket.socket()
        self.sock.bind((ip, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((ip, 0))
        self.udp_port = self.udp.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        threading.Thread(target=self._echo, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.sendall(b"host\n")
            conn.close()

    def _echo(self):
        while True:
            try:
                data, addr = self.udp.recvfrom(512)
                self.udp.sendto(data, addr)
            except OSError:
                return

    def close(self):
        self.sock.close()
        self.udp.close()


def probe(container, targets):
    result = container.exec_run(["python3", "-c", PROBE, *targets])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.decode().strip().splitlines()[-1])


def matrix(hub, peer_ip, listener):
    """{target: (rule decision)} for every destination class x protocol and port the rules name,
    each target's expected outcome from the pure policy table (egress.decide)."""
    targets = {}
    for ip in [*NS_ADDRESSES.values(), peer_ip]:
        targets.update({f"tcp:{ip}:{port}": (ip, "tcp", port, False, False) for port in TCP_PORTS})
        targets.update({f"udp:{ip}:{port}": (ip, "udp", port, False, False) for port in UDP_PORTS})
    targets[f"tcp:{hub.gateway}:{listener.port}"] = (hub.gateway, "tcp", listener.port, True, False)
    targets[f"udp:{hub.gateway}:{listener.udp_port}"] = (hub.gateway, "udp", listener.udp_port, True, False)
    targets[f"tcp:{hub.gateway}:{hub.hub_port}"] = (hub.gateway, "tcp", hub.hub_port, True, True)
    return targets


def expected(rules, targets):
    return {t: egress.decide(rules, ip, proto, port, to_host=host, to_hub=hub)[0]
            for t, (ip, proto, port, host, hub) in targets.items()}


def outcomes(seen):
    """'allow' for what answered, 'deny' for what did not (the control saw each one answer)."""
    return {t: "allow" if v == "open" else "deny" for t, v in seen.items()}


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
        firewall.remove_chains_of(build_network_tag(docker_client))  # the build rules on docker0


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
    try:
        with listening_container(docker_client, f"bsiso-ctl-{RUN}", network.name) as container:
            yield container
    finally:
        network.remove()


@pytest.fixture(scope="module")
def peer(docker_client, iso_hub):
    """A container of the test's own on the servers' network: the 'other containers' class."""
    with listening_container(docker_client, f"bsiso-peer-{RUN}", iso_hub.network) as container:
        yield container


@contextlib.contextmanager
def listening_container(docker_client, name, network):
    """A container running PEER_SERVERS on ``network``, once it listens; its ``ip`` set."""
    container = docker_client.containers.run("binderspawner-base:bookworm", ["python3", "-c", PEER_SERVERS],
                                             detach=True, name=name, network=network)
    try:
        container.reload()
        container.ip = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        deadline = time.monotonic() + 20
        while container.exec_run(["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080))"]
                                 ).exit_code != 0:
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.2)
        yield container
    finally:
        container.remove(force=True)


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
    # another spelling of the same repository is the same repository (issue 14 item 17)
    message = refusal(iso_hub, "q3", {"repo": repo["repo"].removesuffix(".git") + "/"})
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


def test_egress_policy_matrix(iso_hub, server, control, peer, standins):
    """Every destination class x every protocol and port the rules name, from a real server:
    each outcome is what the policy table (egress.decide on the hub's rules) says."""
    listener = HostListener(iso_hub.gateway)
    try:
        targets = matrix(iso_hub, peer.ip, listener)
        up = probe(control, [t for t in targets if f":{peer.ip}:" not in t])
        up.update(probe(peer, [t.replace(peer.ip, "127.0.0.1") for t in targets if f":{peer.ip}:" in t]))
        assert set(up.values()) == {"open"}, json.dumps(up)  # every destination is there
        seen = probe(server, list(targets))
        want = expected(egress.EgressPolicy().rules(), targets)
        assert outcomes(seen) == want, json.dumps(
            {t: (want[t], seen[t]) for t in targets if outcomes(seen)[t] != want[t]})
        for target, outcome in want.items():
            if outcome == "deny" and target.startswith("tcp:"):
                assert "No route to host" in seen[target], (target, seen[target])  # REJECT, not a timeout
        # both outcomes are exercised, for each protocol
        assert {(t[:3], o) for t, o in want.items()} == {("tcp", "allow"), ("tcp", "deny"), ("udp", "allow"),
                                                         ("udp", "deny")}
    finally:
        listener.close()
    # Docker's own DNS for the network works too
    names = server.exec_run(["getent", "hosts", server.name])
    ip = server.attrs["NetworkSettings"]["Networks"][iso_hub.network]["IPAddress"]
    assert names.exit_code == 0 and ip in names.output.decode()
    # the hub API answers the server's own token
    api = server.exec_run(["sh", "-c", 'python3 -c "import os, urllib.request as u; '
                           "r = u.Request(os.environ['JUPYTERHUB_API_URL'] + '/user', headers={'Authorization': "
                           "'token ' + os.environ['JUPYTERHUB_API_TOKEN']}); print(u.urlopen(r, timeout=5).status)\""])
    assert api.output.decode().strip() == "200", api.output
    # other networks' containers are not affected
    assert probe(control, [f"tcp:{PUBLIC}:8080"]) == {f"tcp:{PUBLIC}:8080": "open"}


def test_servers_cannot_forge_their_source_address(iso_hub, server, control, standins):
    """No raw sockets for the server, even as root; and a packet with a forged source (sent from the
    server's network namespace by a process with raw sockets) is dropped, while the same packet
    from a container without our rules arrives (the sink works)."""
    host = server.attrs["HostConfig"]
    assert "NET_RAW" in host["CapDrop"] and "no-new-privileges" in host["SecurityOpt"]
    raw = server.exec_run(["python3", "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, "
                           "socket.IPPROTO_RAW)"], user="root")
    assert raw.exit_code != 0 and b"PermissionError" in raw.output, raw.output
    assert b"NoNewPrivs:\t1" in server.exec_run(["cat", "/proc/self/status"]).output
    # The server's datagram first, then the control's, to the same socket: once the control's has
    # arrived, the server's would have arrived before it (no fixed wait standing in for that).
    for container, word in ((server, f"server-{RUN}"), (control, f"control-{RUN}")):
        # root with raw sockets in the container's network namespace: what a server with NET_RAW
        # could do (entered from the host, since the container itself can no longer gain it)
        container.reload()
        sent = sh("nsenter", "-t", str(container.attrs["State"]["Pid"]), "-n", sys.executable, "-c", SPOOF,
                  SPOOFED, PUBLIC, "5353", word)
        assert sent.strip() == "sent", sent
    deadline = time.monotonic() + 30
    while f"control-{RUN}" not in open(standins).read():
        assert time.monotonic() < deadline, "the control's forged datagram never arrived"
        time.sleep(0.1)
    notes = open(standins).read()
    assert f"{SPOOFED} control-{RUN}" in notes
    assert f"server-{RUN}" not in notes, notes


def test_build_steps_are_fenced_by_the_build_rules(
        iso_hub, server, peer, standins, git_server, docker_client):
    """The same matrix from a Dockerfile RUN step (BuildKit runs it on Docker's default bridge): each
    outcome is what the build rules say: the servers' rules, but no hub API."""
    listener = HostListener(iso_hub.gateway)
    try:
        targets = matrix(iso_hub, peer.ip, listener)
        name = f"fenced-build-{RUN}"
        git_server.add_repo(name, files={
            "probe.py": PROBE,
            "Dockerfile": "FROM binderspawner-base:bookworm\nCOPY probe.py /tmp/probe.py\n"
                          f"RUN python3 /tmp/probe.py {' '.join(targets)} && echo {RUN} && false\n"})
        r, events = iso_hub.launch("builder", {"repo": git_server.url(name)})
        seen = {}
        for event in events:
            for line in event.get("message", "").splitlines():
                found = re.search(r"PROBE (\S+) (.*)$", line)
                if found:
                    seen[found.group(1)] = found.group(2).strip()
        assert set(seen) == set(targets), [e.get("message") for e in events][-30:]
        want = expected(egress.EgressPolicy().build_rules(), targets)
        # The peer is on another Docker network than the build (docker0): Docker's own network
        # isolation drops that traffic whatever our rules allow, so the outcome is stricter.
        want.update({t: "deny" for t in targets if f":{peer.ip}:" in t})
        assert outcomes(seen) == want, json.dumps(
            {t: (want[t], seen[t]) for t in targets if outcomes(seen)[t] != want[t]})
        assert want[f"tcp:{iso_hub.gateway}:{iso_hub.hub_port}"] == "deny" and want[f"tcp:{PUBLIC}:443"] == "allow"
        assert events[-1].get("failed")  # the step ends with `false`: nothing else is built
    finally:
        listener.close()
    jumps = sh("iptables", "-S", "DOCKER-USER")
    assert f"-A DOCKER-USER -i docker0 -j BSPAWN-FWD-{build_network_tag(docker_client)}" in jumps


def test_a_build_cannot_use_another_launchs_image(iso_hub, server, git_server):
    """The server's image was built by this hub for another launch: a Dockerfile may not build on
    it, copy from it or mount it, by name or through an ARG, nor bring its own frontend."""
    image = server.attrs["Config"]["Image"]
    dockerfiles = {
        "from": f"FROM {image}\n",
        "copy": f"FROM binderspawner-base:bookworm\nCOPY --from={image} /home /stolen\n",
        "arg": f"ARG IMG={image}\nFROM $IMG\n",
    }
    for kind, dockerfile in dockerfiles.items():
        name = f"steal-{kind}-{RUN}"
        git_server.add_repo(name, files={"Dockerfile": dockerfile})
        message = refusal(iso_hub, f"thief-{kind}", {"repo": git_server.url(name)})
        assert "This hub does not build this Dockerfile" in message, (kind, message)
    assert [c for c in iso_hub.containers() if "JUPYTERHUB_USER=thief" in " ".join(c.attrs["Config"]["Env"])] == []


def build_network_tag(docker_client):
    return docker_client.networks.get("bridge").id[:12]


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
            f"-A DOCKER-USER -i {hub.bridge} -j BSPAWN-FWD-{hub.tag}",
            f"-A INPUT -i {hub.bridge} -j BSPAWN-IN-{hub.tag}"])
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
