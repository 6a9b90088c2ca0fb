r"""One comparison engine: the user's function against references, case by case.

An assertion builds a list of :class:`Case` (the arguments the user's function
receives, already rounded to the dtype it gets; the float64 reference at those
rounded arguments; the scale of each entry; lines naming the point), and
:func:`check_cases` does the rest:

1. each case is called alone (:func:`symfisher.testing.calls.call`: exceptions,
   shapes, NaN named) and compared entry by entry,
   :math:`|\text{got} - \text{expected}| \le \text{atol} + \text{rtol}\cdot\text{scale}`;
2. a failure raises the report of the worst entry with the assertion's hints;
3. with ``batched``, the cases' arguments are stacked along a leading axis
   (at least 3 of them) and the batched call must return the stacked single
   results (:func:`symfisher.testing.calls.check_batched`).

A new assertion of a function of :math:`\theta` against a generated kernel is
one call of :func:`check_theta_function`; an entropy assertion, say:

.. code-block:: python

    def assert_entropy_close(fn, family, points=None, *, n_points=N_POINTS,
                             seed=0, rtol=None, atol=0.0, dtype=None,
                             batched=True, allow_boundary=False, path=None):
        check_theta_function(
            fn, family, "entropy", points=points, n_points=n_points, seed=seed,
            rtol=rtol, atol=atol, dtype=dtype, batched=batched,
            allow_boundary=allow_boundary, path=path,
            scale=lambda h, theta: 1 + np.abs(h), scale_text="scale = 1 + |H|")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symfisher.testing.calls import _called, call, check_batched
from symfisher.testing.failures import _fail, _update, _Worst
from symfisher.testing.setup import _rtol


@dataclass
class Case:
    """One call of the user's function and what it must return.

    Attributes:
      args: the arguments (float64 arrays holding values exactly representable
        in the dtype the user receives, or other objects passed as they are).
      expected: the float64 reference at exactly those arguments.
      scale: the scale of each entry (broadcast to the output shape).
      context: lines naming the point in a failure report.
    """

    args: tuple[Any, ...]
    expected: np.ndarray
    scale: np.ndarray
    context: list[str] = field(default_factory=list)


#: ``hints(cases, gots, worst_index) -> list of hint lines``.
Hints = Callable[[Sequence[Case], Sequence[np.ndarray], int], list[str]]


def _as_input(a: Any, dt: np.dtype) -> Any:
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        return np.asarray(a, dt)
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.integer):
        return np.asarray(a)
    return a


def check_cases(
    fn: Callable,
    what: str,
    shape: tuple[int, ...],
    cases: Sequence[Case],
    *,
    dt: np.dtype,
    rtol: float | None,
    atol: float,
    batched: bool,
    label: str,
    scale_text: str,
    entry_name: Callable[[tuple[int, ...]], str] = lambda e: (
        f"entry {e}" if e else "value"
    ),
    hints: Hints | None = None,
    event_hint: str | None = None,
    at: str = "point",
    source: str = "generated closed form, float64",
) -> list[np.ndarray]:
    r"""Compare ``fn`` with every case, then its batched call; return the outputs.

    Args:
      fn: the user's function.
      what: how a call is shown (``"fn(theta, x)"``).
      shape: the output shape of one call.
      cases: the cases (at least one).
      dt: the dtype of the floating arguments passed to ``fn``.
      rtol: relative tolerance; None: :math:`\sqrt{\varepsilon}` of ``fn``'s dtype.
      atol: absolute tolerance.
      batched: also check a batched call of at least 3 stacked cases.
      label: the family, as the report names it.
      scale_text: what the scale is, for the report.
      entry_name: the name of an output entry.
      hints: the assertion's hints on failure.
      event_hint: said when the output keeps an event axis it should reduce.
      at: what one case is called in the report (``"point"``, ``"pair"``).
      source: where the expected values come from, for the report.

    Raises:
      AssertionError: the report of the worst entry, or a bad output / batch.
    """
    worst, rt = _Worst(), None
    gots: list[np.ndarray] = []
    for i, c in enumerate(cases):
        args = tuple(_as_input(a, dt) for a in c.args)
        got = call(fn, what, shape, *args, finite=False, event_hint=event_hint)
        rt = _rtol(rtol, got) if rt is None else rt
        scale = np.broadcast_to(np.asarray(c.scale, np.float64), shape)
        _update(worst, i, got, np.asarray(c.expected, np.float64), scale, atol, rt)
        gots.append(got.astype(np.float64))
    if worst.failed:
        extra = []
        if not np.isfinite(worst.got) and np.isfinite(worst.expected):
            w = cases[worst.point]
            args = tuple(_as_input(a, dt) for a in w.args)
            extra = [
                f"{_called(what, args)} returned {worst.got} where the reference is "
                "finite"
                + (
                    " (at a zero probability: 0 * log 0 or log(0) - log(0) "
                    "evaluated as NaN? use xlogy, or where(p > 0, ...))"
                    if np.isnan(worst.got)
                    else ""
                )
            ]
        _fail(
            what,
            label,
            worst,
            len(cases),
            entry_name(worst.entry),
            cases[worst.point].context,
            rt,
            atol,
            scale_text,
            extra + (hints(cases, gots, worst.point) if hints else []),
            at=at,
            source=source,
        )
    if batched:
        check_batched(
            fn,
            what,
            [tuple(_as_input(a, dt) for a in c.args) for c in cases],
            gots,
            shape,
            max(rt or 0.0, 16 * float(np.finfo(dt).eps)),
            [
                np.asarray(c.scale, np.float64) + atol / max(rt or 1.0, 1e-300)
                for c in cases
            ],
            event_hint=event_hint,
        )
    return gots


def check_theta_function(
    fn: Callable,
    family: Any,
    kernel: str,
    *,
    points: Any = None,
    n_points: int,
    seed: int,
    rtol: float | None,
    atol: float,
    dtype: Any,
    batched: bool,
    allow_boundary: bool,
    path: Any,
    scale: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scale_text: str,
    hints: Hints | None = None,
    backend: str | None = None,
    event_hint: str | None = None,
) -> None:
    r"""Assert ``fn(theta)`` equals the generated kernel ``kernel(theta)`` at every point.

    The whole of an assertion of a function of :math:`\theta` (an entropy, a
    Fisher diagonal): points (rounded to ``dtype``, boundary with
    ``allow_boundary``), float64 references at the rounded points (the limit
    on the boundary), single and batched calls, the failure report.

    Args:
      fn: the user's ``fn(theta)``.
      family: a catalog name or a family object.
      kernel: the name of the generated kernel of the reference (``"entropy"``).
      points: ``(n, P)`` points, or None for ``n_points`` seeded ones.
      n_points: how many points to pick.
      seed: their seed.
      rtol: relative tolerance; None: :math:`\sqrt{\varepsilon}` of the output dtype.
      atol: absolute tolerance.
      dtype: dtype of ``theta`` passed to ``fn``.
      batched: also check a batched call.
      allow_boundary: points on the domain's closure.
      path: folder of a user family's generated kernels.
      scale: ``scale(expected, theta) -> scale`` of each entry.
      scale_text: what the scale is, for the report.
      hints: the assertion's hints on failure.
      backend: the framework of ``fn`` (None: detected).
      event_hint: said when the output keeps extra (unreduced) trailing axes.
    """
    from symfisher.testing.backend import adapt
    from symfisher.testing.failures import _entry_name
    from symfisher.testing.points import inward, rounded_points
    from symfisher.testing.setup import _check_atol, _dtype, _fmt, _ref, _resolve

    fn = adapt(fn, backend)
    fam = _resolve(family, path)
    _check_atol(atol)
    dt = _dtype(dtype)
    pts = rounded_points(fam, points, n_points, seed, dt, allow_boundary)
    ref = getattr(fam.kernels, kernel)
    cases = []
    for theta in pts:
        exp = _ref(ref, inward(fam, theta))
        cases.append(
            Case((theta,), exp, scale(exp, theta), [f"  theta = {_fmt(theta)}"])
        )
    check_cases(
        fn,
        "fn(theta)",
        np.shape(cases[0].expected),
        cases,
        dt=dt,
        rtol=rtol,
        atol=atol,
        batched=batched,
        label=fam.label(),
        scale_text=scale_text,
        entry_name=lambda e: _entry_name(fam, e) if len(e) else "value",
        hints=hints,
        event_hint=event_hint,
    )
