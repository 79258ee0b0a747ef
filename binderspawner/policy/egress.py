"""Network egress for user servers as one ordered rule list, rendered per backend (pure).

The defaults follow mybinder.org's production policy: DNS anywhere, web (80, 443) and git (9418)
to public addresses, nothing to the cloud metadata address, private or link-local ranges, and
nothing to the Docker host itself except the hub API. Rules are checked first to last, the first
that matches decides, and what no rule allows is denied.

A rule's destination is one of:
- a CIDR ("0.0.0.0/0", "10.0.0.0/8"): addresses other than the host's own;
- "host": the Docker host (every address of the machine the containers run on);
- "hub": the hub API address and port, whether the hub is on the host or in a container.
CIDR rules never match traffic to the host itself: the host is reachable only through "host" and
"hub" rules, so a broad allow cannot open it by accident.
"""

import ipaddress
from dataclasses import dataclass
from typing import Tuple

from traitlets import Bool, Dict, List, Unicode, validate
from traitlets.config import LoggingConfigurable

ACTIONS = ("allow", "deny")
PROTOCOLS = ("tcp", "udp", "any")
SPECIAL_DESTINATIONS = ("host", "hub")

PRIVATE_RANGES = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local (includes cloud metadata)
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, broadcast
)
METADATA = "169.254.169.254/32"


@dataclass(frozen=True)
class EgressRule:
    name: str
    action: str
    to: str
    protocol: str = "any"
    ports: Tuple[int, ...] = ()
    comment: str = ""

    @property
    def network(self):
        return None if self.to in SPECIAL_DESTINATIONS else ipaddress.ip_network(self.to)

    @property
    def protocols(self):
        """Protocols to match: ports need one, so 'any' with ports means tcp and udp."""
        if self.protocol == "any":
            return ("tcp", "udp") if self.ports else (None,)
        return (self.protocol,)


