"""Resource policy, quotas and egress rules as pure data (policy.py, quotas.py, egress.py).

No Docker, no network. The NetworkPolicy is checked against the official Kubernetes schema
(kubernetes-validate, offline) and against a manifest written out by hand; no Kubernetes API
server runs here.
"""

from types import SimpleNamespace

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binderspawner.policy import egress
from binderspawner.errors import LaunchError
from binderspawner.dockerhost import iptables
from binderspawner.dockerhost.fence import harden
from binderspawner.dockerhost.firewall import FirewallError, describe_network
from binderspawner.policy.resources import (
    GiB,
    MiB,
    ResourcePolicy,
    Resources,
    docker_host_config,
    group_settings,
    kubernetes_resources,
    parse_bytes,
    resolve_resources,
    writable_layer_support,
)
from binderspawner.policy.quotas import Counts, QuotaLimits, check_quota, count_servers, limits_for

K8S_VERSION = kubernetes_validate.utils.latest_version()

# --- resources -----------------------------------------------------------------------------------


def test_defaults_are_mybinder_limits_and_render_to_docker_host_config():
    config = docker_host_config(Resources())
    assert config == {"mem_limit": GiB, "memswap_limit": GiB, "cpu_period": 100_000,
                      "cpu_quota": 100_000, "pids_limit": 1024}


def test_guarantees_swap_and_disk_render_for_docker():
    r = Resources(cpu_limit=2, mem_limit=2 * GiB, swap=512 * MiB, cpu_guarantee=0.5,
                  mem_guarantee=GiB, disk_limit=10 * GiB, pids_limit=None)
    config = docker_host_config(r)
    assert config["memswap_limit"] == 2 * GiB + 512 * MiB
    assert config["cpu_quota"] == 200_000
    assert config["mem_reservation"] == GiB
    assert config["cpu_shares"] == 512
    assert config["storage_opt"] == {"size": str(10 * GiB)}
    assert "pids_limit" not in config


def test_kubernetes_requests_and_limits():
    r = Resources(cpu_limit=1.5, mem_limit=GiB, cpu_guarantee=0.25, mem_guarantee=512 * MiB,
                  disk_limit=GiB)
    assert kubernetes_resources(r) == {
        "requests": {"cpu": "250m", "memory": str(512 * MiB)},
        "limits": {"cpu": "1500m", "memory": str(GiB), "ephemeral-storage": str(GiB)},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "notebook", "image": "x", "resources": kubernetes_resources(r)}]}}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert kubernetes_resources(Resources(cpu_limit=None, mem_limit=None)) == {}


