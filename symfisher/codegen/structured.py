r"""Kernels whose size does not grow with the dimension: sizes come from shapes.

Three structures, each used only for the catalog family whose definition it
matches (a user family of the same name gets a dense module):

- **coordinates** (``diag_gaussian``): :math:`\log p = \sum_i \log q(x_i; \theta_i)`
  with :math:`q` a catalog base family; the base derivation is printed
  elementwise over a ``(..., d)`` axis, and the Fisher is block diagonal per
  coordinate, so ``fvp`` is :math:`O(d)`.
- **softmax** (``categorical_softmax``): :math:`p = \operatorname{softmax}(z)`,
  :math:`F = \operatorname{diag}(p) - p p^\top`,
  :math:`F v = p \odot (v - p^\top v)`, :math:`F^{+} = C \operatorname{diag}(1/p) C`
  with :math:`C = I - \mathbf 1 \mathbf 1^\top / K`.
- **simplex** (``categorical``, probabilities :math:`p_0..p_{K-2}`,
  :math:`p_{K-1} = 1 - \sum_i p_i`):
  :math:`F = \operatorname{diag}(1/p) + \mathbf 1 \mathbf 1^\top / p_{K-1}`,
  :math:`F^{-1} = \operatorname{diag}(p) - p p^\top`.

The softmax and simplex formulas are tested against the dense SymPy derivation
at several sizes (``tests/codegen``); the coordinate structure is proved at
generation time (the family's log-density minus the sum of base log-densities
simplifies to zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symfisher.codegen import emit
from symfisher.codegen.printer import KernelPrinter, identifier
from symfisher.derive.derivation import Derivation
from symfisher.derive.simplify import tidy
from symfisher.families.family import Family


@dataclass(frozen=True)
class Structure:
    """How a catalog family's kernels are built: ``kind`` and, for coordinates, the base."""

    kind: str  # "coordinates", "softmax" or "simplex"
    base: str | None = None


#: Catalog name -> structure.
STRUCTURES: dict[str, Structure] = {
    "diag_gaussian": Structure("coordinates", "normal_logstd"),
    "categorical_softmax": Structure("softmax"),
    "categorical": Structure("simplex"),
}


def structure_of(fam: Family) -> Structure | None:
    """The structure of ``fam`` when it is the catalog family of that name."""
    s = STRUCTURES.get(fam.name)
    if s is None:
        return None
    from symfisher.families.catalog import family as catalog_family

    size = dict(fam.size)
    if catalog_family(fam.name, **size).definition_text() != fam.definition_text():
        return None
    return s


def size_shape_check(kind: str, B: int = 1) -> str:
    """Shape check in ``_theta`` for a size read off the last axis."""
    if kind == "coordinates":
        return (
            f"    if theta.ndim == 0 or theta.shape[-1] == 0 or theta.shape[-1] % {B}:\n"
            "        raise ValueError(\n"
            f'            f"{{FAMILY}}: {{name}}.shape[-1] must be a positive multiple of {B} "\n'
            "            f\"(parameters {', '.join(PARAMS)}, each of length d); got shape {theta.shape}\"\n"
            "        )\n"
        )
    low = 2 if kind == "softmax" else 1
    return (
        f"    if theta.ndim == 0 or theta.shape[-1] < {low}:\n"
        "        raise ValueError(\n"
        f'            f"{{FAMILY}}: {{name}}.shape[-1] must be at least {low} "\n'
        '            f"({PARAMS}); got shape {theta.shape}"\n'
        "        )\n"
    )


