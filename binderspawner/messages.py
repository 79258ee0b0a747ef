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
                     "{pin} to silence this warning.")
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
# conda (environment.yml, pixi.lock, conda-lock.yml; builders/condaspec.py, builders/conda.py)
CONDA_KEY_IGNORED = ("{file}: '{key}' is ignored: the environment is installed at this hub's own "
                     "prefix, without conda's activation variables.")
CONDA_BAD_DEPENDENCY = ("{file}: the dependency {entry!r} cannot be read: {problem}. Write a conda "
                        "package spec such as 'numpy>=1.26' (pip packages go in the 'pip:' list).")
CONDA_CHANNEL_REFUSED = ("{file} asks for the channel '{channel}', which this hub does not use (it "
                         "solves from {admin}). Remove the channel, or ask the hub admin to offer it "
                         "(c.Repo2DockerBuilder.conda_channels) or to set "
                         "c.Repo2DockerBuilder.conda_repository_channels = \"allow\".")
CONDA_CHANNEL_IGNORED = ("{file} names the channel '{channel}', which is not used: this hub solves "
                         "from {admin} (c.Repo2DockerBuilder.conda_channels).")
CONDA_LOCK_FORMAT = ("{file} is not a conda-lock file this hub reads (version 1, with a 'package' "
                     "list). Re-create it with a current conda-lock.")
CONDA_LOCK_PLATFORM = ("{file} has no packages for {platform} (it locks {platforms}). Lock it for "
                       "{platform} too (conda-lock -p {platform}, or pixi's platforms).")
CONDA_LOCK_ENTRY = ("{file}: the entry {entry!r} has no usable URL, name or hash. Re-create the "
                    "lock file.")
CONDA_LOCK_MISSING = ("{lock} does not agree with {manifest}: {manifest} asks for '{package}', which "
                      "the lock does not contain. Re-lock the environment.")
CONDA_LOCK_DISAGREES = ("{lock} does not agree with {manifest}: {manifest} asks for '{spec}', but the "
                        "lock has {locked}. Re-lock the environment.")
CONDA_LOCK_PIP_MISSING = ("{lock} does not agree with {manifest}: its pip: list names '{package}', "
                          "which the lock does not pin. Re-lock the environment.")
CONDA_LOCK_UNCHECKED = ("{file} has no manifest beside it (pixi.toml or environment.yml), so it cannot "
                        "be checked against one; it is installed as locked.")
CONDA_LOCK_PYPI = ("{file} pins PyPI packages ({packages}), which this hub does not install from a "
                   "pixi lock yet. Move them to requirements in a 'pip:' list of an unlocked "
                   "environment.yml, or lock only conda packages.")
CONDA_LOCK_UNREADABLE = "{file} cannot be read by py-rattler: {problem}. Re-create it with a current pixi."
CONDA_LOCK_CHANNEL = ("{file} locks '{package}' from {url}, which is not one of this hub's channels "
                      "({admin}). Re-lock against them, or ask the hub admin to offer that channel "
                      "(c.Repo2DockerBuilder.conda_channels).")
CONDA_UNSATISFIABLE = ("{file} cannot be installed from this hub's channels ({channels}): {reason}. "
                       "Check the package names and versions.")
CONDA_CHANNEL_UNREACHABLE = ("The conda channel {channel} (from {setting}) could not be reached: "
                             "{reason}. If the channel is the hub's, tell the hub admin.")
CONDA_DOWNLOAD_FAILED = ("Downloading the conda package {package} from {url} failed: {reason}. Try "
                         "again later, or tell the hub admin.")
CONDA_DIGEST_MISMATCH = ("The conda package {package} from {url} does not have the checksum "
                         "{source} gives ({kind}). Nothing was installed; tell the hub admin.")
CONDA_NOARCH_PYTHON = ("{file}: '{package}' is a Python package, which needs Python from the conda "
                       "channel, but this hub gives conda environments the base image's Python "
                       "(c.Repo2DockerBuilder.conda_python = \"base-image\"). Put it in the 'pip:' "
                       "list, or ask the hub admin to set conda_python = \"channel\".")
CONDA_PYTHON_FROM_CHANNEL = ("{file} asks for Python {version}, which no base image has: it comes "
                             "from the conda channel (c.Repo2DockerBuilder.conda_python = "
                             "\"channel\").")
