# binderspawner for one lab on GitHub: only the members of one GitHub team log in, each launches the
# lab's private repositories with their own GitHub token, and members share running servers.
# Everything else (Docker host, builds, limits, egress, culling) is config/jupyterhub_config.py,
# loaded first. Start: JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32) jupyterhub -f config/private_lab_config.py
#
# FILL IN marks the values to set; each can also come from the environment variable named with it.
import os

load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyterhub_config.py"))  # noqa: F821
c = get_config()  # noqa: F821

# --- Who can log in: one GitHub team ----------------------------------------------------------
# Register an OAuth app at GitHub (Settings -> Developer settings -> OAuth Apps) with the callback
# URL below, then fill in its id and secret.
c.JupyterHub.authenticator_class = "lab-github"
c.LabGitHubAuthenticator.client_id = os.environ.get("GITHUB_CLIENT_ID", "FILL-IN")  # FILL IN (env)
c.LabGitHubAuthenticator.client_secret = os.environ.get("GITHUB_CLIENT_SECRET", "FILL-IN")  # FILL IN (env)
c.LabGitHubAuthenticator.oauth_callback_url = os.environ.get(  # FILL IN (env): your hub's public URL
    "OAUTH_CALLBACK_URL", "https://binder.FILL-IN.example.org/hub/oauth_callback")
# "org" admits every member of the organisation, "org:team-slug" one team's members (the slug as in
# https://github.com/orgs/<org>/teams/<team-slug>).
c.LabGitHubAuthenticator.allowed_organizations = {
    os.environ.get("BINDERSPAWNER_LAB_TEAM", "FILL-IN-org:FILL-IN-team")  # FILL IN (env)
}
c.Authenticator.allow_all = False
c.Authenticator.admin_users = set(
    filter(
        None,
        os.environ.get(
            "BINDERSPAWNER_ADMINS",
            "").split(",")))  # (env)
# Members' tokens are kept in the hub's database encrypted with JUPYTERHUB_CRYPT_KEY (required,
# in the environment) and refreshed, with membership checked again, before every launch. A member
# removed from the team cannot launch on an old login.
if not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
    raise SystemExit(
        "Set JUPYTERHUB_CRYPT_KEY (e.g. $(openssl rand -hex 32)): members' tokens are stored encrypted.")
# Every member is put in this JupyterHub group, to share servers with the whole lab.
c.LabGitHubAuthenticator.lab_group = "lab"

# --- Repositories: the lab's private ones, with each member's own rights ------------------------
# Launches resolve and clone with the launching member's token (sent only to github.com and
# api.github.com), so a member launches exactly the private repositories they can read. No hub-wide
# token: the hub itself can read nothing private.
c.GitProvider.allowed_hosts = ["github.com"]
c.GitHubProvider.access_token = ""
# Every launch asks GitHub whether this member may read the repository, also for a commit whose
# image is built already (answered from the ETag cache, free of rate limit, when unchanged).
c.RepoProvider.check_access_for_commits = True

# --- Sharing a running server ---------------------------------------------------------------------
# Members may share their own servers (JupyterHub shares) and look up whom to share with, in the
# browser at /hub/binder/share/<me>/<server> (linked from the home page and from inside the session),
# or through the API:
#   POST   /hub/api/shares/<me>/<server>   {"user": "alice"} or {"group": "lab"}
#   DELETE /hub/api/shares/<me>/<server>   the same body revokes it; no body revokes all
#   POST   /hub/api/share-codes/<me>/<server>   a link to accept (JupyterHub's share codes)
# Images with jupyter-collaboration installed let the people sharing a server edit together.
c.JupyterHub.load_roles.append(
    {"name": "user", "scopes": ["self", "shares!user", "read:users:name", "read:groups:name"]})

# --- Pushing back to the repository (off) ---------------------------------------------------------
# True lets members push commits from their own server with their own token, fetched from the hub
# per push; never from a server that was ever shared (revoking does not undo it), nor, with
# persistent homes, from a server on a home that was ever shared.
c.PushBack.enabled = False

# --- Persistent homes: members' work survives culling, restarts and new commits ---------------------
# One Docker volume per member and repository over the image's home (where the repository is):
# edits and new files are kept; a newer commit's files are merged in at start without network or
# credentials, never overwriting a member's changes (conflicts are written beside, listed in
# BINDER-MERGE-<sha>.md and on the progress page). "Start fresh" on the spawn form (or the option
# {"home": "fresh"}) sets the old home aside. Homes unused for expire_days are removed by the
# cleanup service. Docker's local volumes on ext4 cannot be size-limited, so no size_limit is set
# here (set one only on xfs with pquota, or with a driver that enforces it; else launches are refused).
c.PersistentHome.enabled = True
c.PersistentHome.expire_days = 60
c.PersistentHome.total_budget = ""  # e.g. "500G": new homes are refused beyond it
from binderspawner.services import cleanup  # noqa: E402

cleanup.configure(c)  # again: the cleanup service now expires and measures homes too