def rule(name, action, to, protocol="any", ports=(), comment=""):
    """A validated EgressRule; ValueError naming what is wrong (this runs on admin config)."""
    where = f"egress rule {name!r}"
    if not isinstance(name, str) or not name or len(name) > 40:
        raise ValueError(f"{where}: 'name' must be a non-empty string of at most 40 characters")
    if action not in ACTIONS:
        raise ValueError(f"{where}: 'action' must be one of {ACTIONS}, got {action!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"{where}: 'protocol' must be one of {PROTOCOLS}, got {protocol!r}")
    if to not in SPECIAL_DESTINATIONS:
        try:
            net = ipaddress.ip_network(to)
        except ValueError as e:
            raise ValueError(f"{where}: 'to' must be 'host', 'hub' or an IPv4 CIDR: {e}") from None
        if net.version != 4:
            raise ValueError(f"{where}: only IPv4 destinations are supported (got {to!r})")
        to = str(net)
    ports = tuple(int(p) for p in (ports or ()))
    if any(not 0 < p < 65536 for p in ports):
        raise ValueError(f"{where}: ports must be between 1 and 65535")
    if to == "hub" and (ports or protocol != "any"):
        raise ValueError(f"{where}: a 'hub' rule takes no ports or protocol (it is the hub API port)")
    return EgressRule(name, action, to, protocol, ports, str(comment))


def rule_from_dict(d):
    if not isinstance(d, dict):
        raise ValueError(f"an egress rule must be a dict, got {d!r}")
    unknown = set(d) - {"name", "action", "to", "protocol", "ports", "comment"}
    if unknown:
        raise ValueError(f"egress rule {d.get('name')!r}: unknown keys {sorted(unknown)}")
    return rule(d.get("name"), d.get("action"), d.get("to"), d.get("protocol", "any"),
                d.get("ports", ()), d.get("comment", ""))


def default_rules():
    return (
        rule("hub-api", "allow", "hub", comment="the server reports to the hub API"),
        rule("metadata", "deny", METADATA, comment="cloud metadata service"),
        rule("dns", "allow", "0.0.0.0/0", "any", (53,), "DNS, to any resolver"),
        *(rule(f"private-{i}", "deny", cidr, comment="private, local and reserved ranges")
          for i, cidr in enumerate(PRIVATE_RANGES)),
        rule("web", "allow", "0.0.0.0/0", "tcp", (80, 443), "http and https to public addresses"),
        rule("git", "allow", "0.0.0.0/0", "tcp", (9418,), "git:// to public addresses"),
    )


def default_build_rules():
    """Build steps (Dockerfile RUN, postBuild, pip) get the servers' rules, but not the hub API:
    a build has no business with the hub. Package indexes on public addresses stay reachable
    through the 'web' rule; an index on a private address needs a build_extra_rules entry."""
    return (rule("hub-api", "deny", "hub", comment="builds never talk to the hub"),
            *(r for r in default_rules() if r.name != "hub-api"))


def _matches_port(r, protocol, port):
    if r.protocol != "any" and r.protocol != protocol:
        return False
    return not r.ports or port in r.ports


def decide(rules, ip, protocol, port, *, to_host=False, to_hub=False):
    """What ``rules`` do with one packet (pure): (action, rule name), first match wins, "deny",
    "default-deny" when nothing matches. ``to_host``: ``ip`` is one of the host's own addresses;
    ``to_hub``: it is the hub API's address and port. This is the policy table every backend's
    rendering must agree with (the end-to-end matrix test checks it against real traffic)."""
    address = ipaddress.ip_address(ip)
    for r in rules:
        if r.to == "hub":
            hit = to_hub
        elif r.to == "host":
            hit = to_host and _matches_port(r, protocol, port)
        else:
            hit = not to_host and address in r.network and _matches_port(r, protocol, port)
        if hit:
            return r.action, r.name
    return "deny", "default-deny"


def rule_list(base, extra=(), remove=()):
    """The effective rules: ``extra`` first (so admins' rules take precedence), then ``base``
    without the rules named in ``remove`` (a name ending in '*' removes every rule it prefixes)."""
    def removed(r):
        return any(r.name == n or (n.endswith("*") and r.name.startswith(n[:-1])) for n in remove)

    rules = [*extra, *(r for r in base if not removed(r))]
    names = [r.name for r in rules]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"egress rule names must be unique; repeated: {duplicated}")
    return tuple(rules)


# --- Kubernetes NetworkPolicy -------------------------------------------------------------------------


def _peers_for(r, rules_before):
    """The ipBlock peers for an allow rule: its CIDR minus the earlier deny rules inside it (first
    match wins). None if an earlier deny covers it entirely."""
    net = r.network
    excepts = []
    for earlier in rules_before:
        if earlier.action != "deny" or earlier.network is None:
            continue
        if _covers(earlier, r) and net.subnet_of(earlier.network):
            return None
        if earlier.network.subnet_of(net) and earlier.network != net and _covers(earlier, r):
            excepts.append(str(earlier.network))
    block = {"cidr": str(net)}
    nets = {ipaddress.ip_network(c) for c in excepts}
    outermost = sorted(n for n in nets if not any(n != o and n.subnet_of(o) for o in nets))
    if outermost:
        block["except"] = [str(n) for n in outermost]
    return [{"ipBlock": block}]


def _covers(deny, allow):
    """Does the deny rule match every protocol/port the allow rule matches?"""
    if deny.protocol != "any" and deny.protocol != allow.protocol:
        return False
    return not deny.ports or (allow.ports and set(allow.ports) <= set(deny.ports))


