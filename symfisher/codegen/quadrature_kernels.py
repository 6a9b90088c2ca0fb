r"""Quadrature kernels of a dense module: nodes, Fisher, KL and entropy by a fixed rule.

Where a family's Fisher information, KL divergence or entropy has no closed form, the
module carries a rule (:mod:`symfisher.codegen.quadrature`) and these functions:
:math:`F \approx \sum_i w_i p_\theta(x_i) s_i s_i^\top` and
:math:`\mathrm{KL} \approx \sum_i w_i p(x_i)(\log p - \log q + \delta\cdot s)(x_i)`,
and the entropy :math:`H \approx -\sum_i w_i p(x_i) \log p(x_i)`, each with the
accuracy estimated at generation time in its docstring.
"""

from __future__ import annotations

from symfisher.codegen import quadrature
from symfisher.codegen.backend import JAX, Backend, for_printer
from symfisher.codegen.emit import Guard, function
from symfisher.codegen.printer import StablePrinting, identifier
from symfisher.codegen.rewrite import stable
from symfisher.families.family import Family


def normalizer_note(fam: Family, rule: quadrature.Rule) -> str:
    """Docstring paragraph of ``log_prob`` when the normaliser is a quadrature sum."""
    return (
        "\n\n    The normaliser :math:`Z(\\theta)` (and, in ``score`` and"
        " ``hessian_log_prob``,\n    its derivatives) is a sum over the quadrature"
        " rule; the rest is closed form.\n    "
        + accuracy_note(fam, rule, "normalizer", "absolute error of log Z")
    )


def accuracy_note(fam: Family, rule: quadrature.Rule, key: str, what: str) -> str:
    """Docstring lines stating the rule, its range and the accuracy ``rule.claim[key]``."""
    moved = [p.name for p in fam.params if p in rule.x_of_y.free_symbols]
    follow = (
        f"    The nodes follow {' and '.join(moved)} (a location-scale map), so the\n"
        "    error does not depend on them.\n"
        if moved
        else ""
    )
    return (
        f"Rule: {rule.description().removeprefix('quadrature: ')}.\n"
        f"    Accuracy: {what} at most {rule.claim[key]:.0e} for\n"
        f"    {quadrature.box_text(fam, rule.box)} (estimated at generation time at\n"
        + (
            "    the corners and centre of that range: the tail beyond the last term is"
            if rule.kind == "sum"
            else "    the corners and centre of that range: difference from the rule of"
            " half\n    the step plus the dropped tail,"
        )
        + f" {rule.error[key]:.1e}; float64 sums).\n"
        + follow
        + "    ``PROVENANCE``, ``QUADRATURE_RANGES`` and ``QUADRATURE_ACCURACY`` say the"
        " same.\n    "
    )


