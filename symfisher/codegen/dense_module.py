r"""The kernel module of a family with a fixed number of parameters.

``log_prob``, ``score``, ``hessian_log_prob``, ``fisher``, ``fisher_diag``,
``fvp``, ``cramer_rao``, ``kl``, ``natural_gradient``, ``fisher_sqrt``,
``entropy`` and ``param_checks``, printed from the derivation's closed forms (quadrature where
there are none, :mod:`symfisher.codegen.quadrature_kernels`; the solve and the
square root from the Fisher's entries, :mod:`symfisher.codegen.solve_kernels`);
NaN outside the domain.
"""

from __future__ import annotations

from collections.abc import Mapping

from symfisher.codegen import latent_entropy, quadrature
from symfisher.codegen.backend import JAX, Backend
from symfisher.codegen.emit import (
    CLOSED,
    FIXED_SHAPE,
    QUAD_SOURCES,
    CodegenError,
    Guard,
    body,
    domain_checks,
    domain_guard,
    function,
    header,
    kl_body,
    latex_note,
    probe_point,
    provenance_text,
    stack_matrix,
    support_conditions,
    unpack,
)
from symfisher.codegen.printer import StablePrinting, identifier
from symfisher.codegen.quadrature_kernels import (
    normalizer_note,
    quadrature_entropy,
    quadrature_fisher,
    quadrature_kl,
    quadrature_nodes,
)
from symfisher.codegen.solve_kernels import dense_functions, unavailable
from symfisher.derive.derivation import Derivation
from symfisher.families.normalizer import has_normalizer


