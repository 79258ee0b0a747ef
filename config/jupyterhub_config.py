# binderspawner on a single Docker host. Works as it is: `jupyterhub -f config/jupyterhub_config.py`
# on a host where scripts/provision.sh has run (Docker engine + buildx, configurable-http-proxy, the
# base image). scripts/demo.sh starts it with a local git server serving examples/.
# Settings read from the environment are marked (env); everything else is a plain value to edit.
import os

from binderspawner.dockerhost.network import ensure_network

c = get_config()  # noqa: F821 (JupyterHub provides get_config in config files)

# --- The spawner ------------------------------------------------------------------------------
# Users launch a repository: user_options {"repo": URL, "ref": branch|tag|sha, "urlpath": path}
# through the REST API, or the form at /hub/spawn.
c.JupyterHub.spawner_class = "binder-docker"

# --- Launch links, badges, the build API and build logs -------------------------------------------
# /hub/v2/<provider>/<spec> launch links (each repository gets its own named server), the badge at
# /hub/badge_logo.svg, BinderHub's build API at /hub/build/<provider>/<spec>, full build logs at
# /hub/binder/logs/<image>, and build phases on the progress page. (JupyterHub logs that
# extra_handlers is deprecated; it still works and keeps these inside the hub's login and scopes.)
from binderspawner.web.handlers import TEMPLATE_PATH, binder_handlers  # noqa: E402

c.JupyterHub.extra_handlers = binder_handlers()
c.JupyterHub.template_paths = [TEMPLATE_PATH]
c.JupyterHub.allow_named_servers = True

# --- Networking -------------------------------------------------------------------------------
# The public proxy: where users connect.
c.JupyterHub.ip = os.environ.get("BINDERSPAWNER_IP", "127.0.0.1")  # (env)
c.JupyterHub.port = int(os.environ.get("BINDERSPAWNER_PORT", "8000"))  # (env)
# User containers join this Docker network; the hub API listens on its gateway so they can reach
# it (and is not exposed anywhere else).
network = os.environ.get("BINDERSPAWNER_NETWORK", "binderspawner")  # (env)
gateway = ensure_network(network)
c.JupyterHub.hub_ip = gateway
c.JupyterHub.hub_connect_ip = gateway
c.DockerSpawner.network_name = network
c.DockerSpawner.use_internal_ip = True  # the proxy reaches containers on the bridge directly

# --- Who can log in ---------------------------------------------------------------------------
# "dummy" lets anyone in with any name: for a demo on 127.0.0.1 only. For a lab, use one of the
# binderspawner.auth authenticators (GitHub org, GitLab group, OIDC group), or any JupyterHub
# authenticator, and remove allow_all.
c.JupyterHub.authenticator_class = os.environ.get("BINDERSPAWNER_AUTHENTICATOR", "dummy")  # (env)
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}

# --- Where repositories may come from -----------------------------------------------------------
# Host names (shell patterns) users may launch from; empty allows any host.
c.GitProvider.allowed_hosts = [  # (env: comma-separated)
    h for h in os.environ.get("BINDERSPAWNER_ALLOWED_HOSTS", "github.com,gitlab.com,codeberg.org").split(",") if h
]
# How long a resolved branch is reused before it is looked up again (seconds).
c.GitProvider.resolved_ref_ttl = 60

# --- Builds -----------------------------------------------------------------------------------
# 'venv': requirements.txt/apt.txt/postBuild/start on the base image's Python, conda environments
# from conda_channels (below) through the hub, no Docker Hub needed. 'repo2docker': repo2docker's own
# buildpacks (conda, R, Julia...), which need conda-forge and Docker Hub.
c.Repo2DockerBuilder.buildpacks = os.environ.get("BINDERSPAWNER_BUILDPACKS", "venv")  # (env)
c.Repo2DockerBuilder.base_image = "binderspawner-base:bookworm"  # built by scripts/provision.sh
# A pinned Python without a base image (python_base_images: 3.11, 3.13, 3.14) builds with the nearest
# newer one and a warning on the progress page, instead of being refused (README: Python versions).
c.Repo2DockerBuilder.nearest_newer_python = True
# A CA bundle builds must trust when outbound TLS goes through an intercepting proxy ('' for none).
c.Repo2DockerBuilder.extra_ca_bundle = os.environ.get("BINDERSPAWNER_EXTRA_CA", "")  # (env)
c.Repo2DockerBuilder.build_timeout = 1800  # seconds before a build is stopped
# Conda environments (environment.yml, pixi.lock, conda-lock.yml) are solved and fetched on the hub
# with py-rattler from these channels (names or URLs: a mirror for an air-gapped site), and installed
# offline in the image. A repository's own channels: "ignore" (with a warning), "refuse" or "allow".
c.Repo2DockerBuilder.conda_channels = os.environ.get("BINDERSPAWNER_CONDA_CHANNELS", "conda-forge").split()  # (env)
c.Repo2DockerBuilder.conda_repository_channels = "ignore"
c.Repo2DockerBuilder.conda_python = "base-image"  # or "channel": Python from the conda channel
c.BinderSpawner.max_concurrent_builds = 2  # more launches of unbuilt images wait in line
c.BinderSpawner.image_prefix = "binder-"  # or "registry.example.org:5000/binder/"

