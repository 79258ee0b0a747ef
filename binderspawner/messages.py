"""The failure and warning messages users see, in one place so they read alike.

Each message's first sentence says the cause in plain words (which file, which line or package)
and the next says what to do. Templates are ``str.format`` strings; callers fill the named fields.
Grouped by stage (build, launch). Every message starts with one line a non-expert can act on, then
the details (exit codes, log lines, git's reason) on the lines after it (``with_details``).
"""

import re

# build
# -- refusals decided from the repository's files, before anything is built
BOTH_BINDER_DIRS = ("The repository has both a 'binder' and a '.binder' directory; repo2docker reads "
                    "only one. Remove or rename one of them.")
RUNTIME_INVALID = ("{file} says {content!r}, which is not a runtime repo2docker knows. Write "
                   "python-<version> (e.g. python-3.11) or r-<version>-<YYYY-MM-DD>.")
RUNTIME_UNKNOWN = ("{file} asks for '{name}', which repo2docker does not build. Write "
                   "python-<version> or r-<version>-<YYYY-MM-DD>, or remove the file.")
PYTHON_UNAVAILABLE = ("{file} asks for Python {version}, which this hub cannot build (it has "
                      "{available}). Change it to {fix}, or ask the hub admin for a base image with "
                      "Python {version} (c.Repo2DockerBuilder.python_base_images).")
PYTHON_NEWER_USED = ("{file} asks for Python {version}, which this hub does not have (it has "
                     "{available}); building with Python {used}, the nearest newer one. Pin "
                     "python-{used} to silence this warning.")
RUNTIME_OUTSIDE_REQUIRES_PYTHON = ("{file} asks for Python {version}, but pyproject.toml's "
                                   "requires-python is '{spec}'. Make them agree.")
REQUIRES_PYTHON_UNAVAILABLE = ("pyproject.toml's requires-python '{spec}' allows none of the Python "
                               "versions this hub has ({available}). Widen requires-python, or ask "
                               "the hub admin for a base image with a fitting Python.")
RUNTIME_IGNORED_WITH_PIPFILE = ("{file} is not used for the Python version: with a Pipfile, "
                                "repo2docker takes it from [requires] python_version.")
OTHER_LANGUAGE = ("{file} asks for {kind}, which this hub does not build. Ask the hub admin to set "
                  "{setting} to build it with repo2docker's own buildpacks, or remove the file.")
CONDA_NOT_YET = ("{file} asks for {kind}, which this hub does not build yet. Use requirements.txt "
                 "for pip packages, or ask the hub admin to set {setting}.")
R_RUNTIME_WITHOUT_DATE = ("{file} asks for R without a snapshot date. Write r-<version>-<YYYY-MM-DD>, "
                          "e.g. r-4.3-2024-05-01 (repo2docker's rule).")
R_INSTALL_WITHOUT_R = ("{file} is an R script, but nothing asks for R, so repo2docker would not run "
                       "it. Add runtime.txt with r-<version>-<YYYY-MM-DD>, or remove {file}.")
JULIA_REQUIRE = ("{file} is the old Julia REQUIRE format, which repo2docker no longer builds. Use a "
                 "Project.toml instead.")
APT_LINE = ("{file} line {number}: {line!r} is not a list of Debian package names. Write one package "
            "name per line (e.g. 'ffmpeg'), without 'apt-get install', 'sudo' or flags.")
INDEX_LINE = ("{file} line {number}: {line!r} names a package index this hub does not use. Remove "
              "the line; this hub installs from its own package index (allowed: {allowed}).")
FILE_UNREADABLE = "{file} cannot be read: {problem}. Fix the file and launch again."
FILE_LINK_OUTSIDE = ("{file} is a symbolic link to a file outside the repository. Replace the link "
                     "with the file itself.")
