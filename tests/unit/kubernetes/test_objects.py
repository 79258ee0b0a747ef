"""Kubernetes manifests: the user pod (kubespawner's own get_pod_manifest, through
KubeBinderSpawner), the build pod and the egress NetworkPolicy, each validated against the official
OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors) and compared with the
expected manifest.

No Kubernetes API server can run here; constructing a KubeSpawner loads a client configuration, which
points at the local stand-in API of tests/support/kubeapi.py (no request reaches it in this module).
"""

import base64
import copy
import json
import os

import kubernetes_validate
import pytest
import yaml
from traitlets.config import Config

from binderspawner.builders.repo2docker import credential_variables
from binderspawner.builders import BuildRequest
from binderspawner.errors import LaunchError
from binderspawner.kubernetes import KubeBinderSpawner, KubernetesBuilder, objects
from binderspawner.providers import RepoSource, ResolvedRepo
from binderspawner.policy.egress import EgressPolicy
from binderspawner.providers import GitProvider, TokenCredentials
from binderspawner.builders.registry import RegistryClient
from kubespawner import KubeSpawner

from binderspawner import launcher
from binderspawner.launcher import Launch
from binderspawner.policy.resources import Resources
from binderspawner.spawner import BinderSpawner
from binderspawner.launch.options import LaunchRequest

K8S_VERSION = "1.30.0"
SHA = "0123456789abcdef0123456789abcdef01234567"
URL = "https://git.example.org/lab/a-repository-whose-url-is-far-longer-than-sixty-three-characters.git"
IMAGE = f"registry.example.org:5000/binder/git-example-org-lab-a-repository-1a2b3c4d:{SHA}"


def validate(manifest):
    kubernetes_validate.validate(copy.deepcopy(manifest), K8S_VERSION, strict=True)


def launch(ref="feature/long-branch-name", resources=Resources()):
    source = RepoSource(provider="git", spec=URL, fetch_url=URL, slug="git.example.org/lab/a-repository",
                        display_name=URL)
    return Launch(LaunchRequest(URL, ref, "lab/tree/index.ipynb"),
                  ResolvedRepo(source, ref, SHA, f"branch {ref}"), IMAGE, resources, URL)


# pure pieces ------------------------------------------------------------------------------------


def test_build_pod_name_is_deterministic_short_and_a_dns_label():
    name = objects.build_pod_name(IMAGE)
    assert name == objects.build_pod_name(IMAGE)
    assert name != objects.build_pod_name(IMAGE.replace(SHA, "f" * 40))
    assert len(name) <= 63 and name.startswith("binder-build-git-example-org-lab")
    assert objects._DNS_LABEL_CHARS.search(name) is None and not name.endswith("-")
    long = "r.example.org/" + "x" * 200 + ":tag"
    assert len(objects.build_pod_name(long)) <= 63


def test_long_or_odd_values_go_to_annotations_only():
    labels, annotations = objects.split_metadata(launch().labels)
    assert annotations["binderspawner.repo"] == URL
    assert annotations["binderspawner.ref"] == "feature/long-branch-name"
    assert labels == {"binderspawner.provider": "git", "binderspawner.commit": SHA}


# the build pod ----------------------------------------------------------------------------------


def build_request():
    launch_ = launch("main")
    return BuildRequest(IMAGE, launch_.resolved, launch_.labels)


def test_build_pod_with_the_node_docker_socket():
    builder = KubernetesBuilder(namespace="binder", build_image="registry.example.org:5000/builder:1",
                                push_secret="registry-push", build_node_selector={"pool": "build"},
                                build_tolerations=[{"key": "build", "operator": "Exists",
                                                    "effect": "NoSchedule"}])
    manifest = builder.pod_manifest(build_request())
    validate(manifest)
    name = objects.build_pod_name(IMAGE)
    container = manifest["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DOCKER_CONFIG"] == "/etc/binderspawner/docker"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:http:git"
    assert '"buildpacks": "venv"' in env["BINDERSPAWNER_R2D_SETTINGS"]
    assert "DOCKER_HOST" not in env
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"binderspawner.provider": "git", "binderspawner.commit": SHA,
                       "binderspawner.ref": "main", "app.kubernetes.io/component": "binderspawner-build"},
            "annotations": {**{k: str(v) for k, v in launch("main").labels.items()},
                            "binderspawner.image": IMAGE},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 1800,
            "nodeSelector": {"pool": "build"},
            "tolerations": [{"key": "build", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "build",
                "image": "registry.example.org:5000/builder:1",
                "imagePullPolicy": "IfNotPresent",
                "args": builder.command(build_request()),
                "env": container["env"],
                "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
                "volumeMounts": [
                    {"name": "docker-socket", "mountPath": "/var/run/docker.sock"},
                    {"name": "push-credentials", "mountPath": "/etc/binderspawner/docker", "readOnly": True},
                ],
            }],
            "volumes": [
                {"name": "docker-socket", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
                {"name": "push-credentials", "secret": {"secretName": "registry-push", "items": [
                    {"key": ".dockerconfigjson", "path": "config.json"}]}},
            ],
        },
    }
    # no secret in the manifest: only the Secret's name
    assert "password" not in str(manifest).lower()