@pytest.mark.parametrize("text, value", [("1G", GiB), ("512M", 512 * MiB), ("1.5G", GiB * 3 // 2),
                                         ("2GiB", 2 * GiB), (1234, 1234), ("4096", 4096)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("bad", ["lots", "", None, True, "1X"])
def test_parse_bytes_refuses(bad):
    with pytest.raises(ValueError):
        parse_bytes(bad)


def policy(**kw):
    return ResourcePolicy(
        sizes={"small": {"cpu_limit": 0.5, "mem_limit": "512M", "description": "half"},
               "large": {"cpu_limit": 2, "mem_limit": "2G"}},
        max_cpu_limit=1, max_mem_limit="1G",
        group_config={"lab": {"max_cpu_limit": 2, "max_mem_limit": "2G", "mem_guarantee": "256M"},
                      "big": {"cpu_limit": 1.5, "mem_limit": "768M"}},
        **kw)


def test_spec_settings_apply_and_are_checked():
    r = policy().for_launch(Resources(), {"mem_limit": "3G", "cpu_limit": 4, "quota": 5, "other": 1})
    assert (r.cpu_limit, r.mem_limit) == (4, 3 * GiB)
    assert policy().for_launch(Resources(), {}) == Resources(cpu_limit=1.0, mem_limit=GiB)
    with pytest.raises(LaunchError) as info:
        policy().for_launch(Resources(), {"mem_limit": "lots"})
    assert "spec_config" in str(info.value) and info.value.status_code == 500


def test_groups_most_generous_value_wins():
    merged = group_settings(["big", "lab", "nobody"], policy().group_config)
    assert merged == {"max_cpu_limit": 2, "max_mem_limit": 2 * GiB, "mem_guarantee": 256 * MiB,
                      "cpu_limit": 1.5, "mem_limit": 768 * MiB}
    r = policy().for_launch(Resources(), {}, groups=["big"])
    assert (r.cpu_limit, r.mem_limit) == (1.5, 768 * MiB)


def test_user_size_within_cap():
    r = policy().for_launch(Resources(), {}, size="small")
    assert (r.cpu_limit, r.mem_limit) == (0.5, 512 * MiB)


def test_user_size_above_cap_is_refused_naming_the_cap():
    with pytest.raises(LaunchError) as info:
        policy().for_launch(Resources(), {}, size="large")
    message = str(info.value)
    assert "the cap is 1 CPU and 1G memory" in message and "'large'" in message
    assert info.value.field == "size" and info.value.status_code == 403


def test_group_raises_the_cap():
    r = policy().for_launch(Resources(), {}, groups=["lab"], size="large")
    assert (r.cpu_limit, r.mem_limit, r.mem_guarantee) == (2, 2 * GiB, 256 * MiB)


def test_unknown_size_lists_the_offered_ones():
    with pytest.raises(LaunchError) as info:
        policy().for_launch(Resources(), {}, size="medium")
    assert "large, small" in str(info.value)
    with pytest.raises(LaunchError) as info:
        ResourcePolicy().for_launch(Resources(), {}, size="small")
    assert "ResourcePolicy.sizes" in str(info.value)


def test_guarantee_is_clipped_to_the_limit():
    r = resolve_resources(Resources(cpu_limit=1, mem_limit=GiB, cpu_guarantee=2, mem_guarantee=2 * GiB))
    assert (r.cpu_guarantee, r.mem_guarantee) == (1, GiB)


@pytest.mark.parametrize("bad, words", [
    ({"sizes": {"s": {"cpus": 1}}}, "unknown key 'cpus'"),
    ({"sizes": {"bad name": {"cpu_limit": 1}}}, "not a valid size name"),
    ({"group_config": {"g": {"mem_limit": "lots"}}}, "size such as '1G'"),
    ({"group_config": {"g": {"cpu_limit": -1}}}, "must not be negative"),
])
def test_admin_config_errors_name_the_setting(bad, words):
    with pytest.raises(Exception) as info:
        ResourcePolicy(**bad)
    assert words in str(info.value)


@settings(max_examples=200, deadline=None)
@given(cpu=st.floats(0.1, 8), mem=st.integers(1, 16 * GiB), size=st.sampled_from(["small", "large", None]),
       groups=st.lists(st.sampled_from(["lab", "big", "x"]), max_size=3))
def test_a_user_pick_never_exceeds_the_cap(cpu, mem, size, groups):
    p = policy()
    try:
        r = p.for_launch(Resources(cpu_limit=cpu, mem_limit=mem), {}, groups=groups, size=size)
    except LaunchError as e:
        assert e.field == "size"
        return
    if size:
        cap = group_settings(groups, p.group_config)
        assert r.cpu_limit <= cap.get("max_cpu_limit", 1) and r.mem_limit <= cap.get("max_mem_limit", GiB)


def test_writable_layer_support_is_said_clearly():
    supported, why = writable_layer_support("overlay2", [["Backing Filesystem", "extfs"]])
    assert supported is False and "xfs" in why and "pquota" in why and "extfs" in why
    assert writable_layer_support("overlay2", [["Backing Filesystem", "xfs"]])[0] is None
    assert writable_layer_support("btrfs")[0] is True
    assert writable_layer_support("vfs")[0] is False


# --- quotas ---------------------------------------------------------------------------------------


def test_quota_allows_below_and_refuses_at_the_limit():
    check_quota(Counts(repo=1, total=1), QuotaLimits(per_repo=2), "r")
    with pytest.raises(LaunchError) as info:
        check_quota(Counts(repo=2, total=7), QuotaLimits(per_repo=2), "https://x/r")
    message = str(info.value)
    assert "Too many users are running this repository (2 of 2)" in message
    assert "c.Quotas.per_repo_quota" in message and "Try again later" in message
    assert info.value.status_code == 429


def test_hub_total_quota_comes_first():
    with pytest.raises(LaunchError) as info:
        check_quota(Counts(repo=0, total=10), QuotaLimits(per_repo=2, total=10), "r")
    assert "10 of 10" in str(info.value) and "total_quota" in str(info.value)


def test_zero_means_no_limit():
    check_quota(Counts(repo=10**6, total=10**6), QuotaLimits(per_repo=0, total=0), "r")


def test_pattern_quota_replaces_the_default_and_is_named():
    limits = limits_for(100, 0, {"quota": 3})
    assert limits.per_repo == 3
    with pytest.raises(LaunchError) as info:
        check_quota(Counts(repo=3, total=3), limits, "r")
    assert "spec_config" in str(info.value)


def test_counting_sees_active_binder_spawners_only():
    me = SimpleNamespace(active=True, binder_repo="a")
    spawners = [me, SimpleNamespace(active=True, binder_repo="a"), SimpleNamespace(active=False, binder_repo="a"),
                SimpleNamespace(active=True, binder_repo="b"), SimpleNamespace(active=True, binder_repo=None),
                SimpleNamespace(active=True)]
    assert count_servers(spawners, "a", exclude=me) == Counts(repo=1, total=2)


# --- egress ---------------------------------------------------------------------------------------

NET = iptables.DockerNetwork(id="0123456789abcdef", bridge="br-0123456789ab", subnet="172.30.0.0/16",
                             hub_ip="172.30.0.1", hub_port=8081)


def test_default_rules_follow_mybinder():
    rules = egress.default_rules()
    names = [r.name for r in rules]
    assert names[:3] == ["hub-api", "metadata", "dns"] and names[-2:] == ["web", "git"]
    assert {r.to for r in rules if r.action == "deny"} >= {"169.254.169.254/32", "10.0.0.0/8",
                                                           "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}


def test_admin_rules_come_first_and_defaults_can_be_removed():
    extra = [egress.rule_from_dict({"name": "db", "action": "allow", "to": "10.1.2.3", "protocol": "tcp",
                                    "ports": [5432]})]
    rules = egress.rule_list(egress.default_rules(), extra, remove=["git", "private-*"])
    names = [r.name for r in rules]
    assert names[0] == "db" and "git" not in names and not any(n.startswith("private") for n in names)
    assert rules[0].to == "10.1.2.3/32"
    with pytest.raises(ValueError, match="unique"):
        egress.rule_list(egress.default_rules(), [egress.rule("web", "allow", "1.2.3.4/32")])


@pytest.mark.parametrize("bad, words", [
    ({"name": "x", "action": "permit", "to": "1.2.3.4/32"}, "'action'"),
    ({"name": "x", "action": "allow", "to": "example.org"}, "'to'"),
    ({"name": "x", "action": "allow", "to": "::1/128"}, "IPv4"),
    ({"name": "x", "action": "allow", "to": "1.2.3.4/32", "ports": [0]}, "ports"),
    ({"name": "x", "action": "allow", "to": "1.2.3.4/32", "protocol": "icmp"}, "'protocol'"),
    ({"name": "x", "action": "allow", "to": "hub", "ports": [1]}, "'hub' rule"),
    ({"name": "x", "action": "allow", "to": "1.2.3.4/32", "via": "y"}, "unknown keys"),
])
def test_bad_rules_are_refused_with_a_reason(bad, words):
    with pytest.raises(ValueError) as info:
        egress.rule_from_dict(bad)
    assert words in str(info.value)


def test_egress_policy_config():
    p = egress.EgressPolicy(extra_rules=[{"name": "db", "action": "allow", "to": "10.1.2.3/32"}],
                            remove_rules=["web"])
    assert [r.name for r in p.rules()][0] == "db" and "web" not in [r.name for r in p.rules()]
    with pytest.raises(Exception, match="'action'"):
        egress.EgressPolicy(extra_rules=[{"name": "db", "action": "?", "to": "10.1.2.3/32"}])


def test_iptables_rendering():
    r = iptables.iptables_rules(egress.default_rules(), NET)
    assert (r.forward_chain, r.input_chain) == ("BSPAWN-FWD-0123456789ab", "BSPAWN-IN-0123456789ab")
    assert len(r.forward_chain) <= 28
    # every jump matches this network's bridge, whatever source address a packet claims
    assert r.jumps == (("DOCKER-USER", ("-i", "br-0123456789ab", "-j", r.forward_chain)),
                       ("INPUT", ("-i", "br-0123456789ab", "-j", r.input_chain)))
    fwd = [" ".join(spec) for spec in r.forward]
    inp = [" ".join(spec) for spec in r.input]
    assert fwd[0] == inp[0] == f"-m comment --comment binderspawner:rules:{r.digest}"
    # ... and a forged source is dropped before anything else
    assert fwd[1] == inp[1] == "! -s 172.30.0.0/16 -m comment --comment binderspawner:foreign-source -j DROP"
    fwd, inp = fwd[:1] + fwd[2:], inp[:1] + inp[2:]
    assert fwd[1] == "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    assert fwd[2].startswith(
        "-d 169.254.169.254/32 ") and fwd[2].endswith("-j REJECT --reject-with icmp-admin-prohibited")
    assert "-p udp --dport 53 -m comment --comment binderspawner:dns -j RETURN" in fwd
    assert "-p tcp -m multiport --dports 80,443 -m comment --comment binderspawner:web -j RETURN" in fwd
    assert fwd.index("-p tcp --dport 9418 -m comment --comment binderspawner:git -j RETURN") > fwd.index(
        "-d 10.0.0.0/8 -m comment --comment binderspawner:private-1 -j REJECT --reject-with icmp-admin-prohibited")
    assert fwd[-1].endswith("default-deny -j REJECT --reject-with icmp-admin-prohibited")
    # the host: only the hub API
    assert inp[1:] == ["-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                       "-d 172.30.0.1/32 -p tcp --dport 8081 -m comment --comment binderspawner:hub-api -j ACCEPT",
                       "-m comment --comment binderspawner:default-deny -j REJECT --reject-with icmp-admin-prohibited"]
    text = r.restore_text()
    assert text.startswith("*filter\n:BSPAWN-FWD-0123456789ab - [0:0]\n") and text.endswith("COMMIT\n")
    assert "-A BSPAWN-IN-0123456789ab ! -s 172.30.0.0/16 -m comment" in text


def test_digest_changes_with_the_rules():
    a = iptables.iptables_rules(egress.default_rules(), NET)
    b = iptables.iptables_rules(egress.rule_list(egress.default_rules(), remove=["git"]), NET)
    assert a.digest != b.digest
    assert a.digest == iptables.iptables_rules(egress.default_rules(), NET).digest


def test_hub_in_a_container_is_allowed_in_the_forward_chain():
    net = iptables.DockerNetwork(**{**NET.__dict__, "hub_ip": "172.30.0.5", "hub_on_host": False})
    r = iptables.iptables_rules(egress.default_rules(), net)
    assert "-d 172.30.0.5/32 -p tcp --dport 8081 -m comment --comment binderspawner:hub-api -j RETURN" in [
        " ".join(s) for s in r.forward]


def test_network_must_be_the_hubs_own_bridge():
    attrs = {"Name": "bridge", "Driver": "bridge", "Id": "f" * 64}
    with pytest.raises(FirewallError, match="network_name"):
        describe_network(attrs, "172.17.0.1", 8081, hub_on_host=True)
    attrs = {"Name": "u", "Driver": "bridge", "Id": "a" * 64, "EnableIPv6": True}
    with pytest.raises(FirewallError, match="IPv6"):
        describe_network(attrs, "172.17.0.1", 8081, hub_on_host=True)
    attrs = {"Name": "u", "Driver": "bridge", "Id": "a" * 64, "Options": {},
             "IPAM": {"Config": [{"Subnet": "172.31.0.0/16", "Gateway": "172.31.0.1"}]}}
    net = describe_network(attrs, "172.31.0.1", 8081, hub_on_host=True)
    assert (net.bridge, net.subnet, net.tag) == ("br-aaaaaaaaaaaa", "172.31.0.0/16", "aaaaaaaaaaaa")


PRIVATE_EXCEPT = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                  "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"]
EXPECTED_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "binderspawner-egress", "namespace": "binder",
                 "labels": {"app.kubernetes.io/managed-by": "binderspawner"}},
    "spec": {
        "podSelector": {"matchLabels": {"component": "singleuser-server"}},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"podSelector": {"matchLabels": {"component": "hub"}}}],
             "ports": [{"protocol": "TCP", "port": 8081}]},
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
             "ports": [{"protocol": "TCP", "port": 53}, {"protocol": "UDP", "port": 53}]},
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_EXCEPT}}],
             "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}]},
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_EXCEPT}}],
             "ports": [{"protocol": "TCP", "port": 9418}]},
        ],
    },
}