# -- warnings shown on the progress page; the build goes on
IGNORED_ROOT_FILE = ("{file} is ignored: the repository has a '{binder}' directory, and repo2docker "
                     "then reads the environment files only from there.")
IGNORED_BY_KIND = "{file} is ignored: {reason}."
NEAR_MISS = "{file} is ignored: repo2docker reads only the name '{right}'. Rename it if you meant it."
# locks
PIPFILE_LOCK_STALE = ("{lock} was not made from this {pipfile} (its _meta.hash does not match): "
                      "the build installs {lock} as it is, as repo2docker does, so changes to "
                      "{pipfile} since it was locked are not installed. Run `pipenv lock` and commit "
                      "{lock} (`pipenv install --deploy` refuses such a lock).")
PIPFILE_LOCK_UNCHECKED = ("{lock} has no hash of {pipfile} (_meta.hash) that the hub can check: it is "
                          "installed as it is. Run `pipenv lock` to record one.")
LOCK_NOT_READ = ("{file} is ignored: this hub does not install from it; this build installs {used} "
                 "instead. Export it to requirements.txt, or use uv.lock or Pipfile.lock.")
UV_LOCK_NOT_READ = "{file} is ignored: {reason}. This build installs {used} instead."
UV_LOCK_OWN_INDEXES = ("{file} is installed from the package URLs it records, not from this hub's "
                       "package indexes (c.Repo2DockerBuilder.package_indexes); lock it against one "
                       "of them if the build cannot reach those URLs.")
# shown first when the build fails (venv.install_failure maps install.py's coded line to it)
UV_LOCK_STALE = ("{file} does not match pyproject.toml (uv sync --locked: {cause}). Run `uv lock` and "
                 "commit {file}: the hub installs a lock only as it is, never re-solving it")
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
                 "pipfile": "the Pipfile on Python {python} ({why})",
                 "uv": "uv.lock, exactly, on Python {python} ({why})",
                 "conda": "the conda environment {file} ({python_from})"}


def environment_summary(environment):
    """One progress line saying what the build will make of the repository, and why."""
    why = f"from {environment.python_file}" if environment.python_file else "the hub's default"
    conda = getattr(environment, "conda_python", None)
    python_from = (f"Python {conda!r} from the conda channel" if conda
                   else f"the base image's Python {environment.python}, {why}")
    what = _KIND_SUMMARY.get(environment.kind, "repo2docker's own {kind} buildpack").format(
        python=environment.python, why=why, kind=environment.kind, python_from=python_from,
        file=getattr(environment, "conda_lock", None) or getattr(environment, "conda_file", None))
    where = f", environment files from {environment.binder_dir}/" if environment.binder_dir else ""
    extra = ", then `pip install .`" if environment.install_repo else ""
    nothing = (f" {NOTHING_TO_INSTALL}" if environment.kind == "python" and not environment.install_repo
               and not environment.requirements and not getattr(environment, "conda_python", None) else "")
    return f"Building with {what}{where}{extra}.{nothing}"


_BUILDKIT_NOISE = re.compile(
    r"^#\d+ (?:\[internal\]|\[\s*\d+/\d+\]|DONE\b|CACHED\b|sha256:|resolve |transferring |"
    r"naming to|exporting|writing image|preparing |extracting )|^#\d+ \S+ (?:load |transferring )")
_BUILDKIT_PREFIX = re.compile(r"^#\d+ \d+(?:\.\d+)? ")
_PIP_MISSING = (re.compile(r"No matching distribution found for ([^\s;]+)"),
                re.compile(r"Because ([A-Za-z0-9._-]+)(?:[<>=!~][^ ]*)? was not found in the "
                           r"package registry"),
                re.compile(r"Because there is no version of ([A-Za-z0-9._-]+(?:[<>=!~]=?[^ ]*)?)"))
