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
    assert environment_summary(Environment("python", "venv", "binder", "3.13", "binder/runtime.txt",
                                           requirements="binder/requirements.txt")) == (
        "Building with Python 3.13 (from binder/runtime.txt), environment files from binder/.")
    assert environment_summary(Environment("python", "venv", "", "3.11", None)) == (
        "Building with Python 3.11 (the hub's default). No requirements.txt, Pipfile, environment.yml, setup.py "
        "or installable pyproject.toml: the only Python packages this build installs are the single-user "
        "server's (JupyterLab). Add requirements.txt to install others.")
    assert environment_summary(Environment("python", "venv", "", "3.11", None, install_repo=True)) == (
        "Building with Python 3.11 (the hub's default), then `pip install .`.")


@pytest.mark.parametrize("line, file", [
    ("#27 ERROR: executor failed running [/bin/sh -c ./binder/postBuild]: exit code: 127", "binder/postBuild"),
    ('ERROR: process "/bin/sh -c ./postBuild" did not complete successfully: exit code: 3', "postBuild"),
])
def test_a_failed_postbuild_is_named_first_with_its_exit_code(line, file):
    tail = ["#27 [23/26] RUN ./postBuild", "#27 0.316 something went wrong", line]
    message = failure_message("repo", SHA, "failed (repo2docker exit code 1)", tail)
    code = line.rsplit(" ", 1)[1]
    assert message.startswith(f"{file} failed (exit code {code}). Its last lines are below; fix the script.")
    assert "0.316 something went wrong" not in message and "something went wrong" in message


def test_an_install_failure_ending_in_a_full_stop_reads_as_one_sentence():
    from binderspawner.builders.buildpacks import install

    tail = [f"#23 1.0 {install.FAILED} installing requirements.txt failed: error: no solution, we can "
            "conclude that your requirements are unsatisfiable."]
    message = failure_message("repo", SHA, "failed (repo2docker exit code 1)", tail)
    assert message.startswith("Building repo failed: installing requirements.txt failed: error: no solution, "
                              "we can conclude that your requirements are unsatisfiable. (Building repo at ")


# apt-get's words when the build cannot reach the mirror (a container without a network, here; the
# mirror's host name is a stand-in)
APT_OFFLINE = ["#20 0.512 W: Failed to fetch http://apt-mirror.lab.example/debian/dists/bookworm/InRelease  "
               "Temporary failure resolving 'apt-mirror.lab.example'",
               "#20 0.513 W: Some index files failed to download. They have been ignored, or old ones used instead.",
               "#20 0.900 Reading package lists...", "#20 1.100 E: Unable to locate package cowsay"]


def test_an_unreachable_debian_mirror_is_not_blamed_on_the_package_name():
    message = failure_message("repo", SHA, "failed (repo2docker exit code 1)", APT_OFFLINE)
    assert message.startswith("apt.txt could not be installed: the build could not reach Debian's package mirror "
                              "(http://apt-mirror.lab.example/debian/dists/bookworm/InRelease: Temporary failure "
                              "resolving 'apt-mirror.lab.example'), so no package, 'cowsay' included, could be found.")
    assert "which Debian does not have" not in message
    wrong_name = failure_message("repo", SHA, "failed", [APT_OFFLINE[-1]])
    assert wrong_name.startswith("apt.txt asks for the package 'cowsay', which Debian does not have.")


def test_pre_in_a_requirements_file_or_its_includes_allows_pre_releases(tmp_path):
    """pip reads --pre from the file; uv only from its command line (it warns and ignores the line)."""
    from binderspawner.builders.buildpacks.install import requirements_options

    (tmp_path / "req.txt").write_text("\ufeff# dev builds\r\n--pre\r\nnumpy\r\n")
    (tmp_path / "top.txt").write_text("-r req.txt\nsix\n")
    (tmp_path / "plain.txt").write_text("six  # --pre\n-r plain.txt\n--prefer-binary\n")
    assert requirements_options(str(tmp_path / "req.txt")) == ["--prerelease", "allow"]
    assert requirements_options(str(tmp_path / "top.txt")) == ["--prerelease", "allow"]
    assert requirements_options(str(tmp_path / "plain.txt")) == []


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
