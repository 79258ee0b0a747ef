"""What a conda environment file or lock asks for, read before anything is fetched (pure).

``environment.yml`` is read as conda reads it (``channels:``, ``dependencies:`` with its ``pip:``
list); each dependency must be a match spec py-rattler parses. The repository's channels meet the
admin's rules here (``channel_decision``), and a lock file (``pixi.lock``, ``conda-lock.yml``) is
compared with its manifest here (``lock_disagreement``), so a refusal names the file and the entry
before the hub contacts any channel.
"""

import re
from dataclasses import dataclass

import rattler
import yaml

from binderspawner import messages

PLATFORM = "linux-64"
SUBDIRS = (PLATFORM, "noarch")
# Channel names conda treats as directives, not as channels to solve from.
DIRECTIVE_CHANNELS = ("defaults", "nodefaults")
_URL_ATTRIBUTE = re.compile(r'[\[,]\s*url="')  # in a match spec's canonical text: foo[build="x", url="..."]
_HEX = re.compile(r"[0-9a-fA-F]{1,128}")
_FILENAME = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.(?:tar\.bz2|conda)$")


class CondaRefused(Exception):
    """The conda environment cannot be built as written; ``str()`` is for the user."""


@dataclass(frozen=True)
class CondaFile:
    """An environment.yml: its channels, conda match specs (as written) and pip lines."""
    path: str
    channels: tuple
    specs: tuple
    pip: tuple
    warnings: tuple = ()

    def python_spec(self):
        """The dependency naming ``python`` (as written), or None."""
        return next((s for s in self.specs if spec_name(s) == "python"), None)


def is_package_url(spec):
    """Whether a match spec names a package by URL or path ('https://host/x/foo-1-0.conda',
    'foo[url=...]', '/path/foo-1-0.tar.bz2', 'file:...'): rattler fetches (or reads) those itself,
    wherever they point, past the channels and the hub's address rules."""
    return bool(_URL_ATTRIBUTE.search(str(rattler.MatchSpec(spec))))


def spec_name(spec):
    return rattler.MatchSpec(spec).name.normalized


# Most values a repository's YAML file may hold once its aliases are expanded: a few hundred bytes of
# nested aliases ('billion laughs') expand to billions, which anything walking or printing the data
# (a message quoting an entry) would build in the hub's memory. Large real locks hold ~100k.
MAX_YAML_VALUES = 1_000_000


