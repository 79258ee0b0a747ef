"""The conda environment of one build, solved and fetched on the hub with py-rattler.

The hub, not the build container, talks to the channels: it solves ``environment.yml`` against the
admin's channels (rattler's Gateway and solver) or reads a lock (``pixi.lock`` with
``rattler.LockFile``, ``conda-lock.yml`` with condaspec), downloads exactly those packages, each
checked against the sha256 (or md5) the channel or lock gives, into the build's scratch directory,
and the image installs them offline (buildpacks/conda.py). So a channel mirror on the hub's own
network, an air-gapped site and channel credentials all stay on the hub; the image holds only the
package files and the installed environment. Package downloads connect only to addresses the hub's
SSRF rules admit (providers/hosts.py), the admin's channel hosts being allowed.
"""

import asyncio
import hashlib
import json
import os
import re
import shutil
import urllib.parse
from dataclasses import dataclass

import rattler
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from binderspawner import messages
from binderspawner.builders import condaspec
from binderspawner.errors import LaunchError
from binderspawner.providers import hosts

MANIFEST = "manifest.json"
PACKAGES_DIR = "pkgs"
PIP_FILE = "pip-requirements.txt"
# The payload's directory in the hub's checkout; anything of the repository's at that name goes.
PAYLOAD_DIR = "binderspawner-conda-payload"
CHANNELS_SETTING = "c.Repo2DockerBuilder.conda_channels"
TIMEOUT_SETTING = "c.Repo2DockerBuilder.conda_timeout"


class CondaFailed(Exception):
    """The environment cannot be solved or fetched; ``str()`` is for the user. ``refused``: the
    repository's fault (an unsatisfiable spec, a lock that disagrees), else the hub's."""

    def __init__(self, message, refused=False):
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class CondaSettings:
    """The admin's conda settings (from Repo2DockerBuilder's traits)."""
    channels: tuple = ("conda-forge",)
    channel_alias: str = ""
    allowed_private_hosts: tuple = ()
    cache_dir: str = ""
    download_timeout: float = 600.0
    max_download_bytes: int = 0  # all packages of one build together; 0: no limit


def public_url(url):
    """A URL without user:password@, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def make_channel(name, alias=""):
    config = rattler.ChannelConfig(channel_alias=alias) if alias else None
    return rattler.Channel(name, config) if config else rattler.Channel(name)


def channel_urls(names, alias=""):
    """(name as written, base URL with a trailing slash) per channel."""
    out = []
    for name in names:
        base = make_channel(name, alias).base_url
        out.append((name, base if base.endswith("/") else base + "/"))
    return out


def _leaves_its_folder(url):
    """Whether ``url``'s path has '.' or '..' segments (also percent-encoded) or backslashes: a
    server resolves them, so 'channel/../other/x.conda' is a package of another channel."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return "\\" in path or any(part in (".", "..") for part in path.split("/"))


def owning_channel(url, channels):
    """The (name, base) whose base URL ``url`` lies under (credentials aside), or None; a URL that
    climbs out of its folder lies under none."""
    if _leaves_its_folder(url):
        return None
    return next((c for c in channels if public_url(url).startswith(public_url(c[1]))), None)


def channel_credentials(url, channels):
    """(user, password) of the channel ``url`` lies under when its base URL carries them (an
    admin's mirror), for a URL that does not (a lock's); else (None, None)."""
    parts = urllib.parse.urlsplit(url)
    found = owning_channel(url, channels)
    base = urllib.parse.urlsplit(found[1]) if found else None
    if parts.username is None and base is not None and base.username is not None:
        return urllib.parse.unquote(base.username), urllib.parse.unquote(base.password or "")
    return None, None


def unreachable_channel(error_text, channels):
    """The (name, base) a Gateway error names (its URL lies under the base), or None (pure)."""
    for url in re.findall(r"https?://[^\s)'\"]+", error_text):
        found = owning_channel(url, channels)
        if found:
            return found
    return None


