"""The egress rules (policy/egress.py, backend-neutral) rendered as iptables chains for one Docker
bridge network (pure). firewall.py installs them.

Each network gets two chains of ours: ``BSPAWN-FWD-<network id>`` (jumped to from DOCKER-USER, for
traffic to other hosts and containers) and ``BSPAWN-IN-<network id>`` (from INPUT, for traffic to the
host itself). The jumps match the bridge interface only, never a source address: a root process in a
container can forge any source address, so the first rule of each chain drops packets whose source
is not the network's subnet.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Tuple

REJECT = ("-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
CHAIN_PREFIX = "BSPAWN-"


@dataclass(frozen=True)
class DockerNetwork:
    """What the rules need to know about a bridge network and the hub."""

    id: str  # Docker's network id
    bridge: str  # the bridge interface, e.g. br-0123456789ab or docker0
    subnet: str
    hub_ip: str
    hub_port: int
    hub_on_host: bool = True

    @property
    def tag(self):
        return self.id[:12]


@dataclass(frozen=True)
class IptablesRules:
    """Our two chains (names <= 28 characters) and the jumps into them from Docker's and the
    host's chains. Every jump matches only this network's bridge."""

    forward_chain: str
    input_chain: str
    digest: str
    forward: Tuple[Tuple[str, ...], ...]  # rule specs for forward_chain (after -A chain)
    input: Tuple[Tuple[str, ...], ...]
    jumps: Tuple[Tuple[str, Tuple[str, ...]], ...] = field(default=())  # (chain, rule spec)

    def restore_text(self):
        """Input for ``iptables-restore --noflush``: (re)defines both chains in one transaction, so
        they are never seen half-written. The jumps are added separately (they must not be
        duplicated, which restore cannot check)."""
        lines = ["*filter", f":{self.forward_chain} - [0:0]", f":{self.input_chain} - [0:0]"]
        lines += [" ".join(["-A", self.forward_chain, *spec]) for spec in self.forward]
        lines += [" ".join(["-A", self.input_chain, *spec]) for spec in self.input]
        return "\n".join(lines + ["COMMIT", ""])


def chain_names(network_tag):
    return f"{CHAIN_PREFIX}FWD-{network_tag}", f"{CHAIN_PREFIX}IN-{network_tag}"


def _comment(r):
    return ("-m", "comment", "--comment", f"binderspawner:{r.name}")


def _match(r, dest, protocol):
    spec = ()
    if dest and not dest.endswith("/0"):
        spec += ("-d", dest)
    if protocol:
        spec += ("-p", protocol)
        if len(r.ports) == 1:
            spec += ("--dport", str(r.ports[0]))
        elif r.ports:
            spec += ("-m", "multiport", "--dports", ",".join(map(str, r.ports)))
    return spec


def iptables_rules(rules, net):
    """Render ``rules`` (egress.EgressRule, first match wins) for one Docker network (pure)."""
    forward_chain, input_chain = chain_names(net.tag)
    spoofed = ("!", "-s", net.subnet, "-m", "comment", "--comment", "binderspawner:foreign-source",
               "-j", "DROP")
    established = ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED")
    forward = [spoofed, established + ("-j", "RETURN")]
    inbound = [spoofed, established + ("-j", "ACCEPT")]
    for r in rules:
        if r.to == "hub":
            spec = ("-d", f"{net.hub_ip}/32", "-p", "tcp", "--dport", str(net.hub_port), *_comment(r))
            target = ("-j", "ACCEPT") if r.action == "allow" else REJECT
            (inbound if net.hub_on_host else forward).append(
                spec + (target if net.hub_on_host or r.action == "deny" else ("-j", "RETURN")))
            continue
        for protocol in r.protocols:
            if r.to == "host":
                target = ("-j", "ACCEPT") if r.action == "allow" else REJECT
                inbound.append(_match(r, None, protocol) + _comment(r) + target)
            else:
                target = ("-j", "RETURN") if r.action == "allow" else REJECT
                forward.append(_match(r, r.to, protocol) + _comment(r) + target)
    default = ("-m", "comment", "--comment", "binderspawner:default-deny")
    forward.append(default + REJECT)
    inbound.append(default + REJECT)
    # A fingerprint of everything above, so an installer can tell whether the chains are current.
    digest = hashlib.sha256(repr((forward, inbound)).encode()).hexdigest()[:16]
    marker = ("-m", "comment", "--comment", f"binderspawner:rules:{digest}")
    forward.insert(0, marker)
    inbound.insert(0, marker)
    jumps = (("DOCKER-USER", ("-i", net.bridge, "-j", forward_chain)),
             ("INPUT", ("-i", net.bridge, "-j", input_chain)))
    return IptablesRules(forward_chain, input_chain, digest, tuple(forward), tuple(inbound), jumps)
