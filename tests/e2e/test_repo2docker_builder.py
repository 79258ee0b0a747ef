"""The repo2docker builder's command line, environment and log parsing:
binderspawner/builders/repo2docker.py (and the config file it hands to repo2docker).

No Docker here: the command is checked with repo2docker's own argument parser, the config file is
loaded the way repo2docker loads it, and build() runs a stand-in repo2docker script.
"""

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import jupyterhub
import pytest
from traitlets.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st
from repo2docker.__main__ import get_argparser
from traitlets import TraitError

import binderspawner
from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.builders.repo2docker import parse_log_line
from binderspawner.builders.buildpacks.venv import VenvBuildPack
from binderspawner.providers import RepoSource, ResolvedRepo
from tests.support.builds import build_events

SHA = "0123456789abcdef0123456789abcdef01234567"
URL = "git://127.0.0.1:9418/requirements.git"
IMAGE = f"binder-127-0-0-1-9418-requirements-1a2b3c4d:{SHA}"
PACKAGE_CONFIG = os.path.join(os.path.dirname(binderspawner.__file__), "builders", "repo2docker_config.py")


def make_request(labels=None, ref="main", url=URL, image=IMAGE, sha=SHA):
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug="127.0.0.1:9418/requirements",
                        display_name=url)
    resolved = ResolvedRepo(source, ref, sha, "branch main")
    if labels is None:
        labels = {"binderspawner.repo": url, "binderspawner.ref": ref, "binderspawner.commit": SHA}
    return BuildRequest(IMAGE if image is None else image, resolved, labels)


def parsed(argv, prefix_length):
    return get_argparser().parse_args(argv[prefix_length:])


# command --------------------------------------------------------------------------------------------


def test_default_command_is_this_pythons_repo2docker():
    argv = Repo2DockerBuilder().command(make_request())
    assert argv[:3] == [sys.executable, "-m", "repo2docker"]


def test_command_is_what_repo2docker_understands():
    request = make_request()
    argv = Repo2DockerBuilder().command(request)
    assert all(isinstance(word, str) for word in argv)
    args = parsed(argv, 3)
    assert args.repo == URL
    assert args.ref == SHA  # the immutable version, never the branch name the user typed
    assert args.image_name == IMAGE
    assert args.run is False
    assert args.json_logs is True
    assert args.user_id == 1000 and args.user_name == "jovyan"
    assert sorted(args.labels) == sorted(f"{k}={v}" for k, v in request.labels.items())


def test_command_config_is_the_packages_config_file():
    argv = Repo2DockerBuilder().command(make_request())
    config = parsed(argv, 3).config
    assert os.path.isabs(config)
    assert os.path.samefile(config, PACKAGE_CONFIG)


def test_url_is_the_last_word_and_appears_once():
    argv = Repo2DockerBuilder().command(make_request())
    assert argv[-1] == URL
    assert argv.count(URL) == 1


def test_labels_are_single_words_whatever_they_hold():
    labels = {"binderspawner.ref": "feature/x; rm -rf ~", "binderspawner.note": "a=b c", "empty": ""}
    argv = Repo2DockerBuilder().command(make_request(labels=labels))
    pairs = [argv[i + 1] for i, word in enumerate(argv) if word == "--label"]
    assert sorted(pairs) == sorted(["binderspawner.ref=feature/x; rm -rf ~", "binderspawner.note=a=b c",
                                    "empty="])
    assert sorted(parsed(argv, 3).labels) == sorted(pairs)


def test_no_labels():
    argv = Repo2DockerBuilder().command(make_request(labels={}))
    assert "--label" not in argv
    assert parsed(argv, 3).repo == URL


def test_configured_command_user_and_command_prefix():
    builder = Repo2DockerBuilder(repo2docker_command=["/opt/r2d/bin/repo2docker"], user_id=1234,
                                 user_name="lab")
    argv = builder.command(make_request())
    assert argv[0] == "/opt/r2d/bin/repo2docker"
    args = parsed(argv, 1)
    assert (args.user_id, args.user_name) == (1234, "lab")


# environment ------------------------------------------------------------------------------------------


def settings_of(builder):
    return json.loads(builder.environment(make_request())["BINDERSPAWNER_R2D_SETTINGS"])


