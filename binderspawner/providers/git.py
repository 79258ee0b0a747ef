"""Any Git repository reachable over https, http or git://, resolved with ``git ls-remote``.

Git runs without a shell, with every transport but the allowed ones switched off
(``GIT_ALLOW_PROTOCOL``, which also binds submodules), without the system or global git config (no
``insteadOf`` rewrites), and with prompts disabled, so a user-supplied URL can only ever be fetched
the way we intended.

Every git command that contacts a remote gets its environment from ``git_access`` (one URL: checked,
pinned to the checked address, no redirects, a member's token offered to that URL only);
``checkout`` is the build's clone built on it (submodules each checked, cloned without credentials).
"""

import asyncio
import atexit
import fnmatch
import ipaddress
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import quote, unquote, urlsplit

from traitlets import Float, List, TraitError, Unicode, validate

from binderspawner import messages
from binderspawner.errors import BuildFailed, LaunchError
from binderspawner.launch.options import validate_ref
from binderspawner.providers import hosts
from binderspawner.providers.base import FULL_SHA, RepoProvider, RepoSource, ResolvedRepo
from binderspawner.providers.specparse import git_identity, git_link_grammar, git_slug, parse_git_link

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescape_unreserved(match):
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


SHORT_SHA = re.compile(r"^[0-9a-fA-F]{7,63}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_PATH = re.compile(r"^/[A-Za-z0-9._~%+@/-]*$")


_home = []


def _private_home():
    """An empty directory only this process's user can write, made once per process."""
    if not _home or not os.path.isdir(_home[0]):
        _home[:] = [tempfile.mkdtemp(prefix="binderspawner-home-")]
        atexit.register(shutil.rmtree, _home[0], True)  # not one left in /tmp per hub process
    return _home[0]


def git_environment(allowed_schemes, extra=None):
    """Environment for git: only ``allowed_schemes`` as transports, no prompts, no user or system
    config, C locale for parseable errors."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": _private_home(),  # not /tmp: no other user's .netrc or config reaches git
        "LC_ALL": "C",
        "GIT_ALLOW_PROTOCOL": ":".join(allowed_schemes),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                 "GIT_SSL_CAINFO", "SSL_CERT_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


# git asks this credential helper (a shell function, no user input in it) after a 401. It answers
# only for the one repository URL in BINDERSPAWNER_GIT_URL, compared with what git asks for
# (protocol, host[:port] and path; credential.useHttpPath): a submodule, another path on the same
# host or a redirect target gets nothing. The token stays in the environment, never in argv or a URL.
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; s= h= p=; '
    'while IFS= read -r l; do case "$l" in protocol=*) s="${l#protocol=}";; '
    'host=*) h="${l#host=}";; path=*) p="${l#path=}";; esac; done; '
    'test -n "$BINDERSPAWNER_GIT_URL" && test "$s://$h/$p" = "$BINDERSPAWNER_GIT_URL" || exit 0; '
    'printf "username=%s\\npassword=%s\\n" "$BINDERSPAWNER_GIT_USERNAME" "$BINDERSPAWNER_GIT_TOKEN"; }; f')
DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418}


def config_environment(entries):
    """git configuration as GIT_CONFIG_COUNT/KEY/VALUE variables (pure): it binds every git process
    started with this environment, submodule clones included, and no file holds it."""
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for i, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def credential_url(url):
    """``url`` as git's credential helper protocol describes it: 'scheme://host[:port]/path' with
    the path decoded and without trailing '/' (pure)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{unquote(parts.path.lstrip('/')).rstrip('/')}"


def access_config(url, *, address=None, credentials=False):
    """The git configuration for contacting ``url`` (pure): no redirects, no credential helpers but
    ours, the host pinned to the already checked ``address`` (None: not pinned), and with
    ``credentials`` the helper that answers for exactly this URL."""
    parts = urlsplit(url)
    entries = [("http.followRedirects", "false"), ("credential.helper", ""),
               ("credential.useHttpPath", "true")]
    host = parts.hostname
    if address is not None and host and _is_name(host):
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        literal = f"[{address}]" if ":" in address else address
        if parts.scheme == "git":
            # git:// has no resolve option: the checked address replaces the name in the URL.
            entries.append((f"url.git://{literal}:{port}/.insteadOf", f"git://{parts.netloc}/"))
        else:
            entries.append(("http.curloptResolve", f"{host}:{port}:{literal}"))
    if credentials:
        entries.append((f"credential.{url}.helper", CREDENTIAL_HELPER))
    return entries


def _is_name(host):
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        return True


def credentials_problem(url, addresses, plain_http_hosts=()):
    """Why a member's token must not go to ``url`` at ``addresses`` (pure), or None when it may.

    https: yes. git://: never (it has no authentication). http://: only to loopback (the hub's own
    machine) or to a host the admin named in RepoProvider.plain_http_hosts; elsewhere it would
    cross the network in clear."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses):
            return None
        if any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in plain_http_hosts):
            return None
        return (f"your access token is not sent over plain http:// to '{host}'. Use the https:// "
                "address, or ask the hub admin to add the host to c.RepoProvider.plain_http_hosts.")
    return f"{parts.scheme}:// cannot carry your access token. Use the https:// address."


@dataclass(frozen=True)
class GitAccess:
    """How git may contact one repository URL: run ``git`` with ``env`` and give it ``url``.

    ``address`` is the checked address git is pinned to (None for an IP literal URL);
    ``with_credentials`` says whether the member's token is offered (to this URL only)."""

    url: str
    env: dict = field(repr=False)
    address: Optional[str] = None
    with_credentials: bool = False


def credential_environment(url, credentials):
    """The variables the credential helper reads for ``url`` (pure; the token is among them)."""
    return {"BINDERSPAWNER_GIT_URL": credential_url(url),
            "BINDERSPAWNER_GIT_USERNAME": credentials.username,
            "BINDERSPAWNER_GIT_TOKEN": credentials.token}


async def git_access(url, *, credentials=None, allowed_schemes=("https", "http", "git"),
                     allowed_hosts=(), allowed_private_hosts=(), plain_http_hosts=(),
                     setting="GitProvider.allowed_private_hosts"):
    """Check ``url`` and return the GitAccess for contacting it, the one way this package runs git
    against a remote (resolving refs, the build's clone, each submodule).

    The URL must pass parse_git_url; every address its host resolves to must be admitted
    (hosts.checked_addresses); git is pinned to the first of them and follows no redirects.
    ``credentials`` (TokenCredentials or None) are offered only when they cover the URL's host,
    only to this exact URL, and never in clear over the network (credentials_problem: raises
    LaunchError naming the reason). Without credentials no token reaches git at all."""
    url = parse_git_url(url, allowed_schemes=list(allowed_schemes), allowed_hosts=list(allowed_hosts))
    host = urlsplit(url).hostname
    addresses = await hosts.checked_addresses(host, allowed_private_hosts, setting=setting)
    send = credentials is not None and credentials.covers(url)
    if send:
        problem = credentials_problem(url, addresses, plain_http_hosts)
        if problem:
            raise LaunchError(f"Not contacting {url}: {problem}", field="repo", status=403)
    address = addresses[0] if _is_name(host) else None
    extra = config_environment(access_config(url, address=address, credentials=send))
    if send:
        extra.update(credential_environment(url, credentials))
    return GitAccess(url, git_environment(allowed_schemes, extra), address, send)


def parse_git_url(repo, *, allowed_schemes, allowed_hosts):
    """Validate a Git URL (pure). Returns the canonical URL or raises LaunchError naming the problem."""

    def fail(problem, hint="Give an https:// URL such as https://example.org/org/repo.git."):
        raise LaunchError(f"The repository {repo!r} is not allowed: {problem}. {hint}", field="repo")

    if repo.startswith("-"):
        fail("it starts with '-'")
    if "::" in repo.split("/", 1)[0] or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", repo):
        fail("git remote helpers such as 'ext::' are not allowed")
    if "://" not in repo:
        fail("it is not a URL (local paths and scp-style 'host:path' addresses are not allowed)")
    if len(repo) > 2048:
        fail("it is longer than 2048 characters")
    try:
        parts = urlsplit(repo)
    except ValueError:
        fail("the host is not a valid address")
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        fail(f"the scheme '{scheme}' is not allowed; allowed: {', '.join(allowed_schemes)}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        fail("credentials do not belong in the URL", "Remove the 'user:password@' part.")
    host = parts.hostname or ""
    bracketed = parts.netloc.startswith("[")
    try:
        port = parts.port
    except ValueError:
        fail("the port is not a number between 0 and 65535")
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            fail("the host is not a valid address")
    elif not _HOSTNAME.match(host):
        fail("the host name is not valid")
    if parts.query or parts.fragment:
        fail("it has a query or fragment ('?' or '#')")
    # RFC 3986 6.2.2: escapes of unreserved characters are the characters themselves, so that
    # '/org/%72epo' is '/org/repo' (one repository, one identity for bans and quotas)
    path = re.sub(r"%([0-9A-Fa-f]{2})", _unescape_unreserved, parts.path)
    if not path or path == "/" or not _PATH.match(path) or "//" in path or any(
            segment in (".", "..") for segment in path.split("/")):
        fail("the path is missing or contains characters that are not allowed")
    host = host.lower().rstrip(".")
    if allowed_hosts and not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allowed_hosts):
        fail(f"the host '{host}' is not on this hub's list of allowed hosts",
             "Ask the hub admin to add it to GitProvider.allowed_hosts.")
    netloc = f"[{host}]" if bracketed else host
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path}"


