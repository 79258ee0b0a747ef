"""Pure decisions behind git_access (providers/git.py) and the all-addresses rule (hosts.py):
where a member's token may travel, how git is pinned and kept from redirects (issue 14.1, 5, 7).
The same rules run against real git servers in tests/integration/test_git_credentials.py."""

import pytest

from binderspawner.providers.git import access_config, credential_url, credentials_problem
from binderspawner.providers.hosts import refusal


@pytest.mark.parametrize("url, addresses, marked, allowed", [
    ("https://git.lab.example/r.git", ["192.0.2.7"], (), True),
    ("http://127.0.0.1:8080/r.git", ["127.0.0.1"], (), True),
    ("http://localhost/r.git", ["127.0.0.1", "::1"], (), True),
    ("http://github.com/org/r", ["140.82.112.3"], (), False),
    ("http://git.lab.example/r.git", ["10.0.0.5"], (), False),
    ("http://git.lab.example/r.git", ["10.0.0.5"], ("*.lab.example",), True),
    ("http://localhost/r.git", ["127.0.0.1", "10.0.0.5"], (), False),
    ("git://127.0.0.1/r.git", ["127.0.0.1"], (), False),
])
def test_credentials_over_plain_http_only_to_loopback_or_marked_hosts(url, addresses, marked, allowed):
    assert (credentials_problem(url, addresses, marked) is None) is allowed


def test_pinning_config_for_each_scheme():
    assert ("http.curloptResolve", "git.example:443:192.0.2.7") in access_config(
        "https://git.example/r.git", address="192.0.2.7")
    assert ("url.git://[2001:db8::1]:9418/.insteadOf", "git://git.example/") in access_config(
        "git://git.example/r.git", address="2001:db8::1")
    assert ("http.followRedirects", "false") in access_config("https://127.0.0.1/r.git")


@pytest.mark.parametrize("addresses, allowed", [
    (["10.1.2.3", "169.254.169.254"], ["10.1.0.0/16"]),
    (["127.0.0.1", "10.0.0.1"], ["127.0.0.1"]),
    (["192.168.1.5", "100.100.100.200"], ["192.168.0.0/16"]),
])
def test_a_host_is_admitted_only_if_all_its_addresses_are(addresses, allowed):
    assert refusal("git.example", addresses, allowed) is not None
    assert refusal("git.example", addresses[:1], allowed) is None


def test_the_credential_url_is_what_git_asks_the_helper_about():
    assert credential_url("https://git.example:8443/org/my%20repo.git") == \
        "https://git.example:8443/org/my repo.git"
    assert credential_url("http://127.0.0.1:9000/r.git/") == "http://127.0.0.1:9000/r.git"


def test_credentials_go_to_exactly_one_url():
    entries = dict(access_config("https://git.example/org/r.git", credentials=True))
    assert ("credential.helper", "") in access_config("https://git.example/org/r.git", credentials=True)
    assert "credential.https://git.example/org/r.git.helper" in entries
    assert entries["credential.useHttpPath"] == "true"
    assert not any("helper" in k and k != "credential.helper"
                   for k, _ in access_config("https://git.example/org/r.git"))
