"""Tests of symfisher.verify.stats: Holm, z-tests, detectable errors, sample sizes."""

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from symfisher.verify import stats


def _holm_adjusted(p, alpha):
    """Textbook Holm via adjusted p-values (independent of the step-down loop).

    p~_(k) = max_{j <= k} min(1, (m - j + 1) p_(j)); reject where p~ <= alpha.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adj = np.maximum.accumulate(adj)
    out = np.empty(m)
    out[order] = adj
    return out <= alpha


@pytest.mark.parametrize(
    "p, alpha, expected",
    [
        # sorted 0.005 <= .05/4, 0.01 <= .05/3, 0.03 > .05/2: stop
        ([0.01, 0.04, 0.03, 0.005], 0.05, [True, False, False, True]),
        # Holm rejects all three; Bonferroni (0.02) only the first two
        ([0.01, 0.02, 0.03], 0.06, [True, True, True]),
        # step-down stops: 0.03 > .05/2, so 0.035 <= .05 is not reached
        ([0.03, 0.035], 0.05, [False, False]),
        # ties: 0.02 <= .04/2, then 0.02 <= .04/1
        ([0.02, 0.02], 0.04, [True, True]),
        ([0.001, 0.5, 0.011], 0.04, [True, False, True]),
        ([], 0.05, []),
    ],
    ids=["textbook", "beats-bonferroni", "step-down-stops", "ties", "mixed", "empty"],
)
def test_holm_hand_worked(p, alpha, expected):
    got = stats.holm(p, alpha)
    assert got.dtype == bool
    assert got.tolist() == expected
    assert got.tolist() == _holm_adjusted(p, alpha).tolist()


def test_holm_properties_random():
    rng = np.random.default_rng(20240611)
    for trial in range(300):
        m = int(rng.integers(1, 40))
        # a mix of null (uniform) and strongly non-null (tiny) p-values
        p = np.where(rng.random(m) < 0.3, rng.random(m) ** 8, rng.random(m))
        alpha = float(rng.choice([1e-3, 0.01, 0.05, 0.2]))
        h = stats.holm(p, alpha)
        bonf = p <= alpha / m
        assert np.all(h[bonf]), (trial, p, alpha)  # Holm rejects what Bonferroni does
        assert np.array_equal(h, _holm_adjusted(p, alpha)), (trial, p, alpha)
        # monotone: a p-value at most a rejected one is rejected too
        if h.any():
            assert np.all(h[p <= p[h].max()])
        # nothing is rejected when every p exceeds alpha
        assert not stats.holm(alpha + (1 - alpha) * rng.random(m), alpha).any()


def test_holm_controls_familywise_rate():
    """Under the global null with independent p-values: FWER <= alpha (binomial bound)."""
    rng = np.random.default_rng(7)
    runs, m, alpha = 4000, 20, 0.05
    fails = sum(stats.holm(rng.random(m), alpha).any() for _ in range(runs))
    # exact FWER here is 1 - (1 - a/m)^m ~ 0.0488 <= alpha; one-sided 1e-4 bound
    assert fails <= sps.binom.isf(1e-4, runs, alpha)
    assert fails >= sps.binom.ppf(1e-4, runs, 1 - (1 - alpha / m) ** m)


@pytest.mark.parametrize("z", [0.0, 0.3, -1.0, 1.959963984540054, -3.5, 6.0, -8.0])
def test_z_test_matches_scipy(z):
    se, target = 0.37, 1.25
    zz, p = stats.z_test(target + z * se, se, target)
    assert zz == pytest.approx(z, rel=1e-12, abs=1e-12)
    assert p == pytest.approx(2 * (1 - sps.norm.cdf(abs(z))), rel=1e-9, abs=1e-15)
    # an independent formula that stays accurate in the far tail
    assert p == pytest.approx(special.erfc(abs(z) / np.sqrt(2)), rel=1e-12)


def test_z_test_far_tail_and_known_values():
    assert stats.z_test(1.959963984540054, 1.0, 0.0)[1] == pytest.approx(
        0.05, rel=1e-12
    )
    _, p = stats.z_test(30.0, 1.0, 0.0)
    assert p == pytest.approx(special.erfc(30 / np.sqrt(2)), rel=1e-10)
    assert 0 < p < 1e-190  # no underflow to 0 or cancellation to 1 - 1


def test_z_test_pvalues_uniform_under_null():
    """Many z-tests of true means with sample standard errors: p ~ U(0, 1)."""
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, size=(2000, 400))
    p = [stats.z_test(r.mean(), r.std(ddof=1) / np.sqrt(r.size), 2.0)[1] for r in x]
    assert sps.kstest(p, "uniform").pvalue > 1e-3


def test_z_test_zero_standard_error():
    assert stats.z_test(1.5, 0.0, 1.5) == (0.0, 1.0)
    # equal to rounding (1e-12 relative): still exact
    assert stats.z_test(1e6 * (1 + 1e-13), 0.0, 1e6) == (0.0, 1.0)
    z, p = stats.z_test(1.5 + 1e-9, 0.0, 1.5)
    assert z == float("inf") and p == 0.0
    z, p = stats.z_test(float("nan"), 1.0, 0.0)
    assert np.isnan(z) and p == 0.0
    z, p = stats.z_test(1.0, float("nan"), 0.0)
    assert np.isnan(z) and p == 0.0
    assert stats.detectable(0.0, 2.0, 10) == 0.0
    assert stats.samples_for(0.0, 0.02, 10) == 0
    assert np.isnan(stats.detectable(0.1, 0.0, 10))


def test_one_sided_below():
    z, p = stats.one_sided_below(0.9, 0.05, 1.0)
    assert z == pytest.approx(-2.0)
    assert p == pytest.approx(sps.norm.cdf(-2.0), rel=1e-12)
    assert stats.one_sided_below(1.0, 0.0, 1.0) == (0.0, 1.0)
    assert stats.one_sided_below(0.5, 0.0, 1.0)[1] == 0.0


def test_detectable_known_value():
    # z_{1 - 0.05/2} + z_{0.8} = 1.959964 + 0.841621
    assert stats.detectable(1.0, 1.0, 1, alpha=0.05, power=0.8) == pytest.approx(
        2.801585218, rel=1e-8
    )
    # Bonferroni-Holm level alpha / m, relative to |scale|
    z = sps.norm.isf(1e-3 / 40) + sps.norm.isf(0.1)
    assert stats.detectable(0.3, -6.0, 20) == pytest.approx(z * 0.05, rel=1e-12)


@pytest.mark.parametrize("m", [1, 7, 60])
@pytest.mark.parametrize("alpha, power", [(1e-3, 0.9), (0.05, 0.8)])
def test_detectable_has_the_stated_power(m, alpha, power):
    """An error of exactly ``detectable`` is rejected at level alpha/m with ``power``."""
    se, scale = 0.013, 2.5
    delta = stats.detectable(se, scale, m, alpha, power) * scale
    crit = sps.norm.isf(alpha / (2 * m))
    exact = sps.norm.sf(crit - delta / se) + sps.norm.cdf(-crit - delta / se)
    assert power - 1e-12 <= exact <= power + 1e-5  # other tail: < 1e-5
    # and by simulation: z-tests of means shifted by delta
    rng = np.random.default_rng(m)
    zs = rng.normal(delta / se, 1.0, 20000)
    rate = np.mean(2 * sps.norm.sf(np.abs(zs)) <= alpha / m)
    assert abs(rate - exact) <= 4 * np.sqrt(exact * (1 - exact) / zs.size)


@pytest.mark.parametrize("rel_sd", [0.05, 1.0, 3.7, 40.0])
@pytest.mark.parametrize("rel_error", [0.005, 0.02, 0.3])
@pytest.mark.parametrize("m", [1, 33, 500])
def test_samples_for_inverts_detectable(rel_sd, rel_error, m):
    n = stats.samples_for(rel_sd, rel_error, m)
    assert isinstance(n, int) and n >= 1
    assert stats.detectable(rel_sd / np.sqrt(n), 1.0, m) <= rel_error * (1 + 1e-12)
    if n > 1:  # and it is the smallest such n
        assert stats.detectable(rel_sd / np.sqrt(n - 1), 1.0, m) > rel_error
    # round trip the other way: the error detectable with n samples needs n samples
    d = stats.detectable(rel_sd / np.sqrt(n), 1.0, m)
    assert stats.samples_for(rel_sd, d * (1 + 1e-9), m) <= n


def test_check_constructors_set_kind_and_verdict():
    from symfisher.verify.result import Check

    na = Check.not_applicable("f", "KL checks", {"a": 1.0}, "no closed form")
    err = Check.error("f", "kernel fisher", {"a": 1.0}, "NaN")
    assert (na.kind, na.verdict, na.failed) == ("report", "not applicable", False)
    assert (err.kind, err.verdict, err.failed) == ("deterministic", "error", True)
    assert na.point == {"a": 1.0} and err.message == "NaN" and na.entry == ""
