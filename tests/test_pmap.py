"""domain/pmap.py: an Overlay is the dict a copy-per-change would have made, and old ones stay as they were."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.domain.pmap import Overlay, flat, with_entry

KEYS = st.sampled_from([f"k{i}" for i in range(40)])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, st.integers(), max_size=30), st.lists(st.tuples(KEYS, st.integers()), max_size=80))
def test_changes_give_what_a_copy_per_change_gives_and_leave_the_old_values_alone(
        base: dict[str, int], changes: list[tuple[str, int]]) -> None:
    snapshot = dict(base)
    want: dict[str, int] = dict(base)
    current: object = base
    history: list[tuple[object, dict[str, int]]] = []
    for key, value in changes:
        current = with_entry(current, key, value)  # type: ignore[arg-type]
        want = {**want, key: value}  # a copy with one entry set: the order a dict keeps
        history.append((current, want))
    for ov, expected in history:  # every version, after all later ones were made
        assert isinstance(ov, Overlay)
        assert list(ov) == list(expected) and list(ov.items()) == list(expected.items())
        assert len(ov) == len(expected) and ov == expected and expected == ov
        assert flat(ov) == expected and list(flat(ov)) == list(expected)
        for key in [f"k{i}" for i in range(40)]:
            assert (key in ov) == (key in expected)
            assert ov.get(key) == expected.get(key)
    assert base == snapshot  # the base itself was never written to


def test_a_change_copies_at_most_the_square_root_of_the_entries() -> None:
    """What keeps a run linear in its batches: the pending changes stay under √n + 1, folds are rare."""
    n = 10_000
    ov: Overlay[str, str] = Overlay({f"B{i}": "Draft" for i in range(n)})
    bases = set()
    for i in range(n):
        ov = ov.with_entry(f"B{i}", "Sent")
        assert len(ov._changes) <= math.isqrt(n) + 1
        bases.add(id(ov._base))
    assert len(bases) <= n // math.isqrt(n) + 2  # one new base per ≈√n changes
    assert all(v == "Sent" for v in ov.values()) and len(ov) == n


def test_flat_is_a_plain_dict_made_once_and_other_mappings_pass_through() -> None:
    ov = with_entry({"a": 1}, "b", 2)
    assert type(flat(ov)) is dict and flat(ov) is flat(ov)
    plain = {"a": 1}
    assert flat(plain) is plain
    assert repr(ov) == "Overlay({'a': 1, 'b': 2})"
