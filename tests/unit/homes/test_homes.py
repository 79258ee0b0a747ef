"""Pure parts of persistent homes: names and labels, the 'home' option, the budget, expiry, the
progress message, and the ever-shared record in JupyterHub's own tables."""

import re

import pytest
from traitlets.config import Config

from binderspawner.errors import LaunchError
from binderspawner.homes import PersistentHome, StoredHome, budget_refusal, home_for, merge_message, plan_expiry
from binderspawner.homes.records import HomeRecords, choose, home_ever_shared, server_home_ever_shared
from binderspawner.launch.options import parse_launch_options

DAY = 86400


def test_names_are_per_hub_member_and_repository_and_valid_everywhere():
    a = home_for("binder-home-", "hub-1", "Alice.Smith@example.org", "gh/lab/repo")
    assert a == home_for("binder-home-", "hub-1", "Alice.Smith@example.org", "gh/lab/repo")
    others = [home_for("binder-home-", "hub-2", "Alice.Smith@example.org", "gh/lab/repo"),
              home_for("binder-home-", "hub-1", "alice.smith@example.org", "gh/lab/repo"),
              home_for("binder-home-", "hub-1", "Alice.Smith@example.org", "gh/lab/other"),
              home_for("binder-home-", "hub-1", "Alice.Smith@example.org", "gh/lab/repo", generation=1)]
    assert len({a.name, *(o.name for o in others)}) == 5
    for home in [a, *others, home_for("binder-home-", "h", "é" * 300, "x" * 500)]:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", home.name) and len(home.name) <= 63
    assert a.labels["binderspawner.home.user"] == "Alice.Smith@example.org"
    assert a.labels["binderspawner.home.repo"] == "gh/lab/repo" and a.labels["binderspawner.hub"] == "hub-1"


def test_start_fresh_moves_to_the_next_generation_and_keeps_the_old(tmp_path):
    store = HomeRecords(str(tmp_path))
    settings = PersistentHome()
    home, old = choose(store, settings, "hub", "ann", "gh/lab/repo")
    assert old is None and home.generation == 0
    fresh, old = choose(store, settings, "hub", "ann", "gh/lab/repo", fresh=True)
    assert old == home and fresh.generation == 1
    store.set_generation("ann", "gh/lab/repo", 1)
    assert choose(store, settings, "hub", "ann", "gh/lab/repo")[0] == fresh


@pytest.mark.parametrize("value, fresh", [(None, False), ("", False), ("keep", False), ("fresh", True),
                                          (" fresh ", True)])
def test_the_home_option(value, fresh):
    options = {"repo": "https://example.org/r.git"}
    if value is not None:
        options["home"] = value
    assert parse_launch_options(options).fresh_home is fresh


def test_a_bad_home_option_is_refused_naming_it():
    with pytest.raises(LaunchError, match="'home' option 'wipe' is not valid") as e:
        parse_launch_options({"repo": "https://example.org/r.git", "home": "wipe"})
    assert e.value.field == "home"


def test_the_budget():
    assert budget_refusal("", None) is None
    assert budget_refusal("10G", 5 * 1024**3) is None
    assert "c.PersistentHome.total_budget" in budget_refusal("10G", 10 * 1024**3)
    assert "not measured them yet" in budget_refusal("10G", None)
    assert "configure(c) after the c.PersistentHome settings" in budget_refusal("10G", None)


def test_bad_sizes_are_refused_at_config_load():
    with pytest.raises(ValueError):
        PersistentHome(config=Config({"PersistentHome": {"size_limit": "lots"}}))
    with pytest.raises(ValueError):
        PersistentHome(config=Config({"PersistentHome": {"total_budget": "1X"}}))


def test_expiry_oldest_first_never_in_use():
    now = 100 * DAY
    homes = [StoredHome("recent", now - 5 * DAY, False), StoredHome("old", now - 40 * DAY, False),
             StoredHome("older", now - 50 * DAY, False), StoredHome("oldest-in-use", now - 90 * DAY, True),
             StoredHome("just", now - 30 * DAY, False)]
    assert [h.name for h in plan_expiry(homes, now, 30)] == ["older", "old", "just"]
    assert plan_expiry(homes, now, 0) == []