def test_network_policy_matches_the_expected_manifest_and_the_schema():
    manifest = egress.network_policy(egress.default_rules(), namespace="binder")
    assert manifest == EXPECTED_POLICY
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_network_policy_with_admin_rules():
    rules = egress.rule_list(egress.default_rules(), [
        egress.rule("lab-db", "allow", "10.1.2.3/32", "tcp", (5432,)),
        egress.rule("no-lab-net", "deny", "198.51.100.0/24"),
        egress.rule("all-udp", "allow", "0.0.0.0/0", "udp"),
    ], remove=["git"])
    manifest = egress.network_policy(
        rules, hub_port=8000, pod_selector={
            "matchLabels": {
                "app": "jupyterhub"}})
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    egress_rules = manifest["spec"]["egress"]
    assert egress_rules[0] == {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}],
                               "ports": [{"protocol": "TCP", "port": 5432}]}
    assert egress_rules[1] == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["198.51.100.0/24"]}}],
                               "ports": [{"protocol": "UDP"}]}
    assert egress_rules[2]["ports"] == [{"protocol": "TCP", "port": 8000}]
    web = egress_rules[-1]
    excepted = web["to"][0]["ipBlock"]["except"]
    assert excepted[0] == "0.0.0.0/8" and "198.51.100.0/24" in excepted
    assert all(9418 not in [p.get("port") for p in e.get("ports", [])] for e in egress_rules)


