"""What a repository asks for, decided by repo2docker's rules before anything is built (pure).

The rules are repo2docker's (its ``buildpacks/`` and configuration docs), decided here once, from
the files of the checked clone (``checkout.py`` reads them), so that what the hub cannot build is
refused in seconds with one sentence naming the file, and a file the rules ignore is named in a
warning instead of being dropped silently:

- ``binder/`` or ``.binder/`` (not both) holds the environment files; the root's are then ignored,
  and ``setup.py``/``pyproject.toml``/``DESCRIPTION`` are not used at all;
- a ``Dockerfile`` wins over everything; then Julia (``Project.toml``), nix (``default.nix``), R
  (``runtime.txt: r-<version>-<date>``, ``DESCRIPTION``), conda (``environment.yml|yaml``),
  ``Pipfile(.lock)``, then ``requirements.txt`` and an installable package (``setup.py``, or
  ``pyproject.toml`` with ``[project]`` and ``[build-system]``), installed with ``pip install .``;
- ``apt.txt``, ``postBuild`` and ``start`` apply to every kind but the Dockerfile.

Lock files (the "uv" kind and Pipfile.lock; see ``lock_warnings`` and ``pipfile_lock_warnings``):

- ``uv.lock`` is read at the root beside ``pyproject.toml``, only without a binder directory (where
  uv reads it, and where repo2docker reads ``pyproject.toml``). It wins over ``requirements.txt`` and
  ``setup.py``/``pip install .`` (a lock is the most exact statement of an environment, and the others
  are ignored with a warning, as repo2docker ignores requirements.txt beside a Pipfile); a ``Pipfile``
  (repo2docker's own lock system, read on mybinder.org) wins over it. uv installs it exactly in the
  image (``uv sync --locked``): a lock that disagrees with pyproject.toml fails the build naming
  uv.lock, never a re-solve. The check runs in the image, not on the hub: uv would read the
  repository's uv settings and may build its metadata (run its code) to check a dynamic project.
- ``Pipfile.lock`` is installed as it is (repo2docker's ``pipenv install --ignore-pipfile``); when its
  ``_meta.hash`` does not match the Pipfile (pipenv's hash), a warning names both files.
- Lock files of other tools (``poetry.lock``, ``pdm.lock``, ...) are named in a warning saying what is
  installed instead.

Python versions come from ``runtime.txt`` (python kind), ``Pipfile.lock``/``Pipfile``
``[requires]`` (Pipfile kind) and ``requires-python`` (a pyproject.toml at the root), as repo2docker
reads them; the hub offers the versions it has base images for.
"""

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from binderspawner import messages

BINDER_DIRS = ("binder", ".binder")
# Files repo2docker looks up in the binder directory (or the root when there is none).
ENV_FILES = ("Dockerfile", "Project.toml", "JuliaProject.toml", "REQUIRE", "default.nix", "install.R",
             "environment.yml", "environment.yaml", "Pipfile", "Pipfile.lock", "requirements.txt",
             "requirements3.txt", "runtime.txt", "apt.txt", "postBuild", "start",
             "pixi.lock", "pixi.toml", "conda-lock.yml")
# Files repo2docker reads only at the root, and only without a binder directory.
ROOT_ONLY_FILES = ("setup.py", "pyproject.toml", "DESCRIPTION")
# Names people use for the files above; repo2docker reads none of them.
NEAR_MISSES = {"requirement.txt": "requirements.txt", "postBuild.sh": "postBuild",
               "postbuild.sh": "postBuild", "start.sh": "start", "Aptfile": "apt.txt",
               "apt-packages.txt": "apt.txt", "environment.yml.txt": "environment.yml",
               "Containerfile": "Dockerfile"}
OTHER_KINDS = ("julia", "nix", "r")  # built only by repo2docker's own buildpacks
CONDA_FILES = ("environment.yml", "environment.yaml", "pixi.lock", "conda-lock.yml")
KIND_SETTING = 'c.Repo2DockerBuilder.buildpacks = "repo2docker"'

_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$")
_APT_COMMANDS = {"apt", "apt-get", "aptitude", "sudo", "dpkg", "install", "yes"}
# Options of a requirements file that make pip (uv) fetch from somewhere: an index or a links page
# must be one of the admin's; a trusted host or an included file by URL is never accepted.
_INDEX_OPTION = re.compile(
    r"^(--index-url|--extra-index-url|-i|--find-links|-f)(?:\s*=\s*|\s+|(?<=-i)|(?<=-f))(\S+)")
_NEVER_OPTION = re.compile(r"^(--trusted-host|(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)\S*://)")
_NESTED = re.compile(r"^(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)(\S+)")
_PIPFILE_VERSION = re.compile(r"\d+(\.\d+)*")
_ROOT_REQUIREMENT = re.compile(r"^(?:(?:-e|--editable)(?:\s*=\s*|\s+))?\./?(?:\[[^\]]*\])?$")
UV_LOCK = "uv.lock"  # read at the root only, beside pyproject.toml, without a binder directory
# Lock files of tools this hub does not install from (conda's locks are the conda kind's).
UNREAD_LOCKS = ("poetry.lock", "pdm.lock", "requirements.lock", "requirements-dev.lock", "pylock.toml")
_PIPFILE_SECTIONS = ("source", "packages", "dev-packages", "requires", "scripts", "pipfile", "pipenv")


