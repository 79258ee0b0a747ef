"""repo2docker's detection, precedence and Python version rules, decided before a build:
binderspawner/builders/environment.py."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binderspawner.builders.environment import (EnvironmentRefused, Policy, RepoFiles, check_apt,
                                                check_indexes, decide, parse_runtime, pipfile_hashes)

VERSIONS = ("3.11", "3.13", "3.14")
HUB = Policy(VERSIONS)
NEWER = Policy(VERSIONS, nearest_newer_python=True)
R2D = Policy(VERSIONS, buildpacks="repo2docker")
PYPROJECT = '[project]\nname = "x"\n[build-system]\nrequires = ["setuptools"]\n'


def repo(files, listing=None):
    dirs = {p.split("/", 1)[0] for p in files if p.split("/", 1)[0] in ("binder", ".binder") and "/" in p}
    return RepoFiles(dict(files), frozenset(dirs), frozenset(listing if listing is not None else files))


def refused(files, policy=HUB):
    with pytest.raises(EnvironmentRefused) as info:
        decide(repo(files), policy)
    return str(info.value)


# kinds and precedence ------------------------------------------------------------------------------

KIND_FILES = {
    "Dockerfile": "dockerfile",
    "environment.yml": "conda",
    "environment.yaml": "conda",
    "Pipfile": "pipfile",
    "Pipfile.lock": "pipfile",
    "requirements.txt": "python",
    "Project.toml": "julia",
    "default.nix": "nix",
}
ORDER = ["dockerfile", "julia", "nix", "r", "conda", "pipfile", "python"]  # repo2docker's buildpack order
CONTENT = {"Pipfile.lock": "{}", "Pipfile": "", "requirements.txt": "numpy\n"}


COMBINATIONS = [c for n in (1, 2, 3) for c in itertools.combinations(sorted(KIND_FILES), n)]


@pytest.mark.parametrize("base", ["", "binder/", ".binder/"])
@pytest.mark.parametrize("names", COMBINATIONS)
def test_the_first_kind_in_repo2dockers_order_wins(names, base):
    files = {base + n: CONTENT.get(n, "") for n in names}
    expected = min((KIND_FILES[n] for n in names), key=ORDER.index)
    env = decide(repo(files), R2D)
    assert env.kind == expected
    assert env.binder_dir == base.rstrip("/")
    assert env.buildpacks == ("repo2docker" if expected in ("julia", "nix", "r", "conda") else "venv")


def test_empty_repository_gets_the_default_python():
    env = decide(repo({"README.md": "hi"}), HUB)
    assert (env.kind, env.python, env.requirements, env.install_repo) == ("python", "3.11", None, False)
    assert env.warnings == ()


def test_both_binder_directories_are_refused():
    message = refused({"binder/requirements.txt": "", ".binder/requirements.txt": ""})
    assert "'binder'" in message and "'.binder'" in message


@pytest.mark.parametrize("binder", ["binder", ".binder"])
def test_binder_directory_overrides_the_root_and_names_what_it_ignores(binder):
    env = decide(repo({f"{binder}/requirements.txt": "a", "requirements.txt": "b", "apt.txt": "x",
                       "setup.py": "", "Dockerfile": "FROM x"}), HUB)
    assert env.kind == "python" and env.requirements == f"{binder}/requirements.txt"
    assert env.install_repo is False  # setup.py is not installed with a binder directory
    for name in ("requirements.txt", "apt.txt", "setup.py", "Dockerfile"):
        assert any(w.startswith(f"{name} is ignored") and f"'{binder}'" in w for w in env.warnings), name


def test_empty_binder_directory_still_overrides_the_root():
    files = RepoFiles({"requirements.txt": "numpy"}, frozenset({"binder"}), frozenset({"requirements.txt"}))
    env = decide(files, HUB)
    assert env.requirements is None and env.binder_dir == "binder"
    assert any(w.startswith("requirements.txt is ignored") for w in env.warnings)


def test_dockerfile_wins_and_the_rest_is_named_as_ignored():
    env = decide(repo({"Dockerfile": "FROM x", "requirements.txt": "", "apt.txt": "sudo rm",
                       "postBuild": "", "environment.yml": "", "setup.py": "",
                       "runtime.txt": "python-2.7"}), HUB)
    assert env.kind == "dockerfile" and env.python is None
    ignored = {w.split(" is ignored")[0] for w in env.warnings}
    assert ignored == {"requirements.txt", "apt.txt",
                       "postBuild", "environment.yml", "setup.py", "runtime.txt"}


@pytest.mark.parametrize("files, install", [
    ({"setup.py": ""}, True),
    ({"pyproject.toml": PYPROJECT}, True),
    ({"pyproject.toml": '[project]\nname = "x"\n'}, False),  # no [build-system]
    ({"pyproject.toml": '[build-system]\nrequires = []\n'}, False),  # no [project]
    ({"pyproject.toml": "[tool.black]\n"}, False),
    ({"setup.py": "", "requirements.txt": "numpy"}, True),
    ({"setup.py": "", "postBuild": "echo"}, True),
    ({"binder/requirements.txt": "", "setup.py": ""}, False),
    ({"binder/apt.txt": "", "pyproject.toml": PYPROJECT}, False),
])
def test_the_repository_is_installed_as_a_package_only_without_a_binder_directory(files, install):
    env = decide(repo(files), HUB)
    assert env.kind == "python" and env.install_repo is install


def test_pipfile_ignores_requirements_and_setup_py():
    lock = '{"_meta": {"hash": {"sha256": "%s"}}}' % min(pipfile_hashes(""))  # made from this Pipfile
    env = decide(repo({"Pipfile": "", "Pipfile.lock": lock, "requirements.txt": "x", "setup.py": ""}), HUB)
    assert (env.pipfile, env.pipfile_lock, env.requirements, env.install_repo) == (
        "Pipfile", "Pipfile.lock", None, False)
    assert {w.split(" is ignored")[0] for w in env.warnings} == {"requirements.txt", "setup.py"}


def test_binder_pipfile_paths_are_relative_to_the_root():
    env = decide(repo({"binder/Pipfile": ""}), HUB)
    assert (env.pipfile, env.pipfile_lock) == ("binder/Pipfile", None)


def test_requirements3_is_named_as_ignored():
    env = decide(repo({"requirements.txt": "", "requirements3.txt": ""}), HUB)
    assert any(w.startswith("requirements3.txt is ignored") for w in env.warnings)


@pytest.mark.parametrize("name, right", [("requirement.txt", "requirements.txt"), ("Requirements.txt",
                         "requirements.txt"), ("postbuild", "postBuild"), ("binder/start.sh", "start"),
                                         ("Apt.txt", "apt.txt"), ("environment.YML", "environment.yml")])
def test_names_repo2docker_does_not_read_are_warned_about(name, right):
    files = {name: "", "binder/x": ""} if name.startswith("binder/") else {name: ""}
    env = decide(RepoFiles({}, frozenset({"binder"}) if "binder/" in name else frozenset(),
                           frozenset(files)), HUB)
    assert any(w.startswith(f"{name} is ignored") and f"'{right}'" in w for w in env.warnings)


# other languages ------------------------------------------------------------------------------------

@pytest.mark.parametrize("files, named, kind", [
    ({"install.R": "", "runtime.txt": "r-4.3-2024-05-01"}, "runtime.txt", "r"),
    ({"DESCRIPTION": "Package: x"}, "DESCRIPTION", "r"),
    ({"binder/runtime.txt": "r-2024-05-01"}, "binder/runtime.txt", "r"),
    ({"Project.toml": ""}, "Project.toml", "julia"),
    ({"binder/JuliaProject.toml": ""}, "binder/JuliaProject.toml", "julia"),
    ({"default.nix": ""}, "default.nix", "nix"),
])
def test_other_languages_are_refused_naming_the_file_and_the_setting(files, named, kind):
    message = refused(files)
    assert message.startswith(f"{named} asks for")
    assert 'c.Repo2DockerBuilder.buildpacks = "repo2docker"' in message
    assert decide(repo(files), R2D).kind == kind  # handed to repo2docker's buildpacks instead


def test_description_is_read_only_without_a_binder_directory():
    env = decide(repo({"DESCRIPTION": "", "binder/requirements.txt": ""}), HUB)
    assert env.kind == "python"
    assert any(w.startswith("DESCRIPTION is ignored") for w in env.warnings)


def test_install_r_without_r_is_refused():
    assert refused({"install.R": "", "requirements.txt": ""}).startswith("install.R is an R script")


def test_r_runtime_without_a_date_is_refused():
    assert "r-<version>-<YYYY-MM-DD>" in refused({"runtime.txt": "r-4.3"}, R2D)


def test_julia_require_is_refused_even_for_repo2docker():
    assert refused({"REQUIRE": "julia 0.6"}, R2D).startswith("REQUIRE is the old Julia")


# Python versions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime, version", [
    ("python-3.13", "3.13"), ("python-3.13.1", "3.13"), ("python-3.14\n", "3.14"),
    ("python-3", "3.11"), ("\ufeffpython-3.13\r\n", "3.13"),
])
def test_runtime_txt_picks_the_version(runtime, version):
    env = decide(repo({"runtime.txt": runtime, "requirements.txt": ""}), HUB)
    assert (env.python, env.warnings) == (version, ())


@pytest.mark.parametrize("runtime, version, fixed", [
    ("python-3.13-2024-01-01", "3.13", "python-3.13"), ("python-2024-01-01", "3.11", "python-<version>"),
])
def test_a_date_in_a_python_runtime_txt_is_named_as_not_used(runtime, version, fixed):
    env = decide(repo({"runtime.txt": runtime}), HUB)
    assert env.python == version
    [warning] = [w for w in env.warnings if w.startswith("runtime.txt's date 2024-01-01 is not used")]
    assert f"write {fixed} in runtime.txt" in warning
    pipfile = decide(repo({"runtime.txt": runtime, "Pipfile": "[packages]\n"}), HUB)  # not read for Python
    assert not [w for w in pipfile.warnings if "date" in w] and [w for w in pipfile.warnings if "runtime.txt" in w]


def test_binder_runtime_txt_is_read_there():
    assert decide(repo({"binder/runtime.txt": "python-3.14",
                  "runtime.txt": "python-3.13"}), HUB).python == "3.14"


@pytest.mark.parametrize("runtime", ["python-3.10", "python-3.12", "python-3.9.7"])
def test_an_unavailable_version_is_refused_naming_file_version_and_versions(runtime):
    message = refused({"runtime.txt": runtime})
    assert message.startswith(f"runtime.txt asks for Python {'.'.join(runtime[7:].split('.')[:2])}, ")
    assert "3.11, 3.13, 3.14" in message and "python_base_images" in message


@pytest.mark.parametrize("runtime, used", [("python-3.10", "3.11"), ("python-3.12", "3.13"),
                                           ("python-3.8", "3.11")])
def test_nearest_newer_version_with_a_warning(runtime, used):
    env = decide(repo({"runtime.txt": runtime}), NEWER)
    assert env.python == used
    assert len(env.warnings) == 1 and f"building with Python {used}" in env.warnings[0]


@pytest.mark.parametrize("runtime", ["python-3.15", "python-2.7", "python-2"])
def test_no_newer_version_is_still_refused(runtime):
    assert "which this hub cannot build" in refused({"runtime.txt": runtime}, NEWER)


@pytest.mark.parametrize("content", ["python", "python-", "3.11", "python-3.11-2024", "python-abc",
                                     "python-3.11-2024-1-1"])
def test_invalid_runtime_txt_is_refused(content):
    assert refused({"runtime.txt": content}).startswith("runtime.txt says")


def test_unknown_runtime_name_is_refused():
    assert "'julia'" in refused({"runtime.txt": "julia-1.9"})


@pytest.mark.parametrize("spec, version", [(">=3.12", "3.14"), (">=3.10", "3.11"), ("<3.12", "3.11"),
                                           (">=3.13,<3.14", "3.13")])
def test_requires_python_moves_an_unpinned_repository(spec, version):
    files = {"pyproject.toml": f'[project]\nname = "x"\nrequires-python = "{spec}"\n'}
    assert decide(repo(files), HUB).python == version


def test_requires_python_that_excludes_runtime_txt_is_refused():
    files = {"runtime.txt": "python-3.11", "pyproject.toml": '[project]\nrequires-python = ">=3.12"\n'}
    assert "requires-python" in refused(files)


def test_requires_python_no_version_fits():
    assert "allows none" in refused({"pyproject.toml": '[project]\nrequires-python = "<3.9"\n'})


def test_requires_python_is_not_read_with_a_binder_directory():
    files = {"binder/requirements.txt": "", "pyproject.toml": '[project]\nrequires-python = ">=3.14"\n'}
    assert decide(repo(files), HUB).python == "3.11"


@pytest.mark.parametrize("files, version, source", [
    ({"Pipfile": '[requires]\npython_version = "3.13"\n'}, "3.13", "Pipfile"),
    ({"Pipfile": '[requires]\npython_full_version = "3.14.1"\n'}, "3.14", "Pipfile"),
    ({"Pipfile": '[requires]\npython_version = "3.13"\n',
      "Pipfile.lock": '{"_meta": {"requires": {"python_version": "3.14"}}}'}, "3.14", "Pipfile.lock"),
    ({"Pipfile": ""}, "3.11", None),
    ({"Pipfile": "", "runtime.txt": "python-3.13"}, "3.11", None),  # repo2docker reads [requires] only
])
def test_pipfile_python_version(files, version, source):
    env = decide(repo(files), HUB)
    assert (env.python, env.python_file) == (version, source)
    assert ("runtime.txt" in files) == any("runtime.txt is not used" in w for w in env.warnings)


def test_pipfile_unavailable_version_names_the_pipfile():
    message = refused({"Pipfile": '[requires]\npython_version = "3.10"\n'})
    assert message.startswith("Pipfile asks for Python 3.10") and 'python_version = "3.11"' in message


@pytest.mark.parametrize("files, name", [({"Pipfile": "[requires"}, "Pipfile"),
                                         ({"Pipfile.lock": "{"}, "Pipfile.lock"),
                                         ({"pyproject.toml": "[project"}, "pyproject.toml")])
def test_unparseable_files_are_refused_by_name(files, name):
    assert refused(files).startswith(f"{name} cannot be read")


def test_parse_runtime_like_repo2docker():
    assert parse_runtime("python-3.11", "runtime.txt") == ("python", "3.11", None)
    assert parse_runtime("r-4.3-2024-05-01\n", "runtime.txt") == ("r", "4.3", "2024-05-01")
    assert parse_runtime("r-2024-05-01", "runtime.txt") == ("r", None, "2024-05-01")


# apt.txt ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["ffmpeg\n", "# comment\n\nlibgl1 # for opencv\nffmpeg\n",
                                  "libc6:amd64\n", "python3-numpy=1:1.24.2-1\n", "g++\nlibstdc++6\n",
                                  "ffmpeg graphviz\n"])
def test_apt_package_names_pass(text):
    check_apt(text, "apt.txt")
    decide(repo({"apt.txt": text}), HUB)


@pytest.mark.parametrize("text, number", [
    ("ffmpeg\napt-get install -y graphviz\n", 2), ("sudo apt install foo\n", 1), ("-y\n", 1),
    ("foo; rm -rf /\n", 1), ("foo && bar\n", 1), ("$(curl x)\n", 1), ("Foo\n", 1), ("install foo\n", 1),
    ("foo --no-install-recommends\n", 1),
])
def test_apt_lines_that_are_not_package_names_are_refused_naming_the_line(text, number):
    message = refused({"binder/apt.txt": text})
    assert message.startswith(f"binder/apt.txt line {number}: ")
    assert repr(text.splitlines()[number - 1].strip()) in message


def test_apt_txt_is_not_checked_when_a_dockerfile_builds():
    assert decide(repo({"Dockerfile": "FROM x", "apt.txt": "sudo x"}), HUB).kind == "dockerfile"


# package indexes ------------------------------------------------------------------------------------

INDEX = "https://pypi.example.org/simple"


@pytest.mark.parametrize("line", [f"--index-url {INDEX}", f"--index-url={INDEX}/", f"-i {INDEX}",
                                  f"--extra-index-url {INDEX}", f"-i{INDEX}"])
def test_the_admins_indexes_pass(line):
    check_indexes(f"numpy\n{line}\n", "requirements.txt", [INDEX])


@pytest.mark.parametrize("line", ["--index-url https://evil.example/simple", "-i http://10.0.0.1/",
                                  "--extra-index-url=https://other.example/simple", f"-i {INDEX}.evil"])
def test_other_indexes_are_refused_naming_the_line(line):
    message = refused({"requirements.txt": f"numpy\n{line}\n"}, Policy(VERSIONS, package_indexes=(INDEX,)))
    assert message.startswith(f"requirements.txt line 2: {line!r}") and INDEX in message


def test_index_lines_in_included_files_are_checked():
    files = {"binder/requirements.txt": "-r more/reqs.txt\n", "binder/more/reqs.txt": "-i https://evil/\n"}
    assert refused(files).startswith("binder/more/reqs.txt line 1")


def test_indexes_of_ignored_requirements_are_not_checked():
    env = decide(repo({"Dockerfile": "FROM x", "requirements.txt": "-i https://evil/\n"}), HUB)
    assert env.kind == "dockerfile"


def test_apt_txt_is_checked_for_kinds_handed_to_repo2docker_too():
    assert refused({"environment.yml": "", "apt.txt": "sudo x\n"}, R2D).startswith("apt.txt line 1")


# whatever the files hold, the answer is a decision or a refusal for the user ---------------------------

NAMES = ["runtime.txt", "binder/runtime.txt", "Pipfile", "Pipfile.lock", "pyproject.toml", "setup.py",
         "requirements.txt", "apt.txt", "binder/apt.txt", "environment.yml", "install.R", "DESCRIPTION",
         "Dockerfile", ".binder/requirements.txt", "binder/more.txt"]
TEXT = st.one_of(st.text(max_size=60), st.sampled_from([
    "python-3.13", "python-3.10", "r-4.3-2024-01-01", '{"_meta": []}', '{"_meta": {"requires": 3}}', "[]",
    '[project]\nrequires-python = 3\n', '[project]\nrequires-python = ">=4"\n', "project = 1\n",
    '[requires]\npython_version = 3.11\n', "requires = 'x'\n", "-r more.txt\n", "-r ../../x\n",
    "--index-url\n", "-i\n"]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), TEXT, max_size=6), st.booleans(), st.booleans())
def test_any_files_give_a_decision_or_a_refusal(files, newer, r2d):
    policy = Policy(VERSIONS, nearest_newer_python=newer, buildpacks="repo2docker" if r2d else "venv")
    try:
        env = decide(repo(files), policy)
    except EnvironmentRefused as e:
        assert str(e) and "Traceback" not in str(e)
        return
    assert env.kind in ("dockerfile", "python", "pipfile", "julia", "nix", "r", "conda")
    assert env.python is None or env.python in VERSIONS


# layouts a lab member brings (newuser review) --------------------------------------------------------

@pytest.mark.parametrize("pyproject, missing", [
    ("[tool.black]\nline-length = 100\n", "no [project] table and no [build-system] table."),
    ('[project]\nname = "x"\nversion = "1"\ndependencies = ["six"]\n',
     "no [build-system] table, so its [project] dependencies are not installed either."),
    ('[build-system]\nrequires = ["setuptools"]\n', "no [project] table."),
])
def test_a_pyproject_toml_that_is_not_installed_is_named(pyproject, missing):
    env = decide(repo({"pyproject.toml": pyproject, "requirements.txt": "six\n"}), HUB)
    assert not env.install_repo and env.requirements == "requirements.txt"
    [warning] = [w for w in env.warnings if w.startswith("pyproject.toml is not installed")]
    assert f"this one has {missing}" in warning


@pytest.mark.parametrize("files", [{"pyproject.toml": PYPROJECT}, {"pyproject.toml": "[tool.x]\n", "setup.py": ""},
                                   {"pyproject.toml": "[tool.x]\n", "uv.lock": ""}])
def test_an_installed_pyproject_toml_gets_no_such_warning(files):
    env = decide(repo(files), HUB)
    assert not [w for w in env.warnings if "pyproject.toml is not installed" in w]


@pytest.mark.parametrize("path", ["postBuild", "start", "binder/postBuild", ".binder/start"])
def test_scripts_with_windows_line_endings_are_refused_naming_them(path):
    message = refused({path: "#!/bin/bash\r\necho hi\r\n", "requirements.txt": ""})
    assert message.startswith(f"{path} has Windows line endings (CRLF)") and f"dos2unix {path}" in message


def test_scripts_with_unix_line_endings_and_a_dockerfiles_postbuild_pass():
    assert decide(repo({"postBuild": "#!/bin/bash\necho hi\n", "start": "#!/bin/sh\nexec \"$@\"\n"}), HUB)
    assert decide(repo({"Dockerfile": "FROM x\n", "postBuild": "echo\r\n"}), HUB).kind == "dockerfile"


@pytest.mark.parametrize("files, pin", [
    ({"runtime.txt": "python-3.12"}, "Pin python-3.13 in runtime.txt to silence"),
    ({"Pipfile": "[requires]\npython_version = '3.12'\n"}, 'Pin python_version = "3.13" in the Pipfile to silence'),
    ({"environment.yml": "dependencies:\n  - python=3.12\n  - numpy\n"},
     "Pin python=3.13 in environment.yml to silence"),
])
def test_the_nearest_newer_python_warning_says_how_the_file_pins_it(files, pin):
    [warning] = decide(repo(files), NEWER).warnings
    assert "building with Python 3.13, the nearest newer one" in warning and pin in warning


def test_a_refused_conda_python_pin_says_how_environment_yml_writes_it():
    message = refused({"environment.yml": "dependencies:\n  - python=3.12\n"})
    assert message.startswith("environment.yml asks for Python 3.12") and "Change it to python=3.13" in message


@pytest.mark.parametrize("listed, named", [("Binder", "Binder/ is ignored"), (".BINDER", ".BINDER/ is ignored"),
                                           ("Containerfile", "Containerfile is ignored")])
def test_a_binder_directory_or_dockerfile_under_another_name_is_named(listed, named):
    env = decide(repo({"requirements.txt": "six\n"}, listing={"requirements.txt", listed}), HUB)
    assert env.requirements == "requirements.txt"
    assert [w for w in env.warnings if w.startswith(named)]


@pytest.mark.parametrize("line", ["-e .", ".", "-e ./", "--editable=.", ".[extra]"])
def test_a_root_package_the_binder_requirements_install_is_not_named_as_ignored(line):
    env = decide(repo({"binder/requirements.txt": f"six\n{line}  # the repository\n", "setup.py": "",
                       "pyproject.toml": PYPROJECT}), HUB)
    assert not [w for w in env.warnings if "setup.py" in w or "pyproject.toml" in w], env.warnings
    assert not env.install_repo  # installed by the requirements file, not a second `pip install .`
    included = decide(repo({"binder/requirements.txt": "-r more.txt\n", "binder/more.txt": line + "\n",
                            "setup.py": ""}), HUB)
    assert not [w for w in included.warnings if "setup.py" in w]


def test_a_root_package_the_binder_requirements_do_not_install_is_named():
    env = decide(repo({"binder/requirements.txt": "six\n./sub\n", "setup.py": ""}), HUB)
    assert [w for w in env.warnings if w.startswith("setup.py is ignored")]


def test_a_byte_order_mark_hides_no_index_line_or_include_from_the_checks():
    """uv reads '\\ufeff--index-url …' as an index and '\\ufeff-r more.txt' as an include (checked
    here with uv in a container): the hub must see them too."""
    message = refused({"requirements.txt": "\ufeff--index-url https://evil.example/simple\nsix\n"})
    assert message.startswith("requirements.txt line 1: '--index-url https://evil.example/simple' names")
    assert refused({"requirements.txt": "\ufeff-r more.txt\n",
                    "more.txt": "--extra-index-url https://evil.example/simple\n"}).startswith("more.txt line 1")


def test_a_python_version_file_is_named_where_no_file_chose_the_version():
    files = {"requirements.txt": "six\n", ".python-version": "3.13\n"}
    [warning] = decide(repo(files), HUB).warnings
    assert warning.startswith(".python-version is not read") and "uses Python 3.11, the hub's default" in warning
    assert not decide(repo({**files, "runtime.txt": "python-3.13"}), HUB).warnings