def coordinates_module(d: Derivation, base: Derivation, digest: str) -> str:
    """Elementwise kernels over ``d`` independent coordinates of ``base``."""
    fam, bf = d.family, base.family
    B = bf.n_params
    if len(bf.variables) != 1:
        raise emit.CodegenError(f"{bf.name}: a coordinate base needs one variable")
    _prove_coordinates(fam, bf)
    printer = KernelPrinter()
    names = [identifier(p) for p in bf.params]
    x = identifier(bf.variables[0])
    theta_lines = [
        "theta = _theta(theta)",
        f"d = theta.shape[-1] // {B}",
        *[f"{n} = theta[..., {j} * d : {j + 1} * d]" for j, n in enumerate(names)],
    ]
    x_lines = ["x = _x(x, theta)"] + ([] if x == "x" else [f"{x} = x"])
    ref_x, ref = f"{names[0]} + {x}", names[0]
    probe = emit.probe_point(bf, base.kl_primed)
    msgs, conds = emit.domain_checks(bf, printer)
    extra = (
        f"BASE = {bf.name!r}\nDOMAIN_CHECKS = {tuple(msgs)!r}\n"
        "REGULAR = True\nREGULARITY = None\n"
        + emit.provenance_text(emit.ALL_CLOSED)
        + "\n\n"
        "def _blockdiag(blocks):\n"
        '    """``(..., B d, B d)`` matrix from a ``B x B`` grid of ``(..., d)`` diagonals."""\n'
        "    rows = [\n"
        "        jnp.concatenate(\n"
        "            [b[..., :, None] * jnp.eye(b.shape[-1], dtype=b.dtype) for b in row], axis=-1\n"
        "        )\n"
        "        for row in blocks\n"
        "    ]\n"
        "    return jnp.concatenate(rows, axis=-2)\n"
    )
    doc = (
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        f"Any dimension d: ``theta[..., j*d:(j+1)*d]`` holds the {bf.name} parameter\n"
        f"``PARAMS[j]`` of each coordinate; ``x`` has shape ``(..., d)``. The Fisher\n"
        "is diagonal per parameter pair, so ``fisher_diag`` and ``fvp`` cost O(d).\n"
        "Values outside the domain give NaN or inf; ``param_checks`` names them.\n"
    )
    src = emit.header(
        fam,
        digest,
        doc,
        tuple(bf.param_names),
        extra,
        size_shape_check("coordinates", B),
    )
    src += emit.function(
        "param_checks",
        "theta",
        "Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds.",
        theta_lines,
        f"({''.join(c + ', ' for c in conds)})",
    )
    lines, outs = emit.body(printer, [bf.log_density], ref_x, probe)
    src += emit.function(
        "log_prob",
        "theta, x",
        r"Log-density :math:`\sum_i \log q(x_i; \theta_i)`.",
        theta_lines + x_lines + lines,
        f"jnp.sum({outs[0]}, axis=-1)",
    )
    lines, outs = emit.body(printer, list(base.score), ref_x, probe)
    src += emit.function(
        "score",
        "theta, x",
        r"Score, shape ``(..., B d)``.",
        theta_lines + x_lines + lines,
        f"jnp.concatenate([{', '.join(outs)}], axis=-1)",
    )
    lines, outs = emit.body(printer, list(base.hessian), ref_x, probe)
    src += emit.function(
        "hessian_log_prob",
        "theta, x",
        r"Hessian of the log-density, shape ``(..., B d, B d)``.",
        theta_lines + x_lines + lines,
        _grid(outs, B),
    )
    F = base.fisher
    lines, outs = emit.body(printer, list(F), ref, probe)
    src += emit.function(
        "fisher",
        "theta",
        r"Fisher information, shape ``(..., B d, B d)``, block diagonal per coordinate.",
        theta_lines + lines,
        _grid(outs, B),
    )
    lines, outs = emit.body(printer, [F[i, i] for i in range(B)], ref, probe)
    src += emit.function(
        "fisher_diag",
        "theta",
        r"Diagonal of the Fisher information, shape ``(..., B d)``, in O(d).",
        theta_lines + lines,
        f"jnp.concatenate([{', '.join(outs)}], axis=-1)",
    )
    nz = [(i, j) for i in range(B) for j in range(B) if F[i, j] != 0]
    lines, outs = emit.body(printer, [F[i, j] for i, j in nz], ref, probe)
    terms: dict[int, list[str]] = {i: [] for i in range(B)}
    for (i, j), out in zip(nz, outs, strict=True):
        terms[i].append(f"{out} * v_{j}")
    v_lines = [
        "v = _theta(v, 'v')",
        *[f"v_{j} = v[..., {j} * d : {j + 1} * d]" for j in range(B)],
    ]
    src += emit.function(
        "fvp",
        "theta, v",
        r"Fisher-vector product :math:`F v` in O(d), never forming :math:`F`.",
        theta_lines + v_lines + lines,
        "jnp.concatenate([{}], axis=-1)".format(
            ", ".join(
                " + ".join(t) if t else "jnp.zeros_like(v_0)" for t in terms.values()
            )
        ),
    )
    Finv = F.inv().applyfunc(tidy)
    lines, outs = emit.body(printer, list(Finv), ref, probe)
    src += emit.function(
        "cramer_rao",
        "theta, n",
        r"Cramér–Rao bound :math:`F^{-1}/n`, inverted per coordinate.",
        theta_lines + lines,
        f"{_grid(outs, B)} / n",
    )
    lines, outs = emit.kl_body(printer, base, probe, ref)
    src += emit.function(
        "kl",
        "theta_p, theta_q",
        r"KL divergence, the sum of the coordinates' KL divergences.",
        [
            "theta_p = _theta(theta_p, 'theta_p')",
            "theta_q = _theta(theta_q, 'theta_q')",
            f"d = theta_p.shape[-1] // {B}",
            *[
                f"{n} = theta_p[..., {j} * d : {j + 1} * d]"
                for j, n in enumerate(names)
            ],
            *[
                f"{n}_q = theta_q[..., {j} * d : {j + 1} * d]"
                for j, n in enumerate(names)
            ],
            *lines,
        ],
        f"jnp.sum({outs[0]}, axis=-1)",
    )
    return src