FILE_TOO_LARGE = "{file} is larger than {limit} bytes. Environment files must be small."
ENVIRONMENT_INTERNAL = ("The hub could not work out what {repo} needs: this is a fault of the hub, "
                        "not of the repository. Tell the hub admin (the hub's log has the details).")
# -- warnings shown on the progress page; the build goes on
IGNORED_ROOT_FILE = ("{file} is ignored: the repository has a '{binder}' directory, and repo2docker "
                     "then reads the environment files only from there.")
IGNORED_BY_KIND = "{file} is ignored: {reason}."
NEAR_MISS = "{file} is ignored: repo2docker reads only the name '{right}'. Rename it if you meant it."
# -- the clone
CHECKOUT_FAILED = ("Fetching {repo} at {version} failed: {reason}. Check that the commit exists, or "
                   "try again later.")
CHECKOUT_TIMEOUT = "Fetching {repo} took longer than {seconds:g} s. Try again later."
# -- failures while building, recognized in the build log
BUILD_FAILED = "Building {repo} at {version} {reason}."
PIP_NO_PACKAGE = ("The package {package!r} (from {file}) was not found on this hub's package index. "
                  "Check its name and version.")
APT_NO_PACKAGE = "apt.txt asks for the package {package!r}, which Debian does not have. Check its name."
SCRIPT_FAILED = "{file} failed (exit code {code}). Its last lines are below; fix the script."
LOG_TAIL_HEADER = "Last lines of the build log:"
# -- what was decided, shown before the build starts
_KIND_SUMMARY = {"dockerfile": "the repository's Dockerfile", "python": "Python {python} ({why})",
                 "pipfile": "the Pipfile on Python {python} ({why})"}


def environment_summary(environment):
    """One progress line saying what the build will make of the repository, and why."""
    why = f"from {environment.python_file}" if environment.python_file else "the hub's default"
    what = _KIND_SUMMARY.get(environment.kind, "repo2docker's own {kind} buildpack").format(
        python=environment.python, why=why, kind=environment.kind)
    where = f", environment files from {environment.binder_dir}/" if environment.binder_dir else ""
    extra = ", then `pip install .`" if environment.install_repo else ""
    return f"Building with {what}{where}{extra}."


_BUILDKIT_NOISE = re.compile(
    r"^#\d+ (?:\[internal\]|\[\s*\d+/\d+\]|DONE\b|CACHED\b|sha256:|resolve |transferring |"
    r"naming to|exporting|writing image|preparing |extracting )|^#\d+ \S+ (?:load |transferring )")
_BUILDKIT_PREFIX = re.compile(r"^#\d+ \d+(?:\.\d+)? ")
_PIP_MISSING = (re.compile(r"No matching distribution found for ([^\s;]+)"),
                re.compile(r"Because ([A-Za-z0-9._-]+)(?:[<>=!~][^ ]*)? was not found in the "
                           r"package registry"),
                re.compile(r"Because there is no version of ([A-Za-z0-9._-]+(?:[<>=!~]=?[^ ]*)?)"))
_APT_MISSING = re.compile(r"E: Unable to locate package (\S+)")


def clean_log_tail(lines):
    """The log lines without BuildKit's step bookkeeping, and with its '#12 3.456 ' prefixes cut."""
    out = []
    for line in lines:
        if _BUILDKIT_NOISE.match(line):
            continue
        out.append(_BUILDKIT_PREFIX.sub("", line))
    return out


def explain_build_log(lines, requirements=None):
    """A first line naming the cause when the log shows a known one, else None."""
    text = "\n".join(lines)
    for pattern in _PIP_MISSING:
        found = pattern.search(text)
        if found:
            return PIP_NO_PACKAGE.format(package=found.group(1),
                                         file=requirements or "the repository's requirements")
    found = _APT_MISSING.search(text)
    if found:
        return APT_NO_PACKAGE.format(package=found.group(1))
    return None


def with_details(first_line, details=""):
    """The actionable line, then the details (if any) after a blank line."""
    details = (details or "").strip("\n")
    return f"{first_line}\n\n{details}" if details else first_line


