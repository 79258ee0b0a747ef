"""Runs inside the image being built (copied there by the venv buildpack): every pip-style install
of a build goes through uv from here, so a failure ends with one line naming the file and uv's cause.

Standard library only (it runs with the base image's Python, 3.11 or newer, before anything else is
installed). Usage, from ${REPO_DIR}:
    install.py [--index-url URL ...] server REQUIREMENT...
    install.py [--index-url URL ...] requirements FILE
    install.py [--index-url URL ...] pipfile-lock FILE    (the lock's pins and hashes, exactly)
    install.py [--index-url URL ...] pipfile FILE         (a resolution of the Pipfile)
    install.py [--index-url URL ...] repo-deps            (the repository's dependencies, early)
    install.py [--index-url URL ...] repo                 (pip install . of the repository)
    install.py uv-lock DIR [--no-install-project]         (uv sync --locked of DIR's uv.lock)
"""

import json
import os
import re
import subprocess
import sys
import tempfile

FAILED = "binderspawner-install-failed:"
# After FAILED: a lock that disagrees with its manifest ("[uv-lock-stale] uv.lock: uv's cause");
# venv.install_failure turns it into messages.UV_LOCK_STALE.
UV_LOCK_STALE = "[uv-lock-stale]"
VENV = "/srv/venv"
# Pipfile keys that are environment markers (Pipfile's shorthand: sys_platform = "== 'linux'").
MARKER_KEYS = ("os_name", "sys_platform", "platform_machine", "platform_python_implementation",
               "platform_release", "platform_system", "platform_version", "python_version",
               "python_full_version", "implementation_name", "implementation_version")


def _markers(spec):
    parts = [f"({spec['markers']})"] if spec.get("markers") else []
    parts += [f"{key} {spec[key]}" for key in MARKER_KEYS if isinstance(spec.get(key), str)]
    return " and ".join(parts)


def _plain(name, value):
    if "\n" in value or "\r" in value or value.strip().startswith("-"):
        raise ValueError(f"the entry {name!r} has a value that is not a requirement: {value.strip()[:80]!r}")


def requirement_line(name, spec, base_dir):
    """One requirements.txt line for a Pipfile or Pipfile.lock entry (pip's syntax). A name or value
    that would start another line or an option is refused (ValueError naming it)."""
    _plain(name, name)
    for value in ([spec] if isinstance(spec, str) else [v for v in spec.values() if isinstance(v, str)]
                  + [h for h in spec.get("hashes", ()) if isinstance(h, str)]
                  + [e for e in spec.get("extras", ()) if isinstance(e, str)]):
        _plain(name, value)
    if isinstance(spec, str):
        return name if spec.strip() in ("", "*") else f"{name}{spec.strip()}"
    extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
    editable = "-e " if spec.get("editable") else ""
    markers = _markers(spec)
    if "path" in spec:
        target = os.path.normpath(os.path.join(base_dir, spec["path"]))
        line = f"{editable}{target}{extras}" if editable else f"{name}{extras} @ file://{target}"
    elif "git" in spec:
        url = spec["git"] if spec["git"].startswith("git+") else f"git+{spec['git']}"
        ref = f"@{spec['ref']}" if spec.get("ref") else ""
        line = f"{editable}{url}{ref}#egg={name}" if editable else f"{name}{extras} @ {url}{ref}"
    elif "file" in spec:
        line = f"{name}{extras} @ {spec['file']}"
    else:
        version = spec.get("version", "*")
        line = name + extras + ("" if version.strip() in ("", "*") else version.strip())
    if markers and not editable:
        line += f" ; {markers}"
    for digest in spec.get("hashes", ()):
        line += f" --hash={digest}"
    return line


def pipfile_lock_requirements(lock, base_dir):
    """The lock's "default" and "develop" pins (repo2docker installs both, like pipenv --dev)."""
    entries = {**lock.get("develop", {}), **lock.get("default", {})}
    return [requirement_line(name, spec, base_dir) for name, spec in sorted(entries.items())]


