"""The two repo2docker builders are siblings on one base: the settings both need are shared, the
local engine's (push, check_registry) are not the Kubernetes builder's, and every build, local or
in a pod, gets only the content provider its source needs."""

import json

import pytest
from traitlets.config import Config

from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.builders.base import Repo2DockerBase
from binderspawner.errors import BuildFailed
from binderspawner.kubernetes import KubernetesBuilder
from binderspawner.providers import DEFAULT_PROVIDERS, RepoSource, ResolvedRepo
from binderspawner.spawner import BinderSpawner

SHA = "0123456789abcdef0123456789abcdef01234567"
GIT = RepoSource(provider="git", spec="https://git.example.org/lab/a.git",
                 fetch_url="https://git.example.org/lab/a.git", slug="git.example.org/lab/a")
RECORD = RepoSource(provider="zenodo", spec="zenodo/10.5281/zenodo.123",
                    fetch_url="https://doi.org/10.5281/zenodo.123", slug="zenodo-123", has_refs=False,
                    content_provider="Zenodo")


def request(source):
    return BuildRequest(f"registry.example.org/binder/x:{SHA}", ResolvedRepo(source, None, SHA, "record"), {})


def test_shared_settings_are_the_bases_and_engine_settings_the_local_builders():
    shared = set(Repo2DockerBase.class_traits(config=True))
    assert {"buildpacks", "base_image", "server_requirements", "extra_ca_bundle", "content_providers",
            "build_timeout", "user_id", "user_name", "repo2docker_command"} <= shared
    local = set(Repo2DockerBuilder.class_traits(config=True))
    kube = set(KubernetesBuilder.class_traits(config=True))
    assert {"push", "check_registry"} <= local - kube
    assert not issubclass(KubernetesBuilder, Repo2DockerBuilder)
    assert {"build_image", "push_secret", "docker_host"} <= kube - local


def test_the_base_section_configures_both_and_each_class_overrides_it():
    config = Config()
    config.Repo2DockerBase.buildpacks = "repo2docker"
    config.Repo2DockerBase.build_timeout = 600
    config.KubernetesBuilder.build_timeout = 900
    config.Repo2DockerBuilder.push = True
    local, kube = Repo2DockerBuilder(config=config), KubernetesBuilder(config=config, namespace="binder")
    assert local.buildpacks == kube.buildpacks == "repo2docker"
    assert (local.build_timeout, kube.build_timeout) == (600, 900)
    assert local.push is True and not hasattr(kube, "push")


@pytest.mark.parametrize("source, provider", [(GIT, "Git"), (RECORD, "Zenodo")])
def test_a_build_gets_only_the_content_provider_its_source_needs(source, provider):
    spawner = BinderSpawner(provider_classes=list(DEFAULT_PROVIDERS))
    kube = KubernetesBuilder(parent=spawner, namespace="binder")
    local = Repo2DockerBuilder(parent=spawner)
    assert {"Git", "Zenodo"} <= set(kube.content_providers)
    pod = kube.pod_manifest(request(source))
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert json.loads(env["BINDERSPAWNER_R2D_SETTINGS"])["content_providers"] == [provider]
    local_env = local.environment(request(source))
    assert json.loads(local_env["BINDERSPAWNER_R2D_SETTINGS"])["content_providers"] == [provider]


def test_a_source_whose_provider_is_not_allowed_is_refused_naming_the_setting():
    kube = KubernetesBuilder(namespace="binder", content_providers=["Git"])
    with pytest.raises(BuildFailed,
                       match=r"'Zenodo' content provider is not in KubernetesBuilder.content_providers"):
        kube.pod_manifest(request(RECORD))