class EnvironmentRefused(Exception):
    """The repository asks for something this hub does not build; ``str()`` is for the user."""


@dataclass(frozen=True)
class RepoFiles:
    """The environment files of one checkout: relative path -> text, and the directories present
    among ``BINDER_DIRS``. ``listing`` holds the names in the root and binder directory (for the
    warnings about names repo2docker does not read)."""
    files: dict
    dirs: frozenset = frozenset()
    listing: frozenset = frozenset()

    def has(self, path):
        return path in self.files


@dataclass(frozen=True)
class Environment:
    """The decision for one build. ``kind``: dockerfile, python, pipfile, uv, julia, nix, r or conda.
    ``buildpacks``: which buildpacks build it ('venv': the hub's; 'repo2docker': its own)."""
    kind: str
    buildpacks: str
    binder_dir: str = ""
    python: str = None  # "3.11"; None when the kind's own tools choose
    python_file: str = None  # the file that chose it, or None for the hub's default
    requirements: str = None
    pipfile: str = None
    pipfile_lock: str = None
    install_repo: bool = False
    uv_lock: str = None  # the uv kind: uv.lock, installed by `uv sync --locked` (with the project)
    warnings: tuple = field(default=())
    # conda (builders/condaspec.py): the environment file, the lock installed exactly, the match
    # specs to solve, the repository's channels used besides the admin's, the pip: lines (and the
    # file they come from), and the python spec solved from the channel (None: the base image's)
    conda_file: str = None
    conda_lock: str = None
    conda_manifest: str = None
    conda_specs: tuple = ()
    conda_channels: tuple = ()
    conda_pip: tuple = ()
    conda_python: str = None


@dataclass(frozen=True)
class Policy:
    """What the admin offers (from Repo2DockerBuilder's traits)."""
    python_versions: tuple  # versions with a base image, e.g. ("3.11", "3.13", "3.14")
    default_python: str = "3.11"
    nearest_newer_python: bool = False
    buildpacks: str = "venv"  # the admin's setting: 'repo2docker' hands other kinds to repo2docker
    package_indexes: tuple = ()
    conda_python: str = "base-image"  # or 'channel': Python from the conda channel
    conda_channels: tuple = ("conda-forge",)
    conda_repository_channels: str = "ignore"  # 'refuse', 'allow'


def decide(repo, policy):
    """The Environment for ``repo`` (RepoFiles) under ``policy``; raises EnvironmentRefused."""
    binder = binder_dir(repo)
    warnings = []

    def at(name):
        return f"{binder}/{name}" if binder else name

    def has(name):
        return repo.has(at(name))

    runtime = parse_runtime(repo.files[at("runtime.txt")], at("runtime.txt")) if has("runtime.txt") \
        else (None, None, None)
    kind = detect_kind(repo, binder, runtime, has)
    warnings += ignored_files(repo, binder, kind, has, at)
    if kind != "dockerfile" and has("apt.txt"):
        check_apt(repo.files[at("apt.txt")], at("apt.txt"))
    if kind != "dockerfile":
        check_scripts(repo, at)
    if runtime[0] == "python" and runtime[2] is not None and kind in ("python", "uv"):
        warnings.append(messages.RUNTIME_DATE_IGNORED.format(
            file=at("runtime.txt"), date=runtime[2],
            fixed=f"python-{runtime[1]}" if runtime[1] else "python-<version>"))
    if kind == "conda" and policy.buildpacks == "repo2docker":
        _check_yaml_size(repo, [at(n) for n in ("environment.yml", "environment.yaml") if has(n)])
    if kind == "conda" and policy.buildpacks == "repo2docker" and (has("environment.yml") or has("environment.yaml")):
        for name in ("pixi.lock", "conda-lock.yml"):  # repo2docker's conda buildpack does not read locks
            if has(name):
                warnings.append(messages.IGNORED_BY_KIND.format(
                    file=at(name), reason="repo2docker's own conda buildpack solves environment.yml"))
        return _other_kind(kind, binder, policy, repo, at, warnings, runtime[0])
    if kind in OTHER_KINDS or kind == "julia-require":
        return _other_kind(kind, binder, policy, repo, at, warnings, runtime[0])
    if kind != "dockerfile":
        if has("install.R"):
            raise EnvironmentRefused(messages.R_INSTALL_WITHOUT_R.format(file=at("install.R")))
    if kind == "dockerfile":
        env = Environment("dockerfile", "venv", binder)
        return _with(env, warnings=tuple(warnings + lock_warnings(repo, binder, env)))
    if kind == "conda":
        env = conda_environment(repo, binder, at, policy, warnings)
        return _with(env, warnings=env.warnings + tuple(lock_warnings(repo, binder, env)))

    requirements = at("requirements.txt") if has("requirements.txt") else None
    if kind == "pipfile":
        python, python_file, notes = pipfile_python(repo, at, policy)
        if runtime[0] == "python":
            warnings.append(messages.RUNTIME_IGNORED_WITH_PIPFILE.format(file=at("runtime.txt")))
        env = Environment("pipfile", "venv", binder, python, python_file,
                          pipfile=at("Pipfile") if has("Pipfile") else None,
                          pipfile_lock=at("Pipfile.lock") if has("Pipfile.lock") else None,
                          warnings=())
        notes = notes + pipfile_lock_warnings(repo, env.pipfile, env.pipfile_lock)
    elif kind == "uv":
        python, python_file, notes = python_version(repo, binder, runtime, at("runtime.txt"), policy)
        env = Environment("uv", "venv", binder, python, python_file, uv_lock=UV_LOCK)
        if policy.package_indexes:
            notes = notes + [messages.UV_LOCK_OWN_INDEXES.format(file=UV_LOCK)]
    else:
        install = not binder and is_python_package(repo)
        if not binder and not install and repo.has("pyproject.toml"):
            warnings.append(pyproject_not_installed(repo))
        channel_python = runtime_from_channel(runtime, at("runtime.txt"), policy)
        if channel_python:
            python, python_file, notes = policy.default_python, None, [
                messages.CONDA_PYTHON_FROM_CHANNEL.format(file=at("runtime.txt"), version=runtime[1])]
        else:
            python, python_file, notes = python_version(repo, binder, runtime, at("runtime.txt"), policy)
        env = Environment("python", "venv", binder, python, python_file, requirements=requirements,
                          install_repo=install, conda_specs=(channel_python,) if channel_python else (),
                          conda_python=channel_python)
    for path in index_files(repo, env):
        check_indexes(repo.files.get(path, ""), path, policy.package_indexes)
    notes = notes + [messages.PYTHON_VERSION_FILE_NOT_READ.format(file=listed, python=env.python)
                     for listed in (".python-version", f"{binder}/.python-version")
                     if listed in repo.listing and env.python_file is None]
    return _with(env, warnings=tuple(warnings + notes + lock_warnings(repo, binder, env)))


