r"""``generated/CATALOG.md`` and the README catalog table, rendered from derivations.

Per family: parameters and domains, support, :math:`\log p_\theta(x)`, the
Fisher matrix :math:`F(\theta)`, :math:`\mathrm{KL}(p_\theta\|p_{\theta'})`,
the entropy :math:`H(\theta)` and how it was obtained (LaTeX from ``sympy.latex`` in fenced ``math`` blocks), how each route was obtained,
the agreement of each pair of routes, the regularity report, the kernel module
and the recorded verification verdict. Pure functions of their arguments, with
nothing that varies between runs (no times, no dates): the same derivations
give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sympy as sp

from symfisher.derive.derivation import ROUTES, Derivation
from symfisher.derive.policy_derivation import PolicyDerivation
from symfisher.families.domains import set_text
from symfisher.latex import latex, tidy
from symfisher.publish.derivation_report import (
    LETTER,
    agreement_cell,
    fisher_cell,
    short_method,
)
from symfisher.publish.record import Verdict

CATALOG_NAME = "CATALOG.md"
README_START = "<!-- catalog-table:start -->"
README_END = "<!-- catalog-table:end -->"

ROUTE_TITLE = {
    "score_covariance": "1: score covariance E[s sᵀ]",
    "neg_expected_hessian": "2: negative expected Hessian −E[H]",
    "kl_hessian": "3: Hessian of KL(θ ‖ θ′) at θ′ = θ",
}
ROUTE_LATEX = {
    "score_covariance": r"\mathbb{E}[s s^\top]",
    "neg_expected_hessian": r"-\mathbb{E}[H]",
    "kl_hessian": r"\nabla^2_{\theta'} \mathrm{KL}",
}
MEAN_SCORE = {
    "proved": "E[s] = 0 proved",
    "tested": "E[s] = 0 tested at random points (50 digits)",
    "nonzero": "E[s] ≠ 0",
    "unresolved": "E[s] = 0 unresolved",
}
LEGEND = (
    "Routes: 1 score covariance E[s sᵀ], 2 −E[H], 3 Hessian of the closed-form "
    "KL at θ′ = θ. Agreement of routes 1–2, 1–3, 2–3: P proved "
    "(simplify(a − b) = 0), T tested (equal to 10⁻⁴⁰ at random points, 50 "
    "digits), D differs, U unresolved (a route has no closed form)."
)


# -- small renderers ------------------------------------------------------------
def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return " ".join(text.split()).replace("|", r"\|")


def prose(text: str) -> str:
    """Plain text safe in Markdown prose (``**`` of SymPy powers escaped)."""
    return text.replace("*", r"\*")


def params_text(d: Derivation) -> str:
    """``a ∈ (0, ∞), b ∈ (0, ∞)``: each parameter with its domain."""
    f = d.family
    return ", ".join(
        f"{p.name} ∈ {set_text(dom)}"
        for p, dom in zip(f.params, f.domains, strict=True)
    )


def title(d: Derivation) -> str:
    """Family name with its size keywords, e.g. ``categorical_softmax (K=3)``."""
    size = ", ".join(f"{k}={v}" for k, v in d.family.size)
    return d.family.name + (f" ({size})" if size else "")


def math_block(
    lhs: str, expr: sp.Basic, names: Mapping[sp.Symbol, str] | None = None
) -> str:
    r"""Display math ``lhs = latex(expr)`` in a fenced ``math`` block.

    A fence, not ``$$``: GitHub renders both, but only the fence keeps the
    mid-line ``\\`` row breaks of ``sympy.latex`` matrices intact.
    """
    body = latex(tidy(expr), symbol_names=dict(names or {}))
    return f"```math\n{lhs} = {body}\n```"


def primed_names(d: Derivation) -> dict[sp.Symbol, str]:
    r"""LaTeX names of the primed parameters: ``mu'`` -> ``\mu'``."""
    out = {}
    for q in d.kl_primed:
        p = d.family.unprimed(q)
        if p is not None:
            out[q] = latex(p) + "'"
    return out


def route_method(d: Derivation, route: str) -> str:
    """How a route was obtained (``unresolved`` when it has no closed form).

    Route 3 without a closed-form KL but compared numerically (the Hessian of
    the quadrature KL) keeps its method.
    """
    method = d.provenance[route][0]
    numeric = method == "Hessian of the quadrature KL (numeric, 50 digits)"
    return method if d.routes[route] is not None or numeric else "unresolved"


def provenance_text(d: Derivation) -> str:
    """``1 exp-family · 2 exp-family · 3 KL: Bregman``: each route's method, short."""
    return " · ".join(
        f"{i + 1} {short_method(route_method(d, r))}" for i, r in enumerate(ROUTES)
    )


