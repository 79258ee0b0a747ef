"""The builder's side of the decision (pure): traits, the settings JSON handed to repo2docker's
config file, the argv for a checkout, and failure messages (builders/repo2docker.py)."""

import pytest
from traitlets import TraitError
from traitlets.config import Config

from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.builders.environment import Environment
from binderspawner.builders.repo2docker import failure_message
from binderspawner.providers import RepoSource, ResolvedRepo

SHA = "0123456789abcdef0123456789abcdef01234567"


def request():
    url = "git://127.0.0.1:9418/x.git"
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug="x", display_name=url)
    return BuildRequest(f"img:{SHA}", ResolvedRepo(source, "main", SHA, "branch main"))


def test_settings_for_a_decided_python_build():
    builder = Repo2DockerBuilder(package_indexes=["https://pypi.example.org/simple"])
    env = Environment("python", "venv", "binder", "3.14", "binder/runtime.txt",
                      requirements="binder/requirements.txt")
    settings = builder.r2d_settings(request(), env)
    assert settings["buildpacks"] == "venv" and settings["content_providers"] == ["Local"]
    assert settings["base_image"] == "binderspawner-base:forky"
    assert settings["environment"] == {
        "python": "3.14", "base_image": "binderspawner-base:forky", "binder_dir": "binder",
        "requirements": "binder/requirements.txt", "pipfile": None, "pipfile_lock": None,
        "install_repo": False, "uv_lock": None, "index_urls": ["https://pypi.example.org/simple"]}


def test_settings_for_a_kind_handed_to_repo2docker():
    builder = Repo2DockerBuilder(buildpacks="repo2docker")
    settings = builder.r2d_settings(request(), Environment("r", "repo2docker"))
    assert settings["buildpacks"] == "repo2docker" and settings["base_image"] == ""
    assert settings["environment"]["python"] is None and settings["environment"]["base_image"] == ""


def test_dockerfile_build_keeps_the_default_base_image_for_the_config_file():
    settings = Repo2DockerBuilder().r2d_settings(request(), Environment("dockerfile", "venv"))
    assert settings["base_image"] == "binderspawner-base:bookworm"


def test_command_builds_the_checkout():
    argv = Repo2DockerBuilder().command(request(), "/scratch/checkout-1")
    assert argv[-1] == "/scratch/checkout-1" and "git://127.0.0.1:9418/x.git" not in argv
    assert Repo2DockerBuilder().command(request())[-1] == "git://127.0.0.1:9418/x.git"


def test_policy_from_traits():
    policy = Repo2DockerBuilder(nearest_newer_python=True, python_base_images={"3.12": "a", "3.11": "b"},
                                package_indexes=["https://i/simple"]).policy()
    assert set(policy.python_versions) == {"3.11", "3.12"} and policy.nearest_newer_python
    assert policy.package_indexes == ("https://i/simple",) and policy.default_python == "3.11"


def test_config_may_change_map_and_default_together():
    config = Config()
    config.Repo2DockerBuilder.python_base_images = {"3.13": "trixie-image"}
    config.Repo2DockerBuilder.default_python = "3.13"
    assert Repo2DockerBuilder(config=config).policy().python_versions == ("3.13",)


@pytest.mark.parametrize("traits, named", [
    ({"default_python": "3.9"}, "default_python"),
    ({"python_base_images": {"3.13": "x"}}, "default_python"),
    ({"python_base_images": {"3": "x", "3.11": "y"}}, "'3'"),
])
def test_inconsistent_python_settings_are_refused(traits, named):
    with pytest.raises(TraitError, match=named):
        Repo2DockerBuilder(**traits)


def test_failure_with_a_known_cause_says_it_first_without_buildkit_noise():
    tail = ["#9 [ 5/12] RUN pip install -r requirements.txt", "#9 1.234 Collecting numpy",
            "#9 2.001 ERROR: No matching distribution found for nonexistent-pkg",
            "#9 ERROR: process did not complete"]
    message = failure_message("repo", SHA, "failed (repo2docker exit code 1)", tail,
                              Environment("python", "venv", requirements="binder/requirements.txt"))
    first, *rest = message.splitlines()
    assert first.startswith("The package 'nonexistent-pkg' (from binder/requirements.txt) was not found")
    assert "Collecting numpy" in rest and not any("[ 5/12]" in line for line in rest)


def test_failure_without_a_known_cause_keeps_the_raw_tail():
    message = failure_message("repo", SHA, "failed (repo2docker exit code 1)", ["#3 [1/2] RUN x", "boom"])
    assert message.splitlines()[0] == f"Building repo at {SHA[:12]} failed (repo2docker exit code 1)."
    assert "#3 [1/2] RUN x" in message and "boom" in message


@pytest.mark.parametrize("line, package", [
    ("ERROR: No matching distribution found for foo==1.0", "foo==1.0"),
    ("  ╰─▶ Because nosuchpkg was not found in the package registry and you require nosuchpkg, we can",
     "nosuchpkg"),
    ("  ╰─▶ Because there is no version of six==99.0 and you require six==99.0, we can", "six==99.0"),
])
def test_missing_packages_are_named_first(line, package):
    message = failure_message("repo", SHA, "failed", ["#7 1.0 " + line])
    assert message.startswith(f"The package {package!r} (from the repository's requirements) "
                              "was not found")


def test_the_decision_is_summed_up_for_the_progress_page():
    from binderspawner.messages import environment_summary
    assert environment_summary(Environment("python", "venv", "binder", "3.13", "binder/runtime.txt")) == (
        "Building with Python 3.13 (from binder/runtime.txt), environment files from binder/.")
    assert environment_summary(Environment("python", "venv", "", "3.11", None, install_repo=True)) == (
        "Building with Python 3.11 (the hub's default), then `pip install .`.")


@pytest.mark.parametrize("url", ["https://user:secret@pypi.lab.example/simple",
                                 "https://__token__:glpat-xyz@gitlab.lab.example/api/v4/packages/pypi/simple",
                                 "https://token@pypi.lab.example/simple"])
def test_package_indexes_with_credentials_are_refused_at_config_load(url):
    """Index URLs go into the image's RUN steps (history, build log): a credential there would
    reach every launcher. The message names the URL without the secret."""
    with pytest.raises(TraitError, match="package_indexes: https://pypi.lab.example/simple carries|"
                                         "package_indexes: https://gitlab.lab.example/api") as info:
        Repo2DockerBuilder(package_indexes=["https://pypi.example.org/simple", url])
    assert "secret" not in str(info.value) and "xyz" not in str(info.value)
