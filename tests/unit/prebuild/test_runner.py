"""What the prebuilder decides before anything is built (prebuild/runner.py): the provider and
canonical spec a push maps to, admin rules, private repositories, repeats. Every case here ends
before a build would start; builds are in tests/e2e/test_prebuild.py."""

import pytest
from traitlets.config import Config

from binderspawner import launcher
from binderspawner.dockerhost.spawner import DockerBinderSpawner
from binderspawner.launch import images
from binderspawner.prebuild import forges
from binderspawner.prebuild.runner import Prebuilder, hub_credentials
from binderspawner.prebuild.settings import Prebuild
from binderspawner.services.imagecache import LaunchLog
from tests.support.forgehooks import ZERO, push_payload

SHA = "bffeb74224043ba2feb48d137756c8a9331c449a"


@pytest.fixture
def config(tmp_path):
    c = Config()
    c.HubCleanup.lifecycle_dir = str(tmp_path)
    c.DockerBinderSpawner.image_prefix = "lab-"
    c.Prebuild.specs = ["^gh/my-lab/"]
    c.SpecControl.banned_specs = ["^gh/my-lab/banned"]
    return c


def push(forge, url, ref="refs/heads/main", after=SHA, **kwargs):
    return forges.read_push(forge, push_payload(forge, url, "x/y", ref, after, **kwargs))


@pytest.mark.parametrize("forge, url, spec", [
    ("github", "https://github.com/Other/Repo.git", "gh/other/repo/main"),
    ("gitlab", "https://gitlab.com/grp/sub/proj.git", "gl/grp%2Fsub%2Fproj/main"),
    ("gitea", "https://gitea.example.org/lab/course.git", "git/https%3A%2F%2Fgitea.example.org%2Flab%2Fcourse/main"),
])
async def test_pushes_map_to_the_hubs_providers_and_canonical_specs(config, forge, url, spec):
    outcome = await Prebuilder(config, DockerBinderSpawner).push(push(forge, url))
    assert outcome.status == 403
    assert outcome.message.startswith(f"{spec} is not prebuilt on this hub: it matches none of c.Prebuild.specs")


async def test_the_spawner_class_settings_name_the_images(config):
    prebuilder = Prebuilder(config, DockerBinderSpawner)
    assert prebuilder.context.image_prefix == "lab-"
    assert prebuilder.context.user.name is None  # no member, no member credentials


def test_a_kubernetes_hub_prebuilds_with_its_build_pods(config):
    from binderspawner.kubernetes.builder import KubernetesBuilder
    from binderspawner.kubernetes.spawner import KubeBinderSpawner

    assert Prebuilder(config, KubeBinderSpawner).context.builder_class is KubernetesBuilder
    assert Prebuilder(config, DockerBinderSpawner).context.builder_class is not KubernetesBuilder
    config.BinderSpawner.max_concurrent_builds = 5
    assert Prebuilder(config, KubeBinderSpawner).context.max_concurrent_builds == 5


async def test_banned_specs_win_over_prebuild_specs(config):
    outcome = await Prebuilder(config, DockerBinderSpawner).push(push("github", "https://github.com/my-lab/banned"))
    assert outcome.status == 403 and "banned" in outcome.message


async def test_a_private_repository_without_a_hub_token_is_skipped(config):
    outcome = await Prebuilder(config, DockerBinderSpawner).push(
        push("github", "https://github.com/my-lab/secret.git", private=True))
    assert (outcome.status, outcome.state, outcome.job) == (202, "skipped", None)
    assert "c.Prebuild.access_tokens" in outcome.message and "members' tokens are never used" in outcome.message