def entropy_cell(d: Derivation) -> str:
    """``closed form (exp-family A − η·∇A)`` or ``numeric (quadrature kernel)``."""
    if d.entropy is not None:
        return f"closed form ({short_method(d.entropy_method)})"
    return "numeric (quadrature kernel)"


def kernel_link(name: str, prefix: str = "") -> str:
    """Markdown link to a family's kernel module."""
    return f"[{name}.py]({prefix}{name}.py)"


# -- one family -----------------------------------------------------------------
def family_section(d: Derivation, verdict: Verdict) -> str:
    """The ``## name`` section of one family (Markdown, ends with a newline)."""
    f = d.family
    name = f.name
    out = [f"## {name}", ""]
    if f.description:
        end = "" if f.description.endswith(".") else "."
        out += [prose(f.description) + end, ""]
    if f.size:
        out += ["Size: " + ", ".join(f"{k} = {v}" for k, v in f.size) + ".", ""]
    out += ["| parameter | domain |", "|---|---|"]
    out += [
        f"| `{p.name}` | {cell(set_text(dom))} |"
        for p, dom in zip(f.params, f.domains, strict=True)
    ]
    out.append("")
    if f.constraints:
        out += [
            "Constraints: " + prose("; ".join(t for _, t in f.constraints)) + ".",
            "",
        ]
    xs = ", ".join(f"`{v.name}`" for v in f.variables)
    out += [f"Support: {xs} ∈ {set_text(f.support)}.", ""]
    out += ["Log-density:", "", math_block(r"\log p_\theta(x)", f.log_density), ""]
    if not d.regular:
        note = (d.regularity or "").removeprefix("non-regular: ")
        out += [f"**Non-regular:** {prose(note)}.", ""]
    if d.fisher is not None:
        out += ["Fisher information:", "", math_block(r"F(\theta)", d.fisher), ""]
    else:
        why = "non-regular" if not d.regular else "no agreed closed form"
        out += [f"Fisher information: none claimed ({why}). The routes give:", ""]
        for r in ROUTES:
            m = d.routes[r]
            if m is not None:
                out += [math_block(f"F_{{{ROUTE_LATEX[r]}}}", m), ""]
    kl_lhs = r"\mathrm{KL}(p_\theta \,\|\, p_{\theta'})"
    if d.kl is not None:
        detail = f"; {prose(d.kl_detail)}" if d.kl_detail else ""
        out += [
            f"KL divergence ({d.kl_method}{detail}):",
            "",
            math_block(kl_lhs, d.kl, primed_names(d)),
        ]
    else:
        detail = f": {prose(d.kl_detail)}" if d.kl_detail else ""
        out.append(f"KL divergence: no closed form{detail}.")
    out.append("")
    if d.entropy is not None:
        detail = f"; {prose(d.entropy_detail)}" if d.entropy_detail else ""
        out += [
            f"Entropy ({d.entropy_method}{detail}):",
            "",
            math_block(r"H(\theta)", d.entropy),
        ]
    else:
        detail = f": {prose(d.entropy_detail)}" if d.entropy_detail else ""
        out.append(
            f"Entropy: no closed form{detail}; the kernel `entropy` integrates "
            "−p log p by quadrature."
        )
    out += ["", "| route | how it was obtained | detail |", "|---|---|---|"]
    out += [
        f"| {ROUTE_TITLE[r]} | {cell(route_method(d, r))} | {cell(d.provenance[r][1])} |"
        for r in ROUTES
    ]
    out += ["", "| routes | agreement | how |", "|---|---|---|"]
    for (a, b), status in d.agreement.items():
        pair = f"{ROUTES.index(a) + 1} = {ROUTES.index(b) + 1}"
        detail = d.agreement_detail.get((a, b), "")
        out.append(f"| {pair} | {status} | {cell(detail)} |")
    out += [
        "",
        f"Mean score: {MEAN_SCORE.get(d.mean_score_status, d.mean_score_status)}.",
        "",
    ]
    if verdict.source_sha256 is not None:
        out.append(
            f"Kernels: {kernel_link(name)} (source-sha256 "
            f"`{verdict.source_sha256[:12]}`)."
        )
    else:
        out.append("Kernels: none.")
    out += ["", f"Verification: {verdict.text}.", ""]
    return "\n".join(out)


