"""Comparing a draw's digest as bytes decides exactly as the float draw does (issue 12's quiet path)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from simulator.domain.faults import draw_threshold


def by_float(digest: bytes, p: float) -> bool:
    """``faults.draw(...) < p`` for a draw whose hash digest is ``digest`` (the definition)."""
    return int.from_bytes(digest, "big") / 2.0**64 < p


PROBABILITIES = [0.0, 5e-324, 1e-19, 2.0**-64, 0.01, 0.05, 1 / 3, 0.5, 0.999, 1 - 2**-53, 1.0, 1.5, math.nan, -0.1]


def test_threshold_is_the_first_digest_that_fails_at_every_probability() -> None:
    for p in PROBABILITIES:
        t = draw_threshold(p)
        if p > 1.0:
            assert t == b"\xff" * 9 and t > b"\xff" * 8
            continue
        v = int.from_bytes(t, "big")
        assert len(t) == 8
        for d in (v - 2, v - 1, v, v + 1, v + 2, 0, 2**64 - 1):
            if 0 <= d < 2**64:
                dig = d.to_bytes(8, "big")
                assert (dig < t) == by_float(dig, p), (p, d)
        # the boundary itself: the last digest below it fires, the threshold does not
        if v > 0:
            assert by_float((v - 1).to_bytes(8, "big"), p)
        assert not by_float(t, p)


def test_known_values() -> None:
    assert draw_threshold(0.0) == bytes(8)
    assert draw_threshold(0.5) == (2**63 - 512).to_bytes(8, "big")  # floats below 2**63 are 1,024 apart
    # 0.01 · 2**64 lies where floats are 32 apart: digests within half of that below it round up to it
    assert draw_threshold(0.01) == (math.ceil(0.01 * 2.0**64) - 15).to_bytes(8, "big")
    # at 1.0 the float rounding of the top 1,024 digests to 2**64 makes them fail, as in draw()
    assert draw_threshold(1.0) == (2**64 - 1024).to_bytes(8, "big")


@given(st.binary(min_size=8, max_size=8), st.floats(min_value=0.0, max_value=1.0))
def test_bytes_comparison_equals_the_float_draw(digest: bytes, p: float) -> None:
    assert (digest < draw_threshold(p)) == by_float(digest, p)


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=-3, max_value=3))
def test_near_the_threshold_of_its_own_probability(d: int, delta: int) -> None:
    p = d / 2.0**64
    t = draw_threshold(p)
    e = min(max(int.from_bytes(t, "big") + delta, 0), 2**64 - 1)
    dig = e.to_bytes(8, "big")
    assert (dig < t) == by_float(dig, p)
