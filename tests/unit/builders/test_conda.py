"""The conda decisions, pure: environment.yml read as conda reads it, channels under the admin's
rules, where Python comes from, locks compared with their manifests (builders/condaspec.py,
environment.py's conda kind) and the hub side's message helpers (builders/conda.py)."""

import hashlib

import pytest

from binderspawner.builders import conda, condaspec
from binderspawner.builders.environment import EnvironmentRefused, Policy, RepoFiles, decide

VERSIONS = ("3.11", "3.13", "3.14")
HUB = Policy(VERSIONS)
CHANNEL = Policy(VERSIONS, conda_python="channel")


def decided(files, policy=HUB):
    return decide(RepoFiles(files), policy)


def refused(files, policy=HUB):
    with pytest.raises(EnvironmentRefused) as info:
        decide(RepoFiles(files), policy)
    return str(info.value)


ENV = "channels:\n  - conda-forge\ndependencies:\n  - numpy >=1.26\n  - python=3.13\n  - pip:\n    - six\n"


def test_environment_yml_is_built_by_the_hub_with_the_base_images_python():
    env = decided({"environment.yml": ENV, "requirements.txt": "x\n"})
    assert (env.kind, env.buildpacks, env.python, env.python_file) == ("conda", "venv", "3.13", "environment.yml")
    assert env.conda_specs == ("numpy >=1.26",) and env.conda_python is None
    assert env.conda_pip == ("six",)
    assert "requirements.txt is ignored: the conda environment lists the packages." in env.warnings


def test_python_from_the_channel_keeps_python_in_the_solve():
    env = decided({"environment.yml": ENV}, CHANNEL)
    assert env.python == "3.11" and env.conda_python == "python=3.13"
    assert env.conda_specs == ("numpy >=1.26", "python=3.13")


@pytest.mark.parametrize("spec, python", [("python=3.14", "3.14"), ("python>=3.12", "3.14"),
                                          ("python 3.11.*", "3.11"), ("python", "3.14")])
def test_a_python_pin_picks_a_base_image(spec, python):
    assert decided({"environment.yml": f"dependencies:\n  - {spec}\n"}).python == python


def test_a_python_no_base_image_has_is_refused_or_built_newer_as_runtime_txt():
    assert refused({"environment.yml": "dependencies: [python=3.10]\n"}).startswith(
        "environment.yml asks for Python 3.10")
    env = decided({"environment.yml": "dependencies: [python=3.10]\n"}, Policy(VERSIONS, nearest_newer_python=True))
    assert env.python == "3.11" and any("nearest newer" in w for w in env.warnings)


def test_runtime_txt_versions_without_a_base_image_come_from_the_channel_when_set():
    env = decided({"runtime.txt": "python-3.12\n", "requirements.txt": "six\n"}, CHANNEL)
    assert (env.kind, env.python, env.conda_python, env.conda_specs) == (
        "python", "3.11", "python 3.12.*", ("python 3.12.*",))
    assert decided({"runtime.txt": "python-3.13\n"}, CHANNEL).conda_python is None  # a base image has it
    assert refused({"runtime.txt": "python-3.12\n"}).startswith("runtime.txt asks for Python 3.12")


@pytest.mark.parametrize("mode", ["ignore", "refuse", "allow"])
def test_repository_channels_follow_the_admins_setting(mode):
    files = {"environment.yml": "channels: [bioconda, conda-forge, defaults]\ndependencies: [samtools]\n"}
    policy = Policy(VERSIONS, conda_repository_channels=mode)
    if mode == "refuse":
        message = refused(files, policy)
        assert message.startswith("environment.yml asks for the channel 'bioconda'")
        assert "conda_repository_channels" in message
        return
    env = decided(files, policy)
    assert env.conda_channels == (("bioconda",) if mode == "allow" else ())
    named = [w for w in env.warnings if "'bioconda'" in w]
    assert len(named) == (1 if mode == "ignore" else 0)
    assert not any("'defaults'" in w or "'conda-forge'" in w for w in env.warnings)