def solver_reason(error_text, limit=400):
    """rattler's error text without its preamble and without credentials in URLs, on one line."""
    text = re.sub(r"^Cannot solve the request because of:\s*", "", error_text.strip())
    text = re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + "..."


def check_digest(data, sha256="", md5=""):
    """'' when ``data`` has the digest given (sha256 preferred), else the kind that disagrees."""
    return digest_mismatch(hashlib.sha256(data), hashlib.md5(data), sha256, md5)


def digest_mismatch(got_sha256, got_md5, sha256="", md5=""):
    """check_digest for hashlib objects fed as the body arrived."""
    if sha256:
        return "" if got_sha256.hexdigest() == sha256.lower() else "sha256"
    if md5:
        return "" if got_md5.hexdigest() == md5.lower() else "md5"
    return "no checksum"


async def solve(environment, python_version, settings, emit, repo_channel_rules=()):
    """LockedPackage items solving environment.conda_specs (raises CondaFailed)."""
    for spec in environment.conda_specs:  # condaspec refuses these in environment.yml already
        if condaspec.is_package_url(spec):
            raise CondaFailed(messages.CONDA_URL_DEPENDENCY.format(
                file=environment.conda_file or "runtime.txt", entry=spec[:200]), refused=True)
    admin = channel_urls(settings.channels, settings.channel_alias)
    repo = channel_urls(environment.conda_channels, settings.channel_alias)
    for name, base in repo:  # a repository's channel: its host passes the hub's SSRF rules first
        host = urllib.parse.urlsplit(base).hostname or ""
        try:
            await hosts.check_host(host, repo_channel_rules, setting="RepoProvider.allowed_private_hosts")
        except LaunchError as e:
            raise CondaFailed(f"{environment.conda_file}: the channel '{name}': {e}", refused=True)
    channels = [*repo, *admin]
    source = environment.conda_file or "runtime.txt"
    emit("fetching", f"Solving {source} from the conda channels "
                     f"{', '.join(public_url(b) for _, b in channels)}")
    virtual = [v.into_generic() for v in rattler.VirtualPackage.detect()]
    if environment.conda_python is None:
        # the base image's Python: packages that need some python see this one, none is installed
        virtual.append(rattler.GenericVirtualPackage(
            rattler.PackageName("python"), rattler.Version(f"{python_version}.0"), rattler.BuildString("0")))
    gateway = rattler.Gateway(cache_dir=settings.cache_dir or None)
    try:
        records = await asyncio.wait_for(rattler.solve(
            [make_channel(b) for _, b in channels], list(environment.conda_specs), gateway=gateway,
            platforms=list(condaspec.SUBDIRS), virtual_packages=virtual), settings.download_timeout)
    except asyncio.TimeoutError:
        raise CondaFailed(messages.CONDA_CHANNEL_UNREACHABLE.format(
            channel=", ".join(public_url(b) for _, b in channels), setting=CHANNELS_SETTING,
            reason=f"no answer within {settings.download_timeout:g} s ({TIMEOUT_SETTING})"))
    except Exception as e:  # rattler's SolverError / GatewayError (exceptions module of the extension)
        kind, text = type(e).__name__, str(e)
        if kind == "SolverError":
            raise CondaFailed(messages.CONDA_UNSATISFIABLE.format(
                file=source, channels=", ".join(public_url(b) for _, b in channels),
                reason=solver_reason(text)), refused=True)
        found = unreachable_channel(text, channels) or (channels[0] if len(channels) == 1 else None)
        name = found[0] if found else ", ".join(n for n, _ in channels)
        setting = (f"{environment.conda_file}'s channels" if found and found in repo else CHANNELS_SETTING)
        raise CondaFailed(messages.CONDA_CHANNEL_UNREACHABLE.format(
            channel=public_url(name), setting=setting, reason=solver_reason(text.splitlines()[-1], 200)))
    if environment.conda_python is None:
        for record in records:
            if record.noarch is not None and record.noarch.python:
                raise CondaFailed(messages.CONDA_NOARCH_PYTHON.format(file=source, package=record.name.normalized),
                                  refused=True)
    return [condaspec.LockedPackage(r.name.normalized, str(r.version), str(r.build), r.url,
                                    r.sha256.hex() if r.sha256 else "", r.md5.hex() if r.md5 else "")
            for r in records]