def test_build_pod_with_a_docker_service_mounts_no_socket():
    builder = KubernetesBuilder(namespace="binder", docker_host="tcp://binderspawner-dind:2375",
                                build_service_account="builder")
    manifest = builder.pod_manifest(build_request())
    validate(manifest)
    spec = manifest["spec"]
    assert spec["volumes"] == [] and spec["containers"][0]["volumeMounts"] == []
    assert {"name": "DOCKER_HOST", "value": "tcp://binderspawner-dind:2375"} in spec["containers"][0]["env"]
    assert spec["serviceAccountName"] == "builder" and spec["automountServiceAccountToken"] is True


def test_a_manifest_with_a_wrong_field_is_refused_by_the_schema():
    manifest = KubernetesBuilder(namespace="binder").pod_manifest(build_request())
    manifest["spec"]["containers"][0]["resources"]["limit"] = {"memory": "1Gi"}  # typo: 'limits'
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest)


# a private repository's build: the member's token in a Secret, not in the pod -------------------

TOKEN = "glpat-member-token-0123456789"


def private_build_request():
    launch_ = launch("main")
    return BuildRequest(IMAGE, launch_.resolved, launch_.labels,
                        credentials=TokenCredentials(token=TOKEN, username="oauth2"))


def secret_forms():
    """Every form the token takes on its way to git: itself, user:token, and its Basic header."""
    basic = base64.b64encode(f"oauth2:{TOKEN}".encode()).decode()
    return [TOKEN, basic, f"Authorization: Basic {basic}",
            base64.b64encode(TOKEN.encode()).decode().rstrip("=")]


def test_the_credentials_secret_holds_the_git_environment():
    builder = KubernetesBuilder(namespace="binder")
    request = private_build_request()
    secret = builder.secret_manifest(request)
    validate(secret)
    pod_name = objects.build_pod_name(IMAGE)
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": objects.build_secret_name(pod_name),  # the pod's 63 characters, shortened
            "labels": {"binderspawner.provider": "git", "binderspawner.commit": SHA,
                       "binderspawner.ref": "main", "app.kubernetes.io/component": "binderspawner-build",
                       "binderspawner.build-secret": "git"},
        },
        "stringData": credential_variables(request.credentials),
    }
    assert len(secret["metadata"]["name"]) <= 63 and secret["metadata"]["name"].endswith("-git")
    assert not any(form in json.dumps(secret["metadata"]) for form in secret_forms())
    assert builder.secret_manifest(build_request()) is None, "a public repository needs no Secret"