def test_a_channel_prefix_in_a_spec_is_a_channel_too():
    env = decided({"environment.yml": "dependencies: ['bioconda::samtools']\n"})
    assert env.conda_specs == ("samtools",) and any("'bioconda'" in w for w in env.warnings)


@pytest.mark.parametrize("text, named", [
    ("dependencies: [numpy, {x: 1}]\n", "environment.yml: the dependency"),
    ("dependencies:\n  - 'numpy ;; >'\n", "environment.yml: the dependency 'numpy ;; >'"),
    ("- a\n- b\n", "environment.yml cannot be read: it is not a YAML mapping"),
    ("dependencies: [a\n", "environment.yml cannot be read"),
    ("dependencies:\n  - pip:\n    - '--index-url http://evil.example/simple six'\n", "environment.yml line 1"),
])
def test_unreadable_environment_files_are_refused_naming_the_entry(text, named):
    assert refused({"environment.yml": text}).startswith(named)


def test_prefix_and_variables_are_named_as_ignored():
    env = decided({"environment.yml": "prefix: /opt/x\nvariables: {A: 1}\ndependencies: [numpy]\n"})
    assert [w for w in env.warnings if "'prefix'" in w or "'variables'" in w]


CONDA_LOCK = """version: 1
metadata:
  platforms: [linux-64]
  sources: [environment.yml]
package:
- name: numpy
  version: 1.26.4
  manager: conda
  platform: linux-64
  url: https://mirror.example/conda-forge/linux-64/numpy-1.26.4-py311h_0.conda
  hash: {md5: aa, sha256: bb}
- name: six
  version: 1.16.0
  manager: pip
  platform: linux-64
  url: https://files.example/six-1.16.0-py2.py3-none-any.whl
  hash: {sha256: cc}
- name: numpy
  version: 1.26.4
  manager: conda
  platform: osx-arm64
  url: https://mirror.example/conda-forge/osx-arm64/numpy-1.26.4-py311h_0.conda
  hash: {md5: dd}
"""


def test_conda_lock_is_read_for_linux_64_with_its_pip_pins():
    env = decided({"environment.yml": "dependencies: [numpy >=1.26, pip: [six]]\n", "conda-lock.yml": CONDA_LOCK})
    assert (env.kind, env.conda_lock, env.conda_manifest) == ("conda", "conda-lock.yml", "environment.yml")
    assert env.conda_pip == ("six==1.16.0 --hash=sha256:cc",)
    packages, _ = condaspec.read_conda_lock(CONDA_LOCK, "conda-lock.yml")
    assert [(p.name, p.version, p.build, p.sha256) for p in packages] == [("numpy", "1.26.4", "py311h_0", "bb")]


@pytest.mark.parametrize("environment, first", [
    ("dependencies: [numpy >=2]\n", "conda-lock.yml does not agree with environment.yml: environment.yml asks "
                                    "for 'numpy >=2', but the lock has numpy 1.26.4"),
    ("dependencies: [scipy]\n", "conda-lock.yml does not agree with environment.yml: environment.yml asks "
                                "for 'scipy'"),
    ("dependencies: [numpy, pip: [requests]]\n", "conda-lock.yml does not agree with environment.yml: its pip: "
                                                 "list names 'requests'"),
])
def test_a_lock_that_disagrees_with_its_manifest_is_refused(environment, first):
    assert refused({"environment.yml": environment, "conda-lock.yml": CONDA_LOCK}).startswith(first)


def test_conda_lock_without_linux_64_or_in_another_format_is_refused():
    assert refused({"conda-lock.yml": CONDA_LOCK.replace("[linux-64]", "[osx-arm64]")}).startswith(
        "conda-lock.yml has no packages for linux-64 (it locks osx-arm64)")
    assert refused({"conda-lock.yml": "version: 2\n"}).startswith("conda-lock.yml is not a conda-lock file")


