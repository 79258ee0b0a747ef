"""No server-side request forgery: which addresses a launch may make the hub contact.

A user chooses the repository host (``git/…``, ``ckan/…``, a Dataverse DOI), so a launch could make
the hub talk to its own loopback, the cloud metadata service or machines on the private network.
Every host the hub contacts for a launch is resolved first and refused when any of its addresses is
loopback, private, link-local, metadata, multicast, reserved or unspecified, unless the admin
allow-listed it (``RepoProvider.allowed_private_hosts``; for GitProvider also an exact, wildcard-free
entry of ``GitProvider.allowed_hosts``).

``refusal`` is the pure decision; ``check_host`` does the asynchronous DNS lookup; ``CheckingResolver``
makes tornado's HTTP client apply the same decision to every connection it opens (redirects
included), so the address checked is the address connected to. git resolves names itself, so
``checked_addresses`` hands the checked answer to providers.git.git_access, which pins git to it
(``http.curloptResolve``; git:// rewritten to the address): a DNS answer that changes later (DNS
rebinding) is never used. A host is admitted only when every one of its addresses is.
"""

import asyncio
import fnmatch
import ipaddress
import socket

from tornado.netutil import DefaultLoopResolver, Resolver

from binderspawner.errors import LaunchError

# Cloud metadata services that are not covered by the link-local / private ranges.
METADATA_ADDRESSES = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}


def address_problem(address):
    """Why the hub must not contact ``address`` for a user (pure), or None when it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for problem, test in (("a loopback address", ip.is_loopback),
                          ("a link-local address", ip.is_link_local),
                          ("an unspecified address", ip.is_unspecified),
                          ("a multicast address", ip.is_multicast),
                          ("a private address", ip.is_private),
                          ("a reserved address", ip.is_reserved or not ip.is_global)):
        if test:
            return problem
    return None


def _split_allowed(allowed):
    """The admin's list as (host patterns, IP networks)."""
    patterns, networks = [], []
    for entry in allowed:
        entry = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            patterns.append(entry.rstrip("."))
    return patterns, networks


def is_allow_listed(host, addresses, allowed):
    """Does the admin's ``allowed`` list cover ``host`` at every one of ``addresses``?

    A host pattern names the host itself (all its addresses). IP networks must hold **every**
    address: a name with one allow-listed address and one internal one is not admitted, or any
    DNS answer could add the cloud metadata service to a trusted name."""
    host = host.lower().rstrip(".")
    patterns, networks = _split_allowed(allowed)
    if any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns):
        return True
    return bool(addresses) and bool(networks) and all(
        any(ipaddress.ip_address(a) in network for network in networks) for a in addresses)


def address_allow_listed(address, allowed):
    """Is ``address`` inside one of the IP networks of the admin's ``allowed`` list (pure)?"""
    _, networks = _split_allowed(allowed)
    return any(ipaddress.ip_address(address) in network for network in networks)


def refusal(host, addresses, allowed=(), *, setting="RepoProvider.allowed_private_hosts"):
    """The LaunchError to raise for contacting ``host`` at ``addresses`` (pure), or None."""
    if not addresses:
        return LaunchError(f"The host '{host}' could not be found. Check the repository's address.",
                           field="repo", status=502)
    if is_allow_listed(host, addresses, allowed):
        return None
    for address in addresses:
        problem = address_problem(address)
        if problem and not address_allow_listed(address, allowed):
            return LaunchError(
                f"The host '{host}' resolves to {address}, {problem}; this hub does not contact such "
                f"addresses for launches. If it is a trusted server, a hub admin can allow it with "
                f"c.{setting} = ['{host}'].", field="repo", status=403)
    return None


async def lookup(host, port=None):
    """All addresses of ``host`` (asynchronous); [] when the name does not resolve."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return [host.strip("[]")]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({info[4][0].split("%", 1)[0] for info in infos})


async def check_host(host, allowed=(), *, setting="RepoProvider.allowed_private_hosts"):
    """Raise LaunchError unless the hub may contact ``host`` for a launch."""
    await checked_addresses(host, allowed, setting=setting)


async def checked_addresses(host, allowed=(), *, setting="RepoProvider.allowed_private_hosts"):
    """All addresses of ``host``, each one admitted; raises LaunchError otherwise. Callers connect
    to these addresses only (never resolve the name again)."""
    addresses = await lookup(host)
    error = refusal(host, addresses, allowed, setting=setting)
    if error:
        raise error
    return addresses


class CheckingResolver(Resolver):
    """A tornado Resolver that refuses hosts ``refusal`` refuses, for every connection it resolves."""

    def initialize(self, allowed=(), setting="RepoProvider.allowed_private_hosts"):
        self.allowed = tuple(allowed)
        self.setting = setting
        self.resolver = DefaultLoopResolver()

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        answers = await self.resolver.resolve(host, port, family)
        error = refusal(host, [sockaddr[0] for _, sockaddr in answers], self.allowed, setting=self.setting)
        if error:
            raise error
        return answers