def _grid(outs: list[str], B: int) -> str:
    rows = [f"[{', '.join(outs[i * B : (i + 1) * B])}]" for i in range(B)]
    return f"_blockdiag([{', '.join(rows)}])"


def _prove_coordinates(fam: Family, bf: Family) -> None:
    """Fail unless ``fam``'s log-density is the sum of ``bf``'s over coordinates."""
    B, n = bf.n_params, fam.n_params
    dim = n // B
    if n % B or len(fam.variables) != dim:
        raise emit.CodegenError(f"{fam.name} is not {dim} coordinates of {bf.name}")
    total = sp.Add(
        *[
            bf.log_density.xreplace(
                {
                    **{p: fam.params[j * dim + i] for j, p in enumerate(bf.params)},
                    bf.variables[0]: fam.variables[i],
                }
            )
            for i in range(dim)
        ]
    )
    if sp.simplify(total - fam.log_density) != 0:
        raise emit.CodegenError(
            f"{fam.name}: log-density is not a sum of {bf.name} log-densities"
        )


SOFTMAX_BODY = r'''

def param_checks(theta):
    """Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds."""
    theta = _theta(theta)
    return (jnp.all(jnp.isfinite(theta), axis=-1),)


def _onehot(x, theta):
    x = jnp.asarray(x)
    return (x[..., None] == jnp.arange(theta.shape[-1])).astype(theta.dtype)


def _lse(theta):
    r""":math:`\log\sum_j e^{z_j} = m + \operatorname{log1p}(s)`, as (m, log1p part).

    :math:`m = \max_j z_j` and :math:`s = \sum_{z_j < m} e^{z_j - m}` plus the
    number of further ties, so :math:`\log p_{j^*}` stays accurate when the top
    probability is close to 1 (where :math:`\sum_j e^{z_j - m} - 1` would cancel).
    """
    m = jax.lax.stop_gradient(jnp.max(theta, axis=-1, keepdims=True))
    d = theta - m
    top = d == 0
    s = jnp.sum(jnp.where(top, 0.0, jnp.exp(d)), axis=-1, keepdims=True)
    # ties beyond the first, and expm1(0) = 0 entries that carry the gradient
    s = s + (jnp.sum(top, axis=-1, keepdims=True) - 1) + jnp.sum(
        jnp.where(top, jnp.expm1(d), 0.0), axis=-1, keepdims=True
    )
    return m, jnp.log1p(s)


def _log_softmax(theta):
    r""":math:`\log p_k = (z_k - m) - \operatorname{log1p}(\cdot)`; see ``_lse``."""
    m, r = _lse(theta)
    return (theta - m) - r


def log_prob(theta, x):
    r"""Log-probability :math:`z_x - \log\sum_k e^{z_k}`; -inf outside 0..K-1."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    logp = _log_softmax(theta)
    inside = jnp.sum(oh, axis=-1) > 0
    return jnp.where(inside, jnp.sum(jnp.where(oh > 0, logp, 0.0), axis=-1), -jnp.inf)


def score(theta, x):
    r"""Score :math:`e_x - p`, shape ``(..., K)``."""
    theta = _theta(theta)
    return _onehot(x, theta) - jax.nn.softmax(theta, axis=-1)


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-(\operatorname{diag}(p) - p p^\top)` (it does not depend on x)."""
    theta = _theta(theta)
    shape = jnp.broadcast_shapes(theta.shape[:-1], jnp.shape(x))
    return -jnp.broadcast_to(fisher(theta), (*shape, theta.shape[-1], theta.shape[-1]))


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(p) - p p^\top`, shape ``(..., K, K)``."""
    theta = _theta(theta)
    p = jax.nn.softmax(theta, axis=-1)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    return eye * fisher_diag(theta)[..., None, :] - (1.0 - eye) * p[..., :, None] * p[..., None, :]


def fisher_diag(theta):
    r"""Diagonal :math:`p_k (1 - p_k)`, with :math:`1 - p_k = -\operatorname{expm1}(\log p_k)`."""
    theta = _theta(theta)
    logp = _log_softmax(theta)
    return jnp.exp(logp) * -jnp.expm1(logp)


def fvp(theta, v):
    r"""Fisher-vector product :math:`p \odot (v - p^\top v)` in O(K)."""
    theta = _theta(theta)
    v = _theta(v, "v")
    p = jax.nn.softmax(theta, axis=-1)
    return p * (v - jnp.sum(p * v, axis=-1, keepdims=True))


def cramer_rao(theta, n):
    r"""Pseudo-inverse bound :math:`F^{+}/n = C \operatorname{diag}(1/p) C / n`.

    The softmax Fisher is singular (adding a constant to every logit changes
    nothing, :math:`F \mathbf 1 = 0`); :math:`C = I - \mathbf 1 \mathbf 1^\top/K`
    projects onto the identifiable directions.
    """
    theta = _theta(theta)
    K = theta.shape[-1]
    inv_p = jnp.exp(-_log_softmax(theta))
    C = jnp.eye(K, dtype=theta.dtype) - 1.0 / K
    return (C * inv_p[..., None, :]) @ C / n


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)`, logs differenced before rounding."""
    theta_p = _theta(theta_p, "theta_p")
    theta_q = _theta(theta_q, "theta_q")
    mp, rp = _lse(theta_p)
    mq, rq = _lse(theta_q)
    # log p_k - log q_k from differences of logits and of the small log1p parts
    diff = (theta_p - theta_q) - ((mp - mq) + (rp - rq))
    return jnp.sum(jnp.exp((theta_p - mp) - rp) * diff, axis=-1)
'''