def test_an_allow_shadowed_by_an_earlier_deny_is_left_out():
    rules = (egress.rule("no-10", "deny", "10.0.0.0/8"),
             egress.rule("db", "allow", "10.1.2.3/32", "tcp", (5432,)))
    assert egress.network_policy(rules)["spec"]["egress"] == []


# --- the policy table, builds, hardening ------------------------------------------------------------


@pytest.mark.parametrize("ip, protocol, port, where, expected", [
    ("172.30.0.1", "tcp", 8081, "hub", ("allow", "hub-api")),
    ("172.30.0.1", "tcp", 22, "host", ("deny", "default-deny")),
    ("172.30.0.1", "udp", 53, "host", ("deny", "default-deny")),  # 'host' is never a CIDR match
    ("169.254.169.254", "tcp", 80, "", ("deny", "metadata")),
    ("169.254.169.254", "udp", 53, "", ("deny", "metadata")),
    ("10.1.2.3", "udp", 53, "", ("allow", "dns")),
    ("10.1.2.3", "tcp", 443, "", ("deny", "private-1")),
    ("100.64.0.9", "tcp", 80, "", ("deny", "private-2")),
    ("192.168.1.1", "tcp", 9418, "", ("deny", "private-6")),
    ("198.51.100.2", "tcp", 443, "", ("allow", "web")),
    ("198.51.100.2", "tcp", 9418, "", ("allow", "git")),
    ("198.51.100.2", "tcp", 8080, "", ("deny", "default-deny")),
    ("198.51.100.2", "udp", 443, "", ("deny", "default-deny")),
])
def test_policy_table(ip, protocol, port, where, expected):
    assert egress.decide(egress.default_rules(), ip, protocol, port, to_host=bool(where),
                         to_hub=where == "hub") == expected