# launch


def ref_invalid(ref, problem):
    return (f"The ref {ref!r} is not valid: {problem}. Give a branch name, a tag or a commit sha "
            "as git accepts it.")


def urlpath_invalid(name, value, problem):
    return (f"The {name} {value!r} is not valid: {problem}. Use a path inside the server, such as "
            "'lab/tree/index.ipynb'.")


def ref_not_found(repository, ref):
    return (f"{repository} has no branch, tag or commit {ref!r}. Check the spelling, or give a full "
            "commit sha.")


def repository_not_found(repository):
    # Missing and private repositories get the same answer, so private names do not leak.
    return (f"Repository {repository} was not found, or you do not have access to it. Check the URL, "
            "or log in with an account that can read it.")


def host_unreachable(repository):
    return f"Could not reach the host of {repository}. Check the URL, or try again later."


def commit_not_found(repository, sha):
    return (f"{repository} has no commit {sha!r}. Check the sha (it may be from another repository or "
            "a branch that was force-pushed), or give a branch or tag.")


def _tail(lines):
    return "\n".join(line for line in lines if line.strip())


def server_exited(repository, exit_code, last_lines):
    """The container stopped before the server answered: the repository's start-up is broken."""
    if exit_code is None:
        hint = "its container disappeared; launch it again, and tell the hub admin if it happens again"
    elif exit_code == 127:
        hint = ("the image has no 'jupyterhub-singleuser' command: install the 'jupyterhub' "
                "package in the repository's environment (e.g. in requirements.txt)")
    else:
        hint = ("check the repository's 'start' script, Dockerfile CMD/ENTRYPOINT or environment, "
                "which must end by running the command they are given")
    details = f"Exit code {exit_code}."
    if last_lines:
        details += f" Last lines of the server's output:\n{_tail(last_lines)}"
    else:
        details += " The server wrote nothing."
    return with_details(f"The server of {repository} stopped before it was ready (exit code "
                        f"{exit_code}): {hint}.", details)


def server_not_started(repository, reason):
    """Docker refused to start the container (e.g. its command does not exist in the image)."""
    if "executable file not found" in reason or "no such file or directory" in reason:
        hint = ("the image has no 'jupyterhub-singleuser' command: install the 'jupyterhub' package "
                "in the repository's environment (e.g. in requirements.txt)")
    else:
        hint = "check the repository's Dockerfile or start-up files"
    return with_details(f"The server of {repository} could not be started: {hint}.",
                        f"Docker said: {reason}")


def server_silent(repository, timeout):
    """The container runs but nothing answers: the start-up hangs or listens elsewhere."""
    return with_details(
        f"The server of {repository} did not answer within {timeout:g} s: its 'start' script or "
        "Dockerfile CMD must run the command it is given (jupyterhub-singleuser) without waiting "
        "for anything first.", "The container was running but did not answer on its port.")


def lfs_not_fetched(repository, reason):
    return with_details(
        f"The Git LFS files of {repository} could not be downloaded, so they hold LFS pointer text "
        "instead of their content: check that the LFS server is reachable and the files were pushed "
        "to it (git lfs push --all).", reason)


# -- envkey: environment images and content layers (builders/envkey.py, builders/contentlayer.py)
ENVKEY_WHOLE_REPOSITORY = ("Building the whole repository with repo2docker, not an environment image "
                           "plus its files: {reason}.")
ENVKEY_IMAGE = "Environment image {image}, keyed by: {files} and the hub's build settings."
ENVKEY_BUILDING = "Building the environment image {image} (once for every commit with these files)."
ENVKEY_BUILT = "Built the environment image {image}."
ENVKEY_FOUND = "Found the environment image {image}: no environment build for this commit."
ENVKEY_CONTENT = "Adding the repository's files to the environment image: {image}"
ENVKEY_CONTENT_FAILED = "Adding the repository's files to make {image} failed: {error}"