def quadrature_nodes(
    fam: Family, rule: quadrature.Rule, printer: StablePrinting
) -> str:
    """``_quad_nodes(theta)`` and ``_quad_terms(theta)`` of a quadrature module."""
    B = for_printer(printer)
    used = (rule.x_of_y.free_symbols | rule.log_jacobian.free_symbols) - {quadrature.Y}
    lines = [
        f"theta = {B.stop_gradient('theta')}",
        *[
            f"{identifier(p)} = theta[..., {i}, None]"
            for i, p in enumerate(fam.params)
            if p in used
        ],
        f"_y = {B.constant('_QUAD_Y', 'theta')}",
        f"_lw = {B.constant('_QUAD_LOGW', 'theta')}",
        f"_0 = {B.call('zeros_like', 'theta[..., :1]')}",
    ]
    lj = (
        ""
        if rule.log_jacobian == 0
        else f" + {printer.doprint(stable(rule.log_jacobian))}"
    )
    lines += [
        f"x = {printer.doprint(rule.x_of_y)} + _0",
        f"_tiny = {B.call('finfo', 'theta.dtype')}.tiny",
    ]
    ret = f"{B.call('where', B.call('abs', 'x') + ' < _tiny', '0.0 * x', 'x')}, _lw{lj} + _0"
    doc = (
        "Nodes ``x`` and log-weights of the quadrature rule, shapes ``(..., N)``.\n\n"
        "    The map from the fixed nodes follows the parameters but carries no\n"
        "    gradient: the integral does not depend on it. Subnormal nodes are 0:\n"
        "    a compiled kernel may flush them to 0 in one operation and not in\n"
        "    another, and the finiteness checks must see the values that are used.\n    "
    )
    src = function("_quad_nodes", "theta", doc, lines, ret)
    src += function(
        "_quad_keep",
        "ok, lp, x, log_w",
        "Nodes that count: ``ok`` and a weight above e^-80 of the largest.\n\n"
        "    Other nodes get weight 0 and move to the middle node. A node where the\n"
        "    integrand (or its gradient) is not finite in this dtype (next to a\n"
        "    singular end, far in a tail; more of them in float32) would make the\n"
        "    sum NaN or inf; its true contribution is negligible.\n    ",
        [
            f"lwp = {B.call('where', 'ok', 'log_w + lp', f'-{B.inf}')}",
            f"ok = ok & (lwp > {B.call('max', 'lwp', axis=-1, keepdims=True)} - 80.0)",
            f"mid = x[..., {rule.n // 2}, None]",
        ],
        f"{B.call('where', 'ok', 'x', 'mid')}, "
        f"{B.call('where', 'ok', 'log_w', f'-{B.inf}')}",
    )
    src += function(
        "_quad_terms",
        "theta",
        r"Weights :math:`w_i p_\theta(x_i)` and scores at the nodes: "
        "``(..., N)``, ``(..., N, P)``.",
        [
            "x, log_w = _quad_nodes(theta)",
            "th = theta[..., None, :]",
            f"c = {B.stop_gradient('th')}",
            "lp = log_prob(c, x)",
            f"ok = {B.call('isfinite', 'lp')} & "
            + B.call("all", B.call("isfinite", "score(c, x)"), axis=-1),
            "x, log_w = _quad_keep(ok, lp, x, log_w)",
        ],
        f"{B.call('exp', 'log_w + log_prob(th, x)')}, score(th, x)",
        decorator=B.compiled,
    )
    return src


def quadrature_fisher(
    fam: Family, rule: quadrature.Rule, guard: Guard, B: Backend = JAX
) -> str:
    """``fisher``, ``fisher_diag``, ``fvp``, ``cramer_rao`` by the rule."""
    rel = "relative error (to the largest entry)"
    src = function(
        "fisher",
        "theta",
        r"Fisher information :math:`F(\theta)`, shape ``(..., P, P)``, by quadrature"
        " (no closed form).\n\n"
        r"    .. math:: F(\theta) \approx \sum_i w_i\, p_\theta(x_i)\, "
        r"s(\theta; x_i)\, s(\theta; x_i)^\top"
        "\n\n    " + accuracy_note(fam, rule, "fisher", rel),
        guard.lines(["theta = _theta(theta)", "wp, s = _quad_terms(theta)"]),
        guard(B.call("einsum", "'...n,...ni,...nj->...ij'", "wp", "s", "s"), 2),
    )
    src += function(
        "fisher_diag",
        "theta",
        "Diagonal of the Fisher information, shape ``(..., P)``, by quadrature.\n\n"
        "    " + accuracy_note(fam, rule, "fisher", rel),
        guard.lines(["theta = _theta(theta)", "wp, s = _quad_terms(theta)"]),
        guard(B.call("einsum", "'...n,...ni->...i'", "wp", "s * s"), 1),
    )
    src += function(
        "fvp",
        "theta, v",
        r"Fisher-vector product :math:`F(\theta) v`, shape ``(..., P)``, by"
        " quadrature\n"
        r"    (:math:`\sum_i w_i p_\theta(x_i) s_i (s_i \cdot v)`, never forming"
        " :math:`F`).\n\n"
        "    " + accuracy_note(fam, rule, "fisher", "relative error (to |F| |v|)"),
        guard.lines(
            [
                "theta = _theta(theta)",
                B.arg("v", "v", "theta"),
                "wp, s = _quad_terms(theta)",
                f"sv = {B.call('einsum', repr('...ni,...i->...n'), 's', 'v')}",
            ]
        ),
        guard(B.call("einsum", "'...n,...ni->...i'", "wp * sv", "s"), 1),
    )
    src += function(
        "cramer_rao",
        "theta, n",
        r"Cramér–Rao bound :math:`F(\theta)^{-1} / n` for ``n`` i.i.d. draws, from"
        " the\n    quadrature Fisher information.\n\n    "
        + accuracy_note(
            fam,
            rule,
            "cramer_rao",
            f"relative error (to the largest entry; where cond F < {quadrature.MAX_COND:.0e})",
        ),
        [],
        f"{B.linalg('inv', 'fisher(theta)')} / n",
    )
    return src