def test_progress_messages_name_conflicts_and_failures():
    sha = "abcdef1234567890" * 2 + "abcdefgh"
    assert merge_message({"unchanged": True}, sha) is None and merge_message({"initial": True}, sha) is None
    text = merge_message({"taken": 2, "deleted": 1, "note": "BINDER-MERGE-abcdef1.md", "conflicts": [
        {"path": "nb.ipynb", "beside": "nb.abcdef1.ipynb"}, {"path": "gone.txt", "beside": None}]}, sha)
    assert "2 file(s) updated" in text and "nb.ipynb (new version: nb.abcdef1.ipynb)" in text
    assert "gone.txt" in text and "BINDER-MERGE-abcdef1.md" in text
    failed = merge_message({"error": "boom"}, sha)
    assert "could not be merged" in failed and "boom" in failed and "fresh" in failed
    assert "could not be merged" in merge_message(None, sha)


def test_a_shared_home_stays_marked_for_later_servers_on_it():
    """JupyterHub's own tables (sqlite in memory): the record follows the home, not the server."""
    from jupyterhub import orm

    from binderspawner.auth import pushback

    db = orm.new_session_factory("sqlite://")()
    owner, other = orm.User(name="ann"), orm.User(name="bob")
    db.add_all([owner, other])
    db.commit()
    server = orm.Spawner(user=owner, name="s", state={"binder": {"home": "binder-home-ann-1-0"}})
    elsewhere = orm.Spawner(user=owner, name="t", state={"binder": {"home": "binder-home-ann-2-0"}})
    plain = orm.Spawner(user=owner, name="u")
    db.add_all([server, elsewhere, plain])
    db.commit()
    assert home_ever_shared(db, "binder-home-ann-1-0") is None
    orm.Share.grant(db, server, other)
    orm.Share.revoke(db, server, other)
    assert home_ever_shared(db, "binder-home-ann-1-0")
    assert not server_home_ever_shared(db, elsewhere) and not pushback.ever_shared(db, elsewhere)
    db.delete(server)
    db.commit()
    later = orm.Spawner(user=owner, name="s", state={"binder": {"home": "binder-home-ann-1-0"}})
    db.add(later)
    db.commit()
    assert server_home_ever_shared(db, later) and pushback.ever_shared(db, later)
    orm.ShareCode.new(db, plain, scopes=["access:servers!server=ann/u"])  # no home: nothing recorded
    assert home_ever_shared(db, None) is None


def test_the_form_offers_start_fresh_only_with_homes_on():
    from types import SimpleNamespace

    from binderspawner.homes import form_field

    off = SimpleNamespace(config=Config())
    on = SimpleNamespace(config=Config({"PersistentHome": {"enabled": True}}))
    assert form_field(off) == "" and form_field(SimpleNamespace()) == ""
    assert 'name="home" value="fresh"' in form_field(on)
    # the form says what happens to the old home, as the progress page does after the launch
    assert "removed after 30 days unused" in form_field(on) and "not deleted" not in form_field(on)
    lab = SimpleNamespace(config=Config({"PersistentHome": {"enabled": True, "expire_days": 0}}))
    assert "set aside (kept untouched)" in form_field(lab)


@pytest.mark.parametrize("line", [
    '[1]', '"ok"', '{"conflicts": ["nb.ipynb"]}', '{"conflicts": [{"path": 1}]}', '{"taken": "all"}',
    '{"skipped": [{"x": 1}]}', '{"error": {"nested": true}}', '{"note": 7}',
])
def test_a_helper_result_of_another_shape_is_a_failed_merge(line):
    """The helper runs the launch image's python3, which the repository may replace."""
    from binderspawner.homes import helper_summary

    summary = helper_summary("noise\nbinder-home-merge: " + line + "\n")
    assert "not a merge summary" in summary["error"]
    assert "could not be merged" in merge_message(summary, "a" * 40)


def test_a_helper_result_of_the_merge_s_shape_is_read():
    from binderspawner.homes import helper_summary, merge

    good = {"commit": "a" * 40, "base": None, "taken": 1, "deleted": 0, "skipped": ["x (why)"],
            "conflicts": [{"path": "nb.ipynb", "action": "beside", "beside": "nb.aaaaaaa.ipynb"}], "note": "N.md"}
    assert helper_summary(f"{merge.MARKER}{__import__('json').dumps(good)}\n") == good
    assert "without a result" in helper_summary("python3: not found\n")["error"]