def _check_yaml_size(repo, paths):
    """repo2docker's own conda buildpack reads these in the build process, expanding every alias:
    the hub refuses one that would expand past condaspec.MAX_YAML_VALUES first."""
    from binderspawner.builders import condaspec

    for path in paths:
        try:
            condaspec.load_yaml(repo.files[path], path)
        except condaspec.CondaRefused as e:
            raise EnvironmentRefused(str(e))


def _with(env, **changes):
    return Environment(**{**env.__dict__, **changes})


def _other_kind(kind, binder, policy, repo, at, warnings, runtime_name):
    files = {"julia": ("Project.toml", "JuliaProject.toml"), "julia-require": ("REQUIRE",),
             "nix": ("default.nix",), "conda": ("environment.yml", "environment.yaml"),
             "r": ("runtime.txt",) if runtime_name == "r" else ()}[kind]
    present = [at(f) for f in files if repo.has(at(f))]
    named = present[0] if present else "DESCRIPTION"
    if kind == "julia-require":
        raise EnvironmentRefused(messages.JULIA_REQUIRE.format(file=named))
    if policy.buildpacks != "repo2docker":
        template = messages.CONDA_NOT_YET if kind == "conda" else messages.OTHER_LANGUAGE
        raise EnvironmentRefused(template.format(file=named, kind=_KIND_NAMES[kind],
                                                 setting=KIND_SETTING))
    return Environment(kind, "repo2docker", binder, warnings=tuple(warnings))


_KIND_NAMES = {"julia": "Julia", "nix": "nix", "r": "R", "conda": "a conda environment"}


def binder_dir(repo):
    """'binder', '.binder' or '' (repo2docker's rule); both present is an error."""
    present = [d for d in BINDER_DIRS if d in repo.dirs]
    if len(present) > 1:
        raise EnvironmentRefused(messages.BOTH_BINDER_DIRS)
    return present[0] if present else ""


def detect_kind(repo, binder, runtime, has):
    """The buildpack repo2docker would pick, in its order."""
    name = runtime[0]
    if has("Dockerfile"):
        return "dockerfile"
    if has("Project.toml") or has("JuliaProject.toml"):
        return "julia"
    if has("REQUIRE"):
        return "julia-require"
    if has("default.nix"):
        return "nix"
    if name == "r" or (not binder and repo.has("DESCRIPTION")):
        if name == "r" and runtime[2] is None:
            raise EnvironmentRefused(messages.R_RUNTIME_WITHOUT_DATE.format(
                file=f"{binder}/runtime.txt" if binder else "runtime.txt"))
        return "r"
    if name not in (None, "python"):
        raise EnvironmentRefused(messages.RUNTIME_UNKNOWN.format(
            file=f"{binder}/runtime.txt" if binder else "runtime.txt", name=name))
    if any(has(name) for name in CONDA_FILES):
        return "conda"
    if has("Pipfile") or has("Pipfile.lock"):
        return "pipfile"
    if uses_uv_lock(repo, binder):
        return "uv"
    return "python"


