"""Any Git repository reachable over https, http or git://, resolved with ``git ls-remote``.

Git runs without a shell, with every transport but the allowed ones switched off
(``GIT_ALLOW_PROTOCOL``, which also binds submodules), without the system or global git config (no ``insteadOf`` rewrites),
and with prompts disabled, so a user-supplied URL can only ever be fetched the way we intended.
"""

import asyncio
import fnmatch
import ipaddress
import os
import re
import shutil
import tempfile
from urllib.parse import quote, unquote, urlsplit

from traitlets import Float, List, TraitError, Unicode, validate

from binderspawner import messages
from binderspawner.errors import LaunchError
from binderspawner.launch.options import validate_ref
from binderspawner.providers.base import FULL_SHA, RepoProvider, RepoSource, ResolvedRepo

SHORT_SHA = re.compile(r"^[0-9a-fA-F]{7,63}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_PATH = re.compile(r"^/[A-Za-z0-9._~%+@/-]*$")


def git_environment(allowed_schemes, extra=None):
    """Environment for git: only ``allowed_schemes`` as transports, no prompts, no user or system
    config, C locale for parseable errors."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
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
    path = parts.path
    if not path or path == "/" or not _PATH.match(path) or "/../" in path + "/" or "//" in path:
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
        parts = urlsplit(url)
        slug = f"{parts.netloc}{parts.path}".removesuffix(".git")
        source = RepoSource(provider=self.name, spec=f"git/{quote(url, safe='')}", fetch_url=url,
                            slug=slug, display_name=url, repo_url=url)
        return source.with_ref(ref)

    def private_host_allow_list(self):
        # An exact host in allowed_hosts is an explicit admin decision; a wildcard is not.
        exact = [h for h in self.allowed_hosts if not any(c in h for c in "*?[")]
        return [*self.allowed_private_hosts, *exact]

    async def resolve(self, source, ref, *, credentials=None):
        await self.check_host(urlsplit(source.fetch_url).hostname)
        if self.trusts_commit(ref):
            return ResolvedRepo(source, ref, ref.lower(), f"commit {ref[:12]}")
        sha, description = await self.cached(
            (source.fetch_url, ref, credentials and credentials.cache_key),
            lambda: self._lookup(source, ref, credentials),
        )
        return ResolvedRepo(source, ref, sha, description)

    async def _lookup(self, source, ref, credentials):
        output = await self._git(source, "ls-remote", "--symref", "--", source.fetch_url,
                                 credentials=credentials)
        refs, head = parse_ls_remote(output)
        if ref and FULL_SHA.match(ref.lower()):
            # Any commit can be asked for by its sha: the lookup is the access check, and a sha
            # that is no tip is fetched alone (no trees, no blobs), so a missing one builds nothing.
            sha = ref.lower()
            if sha not in refs.values() and not await self._commit_exists(source, sha, credentials):
                raise LaunchError(messages.commit_not_found(source.display_name, ref), field="ref")
            return sha, f"commit {ref[:12]}"
        picked = pick_commit(refs, head, ref)
        if picked is None and ref and SHORT_SHA.match(ref):
            picked = await self._resolve_short_sha(source, ref.lower(), credentials)
        if picked is None and ref is None:
            raise LaunchError(f"{source.display_name} has no default branch. Give a branch, tag or "
                              "commit as the ref.", field="ref")
        if picked is None:
            raise LaunchError(messages.ref_not_found(source.display_name, ref), field="ref")
        return picked

    async def _commit_exists(self, source, sha, credentials):
        """Whether the repository has commit ``sha``: fetch that one commit without trees or
        blobs; a server that refuses fetches by sha gets the commit-graph fetch instead."""
        workdir = tempfile.mkdtemp(prefix="binderspawner-resolve-")
        try:
            await self._git(source, "init", "--quiet", "--bare", workdir)
            try:
                await self._git(source, "-C", workdir, "fetch", "--quiet", "--depth=1", "--filter=tree:0",
                                "--no-tags", "--", source.fetch_url, sha, credentials=credentials)
                return True
            except LaunchError:
                pass
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return await self._resolve_short_sha(source, sha, credentials) is not None

    async def _resolve_short_sha(self, source, prefix, credentials):
        """A short sha that is no branch tip: fetch the commit graph only (no trees, no blobs)."""
        workdir = tempfile.mkdtemp(prefix="binderspawner-resolve-")
        try:
            await self._git(source, "init", "--quiet", "--bare", workdir)
            await self._git(source, "-C", workdir, "fetch", "--quiet", "--filter=tree:0", "--no-tags",
                            "--", source.fetch_url, "+refs/heads/*:refs/heads/*",
                            "+refs/tags/*:refs/tags/*", credentials=credentials)
            try:
                sha = await self._git(source, "-C", workdir, "rev-parse", "--verify", "--quiet",
                                      f"{prefix}^{{commit}}")
            except LaunchError:
                return None
            return sha.strip(), f"commit {prefix}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _git(self, source, *args, credentials=None):
        env = git_environment(self.allowed_schemes,
                              credentials.git_environment() if credentials else None)
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
        if any(text.lower() in stderr.lower() for text in unreachable):
            return LaunchError(messages.host_unreachable(source.display_name), field="repo", status=502)
        # Missing and private repositories get the same answer, so private names do not leak.
        return LaunchError(messages.repository_not_found(source.display_name), field="repo", status=404)
