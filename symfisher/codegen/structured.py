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

The code that SymPy does not print (the softmax and simplex kernels, the
size checks in ``_theta``, ``_blockdiag``) lives in ``structured_*.py`` of
:mod:`symfisher.codegen.templates`, read as text; ``structured_*_torch.py``
hold the PyTorch twins of the kernels (the size checks and the constants
serve both backends).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symfisher.codegen import emit, solve_kernels, templates
from symfisher.codegen.backend import JAX, Backend
from symfisher.codegen.printer import StablePrinting, identifier
from symfisher.derive.derivation import Derivation
from symfisher.derive.simplify import tidy
from symfisher.families.family import Family


@dataclass(frozen=True)
class Structure:
    """How a catalog family's kernels are built: ``kind`` and, for coordinates, the base."""

    kind: str  # "coordinates", "softmax" or "simplex"
    base: str | None = None


#: templates of the structures (:mod:`symfisher.codegen.templates`), read as text
SIZES = "structured_sizes"
SOFTMAX = "structured_softmax"
SIMPLEX = "structured_simplex"
COORDINATES = "structured_coordinates"

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
    """Shape check in ``_theta`` for a size read off the last axis.

    ``B`` parameter vectors for ``"coordinates"``; at least 2 logits for
    ``"softmax"`` and 1 probability for ``"simplex"``.
    """
    if kind == "coordinates":
        return templates.fill(templates.section(SIZES, "blocks"), BLOCK=B)
    low = 2 if kind == "softmax" else 1
    return templates.fill(templates.section(SIZES, "at least"), LOW=low)


def _template(name: str, backend: Backend) -> str:
    """The template of a structure's kernels for ``backend``."""
    return name if backend is JAX else f"{name}_{backend.name}"


