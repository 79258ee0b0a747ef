"""The share page: /hub/binder/share/<owner>/<server>, where a server's owner (or an admin) shares it
with a member or with a group's members, sees who has access, revokes, and makes a single-use share
code link (JupyterHub's /hub/accept-share flow).

A page of the hub (JupyterHub's BaseHandler): the login cookie, its XSRF check on every POST, and
JupyterHub's own permission to manage a server's shares (the 'shares' scope on that server, which
config/private_lab_config.py gives members for their own servers) on top of being the owner or an
admin. Shares are JupyterHub's (orm.Share, orm.ShareCode), so the REST API sees the same, and every
share is recorded as "ever shared" (auth/sharing.py) for push-back.
"""

import re
from datetime import datetime, timezone

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import has_scope
from jupyterhub.utils import url_escape_path, url_path_join
from tornado import web

from binderspawner import messages
from binderspawner.auth import sharing

ROUTE = r"/binder/share/(?P<user_name>[^/]+)/(?P<server_name>[^/]*)"
TEMPLATE = "binder_share.html"
CODE_LIFETIMES = {"3600": "1 hour", "86400": "1 day", "604800": "7 days"}
ACTIONS = ("share-user", "share-group", "revoke-user", "revoke-group", "revoke-code", "revoke-all", "new-code")
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,255}$")  # a user or group name as a form field; the hub decides the rest


def page_path(hub_base_url, owner, server_name):
    """The share page of one server, under the hub's base URL (e.g. /hub/)."""
    return url_path_join(hub_base_url, "binder/share", url_escape_path(owner), url_escape_path(server_name))


def session_link(spawner):
    """(label, path) of the share page for the notice inside ``spawner``'s session, or None when
    this hub does not serve the page."""
    handlers = spawner.config.JupyterHub.get("extra_handlers") if "JupyterHub" in spawner.config else None
    if not isinstance(handlers, (list, tuple)) or not any(
            isinstance(h, (list, tuple)) and len(h) > 1 and h[1] is SharePageHandler for h in handlers):
        return None
    return ("Share this session", page_path(spawner.hub.base_url, spawner.user.name, spawner.name))


def form_refusal(action, fields, lifetimes=CODE_LIFETIMES):
    """Why a POSTed form is refused (None: well-formed), before anything is looked up (pure)."""
    if action not in ACTIONS:
        return messages.SHARE_UNKNOWN_ACTION.format(action=action[:40])
    if action in ("share-user", "revoke-user") and not _NAME.match(fields.get("user", "")):
        return messages.SHARE_BAD_NAME.format(field="user")
    if action in ("share-group", "revoke-group") and not _NAME.match(fields.get("group", "")):
        return messages.SHARE_BAD_NAME.format(field="group")
    if action == "new-code" and fields.get("expires", "") not in lifetimes:
        return messages.SHARE_BAD_LIFETIME.format(choices=", ".join(lifetimes.values()))
    if action == "revoke-code" and not fields.get("code", "").isdigit():
        return messages.SHARE_BAD_CODE
    return None


def _when(value):
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