def uses_uv_lock(repo, binder):
    """Whether uv.lock builds this repository: at the root, beside pyproject.toml, no binder dir."""
    return not binder and UV_LOCK in repo.listing and repo.has("pyproject.toml")


def installed_from(env):
    """What a decided build installs the repository's packages from, in words (for warnings)."""
    if env.kind == "dockerfile":
        return "what the Dockerfile installs"
    if env.kind == "pipfile":
        return env.pipfile_lock or env.pipfile
    if env.kind == "uv":
        return env.uv_lock
    if env.kind == "conda":
        return env.conda_lock or env.conda_file
    if env.kind == "python":
        parts = ([env.requirements] if env.requirements else []) + (
            ["the repository itself (pip install .)"] if env.install_repo else [])
        return " and ".join(parts) or "no packages of the repository (only the single-user server)"
    return f"repo2docker's {env.kind} environment"


def lock_warnings(repo, binder, env):
    """Warnings naming each lock file present that this build does not install from, and what it
    installs instead: other tools' locks, and a uv.lock where the rules do not read it."""
    used = installed_from(env)
    out = []
    for listed in sorted(repo.listing):
        directory, _, base = listed.rpartition("/")
        if base in UNREAD_LOCKS:
            out.append(messages.LOCK_NOT_READ.format(file=listed, used=used))
        elif base == UV_LOCK and listed != env.uv_lock:
            if directory:
                reason = "uv.lock is read only at the root, beside pyproject.toml"
            elif binder:
                reason = f"the repository has a '{binder}' directory, and uv.lock is read only without one"
            elif not repo.has("pyproject.toml"):
                reason = "there is no pyproject.toml beside it, and uv needs both"
            elif env.kind == "pipfile":
                reason = f"{used} comes first (repo2docker's rule)"
            elif env.kind == "dockerfile":
                reason = "a Dockerfile builds this repository by itself"
            else:
                reason = f"{used} builds this repository"
            out.append(messages.UV_LOCK_NOT_READ.format(file=listed, reason=reason, used=used))
    return out + uv_config_warnings(repo, env)


def uv_config_warnings(repo, env):
    """Warnings naming the repository's uv configuration (uv.toml, pyproject.toml's [tool.uv]) where
    the hub's installs do not read it (install.py runs uv with --no-config: indexes are the hub's);
    a uv.lock build (uv sync) reads its project's own configuration."""
    if env.buildpacks != "venv" or env.kind in ("uv", "dockerfile"):
        return []
    out = []
    if "uv.toml" in repo.listing:
        out.append(messages.UV_CONFIG_IGNORED.format(file="uv.toml", used=installed_from(env)))
    try:
        tool = tomllib.loads(repo.files.get("pyproject.toml", "")).get("tool")
    except tomllib.TOMLDecodeError:
        tool = None
    if isinstance(tool, dict) and "uv" in tool:
        out.append(messages.UV_CONFIG_IGNORED.format(file="pyproject.toml's [tool.uv]", used=installed_from(env)))
    return out


def pipenv_default_source():
    """Pipenv's source when a Pipfile names none (part of what its lock hash covers): the package
    index pip itself defaults to, read from pip rather than written here."""
    from pip._internal.models.index import PyPI

    return {"name": "pypi", "url": PyPI.simple_url, "verify_ssl": True}


def pipfile_hashes(text):
    """The hashes pipenv would record in Pipfile.lock's ``_meta.hash.sha256`` for this Pipfile:
    sha256 of the compact, key-sorted JSON of its sources (pipenv's default source when it names
    none), requires, packages, dev-packages and other package categories. Two forms are current:
    plette's (package names as written) and newer pipenv's (names PEP 503-normalized). Raises
    tomllib.TOMLDecodeError, or TypeError/ValueError for values JSON cannot hold."""
    data = tomllib.loads(text)
    if "source" not in data:
        data["source"] = [pipenv_default_source()]
    categories = {"default": data.get("packages", {}), "develop": data.get("dev-packages", {}),
                  **{name: values for name, values in data.items()
                     if name not in _PIPFILE_SECTIONS and name not in ("default", "develop")}}
    hashes = set()
    for normalize in (False, True):
        content = {"_meta": {"sources": data["source"], "requires": data.get("requires", {})}}
        for name, values in categories.items():
            content[name] = ({canonicalize_name(k): v for k, v in values.items()}
                             if normalize and isinstance(values, dict) else values)
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
        hashes.add(hashlib.sha256(encoded).hexdigest())
    return hashes