def test_environment_carries_the_settings(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    builder = Repo2DockerBuilder(server_requirements=["jupyterlab==4.2.0"], extra_ca_bundle=str(bundle),
                                 content_providers=["Git", "Zenodo"], base_image="my-base:1")
    assert settings_of(builder) == {
        "buildpacks": "venv",
        "base_image": "my-base:1",
        "server_requirements": ["jupyterlab==4.2.0"],
        "extra_ca_bundle": str(bundle),
        "content_providers": ["Git"],  # only the one this (git) source needs
        # what the build's checked clone obeys: the resolving provider's rules (GitProvider here)
        "git_rules": {"allowed_private_hosts": [], "plain_http_hosts": [],
                      "setting": "GitProvider.allowed_private_hosts",
                      "allowed_schemes": ["https", "http", "git"], "allowed_hosts": []},
        "hub_id": "",  # the request's binderspawner.hub label: this hub's images are not for builds
    }


def test_defaults():
    builder = Repo2DockerBuilder()
    s = settings_of(builder)
    assert s["buildpacks"] == "venv"
    assert s["base_image"] == "binderspawner-base:bookworm"
    assert s["server_requirements"] == [
        f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", "jupyter-offlinenotebook"]
    assert s["extra_ca_bundle"] == ""
    assert s["content_providers"] == ["Git"]  # repo2docker's others go online (Dataverse, ...)


def test_repo2docker_buildpacks_keep_repo2dockers_base_image():
    builder = Repo2DockerBuilder(buildpacks="repo2docker")
    assert settings_of(builder)["base_image"] == ""
    assert settings_of(Repo2DockerBuilder(buildpacks="REPO2DOCKER"))["buildpacks"] == "repo2docker"


def test_unknown_buildpacks_setting():
    with pytest.raises(TraitError):
        Repo2DockerBuilder(buildpacks="conda")


def test_environment_limits_git_and_keeps_hub_secrets_out(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-secret")
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "proxy-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "gh-secret")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other-docker.sock")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:ext:ssh")
    env = Repo2DockerBuilder().environment(make_request())
    allowed = env["GIT_ALLOW_PROTOCOL"].split(":")
    assert allowed and set(allowed) <= {"https", "http", "git"}
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["DOCKER_HOST"] == "unix:///run/other-docker.sock"  # builds use the hub's engine
    assert "PATH" in env
    assert not [value for value in env.values() if "secret" in value]


def test_environment_without_docker_settings(monkeypatch):
    for name in ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    env = Repo2DockerBuilder().environment(make_request())
    assert not [name for name in env if name.startswith("DOCKER_")]


LOAD_CONFIG = textwrap.dedent("""
    import json, os, sys
    from traitlets.config.loader import PyFileConfigLoader
    path = sys.argv[1]
    c = PyFileConfigLoader(os.path.basename(path), path=os.path.dirname(path)).load_config()
    r = c.Repo2Docker
    default = r.get("default_buildpack")
    print(json.dumps({
        "buildpacks": [b.__name__ for b in r.get("buildpacks", [])],
        "content_providers": [p.__name__ for p in r.content_providers],
        "base_image": r.get("base_image"),
        "default": default and {
            "venv": issubclass(default, __import__("binderspawner.builders.buildpacks.venv",
                                                   fromlist=["x"]).VenvBuildPack),
            "server_requirements": list(default.server_requirements),
            "extra_ca_bundle": default.extra_ca_bundle,
        },
    }))
""")


def load_config_as_repo2docker_would(builder, tmp_path):
    """Load the --config file in a fresh process that has only the builder's environment."""
    request = make_request()
    argv = builder.command(request)
    config = argv[argv.index("--config") + 1]
    result = subprocess.run([sys.executable, "-c", LOAD_CONFIG, config], env=builder.environment(request),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_config_file_sets_up_the_venv_buildpack(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    builder = Repo2DockerBuilder(server_requirements=["jupyterhub==6.1.1", "jupyterlab>=4"],
                                 extra_ca_bundle=str(bundle))
    loaded = load_config_as_repo2docker_would(builder, tmp_path)
    assert loaded["content_providers"] == ["CheckedGit"]  # binderspawner's checked clone
    assert loaded["base_image"] == "binderspawner-base:bookworm"
    assert loaded["buildpacks"] == ["LegacyBinderDockerBuildPack", "DockerBuildPack", "VenvBuildPack"]
    assert loaded["default"] == {"venv": True, "server_requirements": ["jupyterhub==6.1.1", "jupyterlab>=4"],
                                 "extra_ca_bundle": str(bundle)}


def test_config_file_keeps_repo2dockers_buildpacks_with_the_dockerfile_fenced(tmp_path):
    from repo2docker.app import Repo2Docker

    loaded = load_config_as_repo2docker_would(Repo2DockerBuilder(buildpacks="repo2docker"), tmp_path)
    # repo2docker's own list, in its order; only the Dockerfile buildpack is the fenced one
    assert loaded["buildpacks"] == [b.__name__ for b in Repo2Docker.class_traits()["buildpacks"].default()]
    assert loaded["default"] is None
    assert loaded["base_image"] is None
    assert loaded["content_providers"] == ["CheckedGit"]


# extra_ca_bundle --------------------------------------------------------------------------------------


def test_extra_ca_bundle_that_does_not_exist(tmp_path):
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(TraitError) as info:
        Repo2DockerBuilder(extra_ca_bundle=missing)
    assert "extra_ca_bundle" in str(info.value)
    assert missing in str(info.value)


def test_extra_ca_bundle_that_is_a_directory(tmp_path):
    with pytest.raises(TraitError):
        Repo2DockerBuilder(extra_ca_bundle=str(tmp_path))


def test_extra_ca_bundle_file_is_accepted(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    assert Repo2DockerBuilder(extra_ca_bundle=str(bundle)).extra_ca_bundle == str(bundle)
    assert Repo2DockerBuilder(extra_ca_bundle="").extra_ca_bundle == ""


def test_relative_extra_ca_bundle_reaches_the_build(tmp_path, monkeypatch):
    # BUG (build/repo2docker.py, _bundle_exists): a relative path is checked against the hub's
    # working directory but passed on as it is, and repo2docker resolves relative build files
    # against its own buildpacks/ directory, so the build cannot find the bundle.
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "proxy.pem").write_text("pem")
    monkeypatch.chdir(tmp_path)
    builder = Repo2DockerBuilder(extra_ca_bundle="certs/proxy.pem")
    bundle = settings_of(builder)["extra_ca_bundle"]
    _, source = VenvBuildPack.generate_build_context_filename(bundle)
    assert os.path.isfile(source), f"repo2docker would read {source}"
    assert os.path.samefile(source, tmp_path / "certs" / "proxy.pem")


# parse_log_line ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    (b'{"phase": "building", "message": "Step 1/9 : FROM base\\n"}\n', ("building", "Step 1/9 : FROM base")),
    (b'{"phase": "fetching", "message": "Cloning into /tmp/x"}', ("fetching", "Cloning into /tmp/x")),
    (b'{"phase": "failed", "message": "boom\\n\\n"}\n', ("failed", "boom")),
    (b'{"message": "no phase given"}\n', ("building", "no phase given")),
    (b'{"phase": null, "message": "x"}', ("building", "x")),
    (b'{"phase": "", "message": "x"}', ("building", "x")),
    (b'{"phase": "building"}', ("building", "")),
    (b'{"phase": "building", "message": 42}', ("building", "42")),
    (b'{"phase": "building", "message": "two\\nlines"}', ("building", "two\nlines")),
    (b'{"message": "caf\xc3\xa9"}', ("building", "caf\u00e9")),
])
def test_json_lines(raw, expected):
    assert parse_log_line(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    (b"Picked Git content provider.\n", ("building", "Picked Git content provider.")),
    (b"Step 3/9 : RUN pip install\r\n", ("building", "Step 3/9 : RUN pip install\r")),
    (b"{not json}\n", ("building", "{not json}")),
    (b"\n", ("building", "")),
    (b"", ("building", "")),
])
def test_non_json_lines(raw, expected):
    assert parse_log_line(raw) == expected


@pytest.mark.parametrize("raw", [b"[1, 2]\n", b'"just a string"\n', b"42\n", b"null\n", b"true\n", b"NaN\n"])
def test_json_that_is_not_an_object_is_shown_as_it_is(raw):
    assert parse_log_line(raw) == ("building", raw.decode().rstrip("\n"))


def test_invalid_utf8_does_not_break_the_log():
    phase, message = parse_log_line(b"pip: \xff\xfe broken \xc3\n")
    assert phase == "building"
    assert message.startswith("pip: ") and "broken" in message and "\ufffd" in message


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=60),
                 st.builds(lambda d: json.dumps(d).encode(),
                           st.dictionaries(st.sampled_from(["phase", "message", "other"]),
                                           st.one_of(st.none(), st.text(), st.integers(),
                                                     st.lists(st.integers())),
                                           max_size=3))))