def pixi_packages(path, display):
    """LockedPackage items of a pixi.lock's default environment for linux-64 (rattler reads it)."""
    try:
        lock = rattler.LockFile.from_path(path)
    except Exception as e:
        raise CondaFailed(messages.CONDA_LOCK_UNREADABLE.format(file=display, problem=str(e).splitlines()[0]),
                          refused=True)
    env = lock.default_environment()
    platform = next((p for p in env.platforms() if p.name == condaspec.PLATFORM), None) if env else None
    if platform is None:
        names = ", ".join(p.name for p in env.platforms()) if env else "none"
        raise CondaFailed(messages.CONDA_LOCK_PLATFORM.format(file=display, platform=condaspec.PLATFORM,
                                                              platforms=names), refused=True)
    pypi = env.pypi_packages_for_platform(platform) or []
    if pypi:
        raise CondaFailed(messages.CONDA_LOCK_PYPI.format(
            file=display, packages=", ".join(p.name for p in pypi[:5])), refused=True)
    return [condaspec.LockedPackage(r.name.normalized, str(r.version), str(r.build), r.url,
                                    r.sha256.hex() if r.sha256 else "", r.md5.hex() if r.md5 else "")
            for r in env.conda_repodata_records_for_platform(platform) or []]


def locked_packages(environment, checkout, settings, repo_channels):
    """The lock's packages, checked against its manifest and the hub's channels (pure but for
    reading the lock file)."""
    path = os.path.join(checkout, environment.conda_lock)
    if environment.conda_lock.endswith("pixi.lock"):
        packages = pixi_packages(path, environment.conda_lock)
    else:
        with open(path, encoding="utf-8") as f:
            try:
                packages, _ = condaspec.read_conda_lock(f.read(), environment.conda_lock)
            except condaspec.CondaRefused as e:
                raise CondaFailed(str(e), refused=True)
    if environment.conda_manifest and environment.conda_specs:
        problem = condaspec.lock_disagreement(environment.conda_specs, packages, environment.conda_lock,
                                              environment.conda_manifest)
        if problem:
            raise CondaFailed(problem, refused=True)
    channels = [*channel_urls(settings.channels, settings.channel_alias), *repo_channels]
    for package in packages:
        if owning_channel(package.url, channels) is None:
            raise CondaFailed(messages.CONDA_LOCK_CHANNEL.format(
                file=environment.conda_lock, package=package.name, url=public_url(package.url),
                admin=", ".join(public_url(b) for _, b in channels)), refused=True)
    return packages


