"""Setting up a single Docker host: the network user servers join, and the hub address on it."""

import docker


def ensure_network(name="binderspawner"):
    """Create the bridge network ``name`` if missing; return its gateway address.

    The hub's API must listen on this address (``c.JupyterHub.hub_ip``) so that servers on the
    network can reach it, while the public proxy stays on 127.0.0.1 or the host's address.
    """
    client = docker.from_env(version="auto")
    try:
        network = client.networks.get(name)
    except docker.errors.NotFound:
        network = client.networks.create(name, driver="bridge", labels={"binderspawner.network": name})
    network.reload()
    return network.attrs["IPAM"]["Config"][0]["Gateway"]