SIMPLEX_BODY = r'''

def _last(theta):
    r""":math:`p_{K-1} = (1 - p_{i^*}) - \sum_{i \ne i^*} p_i` with :math:`p_{i^*}` the largest.

    :math:`1 - p_{i^*}` is exact when :math:`p_{i^*} \ge 1/2`, so a last
    probability near 0 keeps its relative accuracy.
    """
    top = jax.nn.one_hot(jnp.argmax(theta, axis=-1), theta.shape[-1], dtype=theta.dtype)
    big = jnp.sum(top * theta, axis=-1, keepdims=True)
    return (1.0 - big) - jnp.sum((1.0 - top) * theta, axis=-1, keepdims=True)


def param_checks(theta):
    """Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds."""
    theta = _theta(theta)
    return (jnp.all(theta > 0, axis=-1), jnp.all(theta < 1, axis=-1), _last(theta)[..., 0] > 0)


def _onehot(x, theta):
    x = jnp.asarray(x)
    return (x[..., None] == jnp.arange(theta.shape[-1] + 1)).astype(theta.dtype)


def _logp(theta):
    r""":math:`\log p_k`, k = 0..K-1; :math:`\log p_{K-1}` by log1p when the sum is small."""
    total = jnp.sum(theta, axis=-1, keepdims=True)
    last = jnp.where(total < 0.5, jnp.log1p(-total), jnp.log(_last(theta)))
    return jnp.concatenate([jnp.log(theta), last], axis=-1)


def log_prob(theta, x):
    r"""Log-probability :math:`\log p_x`; -inf outside 0..K-1."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    inside = jnp.sum(oh, axis=-1) > 0
    return jnp.where(inside, jnp.sum(jnp.where(oh > 0, _logp(theta), 0.0), axis=-1), -jnp.inf)


def score(theta, x):
    r"""Score :math:`e_x / p - [x = K-1] / p_{K-1}`, shape ``(..., K-1)``."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    return oh[..., :-1] / theta - oh[..., -1:] / _last(theta)


def hessian_log_prob(theta, x):
    r"""Hessian :math:`-\operatorname{diag}(e_x/p^2) - [x = K-1]\,\mathbf 1\mathbf 1^\top / p_{K-1}^2`."""
    theta = _theta(theta)
    oh = _onehot(x, theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    last = (oh[..., -1:] / _last(theta) ** 2)[..., None]
    return -(oh[..., :-1] / theta**2)[..., :, None] * eye - last


def fisher(theta):
    r"""Fisher information :math:`\operatorname{diag}(1/p) + \mathbf 1\mathbf 1^\top / p_{K-1}`."""
    theta = _theta(theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    return (1.0 / theta)[..., :, None] * eye + (1.0 / _last(theta))[..., None]


def fisher_diag(theta):
    r"""Diagonal :math:`1/p_i + 1/p_{K-1}`, in O(K)."""
    theta = _theta(theta)
    return 1.0 / theta + 1.0 / _last(theta)


def fvp(theta, v):
    r"""Fisher-vector product :math:`v/p + (\sum_i v_i)/p_{K-1}` in O(K)."""
    theta = _theta(theta)
    v = _theta(v, "v")
    return v / theta + jnp.sum(v, axis=-1, keepdims=True) / _last(theta)


def cramer_rao(theta, n):
    r"""Cramér–Rao bound :math:`F^{-1}/n = (\operatorname{diag}(p) - p p^\top)/n`."""
    theta = _theta(theta)
    eye = jnp.eye(theta.shape[-1], dtype=theta.dtype)
    return (theta[..., :, None] * eye - theta[..., :, None] * theta[..., None, :]) / n


def kl(theta_p, theta_q):
    r"""KL divergence :math:`\sum_k p_k (\log p_k - \log q_k)` over all K outcomes."""
    theta_p = _theta(theta_p, "theta_p")
    theta_q = _theta(theta_q, "theta_q")
    logp, logq = _logp(theta_p), _logp(theta_q)
    return jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1)
'''


