"""Resource limits as plain data: which limits a launch gets, rendered for each backend (pure).

A launch's limits come from, in order: the hub's defaults (mybinder.org's 1 CPU, 1 GiB), the
settings of the spec patterns that match the launch (c.SpecControl.spec_config, BinderHub's form),
the user's JupyterHub groups (the most generous group wins, field by field), and last the size the
user picked from the admin's list. Only the user's pick is checked against the cap: admins may give
a repository or a group more than users may ask for.
"""

import re
from dataclasses import dataclass, fields, replace
from typing import Optional

from jupyterhub.traitlets import ByteSpecification
from traitlets import Dict, Float, validate
from traitlets.config import LoggingConfigurable

from binderspawner.errors import LaunchError

GiB = 1024**3
MiB = 1024**2

_UNITS = {"K": 1024, "M": MiB, "G": GiB, "T": 1024 * GiB}
_SIZE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Resources:
    """Limits for one user server. Defaults are mybinder.org's published limits (1 CPU, 1 GiB).

    None means "not set" (no limit, or no guarantee). Guarantees matter on Kubernetes (they are
    what the scheduler reserves); on Docker they become a CPU weight and a soft memory reservation.
    """

    cpu_limit: Optional[float] = 1.0
    mem_limit: Optional[int] = 1 * GiB
    pids_limit: Optional[int] = 1024
    # Swap allowed on top of mem_limit. 0 means none: Docker would otherwise allow as much swap
    # as memory again, so a server could use twice its limit.
    swap: int = 0
    cpu_guarantee: Optional[float] = None
    mem_guarantee: Optional[int] = None
    # Size of the container's writable layer (bytes); needs a storage driver that supports it.
    disk_limit: Optional[int] = None


@dataclass(frozen=True)
class ResourceCap:
    """The most a user may ask for with a size; None: no cap on that field."""

    cpu_limit: Optional[float] = None
    mem_limit: Optional[int] = None


RESOURCE_KEYS = tuple(f.name for f in fields(Resources))
CAP_KEYS = ("max_cpu_limit", "max_mem_limit")
# Keys a repository pattern or a group may set (quota is read by quotas.py).
SETTING_KEYS = RESOURCE_KEYS + CAP_KEYS + ("quota",)
_BYTE_KEYS = {"mem_limit", "mem_guarantee", "swap", "disk_limit", "max_mem_limit"}
_FLOAT_KEYS = {"cpu_limit", "cpu_guarantee", "max_cpu_limit"}