# --- Limits on every server (mybinder.org's published limits) ---------------------------------
c.DockerSpawner.cpu_limit = 1.0  # CPUs
c.DockerSpawner.mem_limit = "1G"  # swap is capped at this too, so it is a hard limit
c.BinderSpawner.pids_limit = 1024  # processes and threads; stops fork bombs
c.Spawner.start_timeout = 1800  # a first launch includes the build
# Sizes users may pick with the 'size' option, and the most they may pick (0: no cap); groups can
# get more with c.ResourcePolicy.group_config, launch specs with c.SpecControl.spec_config.
c.ResourcePolicy.sizes = {}  # e.g. {"small": {"cpu_limit": 0.5, "mem_limit": "512M"}}
c.ResourcePolicy.max_cpu_limit = 1
c.ResourcePolicy.max_mem_limit = "1G"
# Servers of one repository (mybinder.org: 100) and on the whole hub (0: no limit) at once.
c.Quotas.per_repo_quota = 100
c.Quotas.total_quota = 0
# Per user: servers starting or running plus build API build_only builds at once, and named servers
# kept (stopped ones too; culled ones are removed; one whose last launch failed does not count).
c.Quotas.per_user_quota = 3
from binderspawner.policy.quotas import named_server_limit  # noqa: E402

c.JupyterHub.named_server_limit_per_user = named_server_limit(10)

# --- Network egress from user servers --------------------------------------------------------------
# iptables rules on the user network (the hub runs as root on the Docker host): DNS, http(s) and
# git to public addresses; nothing to private/link-local/metadata addresses or to this host except
# the hub API. If they cannot be installed, no server starts. Add rules first in the list:
# c.EgressPolicy.extra_rules = [{"name": "lab-db", "action": "allow", "to": "10.1.2.3/32",
#                                "protocol": "tcp", "ports": [5432]}]
c.EgressPolicy.enabled = True
c.EgressPolicy.remove_rules = []  # e.g. ["web", "git"]: no internet at all
# Build steps get the same rules without the hub API (on Docker's default bridge, where BuildKit runs
# them). A package index or conda channel on a private address needs a rule of its own:
# c.EgressPolicy.build_extra_rules = [{"name": "devpi", "action": "allow", "to": "10.1.2.4/32",
#                                      "protocol": "tcp", "ports": [3141]}]
c.EgressPolicy.fence_builds = True

# --- Where the hub keeps its state ----------------------------------------------------------------
state = os.environ.get("BINDERSPAWNER_STATE_DIR", "/var/lib/binderspawner")  # (env)
os.makedirs(state, exist_ok=True)
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.pid_file = f"{state}/jupyterhub-proxy.pid"

# --- Lifecycle: idle culling, cleanup, image cache (binderspawner.services.culling / .cleanup) -------------
# Hub side: jupyterhub-idle-culler as a managed service with the least scopes it needs.
c.IdleCuller.timeout = 600  # seconds idle before a server is stopped
c.IdleCuller.interval = 60  # seconds between checks
c.IdleCuller.max_age = 6 * 3600  # stopped even if active (mybinder.org: 6 h); 0 for no limit
# Server side (works while the hub is down): idle kernels and then idle servers end themselves.
c.BinderSpawner.kernel_cull_timeout = 600
c.BinderSpawner.shutdown_no_activity_timeout = 900
# Cleanup service: orphaned builds and containers, build scratch, and the image cache's budget.
c.HubCleanup.lifecycle_dir = f"{state}/lifecycle"
c.HubCleanup.image_cache_budget = os.environ.get("BINDERSPAWNER_IMAGE_CACHE", "50G")  # (env)
c.HubCleanup.interval = 300  # seconds between passes; one runs at hub start
from binderspawner.services import cleanup, culling  # noqa: E402

culling.configure(c)
cleanup.configure(c)

# Prebuild on push (README "Prebuild on push"): forges POST their push events to
# <hub>/hub/binder/webhooks/<github|gitlab|gitea>; a webhook is on when its secret is set. CI posts
# to <hub>/hub/binder/prebuild/<provider>/<spec> with a token holding custom:binder-prebuild.
from binderspawner import prebuild  # noqa: E402

prebuild.configure(c)  # declares the custom:binder-prebuild scope (give it to a CI service's role)
# (env) secrets never go into this file
c.Prebuild.github_secret = os.environ.get("BINDERSPAWNER_GITHUB_WEBHOOK_SECRET", "")
c.Prebuild.gitlab_secret = os.environ.get("BINDERSPAWNER_GITLAB_WEBHOOK_SECRET", "")
c.Prebuild.gitea_secret = os.environ.get("BINDERSPAWNER_GITEA_WEBHOOK_SECRET", "")
# Prebuilt: repositories launched here in the last 14 days, plus these spec patterns.
c.Prebuild.specs = [p for p in os.environ.get("BINDERSPAWNER_PREBUILD_SPECS", "").split() if p]  # (env)
