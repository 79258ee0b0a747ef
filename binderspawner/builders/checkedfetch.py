"""What a build fetches goes through the hub's checks (runs inside repo2docker, on the host).

Git: repo2docker's Git content provider replaced by providers.git.checkout: every URL the build's
clone contacts (the repository, each submodule) is checked and pinned like the hub's own lookups,
no redirect is followed, and a member's token (BINDERSPAWNER_GIT_TOKEN, set by the builder) is
offered to the repository's URL only.

Data records (Zenodo, Figshare, HydroShare, Dataverse, CKAN): repo2docker downloads every file URL
the record lists. ``checked_provider`` gives its requests session a connection class that resolves
each host, refuses it unless every address is admitted (hosts.refusal, the same rule as the hub's),
and connects to the checked address: every URL, every redirect, no second DNS answer.

Settings come from BINDERSPAWNER_R2D_SETTINGS["git_rules"] (the resolving provider's rules).
"""

import asyncio
import json
import os
import socket

import urllib3
import urllib3.util.connection
from requests.adapters import HTTPAdapter

from repo2docker.contentproviders.base import ContentProviderException
from repo2docker.contentproviders.git import Git

from binderspawner.errors import LaunchError
from binderspawner.providers.hosts import refusal
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


def _checked_connection(base, allowed, setting):
    class Checked(base):
        def _new_conn(self):
            host = self._dns_host
            try:
                infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as e:
                raise urllib3.exceptions.NameResolutionError(host, self, e) from None
            addresses = sorted({info[4][0].split("%", 1)[0] for info in infos})
            error = refusal(host, addresses, allowed, setting=setting)
            if error:
                raise urllib3.exceptions.NewConnectionError(self, f"Refused to fetch from {host}: "
                                                                  f"{error.message}")
            try:
                return urllib3.util.connection.create_connection(
                    (addresses[0], self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
            except OSError as e:
                raise urllib3.exceptions.NewConnectionError(
                    self, f"Failed to establish a new connection: {e}") from e
    Checked.__name__ = f"Checked{base.__name__}"
    return Checked


class CheckingAdapter(HTTPAdapter):
    """A requests adapter whose every connection passes hosts.refusal (see the module docstring)."""

    def __init__(self, allowed=(), setting="RepoProvider.allowed_private_hosts", **kwargs):
        self.allowed, self.setting = tuple(allowed), setting
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http = _checked_connection(urllib3.connection.HTTPConnection, self.allowed, self.setting)
        https = _checked_connection(urllib3.connection.HTTPSConnection, self.allowed, self.setting)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("CheckedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


def checking_session(session, allowed=(), setting="RepoProvider.allowed_private_hosts"):
    """``session`` with CheckingAdapter for http:// and https://, and no proxy from the environment
    (a proxy would make the proxy, not the record's host, the address checked); a CA bundle named
    in REQUESTS_CA_BUNDLE or SSL_CERT_FILE is still used."""
    adapter = CheckingAdapter(allowed, setting)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if bundle:
        session.verify = bundle  # what trust_env would have read
    return session


def checked_provider(cls, rules):
    """A subclass of repo2docker content provider ``cls`` whose downloads are checked."""
    allowed = tuple((rules or {}).get("allowed_private_hosts", ()))
    setting = (rules or {}).get("setting", "RepoProvider.allowed_private_hosts")

    def __init__(self, *args, **kwargs):
        cls.__init__(self, *args, **kwargs)
        if hasattr(self, "session"):
            checking_session(self.session, allowed, setting)

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": __name__})
