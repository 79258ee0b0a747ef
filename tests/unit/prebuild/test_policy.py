"""Which pushes are prebuilt, repeats, and the hourly prebuild quota (pure)."""

from binderspawner.policy.quotas import HourlyRate
from binderspawner.prebuild import policy

IMAGE = "binder-github-com-org-repo-1a2b3c4d:" + "a" * 40


def test_specs_patterns_match_like_allowed_specs():
    assert policy.allow_refusal("gh/my-lab/course/main", ["^gh/my-lab/"], False, 14) is None
    assert policy.allow_refusal("gh/My-Lab/course/main", ["^gh/my-lab/"], False, 14) is None  # case
    refused = policy.allow_refusal("gh/other/course/main", ["^gh/my-lab/"], False, 14)
    assert "matches none of c.Prebuild.specs" in refused and "last 14 days" in refused


def test_recently_launched_repositories_are_prebuilt_by_default():
    assert policy.allow_refusal("gh/other/repo/main", [], True, 14) is None
    refused = policy.allow_refusal("gh/other/repo/main", [], False, 0)
    assert "c.Prebuild.specs is empty" in refused and "recent_launch_days is 0" in refused


def test_launched_recently_reads_the_repository_part_of_image_names():
    day = 86400
    now = 100 * day
    launches = {"binder-github-com-org-repo-1a2b3c4d:" + "b" * 40: now - 3 * day,
                "binder-github-com-org-other-9f9f9f9f:" + "c" * 40: now}
    assert policy.launched_recently(IMAGE, launches, now, 14)
    assert not policy.launched_recently(IMAGE, launches, now, 2)
    assert not policy.launched_recently(IMAGE, launches, now, 0)
    assert not policy.launched_recently("binder-github-com-org-repo-1a2b3c4e:x", launches, now, 14)


def test_image_repository_with_a_registry_port():
    assert policy.image_repository("registry:5000/binder/x-1:abc") == "registry:5000/binder/x-1"
    assert policy.image_repository("registry:5000/binder/x-1") == "registry:5000/binder/x-1"


def test_seen_forgets_after_its_ttl_and_beyond_its_size():
    now = [0.0]
    seen = policy.Seen(ttl=10, size=2, clock=lambda: now[0])
    seen.add("a")
    assert "a" in seen
    now[0] = 11
    assert "a" not in seen
    seen.add("b"), seen.add("c"), seen.add("d")
    assert "b" not in seen and "c" in seen and "d" in seen
    seen.discard("c")
    assert "c" not in seen


def test_hourly_rate_per_repository_and_total():
    rate = HourlyRate(per_repo=2, total=3)
    for t in (0, 1):
        assert rate.refusal("gh/a/x", t) is None
        rate.admit("gh/a/x", t)
    refused = rate.refusal("gh/a/x", 2)
    assert "gh/a/x was already prebuilt 2 times" in refused and "per_repo_per_hour = 2" in refused
    assert rate.refusal("gh/a/y", 2) is None
    rate.admit("gh/a/y", 2)
    assert "total_per_hour = 3" in rate.refusal("gh/a/z", 3)
    assert rate.retry_after(3) == 3598
    assert rate.refusal("gh/a/x", 3600.5) is None  # the first left the window


def test_hourly_rate_zero_is_no_limit():
    rate = HourlyRate(per_repo=0, total=0)
    for t in range(50):
        rate.admit("gh/a/x", t)
    assert rate.refusal("gh/a/x", 50) is None
