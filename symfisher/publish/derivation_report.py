"""Derivation reports: a terminal table (rich), JSON and LaTeX."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sympy as sp

from symfisher.derive.derivation import ROUTES, Derivation
from symfisher.latex import latex, tidy

SHORT = {
    "exact sum over the finite support": "finite sum",
    "exponential-family moments (E[T^a] = e^-A d^a e^A)": "exp-family",
    "moments from the declared cumulant function K(t)": "cumulants",
    "symbolic integration over the support": "integral",
    "symbolic summation over the support": "sum",
    "symbolic integration after a change of variable x = g(u)": "integral (subst.)",
    "exponential-family Bregman divergence of A": "Bregman",
    "log-moment table of a standard base after a change of variable x = g(u)": (
        "log-moment table"
    ),
    "Hessian of the quadrature KL (numeric, 50 digits)": "KL: quadrature (numeric)",
    "unresolved": "unresolved",
    "exponential-family identity H = A - eta . grad A - E[log h]": (
        "exp-family A − η·∇A"
    ),
}


def short_method(method: str) -> str:
    """A few words for a provenance string."""
    if method.startswith("Hessian of the closed-form KL ("):
        inner = method[len("Hessian of the closed-form KL (") : -1]
        return f"KL: {SHORT.get(inner, inner)}"
    return SHORT.get(method, method)


LETTER = {"proved": "P", "tested": "T", "unresolved": "U", "differs": "D"}


def _numeric_route(d: Derivation, route: str) -> bool:
    """Whether a route without a closed form was compared numerically (route 3)."""
    return d.provenance[route][0] == "Hessian of the quadrature KL (numeric, 50 digits)"


def agreement_cell(d: Derivation) -> str:
    """Pairwise agreement of routes 1-2, 1-3, 2-3 as letters, e.g. ``P P T``."""
    return " ".join(LETTER.get(s, "?") for s in d.agreement.values())


def routes_cell(d: Derivation) -> str:
    """How each route was obtained, e.g. ``1 exp-family | 2 exp-family | 3 KL: Bregman``."""
    return " | ".join(
        f"{i + 1} "
        + (
            short_method(d.provenance[r][0])
            if d.routes[r] is not None or _numeric_route(d, r)
            else "unresolved"
        )
        for i, r in enumerate(ROUTES)
    )


def fisher_cell(d: Derivation, width: int = 70) -> str:
    """The Fisher closed form, shortened for a table cell."""
    if not d.regular:
        return "non-regular: no Fisher matrix"
    if d.fisher is None:
        return "no closed form (fisher_at: numeric)"
    text = sp.sstr(d.fisher.tolist())
    return text if len(text) <= width else text[: width - 1] + "…"


#: terminals narrower than this get the compact tables (80 columns fit)
WIDE = 120
CAPTION = (
    "routes: 1 score covariance, 2 -E[Hessian], 3 Hessian of KL; "
    "agreement of 1-2, 1-3, 2-3: P proved, T tested (50 digits), "
    "U unresolved, D differs"
)


def compact(width: int | None) -> bool:
    """Whether a terminal of ``width`` columns gets the compact table."""
    return width is not None and width < WIDE


def _time(d: Any, short: bool) -> str:
    if short:
        return f"{d.seconds:.2f}s" + ("*" if d.from_cache else "")
    return f"{d.seconds:.2f}s" + (" (cache)" if d.from_cache else "")


def table(derivations: Sequence[Derivation], width: int | None = None) -> Any:
    """A rich Table: family, parameters, Fisher, routes, agreement, time.

    Below :data:`WIDE` columns (``width``) the Fisher and route cells are left
    out, so that the table fits 80 columns; ``--json`` and ``--latex`` hold them.
    """
    from rich.table import Table
    from rich.text import Text

    short = compact(width)
    t = Table(
        title="symfisher: the catalog derived",
        caption=CAPTION
        + (
            "; * cached. Fisher and routes: a wider terminal, --json or --latex"
            if short
            else ""
        ),
    )
    cols = ("family", "params", "Fisher", "routes", "agree", r"E\[s]=0", "time")
    if short:
        cols = ("family", "params", "agree", r"E\[s]=0", "time")
    for col in cols:
        t.add_column(col, no_wrap=col in ("family", "agree", "time"))
    for d in derivations:
        cells = {
            "family": d.family.name,
            "params": ", ".join(d.family.param_names),
            "Fisher": fisher_cell(d),
            "routes": routes_cell(d),
            "agree": agreement_cell(d),
            r"E\[s]=0": d.mean_score_status,
            "time": _time(d, short),
        }
        t.add_row(*(Text(cells[c]) for c in cols))
    return t


def policy_table(derivations: Sequence[Any], width: int | None = None) -> Any:
    """A rich Table of policy derivations: policy, θ, states, routes, agreement, time.

    Below :data:`WIDE` columns the states and routes are left out.
    """
    from rich.table import Table
    from rich.text import Text

    short = compact(width)
    t = Table(
        title="symfisher: state-conditioned policies derived (F = E_s[F(s)])",
        caption="each route: inner expectation over actions, then over states"
        + ("; * cached" if short else ""),
    )
    cols = ("policy", "theta", "states", "routes", "agree", r"E\[s]=0", "time")
    if short:
        cols = ("policy", "theta", "agree", r"E\[s]=0", "time")
    for col in cols:
        t.add_column(col, no_wrap=col in ("policy", "agree", "time"))
    for d in derivations:
        pol = d.policy
        routes = " | ".join(
            f"{i + 1} " + ("resolved" if r.matrix is not None else "unresolved")
            for i, r in enumerate(d.routes.values())
        )
        cells = {
            "policy": pol.name,
            "theta": f"{pol.theta_shape[0]}x{pol.theta_shape[1]}",
            "states": pol.states.description,
            "routes": routes,
            "agree": " ".join(LETTER.get(v, "?") for v in d.agreement.values()),
            r"E\[s]=0": d.mean_score_status,
            "time": _time(d, short),
        }
        t.add_row(*(Text(cells[c]) for c in cols))
    return t


def to_json(derivations: Sequence[Derivation], policies: Sequence[Any] = ()) -> str:
    """JSON report (schema ``symfisher.derive/1``; ``policies`` only when some are given)."""
    doc: dict[str, Any] = {
        "schema": "symfisher.derive/1",
        "families": [d.summary() for d in derivations],
    }
    if policies:
        doc["policies"] = [d.summary() for d in policies]
    return json.dumps(doc, indent=2)


def policy_to_latex(d: Any) -> str:
    r"""LaTeX of a policy: :math:`\log \pi_\theta(a \mid s)`, :math:`F = \mathbb E_s[F(s)]`, each route."""
    pol = d.policy
    lines = [
        f"% {pol.name}: theta {pol.theta_shape[0]}x{pol.theta_shape[1]}; {pol.states.description}"
    ]
    lines.append(r"\log \pi_\theta(a \mid s) = " + latex(tidy(pol.log_density)))
    if d.fisher is not None:
        lines.append(r"F(\theta) = \mathbb{E}_s[F(s)] = " + latex(tidy(d.fisher)))
    for name, r in d.routes.items():
        lines.append(
            f"% route {name}: " + ("resolved" if r.matrix is not None else "unresolved")
        )
    return "\n".join(lines)


def to_latex(d: Derivation) -> str:
    """LaTeX of the score, the Fisher matrix (or each route), the KL and the entropy."""
    lines = [f"% {d.family.name}: parameters {', '.join(d.family.param_names)}"]
    lines.append(r"\log p_\theta(x) = " + latex(tidy(d.family.log_density)))
    lines.append(r"s(\theta; x) = " + latex(tidy(d.score)))
    if d.fisher is not None:
        lines.append(r"F(\theta) = " + latex(tidy(d.fisher)))
    for r in ROUTES:
        m = d.routes[r]
        lines.append(
            rf"% route {r}: {d.provenance[r][0]}"
            + (
                ""
                if m is None
                else "\n" + rf"F_{{\text{{{r.replace('_', ' ')}}}}} = " + latex(tidy(m))
            )
        )
    if d.kl is not None:
        lines.append(r"\mathrm{KL}(p_\theta \| p_{\theta'}) = " + latex(tidy(d.kl)))
    lines.append(f"% entropy: {d.entropy_method}")
    if d.entropy is not None:
        lines.append(r"H(\theta) = " + latex(tidy(d.entropy)))
    if d.regularity:
        lines.append(f"% {d.regularity}")
    return "\n".join(lines)