def parse_bytes(value):
    """'1G', '512M', '1.5G' or a number of bytes -> int bytes (binary units, as JupyterHub's)."""
    if value is None or isinstance(value, bool):
        raise ValueError(f"expected a size such as '1G' or a number of bytes, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in _UNITS:
        number, unit = text[:-1], _UNITS[text[-1]]
    else:
        number, unit = text, 1
    try:
        return int(float(number) * unit)
    except ValueError:
        raise ValueError(f"expected a size such as '1G' or a number of bytes, got {value!r}") from None


def format_bytes(value):
    for suffix, unit in (("T", 1024 * GiB), ("G", GiB), ("M", MiB), ("K", 1024)):
        if value >= unit and value % (unit // 16 or 1) == 0:
            return f"{value / unit:g}{suffix}"
    return str(value)


def normalize_settings(settings, where="settings"):
    """Validate an admin's settings dict (a pattern's, a group's or a size's); values normalized.

    Raises ValueError naming the bad key: this runs when the hub loads its config.
    """
    if not isinstance(settings, dict):
        raise ValueError(f"{where} must be a dict, got {type(settings).__name__}")
    out = {}
    for key, value in settings.items():
        if key == "description":
            out[key] = str(value)
            continue
        if key not in SETTING_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; known keys: {', '.join(SETTING_KEYS)}")
        try:
            if value is None:
                out[key] = None
            elif key in _BYTE_KEYS:
                out[key] = parse_bytes(value)
            elif key in _FLOAT_KEYS:
                out[key] = float(value)
            else:
                out[key] = int(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {key}: {e}") from None
        if out[key] is not None and out[key] < 0:
            raise ValueError(f"{where}: {key} must not be negative")
    return out


def _most_generous(values):
    present = [v for v in values if v is not None]
    return max(present) if present else None


def group_settings(groups, group_config):
    """Settings from every group the user is in: the largest value of each key wins."""
    chosen = [group_config[g] for g in sorted(groups) if g in group_config]
    merged = {}
    for settings in chosen:
        for key, value in settings.items():
            if key == "description":
                continue
            merged[key] = value if key not in merged else _most_generous([merged[key], value])
    return merged


def validate_size_name(size):
    """A size name from the user: a short word, or a LaunchError."""
    if size is None:
        return None
    if not isinstance(size, str) or not _SIZE_NAME.match(size.strip()):
        raise LaunchError(f"The size {size!r} is not valid: give one of the sizes this hub offers.",
                          field="size")
    return size.strip()


def _apply(resources, settings):
    return replace(resources, **{k: v for k, v in settings.items() if k in RESOURCE_KEYS})


def _describe_cap(cap):
    parts = []
    if cap.cpu_limit is not None:
        parts.append(f"{cap.cpu_limit:g} CPU")
    if cap.mem_limit is not None:
        parts.append(f"{format_bytes(cap.mem_limit)} memory")
    return " and ".join(parts) or "none"


def resolve_resources(base, *, cap=ResourceCap(), repo_settings=None, group_settings=None,
                      sizes=None, size=None):
    """The Resources for one launch (see the module docstring for the order); LaunchError when the
    user's size is unknown or above the cap."""
    resources = base
    caps = {"max_cpu_limit": cap.cpu_limit, "max_mem_limit": cap.mem_limit}
    for settings in (repo_settings or {}, group_settings or {}):
        resources = _apply(resources, settings)
        for key in CAP_KEYS:
            if key in settings:
                caps[key] = settings[key]
    cap = ResourceCap(caps["max_cpu_limit"], caps["max_mem_limit"])
    if size is not None:
        sizes = sizes or {}
        if size not in sizes:
            offered = ", ".join(sorted(sizes)) or "none (ask the admin to define c.ResourcePolicy.sizes)"
            raise LaunchError(f"Unknown size {size!r}. Sizes this hub offers: {offered}.", field="size")
        resources = _apply(resources, sizes[size])
        over = []
        if cap.cpu_limit is not None and (resources.cpu_limit is None or resources.cpu_limit > cap.cpu_limit):
            over.append("CPU")
        if cap.mem_limit is not None and (resources.mem_limit is None or resources.mem_limit > cap.mem_limit):
            over.append("memory")
        if over:
            raise LaunchError(
                f"The size {size!r} asks for more {' and '.join(over)} than you may use: the cap is "
                f"{_describe_cap(cap)} per server. Pick a smaller size, or ask the hub admin to raise "
                "the cap (ResourcePolicy.max_cpu_limit / max_mem_limit, or your group's).",
                field="size", status=403)
    # A guarantee above the limit cannot be honoured; clip it rather than fail the launch.
    if resources.cpu_guarantee and resources.cpu_limit and resources.cpu_guarantee > resources.cpu_limit:
        resources = replace(resources, cpu_guarantee=resources.cpu_limit)
    if resources.mem_guarantee and resources.mem_limit and resources.mem_guarantee > resources.mem_limit:
        resources = replace(resources, mem_guarantee=resources.mem_limit)
    return resources


# --- writable layer size -------------------------------------------------------------------------


def writable_layer_support(driver, driver_status=()):
    """Can Docker limit a container's writable layer (``--storage-opt size``) on this host?

    ``driver`` and ``driver_status`` are `docker info`'s Driver and DriverStatus. Returns
    (True/False/None, why); None means "only if mounted with project quotas", which only the
    engine can tell (it refuses the container if not).
    """
    status = {str(k): str(v) for k, v in (driver_status or ())}
    backing = status.get("Backing Filesystem", "unknown")
    if driver in ("devicemapper", "btrfs", "zfs", "windowsfilter"):
        return True, f"the {driver} storage driver supports it"
    if driver in ("overlay2", "fuse-overlayfs", "overlay"):
        if driver == "overlay2" and backing == "xfs":
            return None, "overlay2 on xfs supports it if the filesystem is mounted with pquota"
        return False, (f"the {driver} storage driver on {backing} cannot limit it: overlay2 needs its "
                       "backing filesystem (under /var/lib/docker) to be xfs mounted with pquota")
    return False, f"the {driver} storage driver cannot limit it"


# --- rendering -------------------------------------------------------------------------------------


def docker_host_config(resources, *, cpu_period=100_000):
    """Docker HostConfig fields (docker-py create_host_config names) for these limits.

    They are merged over DockerSpawner's own (which sets cpu_quota and mem_limit from its traits),
    so the launch's policy wins.
    """
    config = {}
    if resources.mem_limit:
        config["mem_limit"] = resources.mem_limit
        config["memswap_limit"] = resources.mem_limit + resources.swap
    if resources.cpu_limit:
        config["cpu_period"] = cpu_period
        config["cpu_quota"] = int(resources.cpu_limit * cpu_period)
    if resources.pids_limit:
        config["pids_limit"] = resources.pids_limit
    if resources.mem_guarantee:
        config["mem_reservation"] = resources.mem_guarantee
    if resources.cpu_guarantee:
        # Docker has no CPU reservation: a guarantee becomes a weight (1024 = one CPU's share).
        config["cpu_shares"] = max(2, int(resources.cpu_guarantee * 1024))
    if resources.disk_limit:
        config["storage_opt"] = {"size": str(resources.disk_limit)}
    return config


def _cpu_quantity(value):
    millis = round(value * 1000)
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def kubernetes_resources(resources):
    """A container's ``resources`` (requests/limits) for Kubernetes (pure dict).

    Kubernetes has no per-pod swap or pids limit: pids are limited per node (kubelet's
    podPidsLimit), swap is off on most nodes.
    """
    requests, limits = {}, {}
    if resources.cpu_limit:
        limits["cpu"] = _cpu_quantity(resources.cpu_limit)
    if resources.mem_limit:
        limits["memory"] = str(resources.mem_limit)
    if resources.cpu_guarantee:
        requests["cpu"] = _cpu_quantity(resources.cpu_guarantee)
    if resources.mem_guarantee:
        requests["memory"] = str(resources.mem_guarantee)
    if resources.disk_limit:
        limits["ephemeral-storage"] = str(resources.disk_limit)
    out = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def kubespawner_traits(resources):
    """The same limits as KubeSpawner trait values (what the Kubernetes spawner sets per launch)."""
    return {
        "cpu_limit": resources.cpu_limit,
        "cpu_guarantee": resources.cpu_guarantee,
        "mem_limit": resources.mem_limit,
        "mem_guarantee": resources.mem_guarantee,
        "extra_resource_limits": ({"ephemeral-storage": str(resources.disk_limit)}
                                  if resources.disk_limit else {}),
    }


# --- the admin's settings ----------------------------------------------------------------------------


class ResourcePolicy(LoggingConfigurable):
    """Per-repository, per-group and user-selectable limits, on top of the spawner's defaults
    (Spawner.cpu_limit, mem_limit, cpu_guarantee, mem_guarantee, BinderSpawner.pids_limit)."""

    group_config = Dict(
        help="""Settings per JupyterHub group: {"group name": {...}} with keys cpu_limit,
        cpu_guarantee, mem_limit, mem_guarantee ('2G'), swap, pids_limit, disk_limit, max_cpu_limit
        and max_mem_limit (the cap for user-picked sizes). A user in several groups gets, for every
        key, the largest value any of them sets. Group settings apply after repository settings. Example:
        {"lab": {"cpu_limit": 2, "mem_limit": "4G", "max_mem_limit": "8G"}}""",
    ).tag(config=True)

    @validate("group_config")
    def _valid_group_config(self, proposal):
        return {str(group): normalize_settings(settings, f"ResourcePolicy.group_config[{group!r}]")
                for group, settings in proposal.value.items()}

    sizes = Dict(
        help="""Sizes a user may pick with the 'size' server option (a profile list), e.g.
        {"small": {"cpu_limit": 0.5, "mem_limit": "512M", "description": "..."},
         "large": {"cpu_limit": 2, "mem_limit": "4G"}}. A size above the user's cap
        (max_cpu_limit / max_mem_limit, raised per group or repository) is refused with a message
        naming the cap. Empty: users cannot pick a size.""",
    ).tag(config=True)

    @validate("sizes")
    def _valid_sizes(self, proposal):
        out = {}
        for name, settings in proposal.value.items():
            if not _SIZE_NAME.match(str(name)):
                raise ValueError(
                    f"ResourcePolicy.sizes: {name!r} is not a valid size name (letters, digits, . _ -)")
            out[str(name)] = normalize_settings(settings, f"ResourcePolicy.sizes[{name!r}]")
        return out

    max_cpu_limit = Float(
        0,
        help="""The most CPUs a user may ask for by picking a size; 0 for no cap. Applies to the
        user's pick only: admins' repository and group settings may exceed it.""",
    ).tag(config=True)

    max_mem_limit = ByteSpecification(
        0,
        help="The most memory ('4G') a user may ask for by picking a size; 0 for no cap.",
    ).tag(config=True)

    swap = ByteSpecification(
        0,
        help="""Swap a server may use on top of mem_limit ('512M'); 0 for none, so mem_limit is a
        hard limit (Docker would otherwise allow as much swap as memory again).""",
    ).tag(config=True)

    disk_limit = ByteSpecification(
        None,
        allow_none=True,
        help="""Size of each server's writable container layer ('10G'); None for no limit. Needs a
        storage driver that can enforce it (Docker: overlay2 on xfs mounted with pquota,
        devicemapper, btrfs, zfs); where it cannot, launches are refused with a message saying why,
        rather than running without the limit.""",
    ).tag(config=True)

    startup_cpu_grace = Float(
        0,
        help="""Seconds after a server's container starts during which it may use every CPU; its
        CPU limit is applied (docker update) as soon as the server answers, or when this time is up.
        A 0.5 CPU limit about doubles a server's start time (benchmarks/RESULTS.md); a grace of
        30 lets servers start at full speed while no user code but the repository's start script
        runs unlimited, and for at most this long. 0: the limit applies from the first instant.
        Docker only (Kubernetes cannot change a running pod's limits).""",
    ).tag(config=True)

    def for_launch(self, base, spec_settings=None, groups=(), size=None):
        """The Resources for one launch; LaunchError for a bad size.

        ``spec_settings`` are the launch's settings from c.SpecControl.spec_config (speccontrol.py),
        whose resource keys apply here."""
        base = replace(base, swap=self.swap or 0, disk_limit=self.disk_limit or None)
        try:
            repo_settings = normalize_settings(
                {k: v for k, v in (spec_settings or {}).items() if k in SETTING_KEYS},
                "a matching SpecControl.spec_config entry")
        except ValueError as e:
            self.log.error("Bad resource setting: %s", e)
            raise LaunchError(
                f"The hub is misconfigured: {e}. The hub admin must fix it.",
                status=500) from None
        return resolve_resources(
            base,
            cap=ResourceCap(self.max_cpu_limit or None, self.max_mem_limit or None),
            repo_settings=repo_settings,
            group_settings=group_settings(groups, self.group_config),
            sizes=self.sizes,
            size=validate_size_name(size),
        )
