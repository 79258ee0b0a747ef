"""The image cache keeps an environment image as long as its repository's commits are launched
(services/imagecache.py, builders/contentlayer.py)."""

from binderspawner.services.imagecache import CachedImage, last_used, plan_removal


def image(tag, created=0.0, size=10):
    return CachedImage(id=tag, tags=(tag,), unique_bytes=size, created=created, in_use=False)


def test_an_environment_image_is_used_when_its_repositorys_images_are_launched():
    env, commit = image("binder-x-1:env-" + "a" * 64), image("binder-x-1:" + "c" * 40)
    other = image("binder-y-2:env-b1")
    launches = {commit.tags[0]: 900.0, "binder-y-2:" + "d" * 40: 100.0, "binder-x-1-more:" + "e" * 40: 990.0}
    assert last_used(env, launches) == 900.0
    assert last_used(other, launches) == 100.0
    assert last_used(image("binder-z:env-c", created=50.0), launches) == 50.0  # nothing launched: its build time
    assert last_used(image("binder-x-1:notenv", created=1.0), launches) == 1.0  # only env- tags follow the repo
    plan = plan_removal([env, other], launches, budget_bytes=10, now=2000, grace=100)
    assert [i.id for i in plan] == [other.id]