def test_a_base64_data_secret_is_valid_too():
    env = credential_variables(TokenCredentials(token=TOKEN))
    secret = objects.build_credentials_secret(name="binder-build-x-git", env=env, labels={})
    secret["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in secret.pop("stringData").items()}
    validate(secret)


def test_the_build_pod_references_the_secret_by_name_only():
    builder = KubernetesBuilder(namespace="binder", push_secret="registry-push")
    request = private_build_request()
    manifest = builder.pod_manifest(request)
    validate(manifest)
    container = manifest["spec"]["containers"][0]
    secret_name = builder.secret_manifest(request)["metadata"]["name"]
    assert container["envFrom"] == [{"secretRef": {"name": secret_name}}]
    assert not {e["name"] for e in container["env"]} & set(credential_variables(request.credentials))
    text = json.dumps(manifest)
    for form in secret_forms():
        assert form not in text
        assert form not in json.dumps(manifest["metadata"]["labels"])
        assert form not in json.dumps(manifest["metadata"]["annotations"])
    # the rest of the pod is the public build's pod
    public = builder.pod_manifest(build_request())
    del container["envFrom"]
    assert manifest == public


def test_secret_names_stay_dns_labels():
    name = objects.build_pod_name("r.example.org/" + "x" * 200 + ":tag", prefix="a-long-build-prefix-")
    secret = objects.build_secret_name(name)
    assert len(name) == 63 and len(secret) <= 63 and secret.endswith("-git")
    assert objects._DNS_LABEL_CHARS.search(secret) is None
    assert secret != objects.build_secret_name(name[:-1] + "0")
    assert objects.build_secret_name("binder-build-short") == "binder-build-short-git"


# the user pod, from kubespawner's own manifest code ---------------------------------------------


@pytest.fixture
async def spawner(kube_api, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the mixin's lifecycle directory defaults to the working directory
    spawner = KubeBinderSpawner(_mock=True, namespace="binder")
    spawner.user.name = "alice"
    spawner.pod_name = "jupyter-alice"
    spawner.launch = launch(resources=launcher.base_resources(spawner))
    spawner.image = IMAGE
    return spawner


async def user_pod(spawner):
    pod = await spawner.get_pod_manifest()
    return spawner.api.api_client.sanitize_for_serialization(pod)


async def test_user_pod_has_launch_metadata_limits_and_guarantees(spawner):
    pod = await user_pod(spawner)
    validate(pod)
    metadata = pod["metadata"]
    assert metadata["labels"]["binderspawner.commit"] == SHA
    assert metadata["labels"][objects.SERVER_LABEL] == "jupyter-alice"
    assert "binderspawner.repo" not in metadata["labels"], "a URL is not a valid label value"
    assert metadata["annotations"]["binderspawner.repo"] == URL
    assert metadata["annotations"]["binderspawner.image"] == IMAGE
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"] == {"limits": {"cpu": 1.0, "memory": 1024**3},
                                      "requests": {"cpu": 0.1, "memory": 256 * 1024**2}}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BINDER_REPO_URL"] == URL and env["BINDER_REF"] == SHA


async def test_profiles_set_node_selector_tolerations_and_sizes(spawner):
    spawner.profile_list = [
        {"display_name": "Small", "default": True},
        {"display_name": "GPU", "slug": "gpu", "kubespawner_override": {
            "node_selector": {"accelerator": "nvidia"}, "mem_limit": "8G", "mem_guarantee": "4G",
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}},
    ]
    spawner.user_options = {"repo": URL, "profile": "gpu"}
    await KubeSpawner.load_user_options(spawner)  # kubespawner's: applies the profile
    spawner.launch = launch(resources=launcher.launch_resources(spawner))  # the profile's, then policy
    pod = await user_pod(spawner)
    validate(pod)
    assert pod["spec"]["nodeSelector"] == {"accelerator": "nvidia"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists",
            "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"]["memory"] == 8 * 1024**3 and resources["requests"]["memory"] == 4 * 1024**3
    html = spawner.options_form(spawner)
    assert 'name="profile"' in html and '<option value="gpu">GPU</option>' in html
    assert spawner.options_from_form({"repo": [URL], "profile": ["gpu"]}) == {"repo": URL, "profile": "gpu"}


async def test_per_repository_group_and_size_limits_reach_the_pod(spawner):
    """The launch's Resources (ResourcePolicy: a spec_config entry's settings, the user's groups,
    the size they picked) are the user pod's requests and limits, through kubespawner's own code."""
    from types import SimpleNamespace

    spawner.config.ResourcePolicy.group_config = {"lab": {"mem_guarantee": "1G", "max_cpu_limit": 4}}
    spawner.config.ResourcePolicy.sizes = {"large": {"cpu_limit": 3, "mem_limit": "6G"}}
    spawner.config.ResourcePolicy.disk_limit = "10G"
    spawner.user.groups = [SimpleNamespace(name="lab")]
    spawner.extra_resource_limits = {"nvidia.com/gpu": "1"}
    repo_settings = {"cpu_guarantee": 0.5, "mem_limit": "2G"}  # a matching SpecControl.spec_config entry

    spawner.launch = launch(resources=launcher.launch_resources(spawner, repo_settings, size=None))
    pod = await user_pod(spawner)
    validate(pod)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": 1.0, "memory": 2 * 1024**3, "ephemeral-storage": str(10 * 1024**3),
                   "nvidia.com/gpu": "1"},
        "requests": {"cpu": 0.5, "memory": 1024**3}}

    spawner.launch = launch(resources=launcher.launch_resources(spawner, repo_settings, size="large"))
    pod = await user_pod(spawner)
    validate(pod)
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"]["cpu"] == 3.0 and resources["limits"]["memory"] == 6 * 1024**3
    assert resources["requests"] == {"cpu": 0.5, "memory": 1024**3}

    # for this pod only: the next launch's policy starts from the configured values again
    assert (spawner.cpu_limit, spawner.mem_limit, spawner.cpu_guarantee) == (1.0, 1024**3, 0.1)
    assert spawner.extra_resource_limits == {"nvidia.com/gpu": "1"}