def network_policy(rules, *, name="binderspawner-egress", namespace=None,
                   pod_selector=None, hub_selector=None, hub_port=8081):
    """A NetworkPolicy (pure dict) limiting egress of user pods to what ``rules`` allow.

    NetworkPolicies only allow, so a deny becomes an ``except`` in the ipBlocks of the allows after
    it. "host" rules have no equivalent (node addresses are not selectable); the node's addresses
    are usually in the private ranges the defaults deny. "hub" selects the hub pod (z2jh labels).
    """
    pod_selector = pod_selector or {"matchLabels": {"component": "singleuser-server"}}
    hub_selector = hub_selector or {"matchLabels": {"component": "hub"}}
    egress = []
    for i, r in enumerate(rules):
        if r.action != "allow" or r.to == "host":
            continue
        if r.to == "hub":
            egress.append({"to": [{"podSelector": hub_selector}],
                           "ports": [{"protocol": "TCP", "port": hub_port}]})
            continue
        peers = _peers_for(r, rules[:i])
        if peers is None:
            continue
        entry = {"to": peers}
        if r.ports or r.protocol != "any":
            protocols = [p.upper() for p in r.protocols if p]
            entry["ports"] = ([{"protocol": p, "port": port} for p in protocols for port in r.ports]
                              or [{"protocol": p} for p in protocols])
        egress.append(entry)
    metadata = {"name": name, "labels": {"app.kubernetes.io/managed-by": "binderspawner"}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {"podSelector": pod_selector, "policyTypes": ["Egress"], "egress": egress},
    }


# --- the admin's settings -------------------------------------------------------------------------------


class EgressPolicy(LoggingConfigurable):
    """Which network destinations user servers may reach."""

    enabled = Bool(
        True,
        help="""Enforce the egress rules for user servers. On Docker this installs iptables rules
        for the user network (the hub must run as root, on the Docker host, with a user-defined
        bridge network: c.DockerSpawner.network_name); if they cannot be installed, no server
        starts. Set False only where something else filters the containers' traffic.""",
    ).tag(config=True)

    extra_rules = List(
        Dict(),
        help="""Rules checked before the defaults, e.g. to let servers reach a lab database:
        [{"name": "lab-db", "action": "allow", "to": "10.1.2.3/32", "protocol": "tcp",
          "ports": [5432]}]. Keys: name, action (allow|deny), to (an IPv4 CIDR, 'host' or 'hub'),
        protocol (tcp|udp|any), ports, comment.""",
    ).tag(config=True)

    @validate("extra_rules")
    def _valid_extra(self, proposal):
        return [rule_from_dict(d).__dict__ | {"ports": list(rule_from_dict(d).ports)}
                for d in proposal.value]

    remove_rules = List(
        Unicode(),
        help="""Names of default rules to drop, e.g. ["git"] to stop git:// to the internet or
        ["web", "git"] for no internet at all. A name ending in '*' drops every rule it starts
        ('private-*'). Default rules: hub-api, metadata, dns, private-0 ... private-8, web, git.""",
    ).tag(config=True)

    def rules(self):
        extra = [rule_from_dict(d) for d in self.extra_rules]
        return rule_list(default_rules(), extra, self.remove_rules)

    fence_builds = Bool(
        True,
        help="""Enforce egress rules for build steps too (Dockerfile RUN, postBuild, pip installs).
        On Docker, the engine's BuildKit runs build steps on Docker's default bridge (docker0), so
        the build rules are installed for that bridge: every container on the default bridge gets
        them. If they cannot be installed, no build starts. Needs enabled = True.""",
    ).tag(config=True)

    build_extra_rules = List(
        Dict(),
        help="""Rules checked before the build defaults, e.g. for a package index or conda channel
        on a private address: [{"name": "devpi", "action": "allow", "to": "10.1.2.4/32",
        "protocol": "tcp", "ports": [3141]}]. Same keys as extra_rules. Build defaults: the server
        defaults with hub-api denied (indexes on public addresses are reachable through 'web').""",
    ).tag(config=True)

    @validate("build_extra_rules")
    def _valid_build_extra(self, proposal):
        return [rule_from_dict(d).__dict__ | {"ports": list(rule_from_dict(d).ports)}
                for d in proposal.value]

    build_remove_rules = List(
        Unicode(),
        help="""Names of build default rules to drop (as remove_rules, for builds): e.g. ["git"].""",
    ).tag(config=True)

    def build_rules(self):
        extra = [rule_from_dict(d) for d in self.build_extra_rules]
        return rule_list(default_build_rules(), extra, self.build_remove_rules)