def pipfile_lock_warnings(repo, pipfile, lock):
    """A warning naming both files when Pipfile.lock was not made from this Pipfile (its
    ``_meta.hash``). The lock is still installed as it is, as repo2docker does (`pipenv install
    --ignore-pipfile`): a stale lock builds on mybinder.org, and pipenv versions hash differently."""
    if not pipfile or not lock:
        return []
    try:
        recorded = json.loads(repo.files[lock])["_meta"]["hash"]["sha256"]
    except (ValueError, KeyError, TypeError):
        recorded = None
    if not isinstance(recorded, str) or not recorded:
        return [messages.PIPFILE_LOCK_UNCHECKED.format(lock=lock, pipfile=pipfile)]
    try:
        current = pipfile_hashes(repo.files[pipfile])
    except tomllib.TOMLDecodeError as e:
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=pipfile, problem=e))
    except (TypeError, ValueError):
        return [messages.PIPFILE_LOCK_UNCHECKED.format(lock=lock, pipfile=pipfile)]
    if recorded.lower() in current:
        return []
    return [messages.PIPFILE_LOCK_STALE.format(lock=lock, pipfile=pipfile)]


def ignored_files(repo, binder, kind, has, at):
    """Warnings naming each file present that repo2docker's rules do not read for ``kind``."""
    out = []
    if binder:
        root_installed = installs_the_root(repo, at("requirements.txt"))
        for name in (*ENV_FILES, *ROOT_ONLY_FILES):
            if repo.has(name) and name in ("setup.py", "pyproject.toml") and root_installed:
                continue  # the binder requirements install the repository ('-e .'), so it is used
            if repo.has(name):
                out.append(messages.IGNORED_ROOT_FILE.format(file=name, binder=binder))
    used = {"dockerfile": {"Dockerfile"},
            "python": {"requirements.txt", "runtime.txt", "apt.txt", "postBuild", "start",
                       "setup.py", "pyproject.toml"},
            "pipfile": {"Pipfile", "Pipfile.lock", "runtime.txt", "apt.txt", "postBuild", "start"},
            "uv": {"runtime.txt", "apt.txt", "postBuild", "start", "setup.py", "pyproject.toml"},
            "conda": {*CONDA_FILES, "pixi.toml", "apt.txt", "postBuild", "start"}}
    if kind in used:
        reason = {"dockerfile": "a Dockerfile builds this repository by itself",
                  "pipfile": "the Pipfile lists the packages",
                  "uv": "uv.lock lists the packages (add packages with `uv add`, then commit uv.lock)",
                  "python": "repo2docker reads it only for Python 2",
                  "conda": "the conda environment lists the packages"}[kind]
        for name in ENV_FILES:
            if name in ("pixi.lock", "pixi.toml", "conda-lock.yml") and kind != "dockerfile":
                continue  # read only by the conda kind; elsewhere repo2docker does not know them
            if name not in used[kind] and has(name) and (name != "install.R" or kind == "dockerfile"):
                out.append(messages.IGNORED_BY_KIND.format(file=at(name), reason=reason))
        if not binder:
            for name in ("setup.py", "pyproject.toml"):
                if repo.has(name) and kind not in ("python", "uv"):
                    out.append(messages.IGNORED_BY_KIND.format(file=name, reason=reason))
    for listed in sorted(repo.listing):
        if "/" not in listed and listed.lower() in BINDER_DIRS and listed not in BINDER_DIRS:
            out.append(messages.BINDER_DIR_NEAR_MISS.format(file=listed, right=listed.lower()))
            continue
        base = listed.rsplit("/", 1)[-1]
        right = NEAR_MISSES.get(base) or next(
            (n for n in (*ENV_FILES, *ROOT_ONLY_FILES) if n.lower() == base.lower() and n != base), None)
        if right:
            out.append(messages.NEAR_MISS.format(file=listed, right=right))
    return out


def installs_the_root(repo, requirements):
    """Whether ``requirements`` (or an -r include) installs the repository itself: a line '.' or
    '-e .' (pip resolves it against the working directory, the repository's root)."""
    return any(_ROOT_REQUIREMENT.match(raw.split(" #", 1)[0].strip())
               for path in included_files(repo, [requirements])
               for _, raw in logical_lines(repo.files[path]))


def parse_runtime(text, path):
    """runtime.txt -> (name, version, date) as repo2docker parses it: name-version,
    name-version-YYYY-MM-DD or name-YYYY-MM-DD. A byte-order mark (editors on Windows write one) is
    not part of the name."""
    content = text.lstrip("\ufeff").strip()
    parts = content.split("-")
    if len(parts) not in (2, 4, 5) or not all(parts):
        raise EnvironmentRefused(messages.RUNTIME_INVALID.format(file=path, content=_show(content)))
    version = parts[1] if len(parts) in (2, 5) else None
    date = "-".join(parts[-3:]) if len(parts) in (4, 5) else None
    if date is not None and not re.fullmatch(r"\d{4}-\d\d-\d\d", date):
        raise EnvironmentRefused(messages.RUNTIME_INVALID.format(file=path, content=_show(content)))
    return parts[0], version, date