def parse_ls_remote(output):
    """'git ls-remote --symref' output -> (refs {name: sha}, default branch name or None)."""
    refs, head = {}, None
    for line in output.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            head = line[len("ref: "):-len("\tHEAD")]
            continue
        sha, _, name = line.partition("\t")
        if name and re.fullmatch(r"[0-9a-f]{40,64}", sha):
            refs[name] = sha
    return refs, head


def pick_commit(refs, head, ref):
    """Choose the commit for ``ref`` among the remote's refs (pure).

    Returns (sha, description) or None when no branch, tag or tip matches.
    Tags are peeled to the commit they point at.
    """
    if ref is None:
        if "HEAD" not in refs:
            return None
        branch = head[len("refs/heads/"):] if head and head.startswith("refs/heads/") else "HEAD"
        return refs["HEAD"], f"default branch {branch}"
    candidates = [
        (f"refs/heads/{ref}", f"branch {ref}"),
        (f"refs/tags/{ref}^{{}}", f"tag {ref}"),
        (f"refs/tags/{ref}", f"tag {ref}"),
        (f"{ref}^{{}}", ref),
        (ref, ref),
    ]
    for name, description in candidates:
        if name in refs:
            return refs[name], description
    if SHORT_SHA.match(ref):
        tips = {sha for sha in refs.values() if sha.startswith(ref.lower())}
        if len(tips) == 1:
            return tips.pop(), f"commit {ref}"
    return None


