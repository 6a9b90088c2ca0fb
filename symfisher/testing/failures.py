"""Failure reports: the worst entry, the point, expected and got, the hints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from symfisher.testing.setup import _Fam


@dataclass
class _Worst:
    excess: float = -np.inf  # (|err| - atol) / scale, compared with rtol
    point: int = -1
    entry: tuple[int, ...] = ()
    got: float = 0.0
    expected: float = 0.0
    scale: float = 0.0
    failed: int = 0
    rel_max: float = 0.0  # largest |got - expected| / |expected| over all entries


def _update(
    worst: _Worst,
    i: int,
    got: np.ndarray,
    exp: np.ndarray,
    scale: np.ndarray,
    atol: float,
    rtol: float,
) -> bool:
    """Record point ``i``'s worst entry; return whether the point fails."""
    err = np.abs(got.astype(np.float64) - exp)
    err = np.where(np.isfinite(got), err, np.inf)
    safe = np.where(scale > 0, scale, np.finfo(float).tiny)
    excess = (err - atol) / safe
    j = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    nz = (exp != 0) & np.isfinite(exp)
    if np.any(nz):
        rel = float(np.max(np.where(nz, err / np.where(nz, np.abs(exp), 1.0), 0.0)))
        worst.rel_max = max(worst.rel_max, rel)
    bad = bool(np.any(err > atol + rtol * scale))
    if bad:
        worst.failed += 1
    if excess[j] > worst.excess:
        worst.excess = float(excess[j])
        worst.point, worst.entry = i, tuple(int(x) for x in j)
        worst.got, worst.expected, worst.scale = (
            float(got[j]),
            float(exp[j]),
            float(scale[j]),
        )
    return bad


def _fail(
    what: str,
    fam_label: str,
    worst: _Worst,
    n: int,
    entry_name: str,
    context: list[str],
    rtol: float,
    atol: float,
    scale_text: str,
    hints: list[str],
    at: str = "point",
    source: str = "generated closed form, float64",
) -> None:
    lines = [
        f"{what} differs from symfisher ({fam_label}) at {worst.failed} of {n} {at}s; "
        f"worst {entry_name} at {at} {worst.point}:",
        *context,
        f"  expected {worst.expected!r} ({source})",
        f"  got      {worst.got!r}",
        f"  |got - expected| = {abs(worst.got - worst.expected):.3g} > "
        f"atol + rtol * scale = {atol:g} + {rtol:.3g} * {worst.scale:.3g}  ({scale_text})",
    ]
    eps = _epsilon_hint(worst)
    lines += [f"  hint: {h}" for h in ([*hints, eps] if eps else hints)]
    raise AssertionError("\n".join(lines))


def _entry_name(fam: _Fam, entry: tuple[int, ...]) -> str:
    if not entry:
        return "value"
    return (
        f"entry {', '.join(map(str, entry))} ({', '.join(fam.names[i] for i in entry)})"
    )


def _epsilon_hint(worst: _Worst) -> str | None:
    """A tiny relative error everywhere: an epsilon in a denominator, not a bug."""
    r = worst.rel_max
    if not (1e-12 < r < 1e-5 and np.isfinite(r)):
        return None
    suggest = 10.0 ** np.ceil(np.log10(2 * r))
    return (
        f"every entry agrees to a relative error of at most {r:.2g} (tiny: not an O(1) bug): "
        "consistent with an ε added to a denominator or a "
        f"variance (x / (v + 1e-8)); pass rtol={suggest:.0e} if intended"
    )
