"""No server-side request forgery: which addresses a launch may make the hub contact.

A user chooses the repository host (``git/…``, ``ckan/…``, a Dataverse DOI), so a launch could make
the hub talk to its own loopback, the cloud metadata service or machines on the private network.
Every host the hub contacts for a launch is resolved first and refused when any of its addresses is
loopback, private, link-local, metadata, multicast, reserved or unspecified, unless the admin
allow-listed it (``RepoProvider.allowed_private_hosts``; for GitProvider also an exact, wildcard-free
entry of ``GitProvider.allowed_hosts``).

``refusal`` is the pure decision; ``check_host`` does the asynchronous DNS lookup; ``CheckingResolver``
makes tornado's HTTP client apply the same decision to every connection it opens (redirects
included), so the address checked is the address connected to. git resolves names itself, so for git
the check runs just before git does (a DNS answer that changes in between is not caught).
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


def is_allow_listed(host, addresses, allowed):
    """Does the admin's ``allowed`` list (host patterns, IP addresses or networks) cover ``host``?"""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.strip().lower()
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if fnmatch.fnmatchcase(host, entry.rstrip(".")):
                return True
            continue
        if any(ipaddress.ip_address(a) in network for a in addresses):
            return True
    return False


def refusal(host, addresses, allowed=(), *, setting="RepoProvider.allowed_private_hosts"):
    """The LaunchError to raise for contacting ``host`` at ``addresses`` (pure), or None."""
    if not addresses:
        return LaunchError(f"The host '{host}' could not be found. Check the repository's address.",
                           field="repo", status=502)
    if is_allow_listed(host, addresses, allowed):
        return None
    for address in addresses:
        problem = address_problem(address)
        if problem:
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
    error = refusal(host, await lookup(host), allowed, setting=setting)
    if error:
        raise error


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