class GitProvider(RepoProvider):
    """Plain Git URLs; the fallback every other provider's repositories also work through."""

    name = "git"

    allowed_schemes = List(
        Unicode(),
        ["https", "http", "git"],
        help="""URL schemes users may launch from. file://, ssh and git's remote helpers (ext::)
        are never allowed; keep 'http' and 'git' only if you trust the network path to the host.""",
    ).tag(config=True)

    @validate("allowed_schemes")
    def _known_schemes(self, proposal):
        unknown = set(proposal.value) - {"https", "http", "git"}
        if unknown:
            raise TraitError(f"GitProvider.allowed_schemes may only hold https, http and git, not "
                             f"{', '.join(sorted(unknown))}: other transports can reach local files "
                             "or run commands.")
        return proposal.value

    allowed_hosts = List(
        Unicode(),
        [],
        help="""Host names users may launch from, as shell-style patterns ('github.com',
        '*.example.org', '127.0.0.1'). Empty allows every host.""",
    ).tag(config=True)

    git_timeout = Float(
        30,
        help="Seconds a 'git ls-remote' (or the fetch that resolves a short sha) may take.",
    ).tag(config=True)

    def parse(self, repo):
        """A Git URL, or BinderHub's spec 'git/<url-escaped URL>[/<ref>]'."""
        ref = None
        if repo.startswith("git/"):
            escaped, _, ref = repo[len("git/"):].partition("/")
            if "%" not in escaped and ":" in escaped:
                raise LaunchError(f"The spec {repo!r} is not valid: the URL after 'git/' must be "
                                  "URL-escaped ('/' as %2F), as in git/https%3A%2F%2Fexample.org%2Frepo.git/main.",
                                  field="repo")
            try:
                ref = validate_ref(unquote(ref) or None)  # escaped in a spec, as in BinderHub
                url = parse_git_url(unquote(escaped), allowed_schemes=self.allowed_schemes,
                                    allowed_hosts=self.allowed_hosts)
            except LaunchError as e:
                raise LaunchError(f"In the spec {repo!r}: {e.message}", field="repo") from None
        else:
            url = parse_git_url(repo, allowed_schemes=self.allowed_schemes, allowed_hosts=self.allowed_hosts)
        slug = git_slug(url)
        source = RepoSource(provider=self.name, spec=f"git/{quote(url, safe='')}", fetch_url=url,
                            slug=slug, display_name=url, repo_url=url, identity=git_identity(url))
        return source.with_ref(ref)

    # launch links (pure; specparse.py holds the shared parts) ------------------------------------------

    prefix = "git"

    def link_grammar(self):
        return git_link_grammar(self.allowed_schemes)

    def parse_link(self, spec):
        return parse_git_link(self, spec)

    def pinned_link(self, spec, version):
        return f"{spec.split('/', 1)[0]}/{version}"

    def private_host_allow_list(self):
        # An exact host in allowed_hosts is an explicit admin decision; a wildcard is not.
        exact = [h for h in self.allowed_hosts if not any(c in h for c in "*?[")]
        return [*self.allowed_private_hosts, *exact]

    def git_rules(self):
        return {**super().git_rules(), "allowed_schemes": list(self.allowed_schemes),
                "allowed_hosts": list(self.allowed_hosts)}

    async def resolve(self, source, ref, *, credentials=None):
        if self.trusts_commit(ref):
            await self.check_host(urlsplit(source.fetch_url).hostname)
            return ResolvedRepo(source, ref, ref.lower(), f"commit {ref[:12]}")
        sha, description = await self.cached(
            (source.fetch_url, ref, credentials and credentials.cache_key),
            lambda: self._lookup(source, ref, credentials),
        )
        return ResolvedRepo(source, ref, sha, description)

    async def _lookup(self, source, ref, credentials):
        access = await self.git_access(source.fetch_url, credentials)
        output = await self._git(source, "ls-remote", "--symref", "--", access.url, access=access)
        refs, head = parse_ls_remote(output)
        if ref and FULL_SHA.match(ref.lower()):
            # Any commit can be asked for by its sha: the lookup is the access check, and a sha
            # that is no tip is fetched alone (no trees, no blobs), so a missing one builds nothing.
            sha = ref.lower()
            if sha not in refs.values() and not await self._commit_exists(source, sha, access):
                raise LaunchError(messages.commit_not_found(source.display_name, ref), field="ref")
            return sha, f"commit {ref[:12]}"
        picked = pick_commit(refs, head, ref)
        if picked is None and ref and SHORT_SHA.match(ref):
            picked = await self._resolve_short_sha(source, ref.lower(), access)
        if picked is None and ref is None:
            raise LaunchError(f"{source.display_name} has no default branch. Give a branch, tag or "
                              "commit as the ref.", field="ref")
        if picked is None:
            raise LaunchError(messages.ref_not_found(source.display_name, ref), field="ref")
        return picked

    async def _commit_exists(self, source, sha, access):
        """Whether the repository has commit ``sha``: fetch that one commit without trees or
        blobs; a server that refuses fetches by sha gets the commit-graph fetch instead."""
        workdir = tempfile.mkdtemp(prefix="binderspawner-resolve-")
        try:
            await self._git(source, "init", "--quiet", "--bare", workdir)
            try:
                await self._git(source, "-C", workdir, "fetch", "--quiet", "--depth=1", "--filter=tree:0",
                                "--no-tags", "--", access.url, sha, access=access)
                return True
            except LaunchError:
                pass
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return await self._resolve_short_sha(source, sha, access) is not None

    async def _resolve_short_sha(self, source, prefix, access):
        """A short sha that is no branch tip: fetch the commit graph only (no trees, no blobs)."""
        workdir = tempfile.mkdtemp(prefix="binderspawner-resolve-")
        try:
            await self._git(source, "init", "--quiet", "--bare", workdir)
            await self._git(source, "-C", workdir, "fetch", "--quiet", "--filter=tree:0", "--no-tags",
                            "--", access.url, "+refs/heads/*:refs/heads/*",
                            "+refs/tags/*:refs/tags/*", access=access)
            try:
                sha = await self._git(source, "-C", workdir, "rev-parse", "--verify", "--quiet",
                                      f"{prefix}^{{commit}}")
            except LaunchError:
                return None
            return sha.strip(), f"commit {prefix}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _git(self, source, *args, access=None):
        """Run git; ``access`` (from git_access) for commands that contact the remote."""
        env = access.env if access is not None else git_environment(self.allowed_schemes)
        proc = await asyncio.create_subprocess_exec(
            "git", *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.git_timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise LaunchError(
                f"Looking up {source.display_name} took longer than {self.git_timeout:g} s. "
                "Try again later.", field="repo", status=504)
        if proc.returncode != 0:
            raise self._explain(source, err.decode("utf-8", "replace"))
        return out.decode("utf-8", "replace")

    def _explain(self, source, stderr):
        self.log.info("git failed for %s: %s", source.display_name, stderr.strip()[-500:])
        unreachable = ("Could not resolve host", "Connection refused", "Failed to connect",
                       "timed out", "unable to connect", "Network is unreachable")
        if re.search(r"returned error: 30[1278]|redirect", stderr, re.IGNORECASE):
            return LaunchError(f"The server of {source.display_name} answered with a redirect; this hub "
                               "follows none (the checked address must be the one used). Give the "
                               "address it redirects to.", field="repo", status=502)
        if any(text.lower() in stderr.lower() for text in unreachable):
            return LaunchError(messages.host_unreachable(source.display_name), field="repo", status=502)
        # Missing and private repositories get the same answer, so private names do not leak.
        return LaunchError(messages.repository_not_found(source.display_name), field="repo", status=404)


class CheckoutFailed(BuildFailed):
    """A build's clone failed; the message names the URL or submodule and says why."""


class CheckoutTooLarge(CheckoutFailed):
    """The commit's files take more than the hub allows (``size``: bytes), found before any is written."""

    def __init__(self, size):
        super().__init__(f"its files take {size} bytes")
        self.size = size


async def tree_bytes(repo_dir, commit, env, timeout):
    """Bytes the files of ``commit`` take when checked out (its blobs' sizes, read from the clone's
    object database before checkout; a few MB of compressed objects can hold gigabytes)."""
    out = await _run_git(["-C", repo_dir, "ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--"], env,
                         timeout, f"Listing the files of {commit[:12]}")
    total = 0
    for record in out.split("\0"):
        meta = record.partition("\t")[0].split()
        if len(meta) == 4 and meta[1] == "blob" and meta[3].isdigit():
            total += int(meta[3])
    return total


async def _run_git(argv, env, timeout, what):
    proc = await asyncio.create_subprocess_exec(
        "git", *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise CheckoutFailed(f"{what} took longer than {timeout:g} s.") from None
    text = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise CheckoutFailed(f"{what} failed: {text.strip()[-500:]}")
    return text


async def checkout(url, commit, dest, *, credentials=None, rules=None, timeout=600, log=print, max_bytes=0):
    """Clone ``url`` at ``commit`` into ``dest``, then its submodules, each contacted through
    git_access (checked, pinned, no redirects). ``max_bytes`` (0: none): CheckoutTooLarge when the
    commit's files, its submodules' included, take more, each measured before it is written;
    returns the bytes counted (0 without a limit).

    ``credentials`` are offered to ``url`` alone: submodules are always cloned without them, so
    an image built with one member's rights holds nothing from a private submodule another
    member could not read (a private submodule fails the build with a message naming it)."""
    rules = dict(rules or {})
    access = await git_access(url, credentials=credentials, **rules)
    local = git_environment(rules.get("allowed_schemes", ("https", "http", "git")))
    log(f"Cloning {access.url}")
    await _run_git(["clone", "--quiet", "--no-checkout", "--no-recurse-submodules", "--",
                    access.url, dest], access.env, timeout, f"Cloning {access.url}")
    used = _Budget(max_bytes)
    if max_bytes:
        used.add(await tree_bytes(dest, commit, local, timeout))
    await _run_git(["-C", dest, "checkout", "--quiet", "--detach", commit, "--"], local, timeout,
                   f"Checking out {commit[:12]}")
    await _submodules(dest, url, rules, local, timeout, log, depth=0, used=used)
    return used.bytes


class _Budget:
    """Bytes of files checked out so far for one checkout (its submodules included)."""

    def __init__(self, limit):
        self.limit, self.bytes = limit, 0

    def add(self, size):
        self.bytes += size
        if self.limit and self.bytes > self.limit:
            raise CheckoutTooLarge(self.bytes)


async def _submodule_bytes(repo_dir, path, access, local, timeout):
    """Bytes the submodule at ``path`` will check out: its recorded commit's files, read from a bare
    clone made beside the checkout (compressed objects only) before the submodule is checked out."""
    entry = (await _run_git(["-C", repo_dir, "ls-tree", "-z", "HEAD", "--", path], local, timeout,
                            f"Reading submodule {path!r}")).split("\0")[0]
    meta = entry.partition("\t")[0].split()
    if len(meta) != 3 or meta[1] != "commit" or not FULL_SHA.match(meta[2]):
        return 0  # not a recorded submodule: 'submodule update' checks nothing out for it
    probe = tempfile.mkdtemp(prefix="submodule-size-", dir=os.path.dirname(os.path.abspath(repo_dir)))
    try:
        await _run_git(["clone", "--quiet", "--bare", "--no-recurse-submodules", "--", access.url, probe],
                       access.env, timeout, f"Cloning submodule {path!r} from {access.url}")
        return await tree_bytes(probe, meta[2], local, timeout)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


async def _submodules(repo_dir, parent_url, rules, local, timeout, log, depth, used=None):
    if not os.path.isfile(os.path.join(repo_dir, ".gitmodules")):
        return
    used = used or _Budget(0)
    if depth >= 8:
        raise CheckoutFailed(f"Submodules of {parent_url} are nested more than 8 levels deep.")
    await _run_git(["-C", repo_dir, "submodule", "init", "--quiet"], local, timeout,
                   f"Reading the submodules of {parent_url}")
    listing = await _run_git(["-C", repo_dir, "config", "--null", "--get-regexp", r"^submodule\..*\.url$"],
                             local, timeout, f"Reading the submodules of {parent_url}")
    for record in filter(None, listing.split("\0")):
        key, _, sub_url = record.partition("\n")
        name = key[len("submodule."):-len(".url")]
        path = (await _run_git(["-C", repo_dir, "config", "--file", ".gitmodules", "--get",
                                f"submodule.{name}.path"], local, timeout,
                               f"Reading submodule {name!r}")).strip()
        try:
            access = await git_access(sub_url, credentials=None, **rules)
        except LaunchError as e:
            raise CheckoutFailed(f"Submodule {path!r} of {parent_url} is not fetched: {e.message}") from None
        log(f"Cloning submodule {path} from {access.url} (without your credentials)")
        if used.limit:
            try:
                used.add(await _submodule_bytes(repo_dir, path, access, local, timeout))
            except CheckoutFailed as e:
                if isinstance(e, CheckoutTooLarge):
                    raise
                raise CheckoutFailed(f"{e} Submodules are cloned without members' credentials, so each "
                                     "must be readable without them.") from None
        await _run_git(["-C", repo_dir, "config", f"submodule.{name}.url", access.url], local, timeout,
                       f"Submodule {path!r}")
        try:
            await _run_git(["-C", repo_dir, "submodule", "update", "--quiet", "--", path], access.env,
                           timeout, f"Cloning submodule {path!r} from {access.url}")
        except CheckoutFailed as e:
            raise CheckoutFailed(f"{e} Submodules are cloned without members' credentials, so each "
                                 "must be readable without them.") from None
        await _submodules(os.path.join(repo_dir, path), access.url, rules, local, timeout, log, depth + 1, used)
