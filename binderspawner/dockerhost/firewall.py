"""Applying the egress rules to a Docker host's user network with iptables (the I/O side of egress.py).

Container-to-host traffic goes through the host's INPUT chain, container-to-elsewhere through
FORWARD, where Docker sends it to DOCKER-USER first. So each user network gets two chains of ours,
``BSPAWN-FWD-<network id>`` (jumped to from DOCKER-USER) and ``BSPAWN-IN-<network id>`` (from INPUT),
and every jump matches only that network's bridge and subnet: other networks' containers never see
our rules.

- Installed idempotently before every server starts (a fingerprint rule says whether the chains are
  current; both chains are written in one iptables-restore transaction).
- Kept when the hub stops while servers keep running (a hub restart finds them in place).
- Removed when the hub exits and no container is left on the network (a clean shutdown), and for
  networks that no longer exist.
- Failing closed: if they cannot be installed, FirewallError, and the spawner starts nothing.
"""

import asyncio
import atexit
import ipaddress
import logging
import re
import socket
import subprocess

from binderspawner.policy.egress import CHAIN_PREFIX, DockerNetwork, chain_names

log = logging.getLogger(__name__)

IPTABLES = "iptables"
IPTABLES_RESTORE = "iptables-restore"
_lock = asyncio.Lock()
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


def describe_network(attrs, hub_ip, hub_port, hub_on_host=None):
    """DockerNetwork from `docker network inspect` attributes; FirewallError when rules cannot be
    confined to this network (Docker's shared default bridge, host/none, IPv6)."""
    name = attrs.get("Name", "?")
    if name in ("bridge", "host", "none") or attrs.get("Driver") != "bridge":
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
    """Install ``rules`` (an egress.IptablesRules) unless they are in place already."""
    async with _lock:
        current = True
        for chain in (rules.forward_chain, rules.input_chain):
            rc, out, _ = await _run(IPTABLES, "-w", "-S", chain)
            if rc != 0 or f"binderspawner:rules:{rules.digest}" not in out:
                current = False
        if not current:
            log.info("installing egress rules %s, %s", rules.forward_chain, rules.input_chain)
            await _check(IPTABLES_RESTORE, "-w", "--noflush", stdin=rules.restore_text())
        for chain, spec in rules.jumps:
            rc, _, _ = await _run(IPTABLES, "-w", "-C", chain, *spec)
            if rc != 0:
                await _check(IPTABLES, "-w", "-I", chain, "1", *spec)


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
        try:
            network = client.inspect_network(network_id)
            if network.get("Containers"):
                log.info("leaving egress rules for %s: containers still run on it", network["Name"])
                return
        except Exception:  # noqa: BLE001 - network gone or engine away: nothing is left to protect
            pass
        remove(rules)

    atexit.register(at_exit)
