"""No SSRF: binderspawner/providers/hosts.py (pure decisions; DNS only for names that resolve on this
machine: 'localhost' and IP literals), and GitProvider's use of it against the tests' git daemon."""

import pytest

from binderspawner.errors import LaunchError
from binderspawner.providers import GitProvider
from binderspawner.providers.hosts import address_problem, check_host, is_allow_listed, refusal
from tests.support.apifixtures import fresh_provider_caches


@pytest.mark.parametrize("address, problem", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
    ("172.16.5.4", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("100.100.100.200", "metadata"), ("fd00:ec2::254", "metadata"), ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"), ("::ffff:127.0.0.1", "loopback"), ("100.64.0.1", "reserved"),
    ("fc00::1", "private"),
])
def test_internal_addresses(address, problem):
    assert problem in address_problem(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "140.82.112.3", "2606:4700::6810:85e5"])
def test_public_addresses(address):
    assert address_problem(address) is None


def test_allow_list_by_pattern_or_network():
    assert is_allow_listed("gitlab.lab.internal", ["10.0.0.5"], ["*.lab.internal"])
    assert is_allow_listed("git.lab", ["10.1.2.3"], ["10.1.0.0/16"])
    assert is_allow_listed("127.0.0.1", ["127.0.0.1"], ["127.0.0.1"])
    assert not is_allow_listed("evil.example", ["10.9.9.9"], ["10.1.0.0/16", "*.lab.internal"])


def test_refusal_names_host_address_and_setting():
    error = refusal("evil.example", ["93.184.216.34", "169.254.169.254"],
                    setting="CKANProvider.allowed_private_hosts")
    assert error.status_code == 403 and error.field == "repo"
    assert "evil.example" in error.message and "169.254.169.254" in error.message
    assert "c.CKANProvider.allowed_private_hosts = ['evil.example']" in error.message
    assert refusal("gone.invalid", []).status_code == 502
    assert refusal("example.org", ["93.184.216.34"]) is None


async def test_check_host_resolves_names():
    with pytest.raises(LaunchError, match="loopback"):
        await check_host("localhost")
    with pytest.raises(LaunchError, match="loopback"):
        await check_host("127.0.0.2")
    await check_host("localhost", ["localhost"])


async def test_git_provider_refuses_loopback_unless_listed(git_server):
    fresh_provider_caches()
    url = git_server.url("requirements")
    with pytest.raises(LaunchError) as info:
        p = GitProvider()
        await p.resolve(p.parse(url), None)
    assert "GitProvider.allowed_private_hosts" in str(info.value)
    wildcard = GitProvider(allowed_hosts=["127.0.0.*"])  # a pattern admits the URL, not the address
    with pytest.raises(LaunchError):
        await wildcard.resolve(wildcard.parse(url), None)
    for allowed in (GitProvider(allowed_hosts=["127.0.0.1"]),
                    GitProvider(allowed_private_hosts=["127.0.0.1"])):
        resolved = await allowed.resolve(allowed.parse(url), None)
        assert len(resolved.version) == 40
