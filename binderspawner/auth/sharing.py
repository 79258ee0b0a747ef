"""Sharing: the record of servers that were ever shared, single-use share codes, and sharing a
running server with every member of a group, as one share per member.

JupyterHub (up to 6.1 at least) stores a share with a group, but leaves it out of the permissions of
the group members' tokens, including the OAuth tokens their browsers use for a server: a server
shared with a group opens for nobody. So a member shares with their lab here: each current member
of the group gets an ordinary user share, which JupyterHub honours; revoking removes them again.
Members who join the group later are not included (share again to include them).
"""

import json

from jupyterhub import orm
from jupyterhub.scopes import needs_scope
from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, Table, event, func, insert, inspect, select
from sqlalchemy.orm import Session
from tornado import web

from binderspawner.web.apihandler import JsonApiHandler

ROUTE = r"/binder/group-shares/(?P<user_name>[^/]+)/(?P<server_name>[^/]*)"

# --- servers that were ever shared ------------------------------------------------------------------
# JupyterHub deletes a share's row when it is revoked; this table keeps the fact that a server was
# shared for as long as the server exists (the row goes with the server). Push-back is refused for
# such a server (auth/pushback.py). Every share (REST API, share codes, group shares, the share page)
# is recorded by record_shared(), from SQLAlchemy's insert events on JupyterHub's Share and ShareCode.

_metadata = MetaData()
SHARED_SERVERS = Table(
    "binderspawner_shared_servers", _metadata,
    Column("spawner_id", Integer, ForeignKey(orm.Spawner.__table__.c.id, ondelete="CASCADE"),
           primary_key=True),
    Column("first_shared", DateTime, server_default=func.now()),
)
SINGLE_USE_CODES = Table(  # share codes made by the share page: deleted at their first use
    "binderspawner_single_use_codes", _metadata,
    Column("share_code_id", Integer, ForeignKey(orm.ShareCode.__table__.c.id, ondelete="CASCADE"),
           primary_key=True),
)
_shared_hooks = []


def on_shared(hook):
    """Call ``hook(connection, orm_spawner)`` whenever a server is recorded as shared (see
    record_shared). It runs inside the hub's database transaction (often during a flush): do
    database work on ``connection`` only, nothing slow, no other I/O."""
    if hook not in _shared_hooks:
        _shared_hooks.append(hook)


def record_shared(db, orm_spawner):
    """Record that ``orm_spawner`` was shared, for good (until the server is deleted), and tell the
    on_shared hooks. ``db``: a Session (committed here) or a Connection inside the caller's
    transaction. Called for every share and share code; call it too for a server that inherits a
    shared past (e.g. one starting on a home volume a shared server wrote to)."""
    connection = db.connection() if isinstance(db, Session) else db
    _record(connection, orm_spawner.id, orm_spawner)
    if isinstance(db, Session):
        db.commit()


def _record(connection, spawner_id, orm_spawner):
    SHARED_SERVERS.create(connection, checkfirst=True)
    if connection.execute(select(SHARED_SERVERS.c.spawner_id).where(
            SHARED_SERVERS.c.spawner_id == spawner_id)).first() is None:
        connection.execute(insert(SHARED_SERVERS).values(spawner_id=spawner_id))
    for hook in list(_shared_hooks):
        hook(connection, orm_spawner)


def ever_shared(db, orm_spawner):
    """Shared now (with a user or group, or by a share code), or at any time since it was made, or
    running on a persistent home that was ever shared (homes/records.py: the record follows the home)."""
    from binderspawner.homes.records import server_home_ever_shared

    if server_home_ever_shared(db, orm_spawner):
        return True
    if (db.query(orm.Share).filter_by(spawner_id=orm_spawner.id).first()
            or db.query(orm.ShareCode).filter_by(spawner_id=orm_spawner.id).first()):
        return True
    connection = db.connection()
    SHARED_SERVERS.create(connection, checkfirst=True)
    return connection.execute(select(SHARED_SERVERS.c.spawner_id).where(
        SHARED_SERVERS.c.spawner_id == orm_spawner.id)).first() is not None


def _shared_inserted(mapper, connection, target):
    spawner_id = target.spawner_id or (target.spawner.id if target.spawner is not None else None)
    if spawner_id is not None:
        _record(connection, spawner_id, target.spawner)


def _forget_server(mapper, connection, target):
    SHARED_SERVERS.create(connection, checkfirst=True)
    connection.execute(SHARED_SERVERS.delete().where(SHARED_SERVERS.c.spawner_id == target.id))


def new_single_use_code(db, orm_spawner, expires_in):
    """A JupyterHub share code for ``orm_spawner`` that works once: (ShareCode, code). The first
    member who accepts it gets the share; the code is deleted then (JupyterHub's own codes work
    for anyone until they expire)."""
    share_code, code = orm.ShareCode.new(
        db, orm_spawner, scopes=[f"access:servers!server={orm_spawner.user.name}/{orm_spawner.name}"],
        expires_in=expires_in)
    connection = db.connection()
    SINGLE_USE_CODES.create(connection, checkfirst=True)
    connection.execute(insert(SINGLE_USE_CODES).values(share_code_id=share_code.id))
    db.commit()
    return share_code, code


def single_use_ids(db, share_code_ids):
    """The ids among ``share_code_ids`` that are single-use codes."""
    connection = db.connection()
    SINGLE_USE_CODES.create(connection, checkfirst=True)
    ids = list(share_code_ids)
    return {row[0] for row in connection.execute(select(SINGLE_USE_CODES.c.share_code_id).where(
        SINGLE_USE_CODES.c.share_code_id.in_(ids)))} if ids else set()


def _code_exchanged(target, value, oldvalue, initiator):
    """ShareCode.exchange counts each use: a single-use code is deleted at its first (the share it
    made stays), in the same commit as the share."""
    session = inspect(target).session
    if session is None or target.id is None or not value or value < 1:
        return
    if single_use_ids(session, [target.id]):
        session.execute(SINGLE_USE_CODES.delete().where(SINGLE_USE_CODES.c.share_code_id == target.id))
        session.delete(target)


for _model in (orm.Share, orm.ShareCode):
    if not event.contains(_model, "after_insert", _shared_inserted):
        event.listen(_model, "after_insert", _shared_inserted)
if not event.contains(orm.Spawner, "after_delete", _forget_server):
    event.listen(orm.Spawner, "after_delete", _forget_server)
if not event.contains(orm.ShareCode.exchange_count, "set", _code_exchanged):
    event.listen(orm.ShareCode.exchange_count, "set", _code_exchanged)


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