_APT_MISSING = re.compile(r"E: Unable to locate package (\S+)")
# apt-get update only warns when a package list cannot be fetched; the install then cannot find anything
_APT_UNREACHABLE = re.compile(r"W: Failed to fetch (\S+)\s+(.*)")
# repo2docker runs postBuild as `./postBuild` (or ./binder/postBuild): BuildKit's line when it fails,
# in dockerd 20.10's words and in newer BuildKit's
_POSTBUILD_FAILED = re.compile(r"(?:executor failed running \[/bin/sh -c |process \"/bin/sh -c )"
                               r"\./((?:\.?binder/)?postBuild)(?:\]|\" did not complete successfully): "
                               r"exit code: (\d+)")


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
    unreachable = _APT_UNREACHABLE.search(text)
    if found and unreachable:  # not a wrong name: Debian's package lists could not be fetched
        return APT_MIRROR_UNREACHABLE.format(package=found.group(1), url=unreachable.group(1),
                                             reason=unreachable.group(2).strip())
    if found:
        return APT_NO_PACKAGE.format(package=found.group(1))
    found = _POSTBUILD_FAILED.search(text)
    if found:
        return SCRIPT_FAILED.format(file=found.group(1), code=found.group(2))
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


# session: the share page (web/sharepage.py)
SHARE_NO_SERVER = "No server {server} whose sharing you may see. Only its owner and hub admins can."
SHARE_NOT_ALLOWED = ("This hub does not let you share servers: you need JupyterHub's 'shares' permission on "
                     "it. Ask the hub admin (config/private_lab_config.py gives members 'shares!user').")
SHARE_UNKNOWN_ACTION = "The form asked for '{action}', which this page does not do. Reload the page and try again."
SHARE_BAD_NAME = "Give a {field} name (no '/' or control characters, at most 255 characters)."
SHARE_BAD_LIFETIME = "Choose how long the link works: {choices}."
SHARE_BAD_CODE = "That share link is gone (used, expired or revoked). Reload the page."
SHARE_NO_USER = ("No user '{user}' on this hub that you may share with (JupyterHub's 'read:users:name' permission "
                 "on them). Check the name: they must have logged in once.")
SHARE_WITH_SELF = "That is the server's owner: they have access already."
SHARE_NOT_YOUR_GROUP = ("'{group}' is not a group {owner} is in. Choose one of the groups listed, or share with "
                        "members by name.")
# prebuild (webhooks and the CI API; read by forge admins in their webhook delivery logs)
PREBUILD_NO_SIGNATURE = "the delivery has no {header} header"
PREBUILD_BAD_SIGNATURE = ("the {header} header does not match this hub's secret for {forge}: check the "
                          "webhook's secret against c.Prebuild.{forge}_secret")
PREBUILD_FORGE_OFF = "{forge} webhooks are not enabled on this hub (c.Prebuild.{forge}_secret is empty)"
PREBUILD_UNKNOWN_FORGE = "there is no webhook for {forge!r}: use github, gitlab or gitea"
PREBUILD_TOO_LARGE = "the body ({size} bytes) is larger than c.Prebuild.max_body_bytes ({limit})"
PREBUILD_NOT_PUSH = "Only push events are prebuilt; this is {event!r}."
PREBUILD_UNREADABLE = "not a push event this hub can read: {reason}"
PREBUILD_PONG = "The webhook reaches this hub."
PREBUILD_DELETED = "{ref} was deleted; nothing to build."
PREBUILD_DUPLICATE_DELIVERY = "Delivery {delivery} was received already; nothing more to do."
PREBUILD_DUPLICATE_COMMIT = "{commit} of {repository} is prebuilt or queued already."
PREBUILD_NOT_ALLOWED = "{spec} is not prebuilt on this hub: {named} {recently}."
PREBUILD_PRIVATE_SKIPPED = ("{repository} is private and c.Prebuild.access_tokens has no token for its "
                            "host: not prebuilt (members' tokens are never used for prebuilds).")
PREBUILD_QUOTA_TOTAL = ("This hub already prebuilt {count} times in the last hour, its limit "
                        "(c.Prebuild.total_per_hour = {limit}); nothing is built for this push.")
PREBUILD_QUOTA_REPO = ("{repository} was already prebuilt {count} times in the last hour, its limit "
                       "(c.Prebuild.per_repo_per_hour = {limit}); nothing is built for this push.")
PREBUILD_QUEUED = "Prebuild of {spec} queued."
PREBUILD_DROPPED = "The prebuild was dropped: a newer commit was pushed to its branch."
PREBUILD_NO_TOKEN = "Send a hub API token with the {scope} scope: 'Authorization: token <token>'."
PREBUILD_NO_SCOPE = ("This token lacks the {scope} scope that prebuilds need (give it with a role; see "
                     "binderspawner.prebuild.configure).")