async def test_a_recent_launch_admits_a_repository_no_pattern_names(config, tmp_path):
    prebuilder = Prebuilder(config, DockerBinderSpawner)
    url = "https://github.com/elsewhere/notebooks.git"
    refused = await prebuilder.push(push("github", url, private=True))
    assert refused.status == 403
    # someone launched another commit of it on this hub (the hub's own launch record)
    _, _, source = launcher.read_request(prebuilder.context, {"repo": url})
    image = images.image_reference("lab-", source.slug, "c" * 40)
    LaunchLog(str(tmp_path)).record(image)
    admitted = await prebuilder.push(push("github", url, private=True))
    assert admitted.state == "skipped"  # past the allow rule; private without a token ends it here


async def test_deleted_refs_and_repeated_deliveries_build_nothing(config):
    prebuilder = Prebuilder(config, DockerBinderSpawner)
    deleted = await prebuilder.push(push("gitea", "https://gitea.example.org/lab/c.git", after=ZERO))
    assert (deleted.status, deleted.state) == (200, "ignored")
    first = await prebuilder.push(push("github", "https://github.com/other/x"), delivery="d-1")
    again = await prebuilder.push(push("github", "https://github.com/other/x"), delivery="d-1")
    assert first.status == 403 and (again.status, again.state) == (200, "duplicate")


async def test_a_repository_no_provider_takes_is_refused(config):
    outcome = await Prebuilder(config, DockerBinderSpawner).push(push("github", "ftp://example.org/x.git"))
    assert outcome.status == 422 and outcome.job is None


def test_hub_tokens_go_only_to_their_host():
    settings = Prebuild(access_tokens={"github.com": "ghp_hub", "*.lab.example": "glpat_hub"})
    assert hub_credentials(settings, ["https://github.com/o/r"]).token == "ghp_hub"
    assert hub_credentials(settings, ["https://git.lab.example/g/p.git"]).token == "glpat_hub"
    assert hub_credentials(settings, ["https://evil.example/o/r"]) is None
    assert hub_credentials(settings, ["https://github.com/o/r", "https://evil.example/x"]) is None
    assert "ghp_hub" not in repr(hub_credentials(settings, ["https://github.com/o/r"]))


async def test_the_ci_api_gets_the_hubs_tokens_only_for_prebuild_specs(config):
    """A token with the prebuild scope may name any repository; the hub's own tokens (a private
    repository's clone, and its build log streamed back) go only to c.Prebuild.specs."""
    import asyncio

    config.Prebuild.specs = [r"^git/https%3A%2F%2Fgit\.lab\.example%2Fmy-lab%2F"]
    config.Prebuild.access_tokens = {"git.lab.example": "glpat_hub"}
    prebuilder = Prebuilder(config, DockerBinderSpawner)
    ours, other = "https://git.lab.example/my-lab/course.git", "https://git.lab.example/other-lab/secret.git"
    jobs = {}
    for url in (ours, other):
        outcome = prebuilder.request({"repo": url, "ref": "main"}, who="ci")
        outcome.job.task.cancel()  # before it runs: nothing is fetched
        await asyncio.gather(outcome.job.task, return_exceptions=True)
        jobs[url] = outcome.job
    for url, token in ((ours, "glpat_hub"), (other, None)):
        context = getattr(jobs[url], "context", None) or prebuilder.context  # what the job launches with
        _, provider, source = launcher.read_request(context, {"repo": url, "ref": "main"})
        found = context.credentials_for(provider, source)
        assert (found.token if found else None) == token
    # a push admitted by the allow rules (here: a recent launch) keeps the hub's token
    _, provider, source = launcher.read_request(prebuilder.context, {"repo": other})
    assert prebuilder.context.credentials_for(provider, source).token == "glpat_hub"


def test_one_token_may_name_several_hosts_for_a_github_repository():
    # a gh/ repository is resolved through api.github.com and cloned from github.com
    urls = ["https://api.github.com/repos/o/r", "https://github.com/o/r"]
    assert hub_credentials(Prebuild(access_tokens={"github.com": "t"}), urls) is None
    assert hub_credentials(Prebuild(access_tokens={"github.com api.github.com": "t"}), urls).token == "t"
    assert hub_credentials(Prebuild(access_tokens={"github.com,api.github.com": "t"}), urls).token == "t"
