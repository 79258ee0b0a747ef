"""Sharing a running server with every member of a group, as one share per member.

JupyterHub (up to 6.1 at least) stores a share with a group, but leaves it out of the permissions of
the group members' tokens, including the OAuth tokens their browsers use for a server: a server
shared with a group opens for nobody. So a member shares with their lab here: each current member
of the group gets an ordinary user share, which JupyterHub honours; revoking removes them again.
Members who join the group later are not included (share again to include them).
"""

import json

from jupyterhub import orm
from jupyterhub.scopes import needs_scope
from tornado import web

from binderspawner.web.apihandler import JsonApiHandler

ROUTE = r"/binder/group-shares/(?P<user_name>[^/]+)/(?P<server_name>[^/]*)"


def members_to_share_with(group_members, owner):
    """Whom a share with the group reaches (pure): every member but the owner."""
    return sorted(name for name in group_members if name != owner)


class GroupShareHandler(JsonApiHandler):
    """POST (share) and DELETE (revoke) /hub/binder/group-shares/<owner>/<server>?group=<name>.

    The caller needs JupyterHub's 'shares' permission on the server (config/ gives members
    'shares!user' for their own) and must be a member of the group."""

    def _target(self, user_name, server_name):
        owner = self.find_user(user_name)
        spawner = owner.orm_spawners.get(server_name) if owner else None
        if spawner is None:
            raise web.HTTPError(404, f"No server {user_name}/{server_name} to share.")
        name = self.get_argument("group", "")
        group = orm.Group.find(self.db, name) if name else None
        me = self.current_user
        if group is None or (me.name not in {u.name for u in group.users} and not me.admin):
            raise web.HTTPError(404, f"You are not a member of a group {name!r}: give ?group=<one of yours>.")
        return spawner, group

    def _apply(self, user_name, server_name, change, reported_as):
        spawner, group = self._target(user_name, server_name)
        names = members_to_share_with([u.name for u in group.users], user_name)
        for name in names:
            change(self.db, spawner, orm.User.find(self.db, name))
        self.finish(json.dumps({"group": group.name, reported_as: names}))

    @needs_scope("shares")
    def post(self, user_name, server_name):
        self._apply(user_name, server_name, orm.Share.grant, "shared_with")

    @needs_scope("shares")
    def delete(self, user_name, server_name):
        self._apply(user_name, server_name, orm.Share.revoke, "revoked")
