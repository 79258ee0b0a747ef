"""The admin's prebuild settings (``c.Prebuild.*``) and ``configure(c)``."""

import re

from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

SCOPE = "custom:binder-prebuild"


class Prebuild(LoggingConfigurable):
    """Which pushes are prebuilt, how often, and with which secrets. Secrets are never logged."""

    github_secret = Unicode(
        "",
        help="""Secret of GitHub webhooks (the webhook's 'Secret'; GitHub signs each delivery with it,
        X-Hub-Signature-256). Empty: POST /hub/binder/webhooks/github is refused (404). Read it from
        the environment or a file in jupyterhub_config.py rather than writing it there.""",
    ).tag(config=True)

    gitlab_secret = Unicode(
        "",
        help="""Secret token of GitLab webhooks (the webhook's 'Secret token', sent as X-Gitlab-Token).
        Empty: POST /hub/binder/webhooks/gitlab is refused (404).""",
    ).tag(config=True)

    gitea_secret = Unicode(
        "",
        help="""Secret of Gitea (and Forgejo) webhooks (Gitea signs each delivery with it,
        X-Gitea-Signature). Empty: POST /hub/binder/webhooks/gitea is refused (404).""",
    ).tag(config=True)

    specs = List(
        Unicode(),
        [],
        help="""Regular expressions (matched at the start, case-insensitive, like
        c.SpecControl.allowed_specs) of canonical launch specs whose pushes are prebuilt, e.g.
        ['^gh/my-lab/', '^git/https%3A%2F%2Fgit\\\\.lab\\\\.example%2F']. The spec names the pushed
        branch or tag: 'gh/my-lab/course/main'. c.SpecControl's banned and allowed specs still apply.""",
    ).tag(config=True)

    recent_launch_days = Float(
        14,
        help="""Pushes to a repository someone launched on this hub in the last this many days are
        prebuilt too (from the hub's launch records, <HubCleanup.lifecycle_dir>/launches.sqlite,
        which the image cache cleanup trims with the images). 0: only c.Prebuild.specs.""",
    ).tag(config=True)

    per_repo_per_hour = Int(
        10,
        help="""Most prebuilds of one repository started per hour (webhooks and the CI API); a push
        past it is refused (HTTP 429) and builds nothing. 0: no limit.""",
    ).tag(config=True)

    total_per_hour = Int(
        60,
        help="""Most prebuilds started per hour on the whole hub; past it pushes are refused (HTTP 429).
        0: no limit.""",
    ).tag(config=True)

    max_concurrent = Int(
        1,
        help="""Most prebuilds running at once. They share c.BinderSpawner.max_concurrent_builds with
        launches, and a waiting launch always goes ahead of waiting prebuilds; keep this below it so
        a launch never waits for a slot only prebuilds hold. 0: as many as the build slots.""",
    ).tag(config=True)

    drop_superseded = Bool(
        True,
        help="""When a newer commit is pushed to a branch, drop the older commit's prebuild if it is
        still waiting for a build slot (nobody launched it); it is logged. False builds every pushed
        commit (each at most once).""",
    ).tag(config=True)

    max_body_bytes = Int(
        1024 * 1024,
        help="""Largest webhook body accepted (bytes); larger deliveries are refused with 413 (their
        bytes past the limit are read and dropped, never kept). GitHub's push payloads with many
        commits can reach a few hundred KiB.""",
    ).tag(config=True)

    access_tokens = Dict(
        value_trait=Unicode(),
        default_value={},
        help="""The hub's own tokens for prebuilding private repositories: {host patterns: token},
        e.g. {'github.com api.github.com': '<a fine-grained read-only token>'} (GitHub repositories
        are resolved through api.github.com and cloned from github.com: name both). Patterns as
        LabAuthenticatorMixin.credential_hosts ('host', 'host:port', '*.domain'), several in one key
        separated by spaces or commas. A token is used only
        for repositories on its host; a private repository without one is skipped (logged). Members'
        tokens are never used for prebuilds.""",
    ).tag(config=True)

    git_username = Unicode(
        "x-access-token",
        help="User name git sends with an access_tokens token (GitHub: any; GitLab OAuth tokens: oauth2).",
    ).tag(config=True)

    @validate("specs")
    def _valid_specs(self, proposal):
        for pattern in proposal.value:
            try:
                re.compile(pattern)
            except re.error as e:
                raise TraitError(f"Prebuild.specs: {pattern!r} is not a regular expression ({e}).") from None
        return proposal.value

    def secret(self, forge):
        return {"github": self.github_secret, "gitlab": self.gitlab_secret, "gitea": self.gitea_secret}[forge]


def configure(c):
    """Declare the CI API's scope (``custom:binder-prebuild``) in a jupyterhub_config.py; give it to
    a CI's service or user with a role: {"name": "ci", "scopes": [SCOPE], "services": ["ci"]}."""
    c.JupyterHub.custom_scopes.update({SCOPE: {
        "description": "Prebuild repositories on this Binder hub (POST /hub/binder/prebuild/<provider>/<spec>)."}})
