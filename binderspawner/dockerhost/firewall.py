"""Applying the egress rules to a Docker host's bridge networks with iptables (the I/O side of
iptables.py, which renders them).

- User servers: the user network's chains are ensured on every start path (a new container, a
  stopped one started again) and re-verified while servers run (from poll(), at most every
  ``VERIFY_INTERVAL`` seconds), so a firewall reload that flushed them is repaired.
- Builds: the engine's built-in BuildKit runs build steps on Docker's default bridge (docker0);
  its chains are ensured before every build.
- Kept when the hub stops while servers keep running (a hub restart finds them in place).
- Removed when the hub exits and the engine says no container is left on the network, and for
  networks the engine says no longer exist; never when the engine cannot be asked.
- Failing closed: if they cannot be installed, FirewallError, and nothing starts.
"""

import asyncio
import atexit
import ipaddress
import logging
import re
import socket
import subprocess
import time

import docker

from binderspawner.dockerhost.iptables import CHAIN_PREFIX, DockerNetwork, chain_names

log = logging.getLogger(__name__)

IPTABLES = "iptables"
IPTABLES_RESTORE = "iptables-restore"
_lock = asyncio.Lock()
_installed = {}  # network id -> IptablesRules this process installed
_atexit_registered = set()


class FirewallError(RuntimeError):
    """The rules could not be installed or checked; the message says what to fix."""


# --- what the network looks like (Docker API) --------------------------------------------------------


