"""The generated non-food set: big enough, varied, the same everywhere, never food."""

import hashlib

from classifier.nonfood import nonfood_images, split


def test_the_set_is_large_varied_and_has_no_repeats() -> None:
    images = nonfood_images()
    assert len(images) >= 60
    families = {item.family for item in images}
    assert {"photo", "chart", "document", "screen", "colour", "noise", "pattern"} <= families
    assert len({item.name for item in images}) == len(images)
    pixels = {hashlib.sha256(item.image.tobytes()).hexdigest() for item in images}
    assert len(pixels) == len(images)  # no photo twice under two names
    assert all(item.image.mode == "RGB" and min(item.image.size) >= 64 for item in images)
    assert not any("coffee" in item.name for item in images)


def test_the_set_is_made_the_same_way_every_time() -> None:
    first, second = nonfood_images(), nonfood_images()
    assert [i.image.tobytes() for i in first] == [i.image.tobytes() for i in second]


def test_fit_and_check_halves_hold_every_kind() -> None:
    images = nonfood_images()
    fit, check = split(images)
    assert len(fit) + len(check) == len(images)
    assert {i.family for i in fit} == {i.family for i in check}
    assert not {i.name for i in fit} & {i.name for i in check}
