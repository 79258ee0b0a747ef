"""CKAN datasets: ``ckan/<url-escaped dataset URL>`` or a plain dataset URL
(``https://<site>/dataset/<name>[/history/<activity id>]``), on one of ``hosts`` only (none by
default). The version is the
activity id when the URL names one, otherwise ``<name>.v<epoch of metadata_modified>`` from the
action API's ``package_show``. The build fetches the dataset URL with repo2docker's CKAN content
provider.

Tests run against a local fixture server that follows CKAN's documented action API responses
(tests/test_providers_data.py); no CKAN site is reachable from the test machines.
"""

import datetime
import fnmatch
import re
from urllib.parse import parse_qs, quote, unquote, urlsplit

from traitlets import List, Unicode

from binderspawner.errors import LaunchError
from binderspawner.providers.base import LinkGrammar
from binderspawner.providers.records import RecordProvider
from binderspawner.providers.git import _HOSTNAME
from binderspawner.providers.specparse import after_prefix, escaped_url, invalid, link_ref

HINT = ("Use ckan/<url-escaped dataset URL> (e.g. ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fmy-data) "
        "or a dataset URL https://<site>/dataset/<name>.")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def modified_epoch(text):
    """CKAN's metadata_modified ('2024-01-02T03:04:05.678901', UTC) -> epoch seconds (pure)."""
    try:
        stamp = datetime.datetime.strptime(text.split(".")[0], "%Y-%m-%dT%H:%M:%S")
    except (AttributeError, ValueError):
        return None
    return int(stamp.replace(tzinfo=datetime.timezone.utc).timestamp())


class CKANProvider(RecordProvider):
    name = "ckan"
    prefix = "ckan"
    service = "CKAN"
    content_provider = "CKAN"
    content_providers = ("CKAN",)
    case_insensitive = False  # dataset URLs: the path is the site's to interpret

    hosts = List(
        Unicode(),
        [],
        help="""Host names (shell patterns) of the CKAN sites users may launch datasets from, by
        plain dataset URL ('https://<host>/dataset/<name>') or ckan/<url-escaped URL>. Empty (the
        default): no CKAN site. A build downloads every resource URL the dataset lists, so name
        only sites you trust; each download is still refused for internal addresses
        (allowed_private_hosts), redirects included.""",
    ).tag(config=True)

    def known_site(self, host):
        return any(fnmatch.fnmatchcase(host.lower(), p.lower()) for p in self.hosts)

    def link_grammar(self):
        return LinkGrammar(self.prefix, "<url-escaped dataset URL>[/<ref>]",
                           f"{self.prefix}/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fx",
                           rf"^{self.prefix}/\S+$",
                           self.service, {"url": 2048})

    def parse_link(self, spec):
        url, _, rest = spec.partition("/")
        canonical = quote(escaped_url(url, self), safe="")
        if rest:
            canonical += "/" + quote(link_ref(rest, self), safe="/")
        return canonical, f"{self.prefix}/{canonical}", None

    def pinned_link(self, spec, version):
        return spec

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        if rest is None:
            host = (urlsplit(repo).hostname or "") if "://" in repo else ""
            if not host or not self.known_site(host) or "/dataset/" not in repo:
                return None
            url = repo
        else:
            url = unquote(rest)
            if "%" not in rest and "/" in rest:
                raise invalid(repo, "the URL after 'ckan/' must be URL-escaped ('/' as %2F)", HINT)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise invalid(repo, "it is not a valid URL", HINT) from None
        if parts.scheme not in ("https", "http") or not _HOSTNAME.match(parts.hostname or "") \
                or parts.username or parts.password or "@" in parts.netloc or parts.fragment:
            raise invalid(repo, "it is not an http(s) URL without credentials", HINT)
        found = re.fullmatch(r"((?:/[A-Za-z0-9._~-]+)*)/dataset/([^/]+)(?:/history/([^/]+))?/?", parts.path)
        if not found or not NAME.match(found.group(2)):
            raise invalid(repo, "it is not the address of a CKAN dataset (…/dataset/<name>)", HINT)
        site, name, activity = found.groups()
        if not self.known_site(parts.hostname):
            raise LaunchError(f"{parts.hostname} is not a CKAN site this hub launches datasets from"
                              + (f" (it launches from {', '.join(self.hosts)})" if self.hosts else "")
                              + ". A hub admin can add it to c.CKANProvider.hosts.", field="repo",
                              status=403)
        query = parse_qs(parts.query)
        if activity is None and query.get("activity_id"):
            activity = query["activity_id"][0]
        if activity is not None and not NAME.match(activity):
            raise invalid(repo, f"{activity!r} is not a CKAN activity id", HINT)
        netloc = parts.netloc.lower()
        canonical = f"{parts.scheme}://{netloc}{site}/dataset/{name}" + \
            (f"/history/{activity}" if activity else "")
        return self.record(f"{self.prefix}/{quote(canonical, safe='')}", canonical,
                           f"{netloc}{site}/dataset/{name}", f"CKAN dataset {name} on {parts.hostname}")

    async def lookup(self, source, credentials):
        site, _, rest = source.fetch_url.partition("/dataset/")
        name, _, activity = rest.partition("/history/")
        data = await self.api_json(f"{site}/api/3/action/package_show?id={name}", credentials=credentials,
                                   not_found=self.missing(source))
        result = data.get("result") if isinstance(data, dict) and data.get("success") else None
        if not isinstance(result, dict):
            raise self.missing(source)
        if activity:
            return f"{name}.a{activity}", f"activity {activity}", source.fetch_url
        epoch = modified_epoch(result.get("metadata_modified"))
        if epoch is None:
            raise LaunchError(f"CKAN gave no modification time for {source.display_name}.", field="repo",
                              status=502)
        return f"{name}.v{epoch}", f"dataset modified {epoch}", source.fetch_url
