"""Admin controls over what may be launched, like BinderHub's banned_specs and spec_config.

Every launch has one canonical spec, whatever the user typed: the repository's identity (the
provider that owns its host canonicalizes it: case, 'www.', '.git', trailing '/', default ports;
a Git URL on the GitHub provider's host is ``gh/…``) with the ref the launch uses, e.g.
``gh/org/repo/main``, ``gh/org/repo/HEAD`` (default branch),
``git/https%3A%2F%2Fexample.org%2Frepo/v1.0``, ``zenodo/10.5281/zenodo.3242074``. Admins write
regular expressions against it (matched from the start, case-insensitive, as BinderHub does):
``banned_specs`` refuse a launch, ``allowed_specs`` (when set) admit only matching launches, and
``spec_config`` attaches settings (quotas, resources: later issues read them) to matching specs.

The decisions are pure functions; ``SpecControl`` holds the settings and applies them.
"""

import re

from traitlets import Dict, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from binderspawner.errors import LaunchError


def effective_ref(source, ref):
    """The ref a launch uses: the 'ref' option, or the one the spec/URL carried (pure).

    Both given and different -> LaunchError: the launch would otherwise silently build something
    other than one of them. 'HEAD' means the default branch (None), as in BinderHub's specs."""
    if ref and source.ref and ref != source.ref:
        raise LaunchError(f"The repository {source.spec!r} already names the ref {source.ref!r}, and "
                          f"'ref' asks for {ref!r}. Leave 'ref' empty or give the same ref.", field="ref")
    chosen = ref or source.ref
    return None if chosen == "HEAD" else chosen


def launch_spec(source, ref):
    """The canonical spec of launching ``source`` at ``ref`` (pure); refs default to HEAD.

    It starts with the repository's identity (``source.repository``), not with how it was spelled:
    a GitHub URL, 'git/<escaped GitHub URL>', 'www.github.com' or 'gh/Org/Repo.git' are all
    'gh/org/repo/…', so a pattern matches every spelling of a repository or none."""
    if not source.has_refs:
        source.with_ref(ref)  # a ref for a data record is refused, naming the field
        return source.repository
    return f"{source.repository}/{ref or 'HEAD'}"


def _matches(pattern, spec):
    return re.match(pattern, spec, re.IGNORECASE) is not None


def spec_refusal(spec, banned=(), allowed=()):
    """The LaunchError (403) for a spec the admin banned or did not allow (pure), or None."""
    for pattern in banned:
        if _matches(pattern, spec):
            return LaunchError(f"Launching {spec} is not allowed on this hub (it is banned by the hub "
                               "admin).", field="repo", status=403)
    if allowed and not any(_matches(pattern, spec) for pattern in allowed):
        return LaunchError(f"Launching {spec} is not allowed on this hub: it launches only "
                           "repositories the hub admin allowed.", field="repo", status=403)
    return None


def settings_for(spec, spec_config):
    """Settings for ``spec``: the 'config' of every spec_config entry whose pattern matches, merged
    in order (later entries win) (pure). Entries: {"pattern": regex, "config": {...}}."""
    settings = {}
    for entry in spec_config:
        if _matches(entry["pattern"], spec):
            settings.update(entry.get("config") or {})
    return settings


def _compiled(patterns, name):
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise TraitError(f"{name}: {pattern!r} is not a regular expression ({e}).") from None
    return patterns


class SpecControl(LoggingConfigurable):
    """Which launch specs are banned or allowed, and per-spec settings."""

    banned_specs = List(
        Unicode(),
        [],
        help="""Regular expressions (matched at the start, case-insensitive) of canonical launch specs
        that may not be launched, e.g. ['^gh/some-org/', '^git/https%3A%2F%2Fevil\\\\.example'].
        A canonical spec always names the ref: 'gh/org/repo/HEAD' for the default branch; it is
        the repository's one identity (GitHub and GitLab paths lower case, a Git URL on the
        GitHub/GitLab host written gh/…, gl/…; Git URLs without '.git', trailing '/' or default
        port), so every spelling of a repository matches the same patterns.""",
    ).tag(config=True)

    allowed_specs = List(
        Unicode(),
        [],
        help="""When not empty, only launch specs matching one of these regular expressions may be
        launched, e.g. ['^gh/my-lab/', '^zenodo/']. banned_specs still applies.""",
    ).tag(config=True)

    spec_config = List(
        Dict(),
        [],
        help="""Settings for matching launch specs, like BinderHub's spec_config: a list of
        {"pattern": regex, "config": {...}}; every matching entry's config applies, later entries
        winning. Example: [{"pattern": "^gh/my-lab/", "config": {"quota": 10}}].""",
    ).tag(config=True)

    @validate("banned_specs", "allowed_specs")
    def _valid_patterns(self, proposal):
        return _compiled(proposal.value, f"SpecControl.{proposal.trait.name}")

    @validate("spec_config")
    def _valid_config(self, proposal):
        for entry in proposal.value:
            if not isinstance(entry.get("pattern"), str) or not isinstance(entry.get("config", {}), dict) \
                    or set(entry) - {"pattern", "config"}:
                raise TraitError("SpecControl.spec_config entries must be {'pattern': regex, "
                                 f"'config': dict}}; got {entry!r}.")
            _compiled([entry["pattern"]], "SpecControl.spec_config")
        return proposal.value

    def check(self, source, ref):
        """(ref to resolve, canonical spec, settings) for a launch, or LaunchError."""
        ref = effective_ref(source, ref)
        spec = launch_spec(source, ref)
        error = spec_refusal(spec, self.banned_specs, self.allowed_specs)
        if error:
            self.log.info("Refused launch of %s: %s", spec, error.message)
            raise error
        return ref, spec, settings_for(spec, self.spec_config)