def test_any_line_gives_a_phase_and_a_message(raw):
    phase, message = parse_log_line(raw)
    assert isinstance(phase, str) and phase
    assert isinstance(message, str)
    assert not message.endswith("\n")


# build() with a stand-in repo2docker ------------------------------------------------------------------


class FoundImages(Repo2DockerBuilder):
    """The real builder, with the image lookup answered from a set instead of the Docker engine."""

    images = set()

    async def image_exists(self, image):
        return image in self.images


def stand_in(tmp_path, body):
    script = tmp_path / "fake_repo2docker.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


LOOPBACK = Config({"GitProvider": {"allowed_private_hosts": ["127.0.0.1"]}})  # the test git server


@pytest.fixture(scope="module")
def served(git_server):
    """A request for a real repository on the test git server: builds clone it first."""
    sha = git_server.add_repo(f"builder-{os.getpid()}", files={"requirements.txt": "numpy\n"})
    return make_request(url=git_server.url(f"builder-{os.getpid()}"), sha=sha)


async def run_build(builder, request):
    builder.update_config(LOOPBACK)
    builder.environment_images = False  # the stand-in makes no environment image to add files to
    return await build_events(builder, request)


async def test_build_streams_the_log_and_reports_the_image(tmp_path, served):
    record = tmp_path / "record.json"
    command = stand_in(tmp_path, f"""
        import json, os, sys
        json.dump({{"argv": sys.argv[1:], "settings": os.environ.get("BINDERSPAWNER_R2D_SETTINGS")}},
                  open({str(record)!r}, "w"))
        print(json.dumps({{"phase": "fetching", "message": "Cloning\\n"}}), flush=True)
        print("a plain line", flush=True)
        print(json.dumps({{"phase": "building", "message": "Step 1/2\\nStep 2/2\\n"}}), flush=True)
    """)
    FoundImages.images = {IMAGE}
    events, error = await run_build(FoundImages(repo2docker_command=command), served)
    assert error is None
    url = served.resolved.source.fetch_url
    assert events[0][0] == "fetching" and url in events[0][1]
    assert ("fetching", "Cloning") in events
    assert ("building", "a plain line") in events
    assert events.index(("building", "Step 1/2")) + 1 == events.index(("building", "Step 2/2"))
    assert events[-1] == ("built", f"Built image {IMAGE}")
    recorded = json.loads(record.read_text())
    checkout = recorded["argv"][-1]
    assert checkout != url and not os.path.exists(checkout)  # the hub's checkout, removed afterwards
    assert json.loads(recorded["settings"])["buildpacks"] == "venv"