def pipfile_requirements(pipfile, base_dir):
    """[packages] and [dev-packages] of a Pipfile, to be resolved."""
    entries = {**pipfile.get("dev-packages", {}), **pipfile.get("packages", {})}
    return [requirement_line(name, spec, base_dir) for name, spec in sorted(entries.items())]


def ignored_sources(sources, index_urls):
    """URLs of a Pipfile's [[source]] entries that are not the hub's indexes. Pipenv's default
    source (named "pypi") stands for the default index when the hub names no index of its own."""
    ignored = []
    for source in sources or ():
        if not isinstance(source, dict) or not source.get("url") or source["url"] in index_urls:
            continue
        if not index_urls and source.get("name") == "pypi":
            continue
        ignored.append(str(source["url"]))
    return ignored


def failure_summary(stderr):
    """uv's cause in one line: its error lines without the drawing characters."""
    lines = []
    for line in stderr.splitlines():
        text = line.strip().lstrip("×╰─▶│├ ").strip()
        if text and (lines or line.lstrip().startswith(("×", "error:"))):
            lines.append(text)
    return " ".join(lines or [line.strip() for line in stderr.splitlines() if line.strip()][-3:])


def static_dependencies(pyproject):
    """[project] dependencies of a pyproject.toml, or None where they are dynamic (or absent)."""
    project = pyproject.get("project")
    if not isinstance(project, dict) or "dependencies" in project.get("dynamic", ()):
        return None
    return list(project.get("dependencies", []))


def target_python(kind):
    """The Python the repository's packages go into: the server's venv, or the conda environment's
    Python that BINDERSPAWNER_TARGET_PYTHON names (buildpacks/conda.py) where it exists."""
    target = os.environ.get("BINDERSPAWNER_TARGET_PYTHON", "")
    if kind == "server" or not target or target == f"{VENV}/bin/python":
        return f"{VENV}/bin/python"
    if not os.path.exists(target):
        print(f"Note: {target} does not exist; installing into {VENV}/bin/python instead.")
        return f"{VENV}/bin/python"
    return target


_TARGET = [f"{VENV}/bin/python"]  # set by main() from target_python()