def coordinates_module(
    d: Derivation, base: Derivation, digest: str, backend: Backend = JAX
) -> str:
    """Elementwise kernels over ``d`` independent coordinates of ``base``."""
    be = backend
    fam, bf = d.family, base.family
    B = bf.n_params
    if len(bf.variables) != 1:
        raise emit.CodegenError(f"{bf.name}: a coordinate base needs one variable")
    _prove_coordinates(fam, bf)
    printer = be.printer()
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
    if conds:  # every kernel returns NaN outside the domain; this template cannot
        raise emit.CodegenError(
            f"{fam.name}: coordinates of {bf.name} need an unconstrained base "
            f"(its domain checks: {', '.join(msgs)})"
        )
    extra = (
        f"BASE = {bf.name!r}\nDOMAIN_CHECKS = {tuple(msgs)!r}\n"
        "REGULAR = True\nREGULARITY = None\n"
        + emit.provenance_text(emit.ALL_CLOSED)
        + templates.section(_template(COORDINATES, be), "blockdiag")
    )
    doc = (
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        f"Any dimension d: ``theta[..., j*d:(j+1)*d]`` holds the {bf.name} parameter\n"
        f"``PARAMS[j]`` of each coordinate; ``x`` has shape ``(..., d)``. The Fisher\n"
        "is diagonal per parameter pair, so ``fisher_diag`` and ``fvp`` cost O(d).\n"
        f"Every parameter of {bf.name} is unconstrained (no ``DOMAIN_CHECKS``).\n"
    )
    src = emit.header(
        fam,
        digest,
        doc,
        tuple(bf.param_names),
        extra,
        size_shape_check("coordinates", B),
        backend=be,
    )
    src += emit.function(
        "param_checks",
        "theta",
        "Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds.",
        theta_lines,
        "()",
    )
    lines, outs = emit.body(printer, [bf.log_density], ref_x, probe)
    src += emit.function(
        "log_prob",
        "theta, x",
        r"Log-density :math:`\sum_i \log q(x_i; \theta_i)`.",
        theta_lines + x_lines + lines,
        be.call("sum", outs[0], axis=-1),
    )
    lines, outs = emit.body(printer, list(base.score), ref_x, probe)
    src += emit.function(
        "score",
        "theta, x",
        r"Score, shape ``(..., B d)``.",
        theta_lines + x_lines + lines,
        be.concat(outs, -1),
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
        be.concat(outs, -1),
    )
    nz = [(i, j) for i in range(B) for j in range(B) if F[i, j] != 0]
    lines, outs = emit.body(printer, [F[i, j] for i, j in nz], ref, probe)
    terms: dict[int, list[str]] = {i: [] for i in range(B)}
    for (i, j), out in zip(nz, outs, strict=True):
        terms[i].append(f"{out} * v_{j}")
    v_lines = [
        be.arg("v", "v", "theta"),
        *[f"v_{j} = v[..., {j} * d : {j + 1} * d]" for j in range(B)],
    ]
    src += emit.function(
        "fvp",
        "theta, v",
        r"Fisher-vector product :math:`F v` in O(d), never forming :math:`F`.",
        theta_lines + v_lines + lines,
        be.concat(
            [
                " + ".join(t) if t else be.call("zeros_like", "v_0")
                for t in terms.values()
            ],
            -1,
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
    src += _coordinate_solvers(F, B, names[0], theta_lines, printer, probe, be)
    lines, outs = emit.kl_body(printer, base, probe, ref)
    src += emit.function(
        "kl",
        "theta_p, theta_q",
        r"KL divergence, the sum of the coordinates' KL divergences.",
        [
            "theta_p = _theta(theta_p, 'theta_p')",
            be.arg("theta_q", "theta_q", "theta_p"),
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
        be.call("sum", outs[0], axis=-1),
    )
    if base.entropy is None:
        raise emit.CodegenError(
            f"{fam.name}: coordinates of {bf.name} need a closed-form base entropy"
        )
    lines, outs = emit.body(printer, [base.entropy], ref, probe)
    src += emit.function(
        "entropy",
        "theta",
        r"Entropy, the sum of the coordinates' entropies"
        f" ({base.entropy_method})." + emit.latex_note(base.entropy),
        theta_lines + lines,
        be.call("sum", outs[0], axis=-1),
    )
    return src


def _coordinate_solvers(
    F: sp.Matrix,
    B: int,
    ref: str,
    theta_lines: list[str],
    printer: StablePrinting,
    probe: dict | None,
    backend: Backend = JAX,
) -> str:
    r"""``natural_gradient`` and ``fisher_sqrt`` per coordinate, ``B x B`` blocks, O(d)."""
    nonzero = [(i, j) for i in range(B) for j in range(B) if F[i, j] != 0]
    used = solve_kernels.used_entries(B, nonzero)
    lines, outs = emit.body(printer, [F[i, j] for i, j in used], ref, probe)
    name = dict(zip(used, outs, strict=True))
    e = solve_kernels.elementwise(lambda i, j: name[(i, j)], B, nonzero, printer)
    g_lines = [
        backend.arg("g", "g", "theta"),
        "lam = _damping(damping, g)",
        *[f"g_{j} = g[..., {j} * d : {j + 1} * d]" for j in range(B)],
    ]
    src = emit.function(
        "natural_gradient",
        "theta, g, damping=0.0",
        r"Natural gradient :math:`(F + \lambda I)^{-1} g` per coordinate, shape"
        " ``(..., B d)``, in O(d).\n\n"
        r"    ``damping`` :math:`\lambda \ge 0`. Cramer's rule on each"
        " ``B x B`` block of the\n    closed-form Fisher.\n    ",
        theta_lines + g_lines + lines + e.damped_entries + e.solve,
        backend.concat(e.x, -1),
    )
    zero = backend.call("zeros_like", ref)
    src += emit.function(
        "fisher_sqrt",
        "theta",
        r"Upper-triangular :math:`R` with :math:`R^\top R = F`, shape ``(..., B d, B d)``."
        "\n\n    The Cholesky factor of each ``B x B`` block of the closed-form"
        " Fisher.\n    ",
        theta_lines + lines + e.entries + e.cholesky,
        _grid([zero if r == "0" else r for r in e.R], B),
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


def softmax_module(d: Derivation, digest: str, backend: Backend = JAX) -> str:
    """Kernels of the softmax categorical for any K (``theta`` holds K logits)."""
    fam = d.family
    doc = (
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        "Any number of classes K: ``theta[..., k]`` is the logit of class k and\n"
        "``x`` holds class indices. F = diag(p) - p p^T with p = softmax(theta);\n"
        "``fvp`` costs O(K). The Fisher is singular (F 1 = 0); ``cramer_rao`` uses\n"
        "its pseudo-inverse.\n"
    )
    extra = templates.section(SOFTMAX, "constants") + emit.provenance_text(
        emit.ALL_CLOSED
    )
    return emit.header(
        fam,
        digest,
        doc,
        "z_0..z_{K-1}",
        extra,
        size_shape_check("softmax"),
        backend=backend,
    ) + templates.section(_template(SOFTMAX, backend), "body")


def simplex_module(d: Derivation, digest: str, backend: Backend = JAX) -> str:
    """Kernels of the categorical in probabilities for any K (``theta`` holds K-1)."""
    fam = d.family
    doc = (
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        "Any number of classes K: ``theta[..., i]`` is p_i for i < K-1 and\n"
        "p_{K-1} = 1 - sum(theta). F = diag(1/p) + 1 1^T / p_{K-1}; ``fvp`` and\n"
        "``fisher_diag`` cost O(K). Values outside the simplex give NaN;\n"
        "``param_checks`` names the bound that fails.\n"
    )
    extra = templates.section(SIMPLEX, "constants") + emit.provenance_text(
        emit.ALL_CLOSED
    )
    return emit.header(
        fam,
        digest,
        doc,
        "p_0..p_{K-2}",
        extra,
        size_shape_check("simplex"),
        backend=backend,
    ) + templates.section(_template(SIMPLEX, backend), "body")
