"""Catalog Fisher matrices against the textbook reference (shared/reference)."""

import json
import random

import numpy as np
import pytest
import scipy.stats as st
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import random_point
from symfisher.parse import parse_expr
from tests.conftest import reference_file

with open(reference_file()) as fh:
    REFERENCE = [f for f in json.load(fh)["families"] if isinstance(f["fisher"], list)]

# Our catalog name for each reference entry (the names differ in two places).
CATALOG_NAME = {"exponential_rate": "exponential", "gamma_shape_rate": "gamma"}

# Independent log-densities from scipy, in the reference's parameter names.
SCIPY = {
    "bernoulli": lambda p: st.bernoulli(p),
    "bernoulli_logit": lambda eta: st.bernoulli(1 / (1 + np.exp(-eta))),
    "poisson": lambda lam: st.poisson(lam),
    "exponential_rate": lambda lam: st.expon(scale=1 / lam),
    "normal": lambda mu, sigma: st.norm(mu, sigma),
    "normal_var": lambda mu, v: st.norm(mu, np.sqrt(v)),
    "normal_logstd": lambda mu, omega: st.norm(mu, np.exp(omega)),
    "gamma_shape_rate": lambda a, b: st.gamma(a, scale=1 / b),
    "beta": lambda a, b: st.beta(a, b),
    "von_mises": lambda mu, kappa: st.vonmises(kappa, loc=mu),
}


def _family(entry):
    return sf.family(CATALOG_NAME.get(entry["name"], entry["name"]))


@pytest.mark.parametrize("entry", REFERENCE, ids=[e["name"] for e in REFERENCE])
def test_fisher_matches_textbook(entry):
    fam = _family(entry)
    assert list(fam.param_names) == entry["params"]
    syms = {p.name: p for p in fam.params}
    want = sp.Matrix([[parse_expr(c, syms) for c in row] for row in entry["fisher"]])
    d = sf.derive(fam)
    rng = random.Random(entry["name"])
    for _ in range(3):
        pt = random_point(fam, rng)
        sub = {p: sp.Float(v, 40) for p, v in pt.items()}
        got = np.array(d.fisher.evalf(40, subs=sub).tolist(), dtype=float)
        ref = np.array(want.evalf(40, subs=sub).tolist(), dtype=float)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            np.asarray(d.fisher_at(pt)), ref, rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize("entry", REFERENCE, ids=[e["name"] for e in REFERENCE])
def test_log_density_matches_scipy(entry):
    fam = _family(entry)
    rng = random.Random("scipy-" + entry["name"])
    pt = random_point(fam, rng)
    dist = SCIPY[entry["name"]](**{p.name: v for p, v in pt.items()})
    (x,) = fam.variables
    xs = [0, 1] if fam.is_finite else list(dist.rvs(size=5, random_state=1))
    for xv in xs:
        ours = float(fam.log_density.subs(pt).subs(x, xv).evalf(30))
        theirs = dist.logpmf(xv) if fam.is_discrete else dist.logpdf(xv)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_softmax_reference_description():
    """diag(p) - p p^T, singular along the all-ones direction."""
    d = sf.derive("categorical_softmax", K=4)
    z = d.family.params
    p = sp.Matrix([sp.exp(zi) for zi in z]) / sum(sp.exp(zi) for zi in z)
    ref = sp.diag(*p) - p * p.T
    rng = random.Random(0)
    pt = random_point(d.family, rng)
    sub = {k: sp.Float(v, 40) for k, v in pt.items()}
    np.testing.assert_allclose(
        np.array(d.fisher.evalf(40, subs=sub).tolist(), dtype=float),
        np.array(ref.evalf(40, subs=sub).tolist(), dtype=float),
        rtol=1e-12,
        atol=1e-15,
    )