def dense_module(
    d: Derivation,
    digest: str,
    *,
    command: str | None = None,
    numeric: bool = False,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    backend: Backend = JAX,
) -> str:
    """Module of a family with a fixed number of parameters.

    Args:
      d: the derivation.
      digest: ``source-sha256`` of the header.
      command: the command that regenerates the file (default:
        :func:`generated_by`).
      numeric: quadrature kernels even where a closed form exists (for tests
        of the quadrature against closed forms).
      ranges: parameter name -> ``(lo, hi)``: where a quadrature rule is
        chosen and its accuracy stated (default for each parameter:
        :func:`symfisher.codegen.quadrature.param_box`).
      backend: the array library the module is printed for.
    """
    fam = d.family
    P = fam.n_params
    B = backend
    printer = B.printer()
    params, xs = fam.params, fam.variables
    theta_lines = ["theta = _theta(theta)", *unpack(params, "theta")]
    x_lines = (
        ["x = _x(x, theta)"]
        + ([] if identifier(xs[0]) == "x" else [f"{identifier(xs[0])} = x"])
        if len(xs) == 1
        else [
            "x = _x(x, theta)",
            *[f"{identifier(v)} = x[..., {j}]" for j, v in enumerate(xs)],
        ]
    )
    ref_x = f"{identifier(params[0])} + {identifier(xs[0])}"
    ref = identifier(params[0])
    probe = probe_point(fam, d.kl_primed)
    msgs, conds = domain_checks(fam, printer)
    quad_fisher = d.regular and (d.fisher is None or numeric)
    quad_kl = d.regular and (d.kl is None or numeric)
    quad_z = has_normalizer(fam.log_density)
    quad_h = d.entropy is None or numeric
    lat = None  # (latent family, log g', rule): the entropy in the latent variable
    if quad_h and fam.latent is not None and len(xs) == 1:
        try:
            lat = latent_entropy.latent_rule(fam, quadrature.param_box(fam, ranges))
        except quadrature.QuadratureError:
            lat = None  # the rule in x below serves instead
    rule, no_rule = None, None
    if quad_fisher or quad_kl or quad_z or (quad_h and lat is None):
        box = quadrature.param_box(fam, ranges)  # bad ranges: an error, not a stub
        try:
            rule = quadrature.build_rule(fam, list(d.score), box)
        except quadrature.QuadratureError as e:
            no_rule = str(e)
    provenance = dict.fromkeys(("log_prob", "score", "hessian_log_prob"), CLOSED)
    if quad_z:
        if rule is None:
            raise CodegenError(
                f"{fam.name}: the normaliser Z(theta) has no closed form and no "
                f"quadrature rule could be built ({no_rule}), so no log_prob"
            )
        for fn in provenance:
            provenance[fn] = rule.description().replace(
                "quadrature: ", "quadrature (the normaliser Z(theta) only): ", 1
            )
    for fn in ("fisher", "fisher_diag", "fvp", "cramer_rao"):
        if not d.regular:
            provenance[fn] = f"not available: {(d.regularity or '').split(';')[0]}"
        elif not quad_fisher:
            provenance[fn] = CLOSED
        elif rule is None:
            provenance[fn] = f"not available: {no_rule}"
        else:
            provenance[fn] = rule.description()
    if quad_kl:
        provenance["kl"] = (
            rule.description() if rule is not None else f"not available: {no_rule}"
        )
    else:
        provenance["kl"] = CLOSED if d.kl is not None else "not available"
    provenance["natural_gradient"] = provenance["fisher_sqrt"] = provenance["fisher"]
    if lat is not None:
        provenance["entropy"] = latent_entropy.provenance(fam, lat[2])
    elif quad_h:
        provenance["entropy"] = (
            rule.description() if rule is not None else f"not available: {no_rule}"
        )
    else:
        provenance["entropy"] = CLOSED
    extra = (
        f"DOMAIN_CHECKS = {tuple(msgs)!r}\nREGULAR = {d.regular!r}\n"
        f"REGULARITY = {d.regularity!r}\n" + provenance_text(provenance)
    )
    if rule is not None or lat is not None:
        claims = {}
        if rule is not None:
            fns = [f for f in QUAD_SOURCES if provenance[f].startswith("quadrature")]
            claims = {f: rule.claim[QUAD_SOURCES[f]] for f in fns}
        if lat is not None:
            claims["entropy"] = lat[2].claim["entropy"]
        box_rule = rule if rule is not None else lat[2]
        extra += (
            f"QUADRATURE_RANGES = {quadrature.ranges_repr(fam, box_rule)}\n"
            f"QUADRATURE_ACCURACY = {claims!r}\n"
        )
    src = header(
        fam,
        digest,
        f"Kernels of the {fam.name} family: {fam.description}.\n\n"
        f"``theta[..., i]`` holds ``PARAMS[i]``; leading axes broadcast. Parameters\n"
        "outside the domain give NaN (``param_checks`` names the bound that fails);\n"
        "``log_prob`` is -inf outside the support.\n",
        tuple(fam.param_names),
        extra,
        FIXED_SHAPE,
        command,
        B,
    )
    if rule is not None:
        src += "\n\n" + quadrature.constants(rule)
    if lat is not None:
        src += "\n\n" + latent_entropy.constants(lat[2])
    src += function(
        "param_checks",
        "theta",
        "Boolean arrays, one per entry of ``DOMAIN_CHECKS``: True where it holds.",
        theta_lines,
        f"({', '.join(conds)}{',' if len(conds) == 1 else ''})",
    )
    guard = Guard(bool(conds))
    if conds:
        src += domain_guard(B)
    lines, outs = body(printer, [fam.log_density], ref_x, probe)
    inside = support_conditions(fam, printer)
    src += function(
        "log_prob",
        "theta, x",
        r"Log-density :math:`\log p_\theta(x)`"
        + ("; -inf outside the support." if inside else ".")
        + (
            latex_note(fam.log_density).rstrip() + normalizer_note(fam, rule)
            if quad_z
            else latex_note(fam.log_density)
        ),
        guard.lines(theta_lines) + x_lines + lines,
        guard(
            B.call("where", " & ".join(inside), outs[0], f"-{B.inf}")
            if inside
            else outs[0]
        ),
    )
    lines, outs = body(printer, list(d.score), ref_x, probe)
    src += function(
        "score",
        "theta, x",
        r"Score :math:`\nabla_\theta \log p_\theta(x)`, shape ``(..., P)``.",
        guard.lines(theta_lines) + x_lines + lines,
        guard(B.stack(outs, -1), 1),
    )
    lines, outs = body(printer, list(d.hessian), ref_x, probe)
    src += function(
        "hessian_log_prob",
        "theta, x",
        r"Hessian :math:`\nabla^2_\theta \log p_\theta(x)`, shape ``(..., P, P)``.",
        guard.lines(theta_lines) + x_lines + lines,
        guard(stack_matrix(outs, P, B), 2),
    )
    if rule is not None:
        src += quadrature_nodes(fam, rule, printer)
    if d.fisher is not None and not quad_fisher:
        F = d.fisher
        lines, outs = body(printer, list(F), ref, probe)
        src += function(
            "fisher",
            "theta",
            r"Fisher information :math:`F(\theta)`, shape ``(..., P, P)``."
            + latex_note(F),
            guard.lines(theta_lines) + lines,
            guard(stack_matrix(outs, P, B), 2),
        )
        lines, outs = body(printer, [F[i, i] for i in range(P)], ref, probe)
        src += function(
            "fisher_diag",
            "theta",
            r"Diagonal of the Fisher information, shape ``(..., P)``.",
            guard.lines(theta_lines) + lines,
            guard(B.stack(outs, -1), 1),
        )
        src += function(
            "fvp",
            "theta, v",
            r"Fisher-vector product :math:`F(\theta) v`, shape ``(..., P)``.",
            [B.arg("v", "v", "theta")],
            B.call("einsum", "'...ij,...j->...i'", "fisher(theta)", "v"),
        )
        src += function(
            "cramer_rao",
            "theta, n",
            r"Cramér–Rao bound :math:`F(\theta)^{-1} / n` for ``n`` i.i.d. draws.",
            [],
            f"{B.linalg('inv', 'fisher(theta)')} / n",
        )
        nonzero = [(i, j) for i in range(P) for j in range(P) if F[i, j] != 0]
        src += dense_functions(P, nonzero, CLOSED, printer)
    elif quad_fisher and rule is not None:
        src += quadrature_fisher(fam, rule, guard, B)
        src += dense_functions(P, None, "quadrature", printer)
    else:
        reason = d.regularity or no_rule or "the Fisher information has no closed form"
        for name, args in [
            ("fisher", "theta"),
            ("fisher_diag", "theta"),
            ("fvp", "theta, v"),
            ("cramer_rao", "theta, n"),
        ]:
            src += (
                f"\n\ndef {name}({args}):\n"
                f'    """Not available: {reason.split(";")[0]}."""\n'
                f"    raise NotImplementedError(FAMILY + ': ' + {reason!r})\n"
            )
        src += unavailable(reason)
    if d.kl is not None and not quad_kl:
        lines, outs = kl_body(printer, d, probe, ref)
        src += function(
            "kl",
            "theta_p, theta_q",
            r"KL divergence :math:`\mathrm{KL}(p_{\theta_p} \| p_{\theta_q})`."
            + latex_note(d.kl),
            guard.lines(
                [
                    "theta_p = _theta(theta_p, 'theta_p')",
                    B.arg("theta_q", "theta_q", "theta_p"),
                    *unpack(params, "theta_p"),
                    *unpack(params, "theta_q", "_q"),
                    *lines,
                ],
                "theta_p",
                "theta_q",
            ),
            guard(outs[0]),
        )
    elif quad_kl and rule is not None:
        src += quadrature_kl(fam, rule, guard, B)
    else:
        src += (
            "\n\ndef kl(theta_p, theta_q):\n"
            '    """Not available: the KL divergence has no closed form here."""\n'
            f"    raise NotImplementedError(FAMILY + ': ' + {d.kl_detail or 'no closed-form KL'!r})\n"
        )
    if lat is not None:
        src += latent_entropy.latent_entropy(fam, lat[0], lat[1], lat[2], guard, B)
    else:
        src += _entropy_kernel(
            d, printer, probe, ref, theta_lines, guard, rule, quad_h, B
        )
    return src


def _entropy_kernel(
    d: Derivation,
    printer: StablePrinting,
    probe: dict,
    ref: str,
    theta_lines: list[str],
    guard: Guard,
    rule: quadrature.Rule | None,
    quad_h: bool,
    B: Backend,
) -> str:
    r"""``entropy(theta)``: the closed form, else the quadrature rule, else a stub."""
    if not quad_h and d.entropy is not None:
        lines, outs = body(printer, [d.entropy], ref, probe)
        return function(
            "entropy",
            "theta",
            r"Entropy :math:`H(\theta) = -\mathbb E_\theta[\log p_\theta(x)]`"
            f" ({d.entropy_method})." + latex_note(d.entropy),
            guard.lines(theta_lines) + lines,
            guard(outs[0]),
        )
    if rule is not None:
        return quadrature_entropy(d.family, rule, guard, B)
    why = d.entropy_detail or "no closed-form entropy and no quadrature rule"
    return (
        "\n\ndef entropy(theta):\n"
        '    """Not available: the entropy has no closed form here."""\n'
        f"    raise NotImplementedError(FAMILY + ': ' + {why!r})\n"
    )