def _show(text, limit=80):
    line = text.splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def check_scripts(repo, at):
    """postBuild and start with Windows line endings fail when they run (``#!/bin/bash\\r`` is
    not found, every command gets a trailing \\r): refused before building, naming the file."""
    for name in ("postBuild", "start"):
        if repo.has(at(name)) and "\r\n" in repo.files[at(name)]:
            raise EnvironmentRefused(messages.SCRIPT_CRLF.format(file=at(name)))


def pyproject_not_installed(repo):
    """The warning for a root pyproject.toml that repo2docker's rule does not install, saying what
    it lacks and, when it lists dependencies, that they are not installed either."""
    pyproject = _pyproject(repo)
    missing = " and ".join(f"no [{t}] table" for t in ("project", "build-system") if t not in pyproject)
    project = pyproject.get("project")
    listed = isinstance(project, dict) and project.get("dependencies")
    dependencies = ", so its [project] dependencies are not installed either" if listed else ""
    return messages.PYPROJECT_NOT_INSTALLED.format(missing=missing, dependencies=dependencies)


def is_python_package(repo):
    """setup.py, or a pyproject.toml with [project] and [build-system] (root, no binder dir)."""
    if repo.has("setup.py"):
        return True
    pyproject = _pyproject(repo)
    return bool(pyproject) and "project" in pyproject and "build-system" in pyproject


def _pyproject(repo):
    if not repo.has("pyproject.toml"):
        return None
    try:
        return tomllib.loads(repo.files["pyproject.toml"])
    except tomllib.TOMLDecodeError as e:
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file="pyproject.toml", problem=e))


def python_version(repo, binder, runtime, runtime_path, policy):
    """(version, file that chose it, warnings) for the python kind: runtime.txt, then the hub's
    default, then requires-python (root pyproject.toml, no binder dir) as repo2docker reads them."""
    name, version, _ = runtime
    wanted, source = policy.default_python, None
    if name == "python" and version is not None:
        release = _release(version, runtime_path)
        if len(release) > 1:
            wanted, source = f"{release[0]}.{release[1]}", runtime_path
        elif release[0] != int(policy.default_python.split(".")[0]):
            raise EnvironmentRefused(messages.PYTHON_UNAVAILABLE.format(
                file=runtime_path, version=version, available=", ".join(policy.python_versions),
                fix=f"python-{policy.default_python}"))
    specifier = None if binder else requires_python(repo)
    if specifier is not None and Version(wanted) not in specifier:
        if source:
            raise EnvironmentRefused(messages.RUNTIME_OUTSIDE_REQUIRES_PYTHON.format(
                file=runtime_path, version=wanted, spec=str(specifier)))
        fitting = [v for v in _sorted(policy.python_versions) if Version(v) in specifier]
        if not fitting:
            raise EnvironmentRefused(messages.REQUIRES_PYTHON_UNAVAILABLE.format(
                spec=str(specifier), available=", ".join(policy.python_versions)))
        return fitting[-1], "pyproject.toml", []
    return choose_available(wanted, source, policy, specifier)


def pipfile_python(repo, at, policy):
    """(version, file, warnings) from Pipfile.lock's _meta.requires, then Pipfile's [requires]."""
    found = None
    if repo.has(at("Pipfile.lock")):
        try:
            lock = json.loads(repo.files[at("Pipfile.lock")])
        except ValueError as e:
            raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=at("Pipfile.lock"), problem=e))
        meta = lock.get("_meta") if isinstance(lock, dict) else None
        requires = meta.get("requires", {}) if isinstance(meta, dict) else {}
        found = _requires_version(requires, at("Pipfile.lock"))
    if found is None and repo.has(at("Pipfile")):
        try:
            pipfile = tomllib.loads(repo.files[at("Pipfile")])
        except tomllib.TOMLDecodeError as e:
            raise EnvironmentRefused(messages.FILE_UNREADABLE.format(file=at("Pipfile"), problem=e))
        found = _requires_version(pipfile.get("requires", {}), at("Pipfile"))
    if found is None:
        return choose_available(policy.default_python, None, policy, None)
    version, path = found
    parts = version.split(".")
    if len(parts) == 1:
        if parts[0] != policy.default_python.split(".")[0]:
            raise EnvironmentRefused(messages.PYTHON_UNAVAILABLE.format(
                file=path, version=version, available=", ".join(policy.python_versions),
                fix=f'python_version = "{policy.default_python}"'))
        return choose_available(policy.default_python, None, policy, None)
    return choose_available(f"{parts[0]}.{parts[1]}", path, policy, None)


def _requires_version(requires, path):
    if not isinstance(requires, dict):
        return None
    for key in ("python_full_version", "python_version"):
        value = requires.get(key)
        if isinstance(value, str):
            match = _PIPFILE_VERSION.match(value)
            if match:
                return match.group(), path
    return None