# --- persistent homes (binderspawner/homes) ------------------------------------------------------
HOME_OPTION_INVALID = ("The 'home' option {value!r} is not valid: give 'fresh' to start this repository "
                       "with a new home (your current one is set aside), or leave it out.")
HOME_BUDGET_FULL = ("Your work on this repository cannot get a persistent home now: this hub's homes "
                    "use {used:.1f} GiB, its budget is {budget} (c.PersistentHome.total_budget). "
                    "Ask the hub admin to raise the budget or remove unused homes.")
HOME_BUDGET_UNMEASURED = ("Your work on this repository cannot get a persistent home now: the hub has a "
                          "budget for homes (c.PersistentHome.total_budget) but the cleanup service has "
                          "not measured them yet. Try again in a few minutes; if this stays, the hub admin "
                          "must run the cleanup service, calling binderspawner.services.cleanup.configure(c) "
                          "after the c.PersistentHome settings.")
HOME_SIZE_UNSUPPORTED = ("This hub is set to limit each persistent home to {size} "
                         "(c.PersistentHome.size_limit) but its volume driver {driver!r} cannot: {reason}. "
                         "No home is made without its limit; the hub admin must fix the storage or "
                         "unset c.PersistentHome.size_limit.")
HOME_IN_USE = ("Your home for this repository is in use by your other server {other!r}: one server at "
               "a time works on it. Stop that server first, or launch with the 'home' option 'fresh'.")
HOME_NEW = "Your work on this repository is kept in a persistent home ({name}); it survives this session."
HOME_KEPT = "Your persistent home for this repository ({name}) is mounted: your files are as you left them."
HOME_FRESH = ("Started a fresh home for this repository ({name}). Your previous home {old} is set aside, "
              "untouched; it is removed after {days:g} days unused (ask the hub admin to get it back).")
HOME_MERGED = ("Merged commit {commit} into your home: {taken} file(s) updated or added, {deleted} removed; "
               "files you changed were kept.")
HOME_CONFLICTS = ("{count} file(s) changed both in your home and in the commit; yours were kept: {files}. "
                  "See {note} in your home.")
HOME_SKIPPED = "Not merged (left as they were): {files}."
HOME_MERGE_FAILED = ("Your home could not be merged with commit {commit}: {reason}. Your files are kept "
                     "as they were; the commit's new files are not in your home (launch with the 'home' "
                     "option 'fresh' for a clean copy).")
HOME_EVER_SHARED = ("Warning: this home was shared with others (a shared session of it, on {when}). "
                    "Anyone you shared with could have changed files that run when your server starts "
                    "(~/.bashrc, ~/.profile, ~/.ipython/profile_default/startup, ~/.jupyter, ~/.local, "
                    "~/.config). Pushing back is turned off for servers on this home; launch with the "
                    "'home' option 'fresh' for a home only you have written.")
HOME_MERGING_K8S = ("Merging commit {commit} into your home {name} as the server starts; files you changed "
                    "are kept, and conflicts are listed in BINDER-MERGE-<commit>.md in your home.")
# -- envkey: environment images and content layers (builders/envkey.py, builders/contentlayer.py)
ENVKEY_WHOLE_REPOSITORY = ("Building the whole repository with repo2docker, not an environment image "
                           "plus its files: {reason}.")
ENVKEY_IMAGE = "Environment image {image}, keyed by: {files} and the hub's build settings."
ENVKEY_BUILDING = "Building the environment image {image} (once for every commit with these files)."
ENVKEY_BUILT = "Built the environment image {image}."
ENVKEY_FOUND = "Found the environment image {image}: no environment build for this commit."
ENVKEY_CONTENT = "Adding the repository's files to the environment image: {image}"
ENVKEY_CONTENT_FAILED = "Adding the repository's files to make {image} failed: {error}"

# --- attack review: persistent homes -------------------------------------------------------------------
HOME_MERGE_UNREADABLE = ("the merge helper (the launch image's python3) gave a result that is not a merge "
                         "summary; was python3 replaced in the image?")
# --- attack review: conda downloads ----------------------------------------------------------------------
UV_CONFIG_IGNORED = ("{file} is not read: {used} is installed with the hub's uv settings and package indexes "
                     "(c.Repo2DockerBuilder.package_indexes), whatever the repository's uv configuration says.")
