#!/usr/bin/env python3
"""Provider benchmark: API calls and wall time per resolve, cold and cached, branch ref and sha ref.

GitHub, GitLab and Zenodo are not reachable here: the providers talk to tests/support/apifixtures.py
(a local tornado server on 127.0.0.1 answering like their documented APIs), so the figures are this
hub's own cost per resolve (client, cache, DNS check, one loopback round trip), not the services'
latency. GitProvider resolves against a local ``git daemon`` for comparison. Run from the repository
root:  python benchmarks/bench_providers.py [-n 50]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from binderspawner.providers import GitHubProvider, GitLabProvider, GitProvider, ZenodoProvider  # noqa: E402
from binderspawner.providers.api import stats  # noqa: E402
from binderspawner.launch.speccontrol import effective_ref  # noqa: E402
from tests.support.apifixtures import ApiFixtures, fresh_provider_caches  # noqa: E402
from binderspawner.providers import TokenCredentials  # noqa: E402
from tests.support.githttp import GitHttpServer, static_tokens  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402

SHA = "a" * 40
LOCAL = ["127.0.0.1"]


MEMBER_TOKEN = "bench-member-token"


async def timed(api, provider, repo, ref, credentials=None):
    """One resolve: (API requests it sent, seconds)."""
    source = provider.parse(repo)
    calls, not_modified = len(api.state.requests), stats["not_modified"]
    start = time.perf_counter()
    await provider.resolve(source, effective_ref(source, ref), credentials=credentials)
    elapsed = time.perf_counter() - start
    return (len(api.state.requests) - calls, stats["not_modified"] - not_modified), elapsed


async def scenario(api, n, make, repo, ref, mode, credentials=None):
    """mode: cold (nothing cached), cached (within the TTL), revalidated (TTL over, ETag 304)."""
    results = []
    for _ in range(n):
        provider = make(0 if mode == "revalidated" else 60)
        fresh_provider_caches()
        if mode != "cold":
            await timed(api, provider, repo, ref, credentials)  # warm up the cache / ETag
        results.append(await timed(api, provider, repo, ref, credentials))
        stats.clear()
    calls = sorted({c for c, _ in results})
    return calls, statistics.median(t for _, t in results) * 1000, max(t for _, t in results) * 1000


async def main(n):
    api = ApiFixtures().start()
    api.state.github["org/repo"] = {"refs": {"main": SHA}}
    api.state.gitlab["group/repo"] = {"refs": {"main": SHA}}
    api.state.zenodo.update({"100": "102", "102": "102"})
    git = GitServer(tempfile.mkdtemp(prefix="bsbench-providers-")).start()
    git_sha = git.add_repo("repo", files={"README": "x"})
    private = GitHttpServer(tempfile.mkdtemp(prefix="bsbench-providers-http-"),
                            static_tokens({MEMBER_TOKEN: "member"})).start()
    private_sha = private.add_repo("repo", files={"README": "x"}, readers={"member"})
    member = TokenCredentials(token=MEMBER_TOKEN, username="oauth2", hosts=("127.0.0.1",))
    makers = {
        "GitHub": (lambda ttl, **kw: GitHubProvider(api_base_url=api.url("/github"), allowed_private_hosts=LOCAL,
                                                    resolved_ref_ttl=ttl, **kw), "gh/org/repo", SHA, None),
        "GitLab": (lambda ttl, **kw: GitLabProvider(api_base_url=api.url("/gitlab/api/v4"),
                                                    allowed_private_hosts=LOCAL, resolved_ref_ttl=ttl, **kw),
                   "gl/group%2Frepo", SHA, None),
        "git (ls-remote)": (lambda ttl, **kw: GitProvider(allowed_hosts=LOCAL, resolved_ref_ttl=ttl, **kw),
                            git.url("repo"), git_sha, None),
        "git over HTTP, member's token": (
            lambda ttl, **kw: GitProvider(allowed_hosts=LOCAL, resolved_ref_ttl=ttl, **kw),
            private.url("repo"), private_sha, member),
        "Zenodo": (lambda ttl, **kw: ZenodoProvider(api_base_url=api.url("/zenodo/api"),
                                                    allowed_private_hosts=LOCAL, resolved_ref_ttl=ttl, **kw),
                   "zenodo/10.5281/zenodo.100", None, None),
    }
    rows = []
    try:
        for name, (make, repo, sha, credentials) in makers.items():
            refs = ([(None, "record", make)] if name == "Zenodo" else
                    [("main", "branch", make), (None, "default branch", make), (sha, "sha", make),
                     (sha, "sha, access checks off",
                      lambda ttl, make=make: make(ttl, check_access_for_commits=False))])
            for ref, kind, maker in refs:
                for mode in ("cold", "cached", "revalidated"):
                    if (name.startswith("git") or "off" in kind) and mode == "revalidated":
                        continue
                    if "off" in kind and mode == "cached":
                        continue
                    calls, median, worst = await scenario(api, n, maker, repo, ref, mode, credentials)
                    rows.append((name, kind, mode, calls, median, worst))
    finally:
        git.stop()
        private.stop()
        api.stop()
    print("| provider | ref | state | API requests per resolve (of them 304) | median ms | max ms |")
    print("|---|---|---|---|---|---|")
    for name, kind, mode, calls, median, worst in rows:
        shown = " or ".join(f"{c} ({m})" for c, m in calls)
        if name.startswith("git"):
            shown = "0 (1 `git ls-remote`)" if mode == "cold" and "off" not in kind else "0"
        print(f"| {name} | {kind} | {mode} | {shown} | {median:.2f} | {worst:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50, help="resolves per row (default 50)")
    asyncio.run(main(parser.parse_args().n))