def requires_python(repo):
    project = (_pyproject(repo) or {}).get("project")
    spec = project.get("requires-python") if isinstance(project, dict) else None
    if not spec:
        return None
    try:
        return SpecifierSet(str(spec))
    except InvalidSpecifier:
        raise EnvironmentRefused(messages.FILE_UNREADABLE.format(
            file="pyproject.toml", problem=f"requires-python {spec!r} is not a version specifier"))


def choose_available(wanted, source, policy, specifier):
    """(version, source, warnings): ``wanted`` if the hub has it; else the nearest newer one when
    the admin allows it (and requires-python does); else a refusal naming the file."""
    if wanted in policy.python_versions:
        return wanted, source, []
    newer = [v for v in _sorted(policy.python_versions)
             if Version(v) > Version(wanted) and Version(v).major == Version(wanted).major
             and (specifier is None or Version(v) in specifier)]
    file = source or "the hub's default_python"
    if policy.nearest_newer_python and newer:
        return newer[0], source, [messages.PYTHON_NEWER_USED.format(
            file=file, version=wanted, used=newer[0], available=", ".join(policy.python_versions),
            pin=python_pin(source, newer[0]))]
    fix = f"python-{_sorted(policy.python_versions)[0]}" if policy.python_versions else "another version"
    if source and source.endswith(("Pipfile", "Pipfile.lock")):
        fix = f'python_version = "{newer[0] if newer else _sorted(policy.python_versions)[-1]}"'
    elif newer:
        fix = f"python-{newer[0]}"
    if source and source.endswith(("environment.yml", "environment.yaml")):
        fix = "python=" + fix.removeprefix("python-")
    raise EnvironmentRefused(messages.PYTHON_UNAVAILABLE.format(
        file=file, version=wanted, available=", ".join(policy.python_versions), fix=fix))


def python_pin(source, version):
    """How ``source`` (the file that chose the Python version) writes ``version``."""
    if source and source.endswith(("Pipfile", "Pipfile.lock")):
        return f'python_version = "{version}" in the Pipfile'
    if source and source.endswith(("environment.yml", "environment.yaml")):
        return f"python={version} in {source}"
    return f"python-{version}" + (f" in {source}" if source else "")


def _release(version, path):
    try:
        return Version(version).release
    except InvalidVersion:
        raise EnvironmentRefused(messages.RUNTIME_INVALID.format(file=path, content=f"python-{version}"))


def _sorted(versions):
    return sorted(versions, key=Version)


def check_apt(text, path):
    """Each apt.txt line must be Debian package names (name, name:arch, name=version), as
    repo2docker means it; a pasted command or a flag is refused naming the line."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        tokens = line.split()
        bad = tokens[0] in _APT_COMMANDS or any(not _APT_NAME.match(t) for t in tokens)
        if bad:
            raise EnvironmentRefused(messages.APT_LINE.format(file=path, number=number,
                                                              line=_show(raw.strip())))


def nested_requirements(text, path):
    """Paths of the files a requirements file includes with -r/-c, relative to the checkout root."""
    base = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    out = []
    for _, raw in logical_lines(text):
        match = _NESTED.match(raw.strip())
        if match and "://" not in match.group(1):
            out.append(_normalize(base + match.group(1)))
    return out


def _normalize(path):
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def index_files(repo, env):
    """The requirements files this build installs (with their -r/-c includes present in ``repo``)."""
    return included_files(repo, [env.requirements] if env.requirements else [])


def pip_includes(conda_pip, env_path):
    """Paths (relative to the checkout root) of the files an environment file's ``pip:`` lines
    include with -r/-c: pip reads them in the environment file's folder."""
    return nested_requirements("\n".join(conda_pip), env_path)


def included_files(repo, paths):
    """``paths`` present in ``repo`` and the files they include with -r/-c, recursively."""
    todo = list(paths)
    seen = []
    while todo:
        path = todo.pop()
        if path in seen or path is None or not repo.has(path):
            continue
        seen.append(path)
        todo += nested_requirements(repo.files[path], path)
    return seen


def logical_lines(text):
    """(first line number, line) of a requirements file, continuation lines joined as pip does.
    A byte-order mark is not part of the first line (pip and uv skip it too, and read an option or
    include there, which the checks here must then see as well)."""
    number, parts = None, []
    for n, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        number = number or n
        if raw.endswith("\\"):
            parts.append(raw[:-1])
            continue
        yield number, " ".join(p.strip() for p in [*parts, raw])
        number, parts = None, []
    if parts:
        yield number, " ".join(p.strip() for p in parts)


def check_indexes(text, path, allowed):
    """Refuse a requirements line naming a package index or links page that is not one of the
    admin's, a trusted host, or a file included by URL."""
    allowed = {a.rstrip("/") for a in allowed}
    for number, raw in logical_lines(text):
        line = raw.split(" #", 1)[0].strip()
        match = _INDEX_OPTION.match(line)
        if _NEVER_OPTION.match(line) or (match and match.group(2).rstrip("/") not in allowed):
            raise EnvironmentRefused(messages.INDEX_LINE.format(
                file=path, number=number, line=_show(line),
                allowed=", ".join(sorted(allowed)) or "none"))


