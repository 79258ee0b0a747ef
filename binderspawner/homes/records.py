"""What the hub remembers about homes, outside the homes themselves.

- ``HomeRecords`` (``<lifecycle_dir>/homes.sqlite``, like the image cache's launches.sqlite): per
  (member, repository) the current generation (bumped by "start fresh"); per home the commit it was
  last merged with (a launch of that commit needs no merge), and when it was last used (the
  cleanup service expires by it; volume labels cannot change after creation).
- the cleanup service's summary (``homes.json``): homes, bytes, removals; read by metrics.py.
- homes that were ever shared, in the hub's own database (``binderspawner_shared_homes``): a share
  or share code of a server records the server's home, and the record stays with the home (not the
  server), so a later server on that home knows a collaborator could have written to it.
  auth/pushback.py refuses push-back for such servers; the spawner warns the owner at launch.
"""

import json
import os
import sqlite3
import time

from jupyterhub import orm
from sqlalchemy import Column, DateTime, MetaData, String, Table, func, insert, select, text

from binderspawner.auth import sharing

HOMES_DB = "homes.sqlite"
SUMMARY = "homes.json"


class HomeRecords:
    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, HOMES_DB)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS homes (name TEXT PRIMARY KEY, user TEXT NOT NULL, "
                       "repository TEXT NOT NULL, commit_sha TEXT, last_used REAL NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS generations (user TEXT NOT NULL, repository TEXT NOT NULL, "
                       "generation INTEGER NOT NULL, PRIMARY KEY (user, repository))")

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def generation(self, user, repository):
        with self._connect() as db:
            row = db.execute("SELECT generation FROM generations WHERE user = ? AND repository = ?",
                             (user, repository)).fetchone()
        return row[0] if row else 0

    def set_generation(self, user, repository, generation):
        with self._connect() as db:
            db.execute("INSERT INTO generations VALUES (?, ?, ?) ON CONFLICT(user, repository) "
                       "DO UPDATE SET generation = excluded.generation", (user, repository, generation))

    def used(self, home, at=None):
        """Note that ``home`` is used now (a launch or a stop)."""
        with self._connect() as db:
            db.execute("INSERT INTO homes (name, user, repository, last_used) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET last_used = excluded.last_used",
                       (home.name, home.user, home.repository, at or time.time()))

    def touch(self, name, at=None):
        with self._connect() as db:
            db.execute("UPDATE homes SET last_used = ? WHERE name = ?", (at or time.time(), name))

    def merged(self, name, commit):
        with self._connect() as db:
            db.execute("UPDATE homes SET commit_sha = ? WHERE name = ?", (commit, name))

    def merged_commit(self, name):
        with self._connect() as db:
            row = db.execute("SELECT commit_sha FROM homes WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def last_used(self):
        """{name: last used}"""
        with self._connect() as db:
            return dict(db.execute("SELECT name, last_used FROM homes"))

    def forget(self, names):
        with self._connect() as db:
            db.executemany("DELETE FROM homes WHERE name = ?", [(n,) for n in names])


def write_summary(directory, homes, total_bytes, expired_now):
    """The cleanup service's summary; ``expired`` counts every expiry since the file was made."""
    path = os.path.join(directory, SUMMARY)
    previous = read_summary(directory) or {}
    summary = {"homes": homes, "bytes": total_bytes, "at": time.time(),
               "expired": int(previous.get("expired", 0)) + expired_now}
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f)
    os.replace(path + ".tmp", path)
    return summary


def read_summary(directory):
    try:
        with open(os.path.join(directory, SUMMARY)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def measured_bytes(directory):
    """Bytes all homes used at the cleanup service's last pass, or None (never, or not measurable)."""
    value = (read_summary(directory) or {}).get("bytes")
    return value if isinstance(value, (int, float)) and value >= 0 else None


# --- homes that were ever shared (the hub's database) ----------------------------------------------

_metadata = MetaData()
SHARED_HOMES = Table(
    "binderspawner_shared_homes", _metadata,
    Column("home", String(255), primary_key=True),
    Column("first_shared", DateTime, server_default=func.now()),
)


def home_of(state):
    """The home named in a spawner's saved state (orm.Spawner.state), or None (pure)."""
    binder = (state or {}).get("binder") if isinstance(state, dict) else None
    home = binder.get("home") if isinstance(binder, dict) else None
    return home if isinstance(home, str) and home else None


def _record_shared_home(connection, orm_spawner):
    """auth/sharing.py's on_shared hook: the shared server's home is marked shared, for good."""
    if orm_spawner is None or orm_spawner.id is None:
        return
    row = connection.execute(text(f"SELECT state FROM {orm.Spawner.__tablename__} WHERE id = :id"),
                             {"id": orm_spawner.id}).first()  # raw JSON: the ORM's type has no cache key
    try:
        home = home_of(json.loads(row[0]) if row and row[0] else None)
    except (TypeError, ValueError):
        home = None
    if home is not None:
        _mark(connection, home)


def _mark(connection, home):
    SHARED_HOMES.create(connection, checkfirst=True)
    if connection.execute(select(SHARED_HOMES.c.home).where(SHARED_HOMES.c.home == home)).first() is None:
        connection.execute(insert(SHARED_HOMES).values(home=home))


sharing.on_shared(_record_shared_home)


def home_ever_shared(db, home):
    """When ``home`` (a volume / PVC name) was first shared, or None if it never was. ``db`` is the
    hub's SQLAlchemy session. Recorded automatically for every share and share code."""
    if not home:
        return None
    connection = db.connection()
    SHARED_HOMES.create(connection, checkfirst=True)
    row = connection.execute(select(SHARED_HOMES.c.first_shared).where(SHARED_HOMES.c.home == home)).first()
    return (row[0] or True) if row else None


def server_home_ever_shared(db, orm_spawner):
    """True when the home the server runs on was ever shared (by this server or an earlier one)."""
    return bool(home_ever_shared(db, home_of(orm_spawner.state)))


def mark_shared(db, home):
    """Record ``home`` as shared (for a sharing path that does not go through orm.Share)."""
    _mark(db.connection(), home)


# --- choosing the home of a launch ------------------------------------------------------------------

def choose(store, settings, hub_id, user, repository, fresh=False):
    """(the launch's Home, the Home set aside by 'start fresh' or None). The current generation
    is the record's; 'fresh' moves to the next one (the old volume is left as it was)."""
    from binderspawner.homes import home_for
    from binderspawner.services.cleanup import LABEL_HUB

    generation = store.generation(user, repository)
    current = home_for(settings.volume_prefix, hub_id, user, repository, generation, LABEL_HUB)
    if not fresh:
        return current, None
    return home_for(settings.volume_prefix, hub_id, user, repository, generation + 1, LABEL_HUB), current


def merge_result(summary):
    """The metrics label of one merge's outcome (pure)."""
    if summary.get("error"):
        return "failed"
    if summary.get("unchanged"):
        return "skipped"
    if summary.get("initial"):
        return "new"
    return "conflicts" if summary.get("conflicts") else "clean"