def softmax_module(d: Derivation, digest: str) -> str:
    """Kernels of the softmax categorical for any K (``theta`` holds K logits)."""
    fam = d.family
    doc = (
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        "Any number of classes K: ``theta[..., k]`` is the logit of class k and\n"
        "``x`` holds class indices. F = diag(p) - p p^T with p = softmax(theta);\n"
        "``fvp`` costs O(K). The Fisher is singular (F 1 = 0); ``cramer_rao`` uses\n"
        "its pseudo-inverse.\n"
    )
    extra = (
        'DOMAIN_CHECKS = ("logits z_k must be finite",)\n'
        "REGULAR = True\nREGULARITY = None\n" + emit.provenance_text(emit.ALL_CLOSED)
    )
    return (
        emit.header(
            fam, digest, doc, "z_0..z_{K-1}", extra, size_shape_check("softmax")
        )
        + SOFTMAX_BODY
    )


def simplex_module(d: Derivation, digest: str) -> str:
    """Kernels of the categorical in probabilities for any K (``theta`` holds K-1)."""
    fam = d.family
    doc = (
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        "Any number of classes K: ``theta[..., i]`` is p_i for i < K-1 and\n"
        "p_{K-1} = 1 - sum(theta). F = diag(1/p) + 1 1^T / p_{K-1}; ``fvp`` and\n"
        "``fisher_diag`` cost O(K). Values outside the simplex give NaN or inf;\n"
        "``param_checks`` names them.\n"
    )
    extra = (
        'DOMAIN_CHECKS = ("p_i must be > 0", "p_i must be < 1", '
        '"sum of p_0..p_{K-2} must be < 1")\n'
        "REGULAR = True\nREGULARITY = None\n" + emit.provenance_text(emit.ALL_CLOSED)
    )
    return (
        emit.header(
            fam, digest, doc, "p_0..p_{K-2}", extra, size_shape_check("simplex")
        )
        + SIMPLEX_BODY
    )