# -- the catalog ----------------------------------------------------------------
def summary_table(
    derivations: Sequence[Derivation], verdicts: Sequence[Verdict]
) -> str:
    """Summary table: family, parameters, Fisher (short), agreement, entropy, kernels, verified."""
    rows = [
        "| family | parameters | Fisher | agreement | entropy | kernels | verified |",
        "|---|---|---|---|---|---|---|",
    ]
    for d, v in zip(derivations, verdicts, strict=True):
        name = d.family.name
        kern = kernel_link(name) if v.source_sha256 is not None else "none"
        rows.append(
            f"| [{cell(title(d))}](#{name}) | {cell(params_text(d))} | "
            f"`{cell(fisher_cell(d, 60))}` | {agreement_cell(d)} | "
            f"{cell(entropy_cell(d))} | {kern} | "
            f"{cell(v.short)} |"
        )
    return "\n".join(rows)


def catalog_text(
    derivations: Sequence[Derivation],
    verdicts: Sequence[Verdict],
    extra_sections: Sequence[str] = (),
) -> str:
    """The whole ``CATALOG.md``: summary table, one section per family.

    Args:
      derivations: the catalog's derivations, in display order.
      verdicts: one verification verdict per derivation.
      extra_sections: pre-rendered Markdown sections (each starting with
        ``## name``) appended under "State-conditioned policies".
    """
    if len(derivations) != len(verdicts):
        raise ValueError(
            f"verdicts: need one per derivation ({len(derivations)}), "
            f"got {len(verdicts)}"
        )
    out = [
        "<!-- GENERATED by `symfisher generate`. DO NOT EDIT. -->",
        "# symfisher catalog",
        "",
        "Each family's parameters, log-density, Fisher information (three "
        "independent routes and how they agree), KL divergence, entropy, kernel "
        "module "
        "and recorded Monte Carlo verification (`symfisher verify NAME "
        "--record` writes [VERIFIED.json](VERIFIED.json)).",
        "",
        summary_table(derivations, verdicts),
        "",
        LEGEND,
        "",
    ]
    out += [family_section(d, v) for d, v in zip(derivations, verdicts, strict=True)]
    if extra_sections:
        out += ["# State-conditioned policies", ""]
        out += [s.rstrip("\n") + "\n" for s in extra_sections]
    return "\n".join(out).rstrip("\n") + "\n"


# -- the README table -----------------------------------------------------------
def readme_table(
    derivations: Sequence[Derivation],
    verdicts: Sequence[Verdict],
    policies: Sequence[tuple[PolicyDerivation, Verdict]] = (),
) -> str:
    """README table: family | parameters | support | Fisher provenance | agreement | verified.

    With ``policies``, a second table: policy | θ | actions | states | E_s[F(s)]
    provenance | agreement | verified.
    """
    rows = [
        "| family | parameters | support | Fisher provenance | agreement | verified |",
        "|---|---|---|---|---|---|",
    ]
    for d, v in zip(derivations, verdicts, strict=True):
        f = d.family
        rows.append(
            f"| [{cell(title(d))}](generated/{CATALOG_NAME}#{f.name}) | "
            f"{cell(params_text(d))} | {cell(set_text(f.support))} | "
            f"{cell(provenance_text(d))} | {agreement_cell(d)} | {cell(v.short)} |"
        )
    if policies:
        rows += [
            "",
            "| policy | θ | actions | states | E_s[F(s)] provenance | agreement | verified |",
            "|---|---|---|---|---|---|---|",
        ]
        rows += [_policy_row(d, v) for d, v in policies]
    letters = ", ".join(f"{k} {v}" for v, k in LETTER.items())
    rows += [
        "",
        f"Agreement of routes 1–2, 1–3, 2–3: {letters}.",
    ]
    return "\n".join(rows) + "\n"


def _policy_row(d: PolicyDerivation, v: Verdict) -> str:
    pol = d.policy
    size = ", ".join(f"{k}={n}" for k, n in pol.size)
    r, c = pol.theta_shape
    actions = set_text(pol.conditional.support)
    how = " · ".join(
        f"{i + 1} " + ("unresolved" if d.routes[k].matrix is None else _short(d, k))
        for i, k in enumerate(ROUTES)
    )
    agree = " ".join(LETTER.get(x, "?") for x in d.agreement.values())
    return (
        f"| [{pol.name} ({size})](generated/{CATALOG_NAME}#{pol.name}) | "
        f"{r}×{c} matrix | {cell(actions)} | {cell(pol.states.description)} | "
        f"{cell(how)} | {agree} | {cell(v.short)} |"
    )