def test_pixi_lock_keeps_the_manifest_specs_for_the_hub_to_compare():
    env = decided({"pixi.lock": "version: 6\n", "pixi.toml": '[dependencies]\nnumpy = ">=1.26"\nsix = "*"\n'})
    assert (env.conda_lock, env.conda_manifest, env.conda_specs) == (
        "pixi.lock", "pixi.toml", ("numpy >=1.26", "six"))
    both = decided({"pixi.lock": "", "conda-lock.yml": CONDA_LOCK})
    assert both.conda_lock == "pixi.lock" and any(w.startswith("conda-lock.yml is ignored") for w in both.warnings)


def test_conda_files_go_to_repo2dockers_buildpacks_when_the_admin_says_so():
    assert decided({"environment.yml": ENV}, Policy(VERSIONS, buildpacks="repo2docker")).buildpacks == "repo2docker"


# hub side helpers ---------------------------------------------------------------------------------

def test_the_unreachable_channel_is_found_in_rattlers_error():
    channels = conda.channel_urls(["http://127.0.0.1:9/a", "http://127.0.0.1:9/b/"])
    text = "error sending request for url (http://127.0.0.1:9/b/linux-64/repodata_shards.msgpack.zst)"
    assert conda.unreachable_channel(text, channels) == ("http://127.0.0.1:9/b/", "http://127.0.0.1:9/b/")
    assert conda.unreachable_channel("nothing", channels) is None


def test_messages_show_no_credentials_and_solver_text_is_trimmed():
    assert conda.public_url("https://user:secret@mirror.example:8443/c/") == "https://mirror.example:8443/c/"
    assert conda.solver_reason("Cannot solve the request because of: No candidates were found for x *.\n\n") == (
        "No candidates were found for x *.")


def test_digests_are_checked_sha256_first():
    data = b"package"
    assert conda.check_digest(data, sha256=hashlib.sha256(data).hexdigest()) == ""
    assert conda.check_digest(data, sha256="00", md5=hashlib.md5(data).hexdigest()) == "sha256"
    assert conda.check_digest(data, md5=hashlib.md5(data).hexdigest()) == ""
    assert conda.check_digest(data) == "no checksum"


async def test_a_repository_channel_on_a_private_address_is_refused_before_any_request():
    env = decided({"environment.yml": "channels: ['http://10.1.2.3/internal']\ndependencies: [x]\n"},
                  Policy(VERSIONS, conda_repository_channels="allow"))
    assert env.conda_channels == ("http://10.1.2.3/internal",)
    with pytest.raises(conda.CondaFailed) as info:
        await conda.solve(env, "3.11", conda.CondaSettings(), lambda *a: None)
    assert info.value.refused
    assert str(info.value).startswith("environment.yml: the channel 'http://10.1.2.3/internal': The host "
                                      "'10.1.2.3' resolves to 10.1.2.3, a private address")


def test_a_lock_naming_a_package_outside_the_hubs_channels_is_refused(tmp_path):
    (tmp_path / "conda-lock.yml").write_text(CONDA_LOCK)
    env = decided({"conda-lock.yml": CONDA_LOCK})
    settings = conda.CondaSettings(channels=("http://127.0.0.1:9/conda-forge",))
    with pytest.raises(conda.CondaFailed) as info:
        conda.locked_packages(env, str(tmp_path), settings, [])
    assert str(info.value).startswith("conda-lock.yml locks 'numpy' from https://mirror.example/conda-forge/")
    settings = conda.CondaSettings(channels=("https://user:pw@mirror.example/conda-forge",))
    assert [p.name for p in conda.locked_packages(env, str(tmp_path), settings, [])] == ["numpy"]


def test_a_mirrors_credentials_go_with_its_packages_only():
    channels = conda.channel_urls(["https://u%40x:p@mirror.example/c"])
    assert conda.channel_credentials("https://mirror.example/c/noarch/a-1-0.conda", channels) == ("u@x", "p")
    assert conda.channel_credentials("https://other.example/c/noarch/a-1-0.conda", channels) == (None, None)


def test_rattlers_errors_lose_the_credentials_of_urls():
    text = "error sending request for url (https://u:secret@mirror.example/c/noarch/repodata.json)"
    assert "secret" not in conda.solver_reason(text) and "https://mirror.example/c/" in conda.solver_reason(text)