def load_yaml(text, path):
    """A repository's YAML file, as yaml.safe_load reads it; refused (naming the file) when it does
    not parse, nests too deeply, refers to itself or expands past MAX_YAML_VALUES."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem=str(e).splitlines()[0]))
    except RecursionError:
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem="it is nested too deeply")) from None
    size = expanded_size(data, MAX_YAML_VALUES)
    if size is None:
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem="an alias (*name) refers to a "
                                                           "value that contains it"))
    if size > MAX_YAML_VALUES:
        raise CondaRefused(messages.FILE_UNREADABLE.format(
            file=path, problem=f"it holds more than {MAX_YAML_VALUES:,} values once its aliases (*name) are "
                               "expanded"))
    return data


def expanded_size(data, limit):
    """How many values ``data`` holds with shared (aliased) lists and mappings counted at every
    place they appear, without expanding them (capped just past ``limit``); None for a cycle."""
    sizes, open_ = {}, set()
    stack = [(data, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        key = id(node)
        if finished:
            open_.discard(key)
            sizes[key] = min(1 + sum(sizes.get(id(c), 1) for c in children), limit + 1)
            continue
        if key in sizes:
            continue
        if key in open_:
            return None  # met again inside itself
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if isinstance(child, (list, dict)):
                if id(child) in open_:
                    return None
                if id(child) not in sizes:
                    stack.append((child, False))
    return sizes.get(id(data), 1)


def read_environment_file(text, path):
    """Parse an environment.yml (CondaFile); refuses what conda would not read, naming the entry."""
    data = load_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem="it is not a YAML mapping"))
    warnings = [messages.CONDA_KEY_IGNORED.format(file=path, key=key)
                for key in sorted(k for k in data if k in ("prefix", "variables"))]
    channels = data.get("channels") or []
    dependencies = data.get("dependencies") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) and c.strip() for c in channels):
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem="'channels' is not a list of names"))
    if not isinstance(dependencies, list):
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem="'dependencies' is not a list"))
    specs, pip = [], []
    for entry in dependencies:
        if isinstance(entry, dict) and set(entry) == {"pip"} and isinstance(entry["pip"], list):
            for line in entry["pip"]:
                if not isinstance(line, str) or "\n" in line or "\r" in line:
                    raise CondaRefused(messages.CONDA_BAD_DEPENDENCY.format(
                        file=path, entry=str(line)[:80], problem="a pip entry must be one requirement line"))
                pip.append(line.strip())
            continue
        if not isinstance(entry, (str, int, float)):
            raise CondaRefused(messages.CONDA_BAD_DEPENDENCY.format(
                file=path, entry=str(entry)[:80], problem="it is neither a package spec nor a 'pip:' list"))
        entry = str(entry).strip()
        try:
            rattler.MatchSpec(entry)
        except Exception as e:  # rattler's InvalidMatchSpecError and friends
            raise CondaRefused(messages.CONDA_BAD_DEPENDENCY.format(file=path, entry=entry[:80], problem=e))
        if is_package_url(entry):
            raise CondaRefused(messages.CONDA_URL_DEPENDENCY.format(file=path, entry=entry[:200]))
        specs.append(entry)
    return CondaFile(path, tuple(c.strip() for c in channels), tuple(specs), tuple(p for p in pip if p),
                     tuple(warnings))


def same_channel(a, b):
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def channel_decision(conda_file, admin_channels, mode):
    """(channels to add to the admin's, warnings) for the repository's ``channels:`` and its
    ``channel::package`` specs. ``mode``: 'ignore' (solve from the admin's channels, with a warning
    naming each other channel), 'refuse', or 'allow' (the repository's first, as conda orders them;
    their hosts are checked when fetched)."""
    named = list(conda_file.channels)
    for spec in conda_file.specs:
        channel = rattler.MatchSpec(spec).channel
        if channel is not None and spec.split("::", 1)[0] not in named:
            named.append(spec.split("::", 1)[0])
    extra, warnings = [], []
    for channel in named:
        if channel in DIRECTIVE_CHANNELS or any(same_channel(channel, a) for a in admin_channels):
            continue
        if mode == "allow":
            extra.append(channel)
        elif mode == "refuse":
            raise CondaRefused(messages.CONDA_CHANNEL_REFUSED.format(
                file=conda_file.path, channel=channel, admin=", ".join(admin_channels)))
        else:
            warnings.append(messages.CONDA_CHANNEL_IGNORED.format(
                file=conda_file.path, channel=channel, admin=", ".join(admin_channels)))
    return tuple(extra), tuple(warnings)


def solve_specs(conda_file, drop_python):
    """The match specs handed to the solver: as written, without a ``channel::`` prefix (the
    channels are decided by channel_decision), without ``python`` (and ``pip``, which the pip: list
    does not need: uv installs it) when the base image provides Python."""
    out = []
    for spec in conda_file.specs:
        if drop_python and spec_name(spec) in ("python", "pip"):
            continue
        out.append(spec.split("::", 1)[1] if "::" in spec else spec)
    return tuple(out)


def python_matches(spec, version):
    """Whether the ``python`` match spec admits Python ``version`` ('3.11')."""
    match = rattler.MatchSpec(spec)
    if match.version is None:
        return True
    wanted = rattler.VersionSpec(str(match.version))
    return any(wanted.matches(rattler.Version(v)) for v in (version, f"{version}.0"))


def wanted_python(spec):
    """'major.minor' named first in a ``python`` spec ('python=3.10' -> '3.10'), or None."""
    found = re.search(r"(\d+)\.(\d+)", spec)
    return f"{found.group(1)}.{found.group(2)}" if found else None


# -- lock files

@dataclass(frozen=True)
class LockedPackage:
    """One conda package of a lock: where to fetch it and the digest it must have."""
    name: str
    version: str
    build: str
    url: str
    sha256: str = ""
    md5: str = ""


def filename_parts(url):
    """(name, version, build) from a conda package URL's file name, or None."""
    found = _FILENAME.match(url.rsplit("/", 1)[-1])
    return (found.group("name"), found.group("version"), found.group("build")) if found else None


def read_conda_lock(text, path):
    """(conda packages for linux-64, pip pins as requirement lines) of a conda-lock.yml, version 1
    (its documented unified format: metadata + a package list with url and hash). py-rattler 0.28
    reads pixi's lock format only, so this one is parsed here."""
    data = load_yaml(text, path)
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("package"), list):
        raise CondaRefused(messages.CONDA_LOCK_FORMAT.format(file=path))
    platforms = (data.get("metadata") or {}).get("platforms") or []
    if PLATFORM not in platforms:
        raise CondaRefused(messages.CONDA_LOCK_PLATFORM.format(file=path, platform=PLATFORM,
                                                               platforms=", ".join(map(str, platforms)) or "none"))
    conda, pip = [], []
    for entry in data["package"]:
        if not isinstance(entry, dict) or entry.get("platform") != PLATFORM:
            continue
        digest = entry.get("hash") or {}
        name, version, url = str(entry.get("name", "")), str(entry.get("version", "")), str(entry.get("url", ""))
        # hex only: a pip pin's hash becomes part of a requirement line, where anything else could
        # start an option or a line of its own
        if not name or not url or not isinstance(digest, dict) or not (digest.get("sha256") or digest.get("md5")) \
                or not all(_HEX.fullmatch(str(digest[k])) for k in ("sha256", "md5") if digest.get(k)):
            raise CondaRefused(messages.CONDA_LOCK_ENTRY.format(file=path, entry=name or url or "?"))
        if entry.get("manager") == "pip":
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or not re.fullmatch(r"[A-Za-z0-9.+!_-]+", version):
                raise CondaRefused(messages.CONDA_LOCK_ENTRY.format(file=path, entry=name))
            line = f"{name}=={version}"
            if digest.get("sha256"):
                line += f" --hash=sha256:{digest['sha256']}"
            pip.append(line)
            continue
        parts = filename_parts(url)
        if parts is None:
            raise CondaRefused(messages.CONDA_LOCK_ENTRY.format(file=path, entry=name))
        conda.append(LockedPackage(name, version, parts[2], url, str(digest.get("sha256", "")),
                                   str(digest.get("md5", ""))))
    return tuple(conda), tuple(pip)