def runtime_from_channel(runtime, path, policy):
    """The ``python`` match spec to solve from the conda channel for a runtime.txt version no base
    image has, when the admin says Pythons come from the channel (conda_python = 'channel'); else
    None (the base images decide, as python_version does)."""
    name, version, _ = runtime
    if policy.conda_python != "channel" or name != "python" or version is None:
        return None
    release = _release(version, path)
    if len(release) < 2 or f"{release[0]}.{release[1]}" in policy.python_versions:
        return None
    return f"python {release[0]}.{release[1]}.*"


def conda_environment(repo, binder, at, policy, warnings):
    """The conda kind: environment.yml read (channels and specs checked), its Python decided by
    conda_python, or a lock (pixi.lock before conda-lock.yml) that the build installs exactly."""
    from binderspawner.builders import condaspec

    env_path = next((at(n) for n in ("environment.yml", "environment.yaml") if repo.has(at(n))), None)
    lock = next((at(n) for n in ("pixi.lock", "conda-lock.yml") if repo.has(at(n))), None)
    if lock and lock.endswith("pixi.lock") and repo.has(at("conda-lock.yml")):
        warnings.append(messages.IGNORED_BY_KIND.format(file=at("conda-lock.yml"),
                                                        reason=f"{lock} is installed"))
    if env_path and repo.has(at("environment.yml")) and repo.has(at("environment.yaml")):
        warnings.append(messages.IGNORED_BY_KIND.format(file=at("environment.yaml"),
                                                        reason=f"{env_path} is used"))
    try:
        conda = condaspec.read_environment_file(repo.files[env_path], env_path) if env_path else None
        extra, notes = (condaspec.channel_decision(conda, policy.conda_channels,
                                                   policy.conda_repository_channels)
                        if conda else ((), ()))
        warnings += [*(conda.warnings if conda else ()), *notes]
        for line in conda.pip if conda else ():
            check_indexes(line, env_path, policy.package_indexes)
        for path in included_files(repo, pip_includes(conda.pip, env_path) if conda else []):
            check_indexes(repo.files.get(path, ""), path, policy.package_indexes)
        manifest = env_path
        if lock and lock.endswith("pixi.lock") and repo.has(at("pixi.toml")):
            manifest = at("pixi.toml")
        if lock and lock.endswith("conda-lock.yml"):
            locked, pip = condaspec.read_conda_lock(repo.files[lock], lock)
            if not conda:
                warnings.append(messages.CONDA_LOCK_UNCHECKED.format(file=lock))
            problem = conda and condaspec.lock_disagreement(conda.specs, locked, lock, env_path)
            pinned = {line.split("==", 1)[0].lower() for line in pip}
            for line in conda.pip if conda else ():
                name = re.match(r"[A-Za-z0-9._-]*", line).group().lower()
                if not problem and name and name not in pinned:
                    problem = messages.CONDA_LOCK_PIP_MISSING.format(lock=lock, manifest=env_path, package=name)
            if problem:
                raise EnvironmentRefused(problem)
            return Environment("conda", "venv", binder, policy.default_python, None, conda_file=env_path,
                               conda_lock=lock, conda_manifest=manifest, conda_channels=extra,
                               conda_pip=pip, warnings=tuple(warnings))
        if lock:  # pixi.lock: read and compared with these specs by builders/conda.py
            specs = (condaspec.read_pixi_manifest(repo.files[manifest], manifest)
                     if manifest and manifest.endswith("pixi.toml") else conda.specs if conda else ())
            if not manifest:
                warnings.append(messages.CONDA_LOCK_UNCHECKED.format(file=lock))
            if conda and conda.pip:
                raise EnvironmentRefused(messages.CONDA_LOCK_PIP_MISSING.format(
                    lock=lock, manifest=env_path, package=conda.pip[0]))
            return Environment("conda", "venv", binder, policy.default_python, None, conda_file=env_path,
                               conda_lock=lock, conda_manifest=manifest, conda_specs=specs,
                               conda_channels=extra, warnings=tuple(warnings))
    except condaspec.CondaRefused as e:
        raise EnvironmentRefused(str(e))
    python, python_file, conda_python, specs = policy.default_python, None, None, ()
    if conda:
        spec = conda.python_spec()
        if spec and policy.conda_python == "channel":
            conda_python = spec
        elif spec:
            fitting = [v for v in _sorted(policy.python_versions) if condaspec.python_matches(spec, v)]
            if fitting:
                python, python_file = fitting[-1], env_path
            else:
                python, python_file, notes = choose_available(
                    condaspec.wanted_python(spec) or policy.default_python, env_path, policy, None)
                warnings += notes
        specs = condaspec.solve_specs(conda, drop_python=conda_python is None)
    return Environment("conda", "venv", binder, python, python_file, conda_file=env_path,
                       conda_specs=specs, conda_channels=extra, conda_pip=conda.pip if conda else (),
                       conda_python=conda_python, warnings=tuple(warnings))