def _short(d: PolicyDerivation, route: str) -> str:
    """``E_a exp-family, E_s Gaussian moments``: the two expectations of a route, short."""
    m = d.routes[route].method
    a = "finite sum" if "finite support" in m else "exp-family"
    st = "Gaussian moments" if "Gaussian state" in m else "finite states"
    head = "KL: " if route == "kl_hessian" else ""
    return f"{head}E_a {a}, E_s {st}"


def replace_readme_block(readme: str, table: str) -> str:
    """``readme`` with the text between the catalog-table markers set to ``table``.

    Raises:
      ValueError: when the markers are missing, repeated or out of order.
    """
    if readme.count(README_START) != 1 or readme.count(README_END) != 1:
        raise ValueError(
            f"readme: needs exactly one {README_START} and one {README_END} marker"
        )
    head, rest = readme.split(README_START)
    if README_END not in rest:
        raise ValueError(f"readme: {README_END} must follow {README_START}")
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{table}{README_END}{tail}"


# -- state-conditioned policies ------------------------------------------------
#: how each policy template's ``entropy(theta, states)`` computes H(π(·|s))
POLICY_ENTROPY = {
    "linear_softmax": "−Σ_a p_a log p_a from log_softmax(W φ(s)) (0 log 0 = 0)",
    "tabular_softmax": "−Σ_a p_a log p_a from log_softmax(θ_s) (0 log 0 = 0)",
    "linear_gaussian": "Σ_i log σ_i + (m/2)(1 + log 2π), the same at every state",
}


def policy_section(d: PolicyDerivation, verdict: Verdict) -> str:
    r"""The ``## name`` section of a state-conditioned policy.

    :math:`\theta`, states, :math:`F(s)`, :math:`\mathbb E_s[F(s)]`, KL, routes,
    agreement, kernels and verdict.
    """
    pol = d.policy
    name = pol.name
    size = ", ".join(f"{k} = {v}" for k, v in pol.size)
    out = [f"## {name}", "", prose(pol.description) + ".", ""]
    out += [
        f"Derived at {size}; the kernels take any size from their inputs. "
        f"θ has shape {pol.theta_shape} in the kernels (row-major below).",
        "",
        "Parameters: " + ", ".join(f"`{p.name}`" for p in pol.theta) + ".",
        "",
        f"States: {prose(pol.states.description)}.",
        "",
        "Log-policy:",
        "",
        math_block(r"\log \pi_\theta(a \mid s)", pol.log_density),
        "",
    ]
    if d.fisher_state is not None:
        out += ["Fisher at one state:", "", math_block("F(s)", d.fisher_state), ""]
    if d.fisher is not None:
        out += [
            "Policy Fisher:",
            "",
            math_block(r"F = \mathbb{E}_{s}[F(s)]", d.fisher),
            "",
        ]
    else:
        out += ["Policy Fisher: no closed form over the state distribution.", ""]
    if d.kl is not None:
        names = {q: latex(p) + "'" for p, q in zip(pol.theta, d.kl_primed, strict=True)}
        out += [
            "Expected KL:",
            "",
            math_block(
                r"\mathbb{E}_s\,\mathrm{KL}(\pi_\theta(\cdot|s) \,\|\, \pi_{\theta'}(\cdot|s))",
                d.kl,
                names,
            ),
            "",
        ]
    out += [
        "Entropy: closed form per state, "
        + POLICY_ENTROPY.get(name, "from the kernel's log-policy")
        + " (kernel `entropy(theta, states)`, one value per state).",
        "",
    ]
    out += ["| route | how it was obtained |", "|---|---|"]
    out += [f"| {ROUTE_TITLE[r]} | {cell(d.routes[r].method)} |" for r in ROUTES]
    out += [
        "",
        "| routes | agreement of E_s[F(s)] | of F(s) | how |",
        "|---|---|---|---|",
    ]
    for (a, b), status in d.agreement.items():
        pair = f"{ROUTES.index(a) + 1} = {ROUTES.index(b) + 1}"
        cond = d.conditional_agreement.get((a, b), "")
        out.append(
            f"| {pair} | {status} | {cond} | {cell(d.agreement_detail.get((a, b), ''))} |"
        )
    out += [
        "",
        f"Mean score: {MEAN_SCORE.get(d.mean_score_status, d.mean_score_status)}.",
        "",
    ]
    if verdict.source_sha256 is not None:
        out.append(
            f"Kernels: {kernel_link(name)} (source-sha256 "
            f"`{verdict.source_sha256[:12]}`)."
        )
    out += ["", f"Verification: {verdict.text}.", ""]
    return "\n".join(out)