def read_pixi_manifest(text, path):
    """The conda specs of a pixi.toml's [dependencies] (default feature), as 'name spec'."""
    import tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CondaRefused(messages.FILE_UNREADABLE.format(file=path, problem=e))
    specs = []
    for name, value in (data.get("dependencies") or {}).items():
        version = value if isinstance(value, str) else (value.get("version", "*") if isinstance(value, dict) else "*")
        specs.append(name if version.strip() in ("", "*") else f"{name} {version}")
    return tuple(specs)


def lock_disagreement(specs, locked, lock_path, manifest_path):
    """The refusal message when a manifest spec is not satisfied by the lock's packages (pure),
    or None. ``locked``: LockedPackage items. What is checked: each spec's name is locked, at a
    version (and build) the spec admits; not checked: that the lock is a fresh solve."""
    for spec in specs:
        match = rattler.MatchSpec(spec.split("::", 1)[1] if "::" in spec else spec)
        name = match.name.normalized
        candidates = [p for p in locked if p.name.lower() == name]
        if not candidates:
            return messages.CONDA_LOCK_MISSING.format(lock=lock_path, manifest=manifest_path, package=name)
        records = [rattler.PackageRecord(p.name, p.version, rattler.BuildString(p.build), 0, "noarch")
                   for p in candidates]
        if not any(match.matches(r) for r in records):
            return messages.CONDA_LOCK_DISAGREES.format(
                lock=lock_path, manifest=manifest_path, spec=spec,
                locked=", ".join(f"{p.name} {p.version}" for p in candidates))
    return None
