"""Calling the user's function: bad output named plainly, batched calls checked.

Every call of a user function goes through :func:`call`: an exception, a
non-array, a wrong shape or (with ``finite``) NaN/inf becomes an
:class:`AssertionError` naming the call, the shapes of its arguments and what
was expected; the user's own exception is chained (``raise ... from exc``).

:func:`check_batched` calls the function once more on the arguments of several
single calls stacked along a new leading axis and requires the stacked single
results: a sum or mean over the batch axis, or an output with extra (unreduced)
event axes, is said so in words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from symfisher.testing.backend import to_numpy

#: Fewest points in a batched call: a batch of 1 or 2 hides sums and unpacking.
MIN_BATCH = 3


def _shapes(args: Sequence[Any]) -> str:
    return ", ".join(str(tuple(np.shape(a))) for a in args)


def _called(what: str, args: Sequence[Any]) -> str:
    return f"{what} called with argument shapes {_shapes(args)}"


def call(
    fn: Callable,
    what: str,
    shape: tuple[int, ...],
    *args: Any,
    finite: bool = True,
    event_hint: str | None = None,
) -> np.ndarray:
    r"""``fn(*args)`` as a NumPy array of shape ``shape``.

    Args:
      fn: the user's function.
      what: how the call is shown, e.g. ``"fn(theta, x)"``.
      shape: the expected output shape.
      args: the arguments.
      finite: also require finite values.
      event_hint: said when the output has ``shape`` plus trailing axes (an
        event axis not reduced).

    Raises:
      AssertionError: naming the call, the argument shapes and the expected
        output, chained to the user's exception.
    """
    try:
        out = fn(*args)
    except Exception as exc:
        raise AssertionError(
            f"{_called(what, args)} raised {type(exc).__name__}: {exc}; expected an "
            f"array of shape {shape}"
        ) from exc
    if out is None or isinstance(out, (str, bytes, dict, tuple, list, set)):
        raise AssertionError(
            f"{_called(what, args)} returned {type(out).__name__}, not an array; "
            f"expected an array of shape {shape}"
        )
    try:
        arr = to_numpy(out)
    except Exception as exc:
        raise AssertionError(
            f"{_called(what, args)} returned {type(out).__name__}, not an array; "
            f"expected an array of shape {shape}"
        ) from exc
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise AssertionError(
            f"{_called(what, args)} returned {type(out).__name__} of dtype "
            f"{arr.dtype}, not a numeric array; expected an array of shape {shape}"
        )
    if arr.shape != shape:
        msg = f"{_called(what, args)} returned shape {arr.shape}; expected {shape}"
        if event_hint and arr.shape[: len(shape)] == shape and arr.ndim > len(shape):
            msg += f": {event_hint}"
        elif what.startswith("batched") and shape and arr.shape == shape[1:]:
            msg += ": the function reduces over the batch axis"
        raise AssertionError(msg)
    if finite and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        where = f" at entry {tuple(int(i) for i in bad[0])}" if arr.ndim else ""
        raise AssertionError(
            f"{_called(what, args)} returned a non-finite value "
            f"({arr[tuple(bad[0])] if arr.ndim else arr}){where}; expected finite "
            f"values of shape {shape}"
        )
    return arr


def check_batched(
    fn: Callable,
    what: str,
    singles: Sequence[tuple[Any, ...]],
    results: Sequence[np.ndarray],
    shape: tuple[int, ...],
    rtol: float,
    scales: Sequence[np.ndarray],
    *,
    stack: Callable[[Sequence[Any]], Any] | None = None,
    event_hint: str | None = None,
) -> None:
    r"""Require ``fn(stacked args)`` to equal the stacked single results.

    The first ``max(MIN_BATCH, len(singles))`` calls are stacked (cycled when
    fewer). Each entry must agree within ``rtol * scale`` (the scale of the
    single comparison, so round-off of a vectorised evaluation passes).

    Args:
      fn: the user's function.
      what: how the call is shown.
      singles: the arguments of the single calls (as passed to ``fn``).
      results: the single calls' outputs, each of shape ``shape``.
      shape: the output shape of one call.
      rtol: the relative tolerance of the assertion.
      scales: the scale of each single result (broadcast to ``shape``).
      stack: how one argument position is stacked (default ``np.stack``).
      event_hint: said when the output has unreduced event axes.

    Raises:
      AssertionError: the batched call fails, reduces over the batch axis (a
        sum or mean, said so), keeps event axes, or differs from the stacked
        single results.
    """
    n = max(MIN_BATCH, len(singles))
    idx = [i % len(singles) for i in range(n)]
    stack = stack or (lambda xs: np.stack([np.asarray(x) for x in xs]))
    args = tuple(stack([singles[i][k] for i in idx]) for k in range(len(singles[0])))
    want = np.stack([np.asarray(results[i], np.float64) for i in idx])
    scale = np.stack(
        [np.broadcast_to(np.asarray(scales[i], np.float64), shape) for i in idx]
    )
    bwhat = f"batched {what}"
    try:
        out = fn(*args)
    except Exception as exc:
        raise AssertionError(
            f"{_called(bwhat, args)} raised {type(exc).__name__}: {exc}; the single "
            f"calls worked. Expected shape {(n, *shape)}: the function must broadcast "
            "over a leading batch axis (does it unpack or index the parameter "
            "vector along its first axis instead of its last, theta[0] instead of "
            "theta[..., 0]?)"
        ) from exc
    try:
        out_shape = tuple(np.shape(out))
    except Exception:
        out_shape = ()
    got = call(lambda *_: out, bwhat, out_shape, *args, finite=False)
    if got.shape == shape and n > 1:
        total, mean = want.sum(axis=0), want.mean(axis=0)
        tol = rtol * scale.sum(axis=0) + 1e-300
        how = ""
        if np.all(np.abs(got - total) <= tol):
            how = "it returns the sum over the batch"
        elif np.all(np.abs(got - mean) <= tol):
            how = "it returns the mean over the batch"
        raise AssertionError(
            f"{_called(bwhat, args)} returned shape {got.shape}; expected "
            f"{(n, *shape)}: the function reduces over the batch axis"
            + (f" ({how})" if how else "")
            + "; it must return one value per batch entry"
        )
    if got.shape != (n, *shape):
        msg = (
            f"{_called(bwhat, args)} returned shape {got.shape}; expected {(n, *shape)}"
        )
        if got.shape[:1] == (n,) and got.ndim > len(shape) + 1 and event_hint:
            msg += f": {event_hint}"
        elif got.shape[:1] != (n,):
            msg += ": the leading batch axis is lost (reduced or unpacked over)"
        raise AssertionError(msg)
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= rtol * scale) & ~(
        np.isfinite(want) & (got.astype(np.float64) == want)
    )
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise AssertionError(
            f"{_called(bwhat, args)} differs from the single calls at batch index "
            f"{i[0]}{', entry ' + str(i[1:]) if len(i) > 1 else ''}: single call "
            f"gave {want[i]!r}, batched call {got[i]!r}: the batch entries are not "
            "computed independently (mixed across the batch axis?)"
        )