def test_with_repo2dockers_buildpacks_a_lock_beside_environment_yml_is_named_as_ignored():
    r2d = Policy(VERSIONS, buildpacks="repo2docker")
    env = decided({"environment.yml": ENV, "pixi.lock": ""}, r2d)
    assert env.buildpacks == "repo2docker" and any(w.startswith("pixi.lock is ignored") for w in env.warnings)
    assert decided({"pixi.lock": ""}, r2d).buildpacks == "venv"  # only the hub reads a lock alone


@pytest.mark.parametrize("path", ["conda-forge/../attacker", "conda-forge/%2e%2e/attacker",
                                  "conda-forge/%2E%2E/attacker", "conda-forge/./../attacker",
                                  "conda-forge/..%2fattacker", "conda-forge/..%5cattacker"])
def test_a_lock_url_climbing_out_of_the_hubs_channel_is_refused(tmp_path, path):
    """A lock's URL that starts with a hub channel but resolves to another channel on that host (the
    lock's author also writes its checksums) is refused, and the mirror's credentials stay home."""
    lock = CONDA_LOCK.replace("https://mirror.example/conda-forge/linux-64/",
                              f"https://mirror.example/{path}/linux-64/")
    (tmp_path / "conda-lock.yml").write_text(lock)
    env = decided({"conda-lock.yml": lock})
    settings = conda.CondaSettings(channels=("https://user:pw@mirror.example/conda-forge",))
    with pytest.raises(conda.CondaFailed) as info:
        conda.locked_packages(env, str(tmp_path), settings, [])
    assert "not one of this hub's channels" in str(info.value)
    url = f"https://mirror.example/{path}/linux-64/numpy-1.26.4-py311h_0.conda"
    assert conda.channel_credentials(url, conda.channel_urls(settings.channels)) == (None, None)


@pytest.mark.parametrize("include", ["-r extra.txt", "--requirement=extra.txt", "-c extra.txt",
                                     "--constraint extra.txt"])
def test_a_pip_line_including_a_file_has_that_files_index_options_checked(include, tmp_path):
    """A pip: line that includes a repository file (pip reads it in the environment file's folder)
    is held to the same index rule as requirements.txt's includes: an index named there, or in a
    file that one includes, is refused. The checkout reads the included files for it."""
    from binderspawner.builders.checkout import read_repo_files

    def decide_checkout(files):
        for path, text in files.items():
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(text)
        return decide(read_repo_files(str(tmp_path)), HUB)

    files = {"binder/environment.yml": f"dependencies:\n  - numpy\n  - pip:\n    - '{include}'\n",
             "binder/extra.txt": "six\n--extra-index-url https://evil.example/simple\n"}
    with pytest.raises(EnvironmentRefused, match="^binder/extra.txt line 2"):
        decide_checkout(files)
    with pytest.raises(EnvironmentRefused, match="^binder/more.txt line 1"):
        decide_checkout({"binder/extra.txt": "-r more.txt\n", "binder/more.txt": "-i https://evil.example/simple\n"})
    assert decide_checkout({"binder/more.txt": "six\n"}).conda_pip == (include,)


def test_the_download_limit_is_a_size_setting_with_a_default():
    from traitlets import TraitError

    from binderspawner.builders.repo2docker import Repo2DockerBuilder

    assert Repo2DockerBuilder().conda_settings().max_download_bytes == 20 << 30
    assert Repo2DockerBuilder(conda_max_download="1.5G").conda_settings().max_download_bytes == 3 << 29
    assert Repo2DockerBuilder(conda_max_download="").conda_settings().max_download_bytes == 0
    with pytest.raises(TraitError, match="conda_max_download: 'lots' is not a size"):
        Repo2DockerBuilder(conda_max_download="lots")