class SharePageHandler(BaseHandler):
    """GET: the page. POST (a form, with the hub's _xsrf field): one action, then the page again."""

    def _server(self, user_name, server_name):
        """(owner User, orm Spawner, may_manage) or 404 for anyone but the owner and admins."""
        me = self.current_user
        owner = self.find_user(user_name)
        if me is None or owner is None or (me.name != owner.name and not me.admin):
            raise web.HTTPError(404, messages.SHARE_NO_SERVER.format(server=f"{user_name}/{server_name}"))
        spawner = owner.orm_spawners.get(server_name)
        if spawner is None:
            raise web.HTTPError(404, messages.SHARE_NO_SERVER.format(server=f"{user_name}/{server_name}"))
        may_manage = has_scope(f"shares!server={owner.name}/{server_name}", self.parsed_scopes, db=self.db)
        return owner, spawner, may_manage

    @web.authenticated
    async def get(self, user_name, server_name):
        owner, spawner, may_manage = self._server(user_name, server_name)
        await self._render(owner, spawner, may_manage)

    @web.authenticated
    async def post(self, user_name, server_name):
        owner, spawner, may_manage = self._server(user_name, server_name)
        if not may_manage:
            self.set_status(403)
            return await self._render(owner, spawner, may_manage, error=messages.SHARE_NOT_ALLOWED)
        action = self.get_body_argument("action", "")
        fields = {key: self.get_body_argument(key, "").strip() for key in ("user", "group", "expires", "code")}
        error = form_refusal(action, fields)
        result = {}
        if error is None:
            try:
                result = self._apply(action, fields, owner, spawner) or {}
            except ValueError as e:
                error = str(e)
        if error:
            self.set_status(400)
        await self._render(owner, spawner, may_manage, error=error, **result)

    # the actions -----------------------------------------------------------------------------------

    def _member(self, name, owner):
        """The member ``name`` as JupyterHub's share API would find them: only with the permission
        to read their name (the same answer as for nobody of that name, so names cannot be probed)."""
        name = self.authenticator.normalize_username(name)
        user = orm.User.find(self.db, name)
        if user is None or not has_scope(f"read:users:name!user={name}", self.parsed_scopes, db=self.db):
            raise ValueError(messages.SHARE_NO_USER.format(user=name))
        if user.id == owner.orm_user.id:
            raise ValueError(messages.SHARE_WITH_SELF)
        return user

    def _group(self, name, owner):
        group = orm.Group.find(self.db, name)
        if group is None or (group not in owner.orm_user.groups and not self.current_user.admin) or \
                not has_scope(f"read:groups:name!group={name}", self.parsed_scopes, db=self.db):
            raise ValueError(messages.SHARE_NOT_YOUR_GROUP.format(group=name, owner=owner.name))
        return group

    def _apply(self, action, fields, owner, spawner):
        db = self.db
        if action == "share-user":
            user = self._member(fields["user"], owner)
            orm.Share.grant(db, spawner, user)
            return {"done": f"Shared with {user.name}."}
        if action == "revoke-user":
            user = self._member(fields["user"], owner)
            orm.Share.revoke(db, spawner, user)
            return {"done": f"{user.name} no longer has access."}
        if action == "share-group":
            group = self._group(fields["group"], owner)
            names = sharing.members_to_share_with([u.name for u in group.users], owner.name)
            for name in names:
                orm.Share.grant(db, spawner, orm.User.find(db, name))
            return {"done": f"Shared with the {len(names)} other member(s) of {group.name}: "
                            f"{', '.join(names) or 'nobody'}."}
        if action == "revoke-group":
            group = self._group(fields["group"], owner)
            names = sharing.members_to_share_with([u.name for u in group.users], owner.name)
            for name in names:
                orm.Share.revoke(db, spawner, orm.User.find(db, name))
            share = orm.Share.find(db, spawner, group)  # one JupyterHub's API made (not honoured in 6.1)
            if share is not None:
                orm.Share.revoke(db, spawner, group)
            return {"done": f"The members of {group.name} no longer have access."}
        if action == "new-code":
            share_code, code = sharing.new_single_use_code(db, spawner, int(fields["expires"]))
            url = f"{self.request.protocol}://{self.request.host}" + url_path_join(
                self.hub.base_url, "accept-share") + f"?code={code}"
            return {"new_code_url": url, "done": "Made a single-use share link."}
        if action == "revoke-code":
            share_code = db.query(orm.ShareCode).filter_by(id=int(fields["code"]), spawner_id=spawner.id).first()
            if share_code is None:
                raise ValueError(messages.SHARE_BAD_CODE)
            db.delete(share_code)
            db.commit()
            return {"done": "The share link no longer works."}
        if action == "revoke-all":
            for share in db.query(orm.Share).filter_by(spawner_id=spawner.id).all():
                db.delete(share)
            for share_code in db.query(orm.ShareCode).filter_by(spawner_id=spawner.id).all():
                db.delete(share_code)
            db.commit()
            return {"done": "Nobody else has access now."}
        raise ValueError(messages.SHARE_UNKNOWN_ACTION.format(action=action))

    # the page -----------------------------------------------------------------------------------

    async def _render(self, owner, spawner, may_manage, error=None, done=None, new_code_url=None):
        db = self.db
        shares = db.query(orm.Share).filter_by(spawner_id=spawner.id).all()
        codes = [c for c in db.query(orm.ShareCode).filter_by(spawner_id=spawner.id).all() if not c.expired]
        single = sharing.single_use_ids(db, [c.id for c in codes])
        config = self.settings.get("config")
        live = owner.spawners[spawner.name] if spawner.name in owner.spawners else None
        html = await self.render_template(
            TEMPLATE,
            owner=owner,
            server_name=spawner.name,
            server_url=owner.server_url(spawner.name),
            server_running=bool(live is not None and live.ready),
            may_manage=may_manage,
            users=sorted(({"name": s.user.name, "since": _when(s.created_at)} for s in shares if s.user),
                         key=lambda u: u["name"]),
            groups=sorted(({"name": s.group.name, "since": _when(s.created_at)} for s in shares if s.group),
                          key=lambda g: g["name"]),
            codes=[{"id": c.id, "prefix": c.prefix, "expires": _when(c.expires_at), "used": c.exchange_count or 0,
                    "single_use": c.id in single} for c in codes],
            owner_groups=sorted(g.name for g in owner.orm_user.groups),
            lifetimes=CODE_LIFETIMES,
            ever_shared=sharing.ever_shared(db, spawner),
            persistent=_setting(config, "PersistentHome", "enabled"),
            push_back=_setting(config, "PushBack", "enabled"),
            error=error,
            done=done,
            new_code_url=new_code_url,
            now=datetime.now(timezone.utc).isoformat(),
        )
        self.finish(html)


def _setting(config, section, key):
    """A boolean setting of the hub's config (another part's trait, read without importing it)."""
    try:
        return bool(config[section][key]) if config is not None and section in config and key in config[section] \
            else False
    except (KeyError, TypeError):
        return False
