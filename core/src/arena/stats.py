"""Significance of a difference between two success rates, without scipy.

``arena compare`` asks "is run B's success rate on this task different from
run A's?" for each task. The default is the two-sided two-proportion z-test
with pooled variance; it relies on a normal approximation that is poor for
small counts, so when any expected cell count is below 5 (the textbook rule)
Fisher's exact test is used instead. Both are written out here because the
formulas are short and pulling in scipy for them is not worth the weight.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["ALPHA", "ProportionTest", "two_proportion_z", "fisher_exact", "compare_proportions"]

#: significance level used by ``arena compare``
ALPHA = 0.05

#: Fisher's test sums tables "at most as likely" as the observed one; this
#: relative tolerance keeps float noise from excluding tables that tie with it
#: (the same tolerance scipy uses).
_FISHER_RTOL = 1 + 1e-7


@attrs.frozen
class ProportionTest:
    """Outcome of comparing ``s1/n1`` (baseline) with ``s2/n2``."""

    difference: float
    p_value: float
    method: str  # "z-test" or "fisher"
    significant: bool

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


def two_proportion_z(s1: int, n1: int, s2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test.

    z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (s1 + s2) / (n1 + n2);
    p-value = erfc(|z| / sqrt(2)). Identical rates (including all-0 or all-1,
    where the variance is 0) give 1.
    """
    _check(s1, n1)
    _check(s2, n2)
    p1, p2 = s1 / n1, s2 / n2
    pooled = (s1 + s2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0.0:
        return 1.0
    z = (p2 - p1) / math.sqrt(var)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def fisher_exact(s1: int, n1: int, s2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test on the 2x2 table [[s1, n1-s1], [s2, n2-s2]].

    With the margins fixed, the successes of the first row follow a
    hypergeometric law; the p-value is the total probability of every table
    no more likely than the observed one.
    """
    _check(s1, n1)
    _check(s2, n2)
    total, successes = n1 + n2, s1 + s2
    denom = math.comb(total, successes)

    def prob(k: int) -> float:
        return math.comb(n1, k) * math.comb(n2, successes - k) / denom

    observed = prob(s1)
    lo, hi = max(0, successes - n2), min(n1, successes)
    p = sum(q for q in (prob(k) for k in range(lo, hi + 1)) if q <= observed * _FISHER_RTOL)
    return min(1.0, p)


def compare_proportions(s1: int, n1: int, s2: int, n2: int, alpha: float = ALPHA) -> ProportionTest:
    """z-test when every expected count is >= 5, else Fisher's exact test."""
    _check(s1, n1)
    _check(s2, n2)
    pooled = (s1 + s2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) < 5:
        method, p = "fisher", fisher_exact(s1, n1, s2, n2)
    else:
        method, p = "z-test", two_proportion_z(s1, n1, s2, n2)
    return ProportionTest(difference=s2 / n2 - s1 / n1, p_value=p, method=method, significant=p < alpha)


def _check(s: int, n: int) -> None:
    if n <= 0 or not 0 <= s <= n:
        raise ValueError(f"expected 0 <= successes <= n and n > 0, got successes={s}, n={n}")