def uv_install(args, what, index_urls, no_deps=False, check=True):
    # --no-config: uv would read uv.toml and pyproject.toml's [tool.uv] in ${REPO_DIR}, where a
    # repository could name package indexes its requirements files may not (the hub warns of them)
    command = ["uv", "pip", "install", "--no-config", "--no-cache", "--python", _TARGET[0]]
    if index_urls:
        command += ["--index-url", index_urls[0], "--index-strategy", "unsafe-best-match"]
        for url in index_urls[1:]:
            command += ["--extra-index-url", url]
    if no_deps:
        command.append("--no-deps")
    done = subprocess.run(command + args, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0 and not check:
        return False
    if done.returncode != 0:
        print(f"{FAILED} installing {what} failed: {failure_summary(done.stderr)}", file=sys.stderr)
        sys.exit(1)
    return True


def uv_sync(project, install_project):
    """uv.lock installed exactly into the server's environment: `uv sync --locked` refuses a lock
    that disagrees with pyproject.toml (never re-solving it); --inexact keeps the single-user server
    that is already there (the lock's pins win where they overlap). uv's defaults otherwise (the dev
    group, the project itself, editable), as `uv sync` does on the user's machine."""
    lock = os.path.join(project, "uv.lock") if project not in ("", ".") else "uv.lock"
    command = ["uv", "sync", "--locked", "--inexact", "--no-cache", "--project", project,
               "--python", f"{VENV}/bin/python", "--no-python-downloads"]
    if not install_project:
        command.append("--no-install-project")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": VENV}
    done = subprocess.run(command, stdout=sys.stdout, stderr=subprocess.PIPE, text=True, env=env)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        cause = failure_summary(done.stderr)
        if "needs to be updated" in done.stderr and "--locked" in done.stderr:
            print(f"{FAILED} {UV_LOCK_STALE} {lock}: {cause}", file=sys.stderr)
        else:
            print(f"{FAILED} installing {lock} failed: {cause}", file=sys.stderr)
        sys.exit(1)


def requirements_options(path, seen=()):
    """uv options for what pip reads from a requirements file (or its -r includes) but uv only from
    its command line: ``--pre`` (pip then allows pre-releases for the whole install; uv would only
    warn that it ignores the line)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [line.split(" #", 1)[0].strip() for line in f]
    except OSError:
        return []
    options = []
    for line in lines:
        if line == "--pre":
            options = ["--prerelease", "allow"]
        included = re.match(r"^(?:-r|--requirement)(?:\s*=\s*|\s+)(\S+)$", line)
        if included and "://" not in included.group(1) and len(seen) < 20:
            nested = os.path.join(os.path.dirname(path), included.group(1))
            if nested not in seen and requirements_options(nested, (*seen, path)):
                options = ["--prerelease", "allow"]
    return options


def _write_requirements(lines):
    handle, path = tempfile.mkstemp(suffix="-requirements.txt")
    with os.fdopen(handle, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main(argv):
    index_urls = []
    while argv[:1] == ["--index-url"]:
        index_urls.append(argv[1])
        argv = argv[2:]
    kind, rest = argv[0], argv[1:]
    _TARGET[0] = target_python(kind)
    if kind == "server":
        uv_install(rest, "the single-user server (" + " ".join(rest) + ")", index_urls)
    elif kind == "requirements":
        options = requirements_options(rest[0])
        if options:  # uv warns that it ignores the line; it is honoured through its command line
            print(f"Note: {rest[0]} asks for --pre: pre-releases are allowed (uv {' '.join(options)}).", flush=True)
        uv_install([*options, "-r", rest[0]], rest[0], index_urls)
    elif kind == "repo-deps":
        # Before the repository is copied (only its setup.py/setup.cfg/pyproject.toml are here), so
        # a change elsewhere keeps this layer. Where the dependencies cannot be read without the rest
        # of the repository, they are installed with it by "repo" instead.
        dependencies = None
        if os.path.exists("pyproject.toml"):
            import tomllib
            with open("pyproject.toml", "rb") as f:
                dependencies = static_dependencies(tomllib.load(f))
        if dependencies:
            uv_install(["-r", _write_requirements(dependencies)],
                       "the dependencies in pyproject.toml", index_urls)
        elif dependencies is None and os.path.exists("setup.py"):
            if not uv_install(["-r", "setup.py"], "setup.py", index_urls, check=False):
                print("The dependencies of setup.py need the whole repository: they are installed with it.")
    elif kind == "uv-lock":
        uv_sync(rest[0], "--no-install-project" not in rest[1:])
    elif kind == "repo":
        uv_install(["."], "the repository (pip install .)", index_urls)
    elif kind in ("pipfile-lock", "pipfile"):
        path = rest[0]
        base_dir = os.path.dirname(os.path.abspath(path))
        try:
            if kind == "pipfile-lock":
                with open(path, encoding="utf-8") as f:
                    lock = json.load(f)
                lines = pipfile_lock_requirements(lock, base_dir)
            else:
                import tomllib
                with open(path, "rb") as f:
                    pipfile = tomllib.load(f)
                lines = pipfile_requirements(pipfile, base_dir)
            sources = (lock.get("_meta", {}).get("sources") if kind == "pipfile-lock"
                       else pipfile.get("source"))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"{FAILED} {path} cannot be read: {e}", file=sys.stderr)
            sys.exit(1)
        ignored = ignored_sources(sources, index_urls)
        if ignored:
            print(f"Note: the package sources in {path} ({', '.join(ignored)}) are not used: packages "
                  "come from the hub's package indexes.")
        if lines:
            uv_install(["-r", _write_requirements(lines)], path, index_urls, no_deps=kind == "pipfile-lock")
    else:
        sys.exit(f"install.py: unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
