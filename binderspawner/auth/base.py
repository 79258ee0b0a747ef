"""What a lab's authenticators add to oauthenticator: the lab group, membership re-checked when the
token is refreshed, and the member's token handed to the spawner bound to the hosts that issued it.

Each provider module mixes ``LabAuthenticatorMixin`` in front of one oauthenticator class; the OAuth
flow, token refresh and membership checks are oauthenticator's own.
"""

from inspect import isawaitable

from jupyterhub.utils import maybe_future
from traitlets import Bool, List, Unicode, default
from traitlets.config import LoggingConfigurable

from binderspawner.providers.base import TokenCredentials


class LabAuthenticatorMixin(LoggingConfigurable):
    """Mix in before an OAuthenticator subclass."""

    lab_group = Unicode(
        "lab",
        help="""JupyterHub group every admitted member is put in at login (and kept in at each
        refresh), so members can share a server with the whole lab:
        POST /hub/binder/group-shares/<you>/<server>?group=lab. Empty: no such group.""",
    ).tag(config=True)

    credential_hosts = List(
        Unicode(),
        help="""Hosts the member's access token may be sent to when they launch a repository:
        'host', 'host:port' or '*.domain'. A launch from any other host goes without it, so a
        member's token never reaches a server they merely named. Defaults to the provider's own
        web and API hosts; for the OIDC authenticator, name the lab's git server(s).""",
    ).tag(config=True)

    git_username = Unicode(
        "oauth2",
        help="""User name git sends with the member's token (HTTP basic auth) to the lab's git
        server. GitHub ignores it; GitLab wants 'oauth2'; other servers document theirs.""",
    ).tag(config=True)

    pass_credentials_to_launches = Bool(
        True,
        help="""Launch with each member's own access token, so they can launch the lab's private
        repositories they can read (and only those). False: launches use no member token.""",
    ).tag(config=True)

    @default("enable_auth_state")
    def _default_enable_auth_state(self):
        return True  # the member's token lives in auth_state (encrypted: set JUPYTERHUB_CRYPT_KEY)

    @default("manage_groups")
    def _default_manage_groups(self):
        return bool(self.lab_group)

    async def get_user_groups(self, auth_state):
        # Providers with no groups claim (GitHub) have no auth_state_groups_key: no groups from it.
        if not self.auth_state_groups_key:
            return set()
        return await super().get_user_groups(auth_state)

    def _with_lab_group(self, auth_model):
        if self.manage_groups and self.lab_group:
            auth_model["groups"] = sorted({*auth_model.get("groups", ()), self.lab_group})
        return auth_model

    async def run_post_auth_hook(self, handler, auth_model):
        # JupyterHub calls this only for admitted users: only members join the lab group.
        auth_model = await super().run_post_auth_hook(handler, auth_model)
        return self._with_lab_group(auth_model)

    @default("auth_refresh_strict")
    def _default_auth_refresh_strict(self):
        # A member who fails the refresh (left the lab, token revoked) cannot launch through the
        # API or have an admin launch for them on the old login either (JupyterHub 6.1 allows it).
        return True

    async def refresh_user(self, user, handler=None, **kwargs):
        """oauthenticator's refresh (a new access token from the refresh token when needed), then
        membership again: someone removed from the lab cannot launch on an old login."""
        if handler is not None and not hasattr(handler, "_token_authenticated"):
            # JupyterHub 6.1.1 reads this after a failed refresh but sets it only for token-
            # authenticated requests: a browser request would fail with a 500, not "log in again".
            handler._token_authenticated = False
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if not isinstance(refreshed, dict):
            return refreshed
        name = refreshed.get("name", user.name)
        blocked = not await maybe_future(self.check_blocked_users(name, refreshed))
        if blocked or not self.allow_all and not await maybe_future(self.check_allowed(name, refreshed)):
            self.log.warning("%s is no longer a member of the lab; a new login is needed", name)
            return False
        return self._with_lab_group(refreshed)

    def member_credentials(self, auth_state):
        """The member's TokenCredentials from auth_state, or None."""
        token = (auth_state or {}).get("access_token")  # oauthenticator keeps the current one here
        if not token or not self.pass_credentials_to_launches or not self.credential_hosts:
            return None
        return TokenCredentials(token=token, username=self.git_username, hosts=tuple(self.credential_hosts))

    async def pre_spawn_start(self, user, spawner):
        result = super().pre_spawn_start(user, spawner)
        if isawaitable(result):
            await result
        await attach_member_credentials(self, user, spawner)


async def attach_member_credentials(authenticator, user, spawner):
    """Give ``spawner`` its user's credentials for this launch (None when there are none).

    JupyterHub refreshes auth_state before the spawn (refresh_pre_spawn), so the token is fresh."""
    credentials = None
    if hasattr(authenticator, "member_credentials"):
        credentials = authenticator.member_credentials(await user.get_auth_state())
    if hasattr(spawner, "member_credentials"):
        spawner.member_credentials = credentials