def quadrature_kl(
    fam: Family, rule: quadrature.Rule, guard: Guard, B: Backend = JAX
) -> str:
    """``kl`` by the rule, with nodes placed for ``theta_p``."""
    return function(
        "kl",
        "theta_p, theta_q",
        r"KL divergence :math:`\mathrm{KL}(p_{\theta_p} \| p_{\theta_q})` by"
        " quadrature (no closed form).\n\n"
        r"    .. math:: \mathrm{KL} \approx \sum_i w_i\, p_{\theta_p}(x_i)"
        r" \big(\log p_{\theta_p}(x_i) - \log p_{\theta_q}(x_i)"
        r" + (\theta_q - \theta_p) \cdot s_{\theta_p}(x_i)\big)"
        "\n\n"
        r"    The score term integrates to 0 (:math:`\mathbb E[s] = 0`) and cancels"
        " the\n    first-order part of the log-ratio, so that the rule's error"
        r" scales as :math:`|\theta_q - \theta_p|^2`"
        "\n    like the KL itself (nearby points keep their relative accuracy)."
        "\n\n    "
        + accuracy_note(
            fam, rule, "kl", "relative error for pairs of distinct points of the range"
        ),
        guard.lines(
            [
                "theta_p = _theta(theta_p, 'theta_p')",
                B.arg("theta_q", "theta_q", "theta_p"),
                "theta_p, theta_q = "
                + B.call("broadcast_arrays", "theta_p", "theta_q"),
                "x, log_w = _quad_nodes(theta_p)",
                f"cp = {B.stop_gradient('theta_p[..., None, :]')}",
                f"cq = {B.stop_gradient('theta_q[..., None, :]')}",
                "lp = log_prob(cp, x)",
                f"ok = {B.call('isfinite', 'lp')} & "
                + B.call("isfinite", "log_prob(cq, x)"),
                "ok = ok & "
                + B.call("all", B.call("isfinite", "score(cp, x)"), axis=-1),
                "x, log_w = _quad_keep(ok, lp, x, log_w)",
                "lp = log_prob(theta_p[..., None, :], x)",
                "lq = log_prob(theta_q[..., None, :], x)",
                "ds = "
                + B.call(
                    "einsum",
                    "'...ni,...i->...n'",
                    "score(theta_p[..., None, :], x)",
                    "theta_q - theta_p",
                ),
            ],
            "theta_p",
            "theta_q",
        ),
        guard(
            B.call("sum", f"{B.call('exp', 'log_w + lp')} * (lp - lq + ds)", axis=-1)
        ),
        decorator=B.compiled,
    )


def quadrature_entropy(
    fam: Family, rule: quadrature.Rule, guard: Guard, B: Backend = JAX
) -> str:
    """``entropy`` by the rule, with nodes placed for ``theta``."""
    return function(
        "entropy",
        "theta",
        r"Entropy :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]` by"
        " quadrature (no closed form).\n\n"
        r"    .. math:: H(\theta) \approx -\sum_i w_i\, p_\theta(x_i)"
        r" \log p_\theta(x_i)"
        "\n\n    "
        + accuracy_note(fam, rule, "entropy", "error relative to max(1, |H|)"),
        guard.lines(
            [
                "theta = _theta(theta)",
                "x, log_w = _quad_nodes(theta)",
                f"c = {B.stop_gradient('theta[..., None, :]')}",
                "lp = log_prob(c, x)",
                f"ok = {B.call('isfinite', 'lp')} & "
                + B.call("all", B.call("isfinite", "score(c, x)"), axis=-1),
                "x, log_w = _quad_keep(ok, lp, x, log_w)",
                "lp = log_prob(theta[..., None, :], x)",
            ]
        ),
        guard("-" + B.call("sum", f"{B.call('exp', 'log_w + lp')} * lp", axis=-1)),
        decorator=B.compiled,
    )
