"""Where the Docker backend meets the egress policy: the user network's rules for servers, the
default bridge's rules for builds, and the container settings that keep a server from side-stepping
them. The rules are in policy/egress.py (pure), their iptables form in iptables.py, the I/O in
firewall.py."""

import asyncio

import docker

from binderspawner.dockerhost import firewall
from binderspawner.dockerhost.iptables import iptables_rules
from binderspawner.errors import BuildFailed, LaunchError
from binderspawner.policy.egress import EgressPolicy

# A root process in a user container could forge packets (raw sockets) or gain privileges through
# set-uid programs; neither is needed by a notebook server.
DROPPED_CAPABILITIES = ("NET_RAW",)
SECURITY_OPTIONS = ("no-new-privileges",)
BUILD_NETWORK = "bridge"  # Docker's default bridge (docker0): BuildKit's network for RUN steps


def harden(host_config):
    """Add the dropped capabilities and security options to a HostConfig dict (kept: the admin's
    own entries)."""
    for key, values in (("cap_drop", DROPPED_CAPABILITIES), ("security_opt", SECURITY_OPTIONS)):
        current = list(host_config.get(key) or [])
        host_config[key] = current + [v for v in values if v not in current]
    return host_config


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def server_rules(spawner):
    """The iptables rules of the spawner's user network."""
    policy = EgressPolicy(parent=spawner)
    hub_ip, hub_port = firewall.hub_address(spawner.hub_connect_url or spawner.hub.api_url)
    attrs = await spawner.docker("inspect_network", spawner.network_name)
    network = firewall.describe_network(attrs, hub_ip, hub_port)
    return network, iptables_rules(policy.rules(), network)


async def ensure_server_egress(spawner):
    """Install the egress rules for the spawner's network; LaunchError (fail closed) when they
    cannot be installed. Called on every start path."""
    if not EgressPolicy(parent=spawner).enabled:
        return
    try:
        network, rules = await server_rules(spawner)
        if not firewall.installed_here(network.id):
            await _in_thread(firewall.remove_orphans, spawner.client)
        await firewall.ensure(rules)
        firewall.remember(network.id, rules)
        firewall.remove_at_exit_if_idle(spawner.client, network.id, rules)
    except (firewall.FirewallError, OSError, ValueError, docker.errors.APIError) as e:
        spawner.log.error("Egress rules for %s could not be installed: %s", spawner.network_name, e)
        raise LaunchError(
            f"No server was started because its network egress rules could not be installed: {e} "
            "The hub admin must fix this (the hub needs root and iptables on the Docker host), or "
            "turn the rules off with c.EgressPolicy.enabled = False.", status=500) from None


async def reverify_server_egress(spawner):
    """From poll(): repair the rules of a running server's network (e.g. after a firewall
    reload flushed them). Returns False if they are gone and cannot be put back, so the caller
    can stop the server rather than let it run unfenced."""
    if not EgressPolicy(parent=spawner).enabled:
        return True
    try:
        network, rules = await server_rules(spawner)
        if not firewall.verify_due(rules):
            return True
        repaired = await firewall.ensure(rules)
        if repaired:
            spawner.log.warning("Egress rules of network %s were missing (%s); reinstalled",
                                spawner.network_name, ", ".join(repaired))
        firewall.remember(network.id, rules)
        return True
    except (firewall.FirewallError, OSError, ValueError, docker.errors.APIError) as e:
        spawner.log.error("Egress rules for %s could not be verified: %s", spawner.network_name, e)
        return False


def _client():
    return docker.from_env(version="auto").api


async def ensure_build_egress(builder):
    """Install the build rules on the network BuildKit runs build steps on (the default bridge);
    BuildFailed (fail closed) when they cannot be installed. Builds are not allowed the hub API,
    so the hub address only names what to deny."""
    policy = EgressPolicy(config=builder.config)
    if not (policy.enabled and policy.fence_builds):
        return None
    try:
        client = await _in_thread(_client)
        attrs = await _in_thread(client.inspect_network, BUILD_NETWORK)
        hub_ip, hub_port = build_hub_address(builder)
        network = firewall.describe_network(attrs, hub_ip, hub_port, default_bridge=True)
        rules = iptables_rules(policy.build_rules(), network)
        await firewall.ensure(rules)
        return rules
    except (firewall.FirewallError, OSError, ValueError, docker.errors.DockerException) as e:
        builder.log.error("Build egress rules could not be installed: %s", e)
        raise BuildFailed(
            f"No build was started because the build network's egress rules could not be "
            f"installed: {e} The hub admin must fix this (the hub needs root and iptables on the "
            "Docker host), or set c.EgressPolicy.fence_builds = False.") from None


def build_hub_address(builder):
    """The hub API (ip, port) a build must not reach; the default bridge's gateway otherwise
    (the host, which every 'host' rule already covers)."""
    spawner = builder.parent
    url = getattr(spawner, "hub_connect_url", None) or getattr(getattr(spawner, "hub", None), "api_url", None)
    if url:
        return firewall.hub_address(url)
    return "127.0.0.1", 8081