async def download(packages, dest, settings, emit, source):
    """Each package into ``dest``/pkgs, checked against its digest; the manifest the image's
    installer reads. Connections pass the hub's SSRF rules, the admin's channel hosts allowed."""
    admin = channel_urls(settings.channels, settings.channel_alias)
    admin_hosts = [urllib.parse.urlsplit(b).hostname or "" for _, b in admin]
    resolver = hosts.CheckingResolver(allowed=(*admin_hosts, *settings.allowed_private_hosts),
                                      setting="RepoProvider.allowed_private_hosts")
    client = SimpleAsyncHTTPClient(force_instance=True, resolver=resolver, max_body_size=4 << 30)
    os.makedirs(os.path.join(dest, PACKAGES_DIR), exist_ok=True)
    limit = asyncio.Semaphore(4)
    fetched, too_large = [0], []  # bytes of every package so far: a lock or a solve cannot fill the hub's disk

    async def one(package):
        file_name = package.url.rsplit("/", 1)[-1]
        if not condaspec.filename_parts(file_name) or file_name.startswith("."):
            raise CondaFailed(messages.CONDA_DOWNLOAD_FAILED.format(
                package=package.name, url=public_url(package.url), reason="not a conda package file name"))
        target = os.path.join(dest, PACKAGES_DIR, file_name)
        got_sha256, got_md5, size = hashlib.sha256(), hashlib.md5(), [0]
        # the body goes to disk as it arrives, hashed on the way: a channel's (or a lock's) package
        # of gigabytes never sits in the hub's memory
        with open(target + ".part", "wb") as part:
            def received(chunk):
                fetched[0] += len(chunk)
                if settings.max_download_bytes and fetched[0] > settings.max_download_bytes:
                    too_large.append(package)
                    # tornado logs this and closes the connection: the fetch fails, and is reported below
                    raise OSError("conda_max_download reached")
                part.write(chunk)
                got_sha256.update(chunk)
                got_md5.update(chunk)
                size[0] += len(chunk)

            async with limit:
                try:
                    if too_large:
                        raise OSError("conda_max_download reached")
                    user, password = channel_credentials(package.url, admin)
                    await client.fetch(HTTPRequest(
                        package.url, request_timeout=settings.download_timeout, follow_redirects=True,
                        max_redirects=3, auth_username=user, auth_password=password,
                        streaming_callback=received))
                except (HTTPClientError, OSError, LaunchError) as e:
                    os.remove(target + ".part")
                    if too_large:
                        raise CondaFailed(messages.CONDA_DOWNLOAD_TOO_LARGE.format(
                            source=source, limit=_size(settings.max_download_bytes), package=too_large[0].name,
                            url=public_url(too_large[0].url)), refused=True) from None
                    raise CondaFailed(messages.CONDA_DOWNLOAD_FAILED.format(
                        package=package.name, url=public_url(package.url),
                        reason=str(e).replace(package.url, public_url(package.url))))
        wrong = digest_mismatch(got_sha256, got_md5, package.sha256, package.md5)
        if wrong:
            os.remove(target + ".part")
            raise CondaFailed(messages.CONDA_DIGEST_MISMATCH.format(
                package=package.name, url=public_url(package.url), source=source, kind=wrong))
        os.replace(target + ".part", target)
        return {"file": file_name, "sha256": got_sha256.hexdigest(), "size": size[0]}

    try:
        entries = await asyncio.gather(*(one(p) for p in packages))
    finally:
        client.close()
    total = sum(e["size"] for e in entries)
    emit("fetching", f"Fetched {len(entries)} conda packages ({total / 1e6:.1f} MB), checksums checked")
    with open(os.path.join(dest, MANIFEST), "w") as f:
        json.dump({"packages": sorted(entries, key=lambda e: e["file"])}, f, indent=1, sort_keys=True)
    return entries


def _size(n):
    """'20 GiB', '512 MiB' (for messages)."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} bytes"


async def prepare(environment, checkout, dest, settings, emit, repo_channel_rules=()):
    """Solve or read the lock, then fetch into ``dest``; raises CondaFailed."""
    if environment.conda_lock:
        repo = channel_urls(environment.conda_channels, settings.channel_alias)
        packages = locked_packages(environment, checkout, settings, repo)
        emit("fetching", f"Installing {environment.conda_lock} exactly: {len(packages)} conda packages")
        source = environment.conda_lock
    else:
        packages = await solve(environment, environment.python, settings, emit, repo_channel_rules)
        solved = sorted(packages, key=lambda p: p.name)
        emit("fetching", "Solved: " + ", ".join(f"{p.name} {p.version}" for p in solved))
        source = "the channel's repodata"
    return await download(packages, dest, settings, emit, source)


def payload_directory(checkout):
    """A fresh, empty payload directory in the hub's ``checkout`` (whatever the repository had
    at that name, a link included, is removed first)."""
    path = os.path.join(checkout, PAYLOAD_DIR)
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    os.mkdir(path, 0o755)
    return path
