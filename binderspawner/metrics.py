"""Prometheus metrics, registered in prometheus_client's default registry, which is the one the hub
serves on ``/hub/metrics``. Module-level, so importing the spawner registers them once per hub."""

import json
import os

from prometheus_client import Counter, Gauge, Histogram

# Builds take from seconds (pip layer cached) to tens of minutes.
BUILD_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
LAUNCH_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, float("inf"))

BUILDS_STARTED = Counter("binderspawner_builds_started", "Image builds started")
BUILDS_FAILED = Counter("binderspawner_builds_failed", "Image builds that failed or timed out")
BUILD_DURATION = Histogram("binderspawner_build_duration_seconds", "Time an image build took",
                           ["status"], buckets=BUILD_BUCKETS)

LAUNCHES = Counter("binderspawner_launches", "Launches by outcome and whether the image had to be built",
                   ["image", "status"])  # image: cached|built|unknown; status: success|failure
LAUNCH_DURATION = Histogram("binderspawner_launch_duration_seconds",
                            "Time from the spawner's start() to the server's container running, "
                            "split by whether the image was cached or built",
                            ["image"], buckets=LAUNCH_BUCKETS)

BUILD_QUEUE_LENGTH = Gauge("binderspawner_build_queue_length", "Builds waiting for a build slot")
BUILDS_RUNNING = Gauge("binderspawner_builds_running", "Builds running now")

SERVER_STOPS = Counter(
    "binderspawner_server_stops",
    "Servers stopped by the hub, by inferred reason: 'idle' (inactive longer than the culler's "
    "timeout when stopped), 'max_age' (older than the culler's max age), 'other' (user, admin, "
    "shutdown). Servers that ended by themselves are not stopped through the spawner and not counted.",
    ["reason"],
)

CACHE_IMAGES = Gauge("binderspawner_image_cache_images", "Built images of this hub on the engine, "
                     "as of the cleanup service's last pass")
CACHE_BYTES = Gauge("binderspawner_image_cache_bytes", "Bytes only this hub's built images use "
                    "(Docker's size minus shared size), as of the cleanup service's last pass")

# persistent homes (binderspawner/homes): merges in the hub, the rest from the cleanup service's summary
HOME_MERGES = Counter("binderspawner_homes_merges", "Starts with a persistent home, by what the start did to "
                      "it: new, skipped (same commit), clean, conflicts, failed", ["result"])
HOMES = Gauge("binderspawner_homes", "Persistent home volumes of this hub, as of the cleanup service's last pass")
HOMES_BYTES = Gauge("binderspawner_homes_bytes", "Bytes the persistent homes use (Docker's volume usage), as of "
                    "the cleanup service's last pass; NaN where not measurable")
HOMES_EXPIRED = Gauge("binderspawner_homes_expired", "Homes the cleanup service removed as expired "
                      "(c.PersistentHome.expire_days), counted since its summary file was made")


def bind_gauges(lifecycle_dir, queue_length):
    """Gauges read on scrape: the queue from ``queue_length()`` (this process's build queue), the
    image cache from the cleanup service's summary file in ``lifecycle_dir``."""
    from binderspawner.services.cleanup import CACHE_SUMMARY

    def cache(key):
        try:
            with open(os.path.join(lifecycle_dir, CACHE_SUMMARY)) as f:
                return float(json.load(f)[key])
        except (OSError, ValueError, KeyError):
            return float("nan")

    def homes(key):
        from binderspawner.homes.records import read_summary

        value = (read_summary(lifecycle_dir) or {}).get(key)
        return float(value) if isinstance(value, (int, float)) and value >= 0 else float("nan")

    BUILD_QUEUE_LENGTH.set_function(queue_length)
    HOMES.set_function(lambda: homes("homes"))
    HOMES_BYTES.set_function(lambda: homes("bytes"))
    HOMES_EXPIRED.set_function(lambda: homes("expired"))
    CACHE_IMAGES.set_function(lambda: cache("images"))
    CACHE_BYTES.set_function(lambda: cache("bytes"))