CONDA_URL_DEPENDENCY = ("{file}: the dependency {entry!r} is a package URL or path. Conda packages come only "
                        "from this hub's channels (c.Repo2DockerBuilder.conda_channels), never from another "
                        "address or a file: name the package instead, e.g. 'numpy>=1.26'.")
CHECKOUT_TOO_LARGE = ("{repo} at {version} is not fetched: its files take {size:.2f} GiB, more than this hub "
                      "checks out for a build ({limit:.2f} GiB, c.Repo2DockerBuilder.checkout_max_size). Keep large "
                      "data outside the repository, or ask the hub admin to raise the limit.")
CONDA_DOWNLOAD_TOO_LARGE = ("The conda packages of {source} are more than {limit} to download "
                            "(c.Repo2DockerBuilder.conda_max_download); stopped while fetching {package} from "
                            "{url}. Ask for fewer or smaller packages, or ask the hub admin to raise the limit.")
INDEX_CREDENTIALS = ("Repo2DockerBuilder.package_indexes: {url} carries a user name or password in the URL. Index "
                     "URLs are written into every image's build steps (its history and the build log its launchers "
                     "read), so credentials there would reach every user: name the index without them, and let "
                     "it admit the hub's build network by address instead.")
# --- newcomer review: settings an admin sets in an order that silently undoes them ----------------
HOMES_NOT_CLEANED = ("c.PersistentHome is enabled, but the cleanup service {problem}, so homes never expire "
                     "(c.PersistentHome.expire_days = {days:g}) and c.PersistentHome.total_budget is never "
                     "measured. Call binderspawner.services.cleanup.configure(c) after the c.PersistentHome "
                     "settings in jupyterhub_config.py, as config/private_lab_config.py does.")
HOME_OPTION_UNUSED = ("The 'home' option 'fresh' is ignored: this hub keeps no persistent homes "
                      "(c.PersistentHome.enabled is off), so every server starts from the repository as it is.")
CULLER_SETTINGS_NOT_APPLIED = ("c.IdleCuller asks for timeout {timeout} s and max_age {max_age} s, but the idle "
                               "culler runs with {running_timeout} s and {running_max_age} s (those settings were "
                               "made after binderspawner.services.culling.configure(c)); users are shown what "
                               "it runs with. Call culling.configure(c) after the c.IdleCuller settings.")
# --- newuser review: repository layouts a lab member brings ---------------------------------------
PYPROJECT_NOT_INSTALLED = ("pyproject.toml is not installed (no `pip install .`): repo2docker installs a "
                           "pyproject.toml only when it has both a [project] and a [build-system] table, and "
                           "this one has {missing}{dependencies}. Add the missing table to install the "
                           "repository, or list its packages in requirements.txt.")
RUNTIME_DATE_IGNORED = ("{file}'s date {date} is not used: repo2docker reads a date only for R (its "
                        "package snapshot), not for Python, whose packages install at the versions the "
                        "requirements give. Pin versions in the requirements instead, and write {fixed} "
                        "in {file} to silence this warning.")
SCRIPT_CRLF = ("{file} has Windows line endings (CRLF), so it would fail when it runs (the shell sees "
               "each line, and the #! line's program, with a trailing \\r). Convert it to Unix line "
               "endings (LF), e.g. `dos2unix {file}` or your editor's line-ending setting, and commit it.")
NOTHING_TO_INSTALL = ("No requirements.txt, Pipfile, environment.yml, setup.py or installable pyproject.toml: "
                      "the only Python packages this build installs are the single-user server's "
                      "(JupyterLab). Add requirements.txt to install others.")
APT_MIRROR_UNREACHABLE = ("apt.txt could not be installed: the build could not reach Debian's package "
                          "mirror ({url}: {reason}), so no package, '{package}' included, could be found. "
                          "This is the hub's network, not the repository: tell the hub admin, or remove "
                          "apt.txt.")
BINDER_DIR_NEAR_MISS = ("{file}/ is ignored: repo2docker reads environment files only from a directory "
                        "named '{right}' (in lower case), so none of the files in {file}/ are used. Rename "
                        "it if you meant it.")
PYTHON_VERSION_FILE_NOT_READ = ("{file} is not read: repo2docker takes the Python version from runtime.txt "
                                "(or the Pipfile, or pyproject.toml's requires-python), so this build uses "
                                "Python {python}, the hub's default. Write python-<version> in runtime.txt "
                                "to choose it.")