@pytest.mark.parametrize("hash_yaml", [
    '{sha256: "cc\\n--extra-index-url https://evil.example/simple"}',  # a line of its own in pip's file
    '{sha256: "cc --index-url https://evil.example/simple"}',
    '{md5: "aa\\n-r /etc/passwd"}',
    '"cc"',  # not a mapping
    '[cc]',
])
def test_a_conda_lock_hash_that_is_not_hex_is_refused(hash_yaml):
    """conda-lock.yml's pip pins become requirement lines with the lock's hash: a hash value must
    not carry a line or an option of its own into them (nor a conda entry's into the manifest)."""
    for entry in ("six", "numpy"):
        start = CONDA_LOCK.index(f"- name: {entry}")
        at = CONDA_LOCK.index("  hash: ", start)
        lock = CONDA_LOCK[:at] + f"  hash: {hash_yaml}" + CONDA_LOCK[CONDA_LOCK.index("\n", at):]
        message = refused({"environment.yml": "dependencies: [numpy >=1.26, pip: [six]]\n", "conda-lock.yml": lock})
        assert message.startswith(f"conda-lock.yml: the entry '{entry}' has no usable URL, name or hash")


def _laughs(levels=9):
    """'Billion laughs': a few hundred bytes of YAML aliases that expand to 9**levels values."""
    lines, previous = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'], "a0"
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = f"a{n}"
    return "\n".join(lines) + "\n", previous


@pytest.mark.parametrize("name", ["environment.yml", "conda-lock.yml"])
def test_yaml_aliases_that_expand_past_the_limit_are_refused_at_once(name):
    """A 400-byte environment.yml whose aliases expand to 387 million values: a message quoting
    the entry built it in the hub's memory (MemoryError after 20 s under a 2 GB limit, in the
    hub's event loop). Refused, from the document as parsed, without expanding it."""
    text, last = _laughs()
    body = f"dependencies:\n  - *{last}\n" if name == "environment.yml" else \
        f"version: 1\nmetadata: {{platforms: [linux-64]}}\npackage:\n  - {{name: *{last}, platform: linux-64}}\n"
    message = refused({name: text + body})
    assert message.startswith(f"{name} cannot be read: it holds more than 1,000,000 values once its aliases")
    sizes = [10]  # a0: the list and its 9 strings; each next level: the list and 9 of the one before
    for _ in range(8):
        sizes.append(1 + 9 * sizes[-1])
    assert condaspec.expanded_size(yaml_load(text), 10 ** 12) == 1 + 9 + sum(sizes)  # + the mapping and its keys


def yaml_load(text):
    import yaml

    return yaml.safe_load(text)


def test_yaml_that_refers_to_itself_or_nests_too_deep_is_refused_and_small_aliases_are_read():
    assert refused({"environment.yml": "dependencies: &d [numpy, *d]\n"}).startswith(
        "environment.yml cannot be read: an alias (*name) refers to a value that contains it")
    assert refused({"environment.yml": "dependencies: " + "[" * 20000 + "]" * 20000 + "\n"}).startswith(
        "environment.yml cannot be read: it is nested too deeply")
    env = decided({"environment.yml": "x: &pins [numpy >=1.26]\ndependencies: *pins\n"})
    assert env.conda_specs == ("numpy >=1.26",)


def test_repo2docker_conda_buildpack_is_not_handed_an_alias_bomb():
    """With repo2docker's own buildpacks the build process reads environment.yml, expanding every
    alias with no limit: the hub refuses the file first."""
    text, last = _laughs()
    policy = Policy(VERSIONS, buildpacks="repo2docker")
    assert refused({"environment.yml": text + f"dependencies:\n  - *{last}\n"}, policy).startswith(
        "environment.yml cannot be read: it holds more than 1,000,000 values")
    assert decided({"environment.yml": ENV}, policy).buildpacks == "repo2docker"


@pytest.mark.parametrize("spec, is_url", [
    ("curl=8", False), ("urllib3 >=1.26", False), ("url", False), ("foo 1.0 aurl=b", False),
    ("foo[build=py_0, url=https://x.example/c/noarch/foo-1-0.conda]", True),
    ("https://x.example/c/noarch/foo-1.0-0.conda", True), ("/srv/foo-1.0-0.tar.bz2", True),
])
def test_package_urls_are_told_from_names_that_merely_contain_url(spec, is_url):
    assert condaspec.is_package_url(spec) is is_url