def test_build_rules_deny_the_hub_and_keep_the_index_rules():
    p = egress.EgressPolicy(build_extra_rules=[{"name": "devpi", "action": "allow", "to": "10.1.2.4/32",
                                                "protocol": "tcp", "ports": [3141]}],
                            build_remove_rules=["git"])
    rules = p.build_rules()
    assert egress.decide(rules, "172.17.0.1", "tcp", 8081, to_host=True, to_hub=True) == ("deny", "hub-api")
    assert egress.decide(rules, "10.1.2.4", "tcp", 3141) == ("allow", "devpi")
    assert egress.decide(rules, "10.1.2.5", "tcp", 3141) == ("deny", "private-1")
    assert egress.decide(rules, "198.51.100.2", "tcp", 443) == ("allow", "web")
    assert egress.decide(rules, "198.51.100.2", "tcp", 9418) == ("deny", "default-deny")
    assert egress.decide(p.rules(), "198.51.100.2", "tcp", 9418) == ("allow", "git")  # servers unchanged
    net = iptables.DockerNetwork(id="fedcba9876543210", bridge="docker0", subnet="172.17.0.0/16",
                                 hub_ip="172.17.0.1", hub_port=8081)
    r = iptables.iptables_rules(rules, net)
    assert r.jumps[0] == ("DOCKER-USER", ("-i", "docker0", "-j", "BSPAWN-FWD-fedcba987654"))
    assert ("-d 172.17.0.1/32 -p tcp --dport 8081 -m comment --comment binderspawner:hub-api -j REJECT "
            "--reject-with icmp-admin-prohibited") in [" ".join(s) for s in r.input]


def test_the_default_bridge_is_accepted_for_builds_only():
    attrs = {"Name": "bridge", "Id": "ab" * 32, "Driver": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]},
             "Options": {"com.docker.network.bridge.name": "docker0"}}
    with pytest.raises(FirewallError, match="network_name"):
        describe_network(attrs, "127.0.0.1", 8081)
    net = describe_network(attrs, "127.0.0.1", 8081, default_bridge=True)
    assert (net.bridge, net.subnet, net.hub_on_host) == ("docker0", "172.17.0.0/16", True)


def test_user_containers_drop_net_raw_and_setuid_gains():
    assert harden({}) == {"cap_drop": ["NET_RAW"], "security_opt": ["no-new-privileges"]}
    assert harden({"cap_drop": ["SYS_ADMIN"], "security_opt": ["no-new-privileges"]}) == {
        "cap_drop": ["SYS_ADMIN", "NET_RAW"], "security_opt": ["no-new-privileges"]}