def is_local_address(ip):
    """Is ``ip`` one of this host's own addresses? (Binding to it works only if it is.)"""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def describe_network(attrs, hub_ip, hub_port, hub_on_host=None, default_bridge=False):
    """DockerNetwork from `docker network inspect` attributes; FirewallError when rules cannot be
    confined to this network (Docker's shared default bridge, host/none, IPv6). The default bridge
    is accepted with ``default_bridge`` only: it is where BuildKit runs build steps."""
    name = attrs.get("Name", "?")
    shared = ("host", "none") if default_bridge else ("bridge", "host", "none")
    if name in shared or attrs.get("Driver") != "bridge":
        raise FirewallError(
            f"egress rules need a bridge network of the hub's own, but user servers use {name!r} "
            f"(driver {attrs.get('Driver')!r}). Set c.DockerSpawner.network_name to a user-defined "
            "bridge network (binderspawner.dockerhost.network.ensure_network creates one).")
    if attrs.get("EnableIPv6"):
        raise FirewallError(f"network {name!r} has IPv6 enabled; binderspawner's egress rules cover "
                            "IPv4 only. Use a network without IPv6.")
    configs = [c for c in (attrs.get("IPAM") or {}).get("Config") or [] if c.get("Subnet")]
    if len(configs) != 1 or ipaddress.ip_network(configs[0]["Subnet"]).version != 4:
        raise FirewallError(f"network {name!r} must have exactly one IPv4 subnet, has {configs}.")
    bridge = (attrs.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{attrs['Id'][:12]}"
    if hub_on_host is None:
        hub_on_host = is_local_address(hub_ip)
    return DockerNetwork(id=attrs["Id"], bridge=bridge, subnet=configs[0]["Subnet"],
                         hub_ip=hub_ip, hub_port=int(hub_port), hub_on_host=hub_on_host)


def hub_address(api_url):
    """(ip, port) the servers use for the hub API; a host name is resolved here, on the hub."""
    from urllib.parse import urlparse

    url = urlparse(api_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        ip = str(ipaddress.ip_address(url.hostname))
    except ValueError:
        ip = socket.gethostbyname(url.hostname)
    return ip, port


# --- iptables ---------------------------------------------------------------------------------------------


async def _run(*args, stdin=None):
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise FirewallError(f"cannot run {args[0]}: {e}. Install iptables (scripts/provision.sh).") from None
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def _check(*args, stdin=None):
    rc, out, err = await _run(*args, stdin=stdin)
    if rc != 0:
        raise FirewallError(f"`{' '.join(args[:4])} ...` failed ({rc}): {err.strip() or out.strip()}")
    return out


async def ensure(rules):
    """Install ``rules`` (an iptables.IptablesRules) unless they are in place already; returns
    what had to be (re)installed (empty when everything was current)."""
    repaired = []
    async with _lock:
        current = True
        for chain in (rules.forward_chain, rules.input_chain):
            rc, out, _ = await _run(IPTABLES, "-w", "-S", chain)
            if rc != 0 or f"binderspawner:rules:{rules.digest}" not in out:
                current = False
        if not current:
            log.info("installing egress rules %s, %s", rules.forward_chain, rules.input_chain)
            await _check(IPTABLES_RESTORE, "-w", "--noflush", stdin=rules.restore_text())
            repaired.append("chains")
        for chain, spec in rules.jumps:
            rc, _, _ = await _run(IPTABLES, "-w", "-C", chain, *spec)
            if rc != 0:
                await _check(IPTABLES, "-w", "-I", chain, "1", *spec)
                repaired.append(f"jump from {chain}")
        _verified[rules.forward_chain] = time.monotonic()
    return repaired


def installed_here(network_id):
    """Has this process installed rules for the network (so orphans were already swept)?"""
    return network_id in _installed


def remember(network_id, rules):
    _installed[network_id] = rules


VERIFY_INTERVAL = 10.0
_verified = {}  # forward chain -> when ensure() last checked it


def verify_due(rules, now=None):
    """Has ``rules``' last check aged past VERIFY_INTERVAL? (poll() runs per server; this keeps
    the iptables calls per network, not per server.)"""
    now = time.monotonic() if now is None else now
    return now - _verified.get(rules.forward_chain, float("-inf")) >= VERIFY_INTERVAL


def remove(rules):
    """Take the jumps out and delete both chains (synchronous: it also runs at exit)."""
    for chain, spec in rules.jumps:
        while subprocess.run([IPTABLES, "-w", "-D", chain, *spec], capture_output=True).returncode == 0:
            pass
    for chain in (rules.forward_chain, rules.input_chain):
        subprocess.run([IPTABLES, "-w", "-F", chain], capture_output=True)
        subprocess.run([IPTABLES, "-w", "-X", chain], capture_output=True)


def our_chains():
    """{network tag: [chain names]} of every binderspawner chain on this host."""
    out = subprocess.run([IPTABLES, "-w", "-S"], capture_output=True, text=True).stdout
    chains = {}
    for match in re.finditer(rf"^-N ({re.escape(CHAIN_PREFIX)}(?:FWD|IN)-([0-9a-f]+))$", out, re.M):
        chains.setdefault(match.group(2), []).append(match.group(1))
    return chains


def remove_chains_of(tag):
    """Remove the chains (and the jumps to them) of network ``tag``, whatever their jump's match."""
    for chain_name in chain_names(tag):
        for parent in ("DOCKER-USER", "INPUT"):
            out = subprocess.run([IPTABLES, "-w", "-S", parent], capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith("-A ") and line.split()[-1] == chain_name and "-j" in line.split():
                    subprocess.run([IPTABLES, "-w", "-D", *line.split()[1:]], capture_output=True)
        subprocess.run([IPTABLES, "-w", "-F", chain_name], capture_output=True)
        subprocess.run([IPTABLES, "-w", "-X", chain_name], capture_output=True)


def remove_orphans(client):
    """Remove chains of ours whose Docker network is gone (a hub killed without cleaning up).
    ``client`` is a low-level docker.APIClient, as DockerSpawner's."""
    existing = {n["Id"][:12] for n in client.networks()}
    removed = []
    for tag in our_chains():
        if tag not in existing:
            remove_chains_of(tag)
            removed.append(tag)
    return removed


def remove_at_exit_if_idle(client, network_id, rules):
    """At hub exit, remove the rules if no container is left on the network (a clean shutdown);
    leave them for the servers that keep running otherwise (cleanup_servers = False)."""
    if network_id in _atexit_registered:
        return
    _atexit_registered.add(network_id)

    def at_exit():
        if network_is_idle(client, network_id):
            remove(rules)
        else:
            log.info("leaving egress rules for network %s in place", network_id[:12])

    atexit.register(at_exit)


def network_is_idle(client, network_id):
    """True only when the engine says the network has no container or is gone; False when it
    has containers or cannot be asked (rules are never removed blind)."""
    try:
        return not client.inspect_network(network_id).get("Containers")
    except docker.errors.NotFound:
        return True
    except Exception as e:  # noqa: BLE001 - engine away: keep the rules
        log.warning("cannot ask the engine about network %s (%s); keeping its egress rules",
                    network_id[:12], e)
        return False