async def test_a_size_above_the_cap_is_refused_before_any_pod(spawner):
    spawner.config.ResourcePolicy.sizes = {"huge": {"cpu_limit": 16}}
    spawner.config.ResourcePolicy.max_cpu_limit = 4
    with pytest.raises(LaunchError, match="cap is 4 CPU"):
        launcher.launch_resources(spawner, size="huge")


async def test_start_applies_the_profile_before_the_launch_decides_its_limits(spawner, monkeypatch):
    spawner.profile_list = [{"display_name": "Small", "default": True},
                            {"display_name": "Big", "slug": "big",
                             "kubespawner_override": {"mem_limit": "8G", "cpu_limit": 2}}]
    spawner.user_options = {"repo": URL, "profile": "big"}
    seen = {}

    async def make_launch(spawner_, options, report, admit=None):
        seen["base"] = launcher.base_resources(spawner_)
        seen["options"] = spawner_.launch_options(options)
        raise LaunchError("stop here: no provider is reachable in this test")

    monkeypatch.setattr(launcher, "make_launch", make_launch)
    with pytest.raises(LaunchError):
        await spawner.start()
    assert seen["base"].mem_limit == 8 * 1024**3 and seen["base"].cpu_limit == 2
    assert seen["options"] == {"repo": URL}, "the profile is kubespawner's option, not the launch's"


async def test_the_egress_network_policy_selects_only_this_server(spawner):
    policy = spawner.get_network_policy_manifest()
    validate(policy)
    assert policy["metadata"]["name"] == "jupyter-alice-egress"
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {objects.SERVER_LABEL: "jupyter-alice"}}
    assert spec["policyTypes"] == ["Egress"]
    assert {"to": [{"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}}],
            "ports": [{"protocol": "TCP", "port": 8081}]} in spec["egress"]
    web = [rule for rule in spec["egress"] if {"protocol": "TCP", "port": 443} in rule.get("ports", [])]
    assert web, spec["egress"]
    block = web[0]["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"} <= set(block["except"])
    pod = await user_pod(spawner)
    assert pod["metadata"]["labels"][objects.SERVER_LABEL] == "jupyter-alice"  # the selector matches


async def test_admin_egress_rules_reach_the_policy(spawner):
    spawner.config.EgressPolicy.extra_rules = [
        {"name": "lab-db", "action": "allow", "to": "10.1.2.3/32", "protocol": "tcp", "ports": [5432]}]
    spawner.config.EgressPolicy.remove_rules = ["git"]
    policy = spawner.get_network_policy_manifest()
    validate(policy)
    egress = policy["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}],
            "ports": [{"protocol": "TCP", "port": 5432}]} in egress
    assert not any({"protocol": "TCP", "port": 9418} in rule.get("ports", []) for rule in egress)


# the shipped zero-to-jupyterhub config ------------------------------------------------------------

from tests.support import CONFIG_DIR  # noqa: E402


def test_shipped_rbac_is_valid():
    with open(os.path.join(CONFIG_DIR, "z2jh-rbac.yaml")) as f:
        documents = list(yaml.safe_load_all(f))
    assert [d["kind"] for d in documents] == ["Role", "RoleBinding"]
    for document in documents:
        validate(document)
    granted = {(r, v) for rule in documents[0]["rules"] for r in rule["resources"] for v in rule["verbs"]}
    # every call the builder and the spawner make
    assert {("pods", "create"), ("pods", "get"), ("pods", "list"), ("pods", "delete"), ("pods/log", "get"),
            ("networkpolicies", "create"), ("networkpolicies", "update"),
            ("networkpolicies", "delete"),
            ("secrets", "create"), ("secrets", "update"), ("secrets", "list"),
            ("secrets", "delete")} <= granted


def test_shipped_z2jh_extra_config_names_real_settings(monkeypatch):
    with open(os.path.join(CONFIG_DIR, "z2jh-values.yaml")) as f:
        values = yaml.safe_load(f)
    code = values["hub"]["extraConfig"]["binderspawner"]
    config = Config()
    exec(compile(code, "extraConfig", "exec"), {"c": config})
    assert config.JupyterHub.spawner_class == "binder-kubernetes"
    classes = {cls.__name__: cls for cls in (KubeBinderSpawner, KubernetesBuilder, RegistryClient,
                                             EgressPolicy, GitProvider, KubeSpawner, BinderSpawner)}
    for section, settings in config.items():
        if section == "JupyterHub":
            continue
        traits = classes[section].class_traits(config=True)
        assert set(settings) <= set(traits), (section, set(settings) - set(traits))
    builder = KubernetesBuilder(config=config)
    assert builder.push_secret == "registry-push" and builder.buildpacks == "repo2docker"
