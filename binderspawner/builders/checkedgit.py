"""repo2docker's Git content provider replaced by providers.git.checkout: every URL the build's
clone contacts (the repository, each submodule) is checked and pinned like the hub's own lookups,
no redirect is followed, and a member's token (BINDERSPAWNER_GIT_TOKEN, set by the builder) is
offered to the repository's URL only. Settings come from BINDERSPAWNER_R2D_SETTINGS["git_rules"].
"""

import asyncio
import json
import os

from repo2docker.contentproviders.base import ContentProviderException
from repo2docker.contentproviders.git import Git

from binderspawner.errors import LaunchError
from binderspawner.providers.base import TokenCredentials
from binderspawner.providers.git import CheckoutFailed, checkout

TOKEN_VARIABLES = ("BINDERSPAWNER_GIT_TOKEN", "BINDERSPAWNER_GIT_USERNAME")


def credentials_from_environment(environ):
    """The member's token the builder passed (hosts already checked by the hub), or None."""
    token = environ.get("BINDERSPAWNER_GIT_TOKEN")
    if not token:
        return None
    return TokenCredentials(token=token, username=environ.get("BINDERSPAWNER_GIT_USERNAME") or "oauth2")


class CheckedGit(Git):
    """Clones with binderspawner's checks; 'ref' must be the full commit the hub resolved."""

    def fetch(self, spec, output_dir, yield_output=False):
        settings = json.loads(os.environ.get("BINDERSPAWNER_R2D_SETTINGS") or "{}")
        lines = []
        try:
            asyncio.run(checkout(spec["repo"], spec.get("ref") or "HEAD", output_dir,
                                 credentials=credentials_from_environment(os.environ),
                                 rules=settings.get("git_rules"), log=lines.append))
        except (CheckoutFailed, LaunchError) as e:
            raise ContentProviderException(str(e)) from None
        finally:
            for name in TOKEN_VARIABLES:  # nothing after the clone needs the token
                os.environ.pop(name, None)
        yield from (line + "\n" for line in lines)
        self._sha1 = spec.get("ref") or ""
