"""The environment key of a build (pure): which files the build of an environment reads, and one
digest of them and of the hub's settings that change the image.

Two commits with the same key get the same environment image; only the repository's files differ
between them (builders/contentlayer.py adds those as a thin layer). The files are those repo2docker's
rules read for the decided kind (builders/environment.py): the binder directory choice, runtime.txt,
apt.txt, start, the requirements file and its -r/-c includes, Pipfile and Pipfile.lock, the
.dockerignore/.containerignore that choose what is copied, and (python kind without a binder
directory) pyproject.toml, read for requires-python. Where the build may read any file, the key is
the whole repository and no environment image is made: a Dockerfile's context, postBuild, an
installed package (setup.py, an installable pyproject.toml), a requirements file or Pipfile naming
local paths, and kinds built by repo2docker's own buildpacks.

Other kinds plug in through ``KIND_READS``: a function (environment, repo) -> BuildReads.
"""

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from repo2docker.utils import is_local_pip_requirement

from binderspawner.builders.environment import index_files, logical_lines

KEY_FORMAT = 1
IGNORE_FILES = (".dockerignore", ".containerignore")  # repo2docker reads them in the binder dir
_INCLUDE = re.compile(r"^(-r|-c|--requirement|--constraint)(\s|=|$)")


@dataclass(frozen=True)
class BuildReads:
    """What building an environment reads: ``paths`` (relative to the checkout; those absent are
    part of the key as absent), or the whole repository, ``whole_repository`` saying why."""
    paths: tuple = ()
    whole_repository: str = ""


def whole(reason):
    return BuildReads((), reason)


def _at(environment, name):
    return f"{environment.binder_dir}/{name}" if environment.binder_dir else name


def _common(environment, repo):
    """The files every hub-built kind reads (repo2docker's BaseImage); None with a postBuild."""
    if repo.has(_at(environment, "postBuild")):
        return None
    return [_at(environment, name) for name in ("apt.txt", "start", "runtime.txt", *IGNORE_FILES)]


def _names_local_paths(text):
    """Whether a requirements file installs files of the repository (``-e .``, ``./pkg``,
    ``file://``); its -r/-c includes are keyed files themselves."""
    for _, line in logical_lines(text):
        if not _INCLUDE.match(line.strip()) and is_local_pip_requirement(line):
            return True
    return False


def python_reads(environment, repo):
    """requirements.txt and its includes, runtime.txt, apt.txt, start; pyproject.toml (root, no
    binder directory) for requires-python."""
    common = _common(environment, repo)
    if common is None:
        return whole(f"{_at(environment, 'postBuild')} may read any file of the repository")
    if environment.install_repo:
        return whole("the repository is installed as a package (setup.py or pyproject.toml), which "
                     "may read any file")
    requirements = index_files(repo, environment)
    for path in requirements:
        if _names_local_paths(repo.files[path]):
            return whole(f"{path} installs files of the repository")
    if environment.requirements and environment.requirements not in requirements:
        requirements.append(environment.requirements)
    root = ["pyproject.toml"] if not environment.binder_dir else []
    return BuildReads(tuple(sorted(set(common + requirements + root))))


def _pipfile_names_paths(repo, path):
    import tomllib

    text = repo.files.get(path)
    if text is None:
        return False
    if path.endswith(".lock"):
        try:
            sections = [json.loads(text).get(s, {}) for s in ("default", "develop")]
        except (ValueError, AttributeError):
            return True
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return True
        sections = [data.get(s, {}) for s in ("packages", "dev-packages")]
    return any(isinstance(spec, dict) and "path" in spec
               for section in sections if isinstance(section, dict) for spec in section.values())


def pipfile_reads(environment, repo):
    """Pipfile, Pipfile.lock, runtime.txt, apt.txt, start."""
    common = _common(environment, repo)
    if common is None:
        return whole(f"{_at(environment, 'postBuild')} may read any file of the repository")
    files = [_at(environment, "Pipfile"), _at(environment, "Pipfile.lock")]
    for path in files:
        if _pipfile_names_paths(repo, path):
            return whole(f"{path} installs files of the repository")
    return BuildReads(tuple(sorted(set(common + files))))


# kind -> (environment, repo) -> BuildReads. A kind not here is keyed by the whole repository.
KIND_READS = {"python": python_reads, "pipfile": pipfile_reads}


def build_reads(environment, repo):
    """The files building ``environment`` (environment.Environment) reads from ``repo``
    (environment.RepoFiles), by repo2docker's rules."""
    if environment.kind == "dockerfile":
        return whole("a Dockerfile builds from the whole repository")
    if environment.buildpacks == "repo2docker":
        return whole(f"repo2docker's own buildpacks build the {environment.kind} kind from the whole "
                     "repository")
    if environment.kind == "conda" or environment.conda_specs:
        return whole("conda packages are solved and fetched by the hub for each build (builders/conda.py)")
    reads = KIND_READS.get(environment.kind)
    if reads is None:
        return whole(f"the {environment.kind} kind has no list of the files it reads")
    return reads(environment, repo)


def file_entry(data, executable):
    """One file's part of the key: its content digest and whether it is executable."""
    return [hashlib.sha256(data).hexdigest(), bool(executable)]


def environment_key(environment, files, settings):
    """The key (hex sha256) of an environment: the decision (without its warnings), ``files``
    ({path: file_entry(...) or None when absent}) and the hub's ``settings`` (a JSON-able dict
    of everything hub-side that changes the image: base image, server requirements, indexes,
    extra CA, builder versions)."""
    decision = {k: v for k, v in asdict(environment).items() if k != "warnings"}
    document = {"format": KEY_FORMAT, "environment": decision,
                "files": {path: files[path] for path in sorted(files)}, "settings": settings}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
