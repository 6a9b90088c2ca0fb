r"""Entropy of a family with a declared latent variable, by quadrature in the latent.

For :math:`x = g(u)` with :math:`g` increasing and :math:`u \sim q_\theta`,
:math:`p_\theta(x) = q_\theta(u) / g'(u)`, so

.. math:: H(x) = -\mathbb E_u[\log q_\theta(u) - \log g'(u)]
   = H(u) + \mathbb E_u[\log g'(u)]

(tanh-squashed Gaussian: the Gaussian entropy plus
:math:`\mathbb E[\log(1 - \tanh^2 u)]`). Summing over nodes in :math:`u` keeps
every node representable; nodes in :math:`x` lose the mass where :math:`g(u)`
rounds to an end of the support (tanh beyond :math:`|u| \approx 19` in float64).
The rule is chosen and its accuracy measured on this very integrand
(:func:`symfisher.codegen.quadrature.build_rule` with ``entropy_offset``).
"""

from __future__ import annotations

import sympy as sp

from symfisher.codegen import quadrature
from symfisher.codegen.backend import JAX, Backend
from symfisher.codegen.emit import Guard, body, function, probe_point
from symfisher.codegen.printer import identifier
from symfisher.codegen.quadrature_kernels import accuracy_note
from symfisher.codegen.rewrite import stable
from symfisher.derive.expectation import _log_density_under as log_density_under
from symfisher.families.family import Family


def latent_family(fam: Family) -> tuple[Family, sp.Expr]:
    r"""The family of the latent :math:`u`, and :math:`\log g'(u)` in a stable form.

    :math:`\log g'` is taken from :math:`g'` written with exponentials (for tanh,
    :math:`2u - 2\log(1 + e^{2u}) + 2\log 2`, a softplus once printed).
    """
    lat = fam.latent
    assert lat is not None
    (x,) = fam.variables
    u = lat.u
    logq = log_density_under(fam.log_density, x, lat.g, u)
    logq = sp.expand(sp.expand_log(sp.simplify(logq), force=True))
    dg = sp.simplify(sp.diff(lat.g, u).rewrite(sp.exp))
    offset = sp.expand_log(sp.log(sp.factor(dg)), force=True)
    ufam = Family(
        name=f"{fam.name}_latent",
        params=fam.params,
        domains=fam.domains,
        variables=(u,),
        log_density=logq,
        supports=(lat.support,),
        constraints=fam.constraints,
        description=f"latent variable of {fam.name}",
    )
    return ufam, offset


def latent_rule(
    fam: Family, box: tuple[tuple[float, float], ...]
) -> tuple[Family, sp.Expr, quadrature.Rule]:
    r"""The latent family, :math:`\log g'`, and the rule for the entropy integrand."""
    ufam, offset = latent_family(fam)
    score = [sp.diff(ufam.log_density, p) for p in ufam.params]
    rule = quadrature.build_rule(ufam, score, box, entropy_offset=offset)
    return ufam, offset, rule


def provenance(fam: Family, rule: quadrature.Rule) -> str:
    """``PROVENANCE["entropy"]``: the rule, in the latent variable."""
    lat = fam.latent
    assert lat is not None
    text = rule.description().replace(", x = ", f", {lat.u} = ")
    return f"{text} (latent: x = {sp.sstr(lat.g)}; H = -E[log q(u) - log g'(u)])"


def constants(rule: quadrature.Rule) -> str:
    """``_LATENT_Y`` and ``_LATENT_LOGW``: the nodes and log-weights in ``u``."""
    return quadrature.constants(rule).replace("_QUAD_", "_LATENT_")


def latent_entropy(
    fam: Family,
    ufam: Family,
    offset: sp.Expr,
    rule: quadrature.Rule,
    guard: Guard,
    B: Backend = JAX,
) -> str:
    r"""``entropy(theta)``: :math:`-\sum_i w_i q(u_i)(\log q(u_i) - \log g'(u_i))`."""
    printer = B.printer()
    u = identifier(ufam.variables[0])
    lines = [
        "theta = _theta(theta)",
        *[f"{identifier(p)} = theta[..., {i}, None]" for i, p in enumerate(fam.params)],
        f"_y = {B.constant('_LATENT_Y', 'theta')}",
        f"_lw = {B.constant('_LATENT_LOGW', 'theta')}",
        f"{u} = {B.stop_gradient(printer.doprint(rule.x_of_y))}",
    ]
    if rule.log_jacobian != 0:
        lj = printer.doprint(stable(rule.log_jacobian))
        lines.append(f"_lw = _lw + {B.stop_gradient(lj)}")
    probe = probe_point(ufam)
    blines, outs = body(printer, [ufam.log_density, offset], u, probe)
    lines += [*blines, f"_lq = {outs[0]}", f"_lg = {outs[1]}"]
    lat = fam.latent
    assert lat is not None
    doc = (
        r"Entropy :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]` by"
        " quadrature in the latent\n"
        f"    variable ``{lat.u}`` (:math:`x = {sp.latex(lat.g)}`; no closed form).\n\n"
        r"    .. math:: H(\theta) = H(u) + \mathbb E_u[\log g'(u)] \approx"
        r" -\sum_i w_i\, q_\theta(u_i) \big(\log q_\theta(u_i) - \log g'(u_i)\big)"
        "\n\n    "
        + accuracy_note(ufam, rule, "entropy", "error relative to max(1, |H|)").replace(
            ", x = ", f", {lat.u} = "
        )
    )
    return function(
        "entropy",
        "theta",
        doc,
        guard.lines(lines),
        guard(
            "-" + B.call("sum", f"{B.call('exp', '_lw + _lq')} * (_lq - _lg)", axis=-1)
        ),
        decorator=B.compiled,
    )
