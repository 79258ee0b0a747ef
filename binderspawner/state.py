"""What a Binder server saves in the hub's database, and what a hub restart makes of it.

The spawner keeps ``launch_state`` ({"phase": preparing|starting|running, repo, ref, commit,
image, fetch_url, quota_key}); these functions persist it early and read it back.
"""

from binderspawner.errors import LaunchError


def save_now(spawner):
    """Persist the spawner's state now (JupyterHub only saves state once start() returns), so a
    hub that dies during a build finds out after its restart."""
    orm_spawner = getattr(spawner, "orm_spawner", None)
    if orm_spawner is None:
        return
    from sqlalchemy import inspect as sa_inspect

    session = sa_inspect(orm_spawner).session
    if session is not None:
        orm_spawner.state = spawner.get_state()
        session.commit()


def binder_state(saved):
    """The launch_state in a spawner's saved state, or None (pure)."""
    binder = saved.get("binder") if isinstance(saved, dict) else None
    return dict(binder) if isinstance(binder, dict) else None


def interrupted_launch(launch_state):
    """The LaunchError for a launch saved while it was being prepared (its hub process died
    during the build), or None (pure)."""
    if not launch_state or launch_state.get("phase") != "preparing":
        return None
    repo = (launch_state.get("options") or {}).get("repo", "the repository")
    return LaunchError(
        f"The launch of {repo} was interrupted because the hub restarted while it was being "
        "prepared (its build was stopped). Launch it again: the build starts over and reuses "
        "what was already built.", status=503)