async def test_failed_build_says_why_with_the_end_of_the_log(tmp_path, served):
    command = stand_in(tmp_path, """
        import json
        for i in range(30):
            print(json.dumps({"phase": "building", "message": f"line {i}"}), flush=True)
        print("ERROR: No matching distribution found for nonexistent-package", flush=True)
        raise SystemExit(3)
    """)
    FoundImages.images = set()
    events, error = await run_build(FoundImages(repo2docker_command=command), served)
    assert error is not None
    message = str(error)
    assert "exit code 3" in message
    assert served.resolved.source.fetch_url in message and served.resolved.version[:12] in message
    assert message.startswith("The package 'nonexistent-package' (from requirements.txt) was not found")
    assert "No matching distribution found for nonexistent-package" in message
    assert "line 29" in message and "line 0\n" not in message  # the tail, not the whole log
    assert ("building", "line 0") in events  # while the whole log was streamed


async def test_exit_zero_without_an_image_is_a_failure(tmp_path, served):
    command = stand_in(tmp_path, "print('nothing built')\n")
    FoundImages.images = set()
    _, error = await run_build(FoundImages(repo2docker_command=command), served)
    assert error is not None and "nothing built" in str(error)


async def test_build_that_takes_too_long_is_stopped_with_its_children(tmp_path, served):
    pidfile = tmp_path / "child.pid"
    command = stand_in(tmp_path, f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(60)
    """)
    builder = FoundImages(repo2docker_command=command, build_timeout=5)  # room to start Python under load
    events, error = await run_build(builder, served)
    assert error is not None
    assert "took longer than 5 s" in str(error)
    assert ("building", "started") in events
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as f:  # a zombie waiting for init counts as gone
            if f.read().split(")")[-1].split()[0] == "Z":
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("repo2docker's child process survived the timeout")


MATCH_AFTER_CONFIG = textwrap.dedent("""
    import os, sys
    from traitlets.config.loader import PyFileConfigLoader
    path, context = sys.argv[1:3]
    PyFileConfigLoader(os.path.basename(path), path=os.path.dirname(path)).load_config()
    import docker.utils.build, repo2docker.buildpacks.base
    os.chdir(context)
    patterns = [line for line in open(".dockerignore").read().splitlines() if line]
    for exclude_paths in (repo2docker.buildpacks.base.exclude_paths, docker.utils.build.exclude_paths):
        print(sorted(exclude_paths(".", list(patterns))))
""")


def test_the_build_context_matches_a_hostile_dockerignore_at_once(tmp_path):
    """A 40-byte .dockerignore line and one long file name keep docker-py's backtracking regex busy
    for hours (in repo2docker's build context, and in docker-py's for a Dockerfile), a core burnt
    until the build times out; in a build process, the hub's linear matcher answers instead."""
    context = tmp_path / "repo"
    context.mkdir()
    (context / ".dockerignore").write_text("a*" * 20 + "b\nsecret.txt\n")
    (context / ("a" * 120)).write_text("x")
    (context / "secret.txt").write_text("x")
    builder = Repo2DockerBuilder()
    argv = builder.command(make_request())
    try:
        done = subprocess.run([sys.executable, "-c", MATCH_AFTER_CONFIG, argv[argv.index("--config") + 1],
                               str(context)], env=builder.environment(make_request()), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the build context was still matching .dockerignore after 120 s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(sorted([".dockerignore", "a" * 120]))] * 2
