# Read as text by symfisher.codegen.emit (never imported there): the sections
# between `# template: NAME` and `# end template: NAME` are written byte for
# byte into the generated PyTorch modules.
"""Template: the helpers at the top of every generated PyTorch kernel module.

The twins of the JAX header's ``_theta``, ``_x``, ``_bc`` and ``_damping``
(:data:`symfisher.codegen.emit.HEADER`), plus the functions the PyTorch
printer (:mod:`symfisher.codegen.printer_torch`) prints to where PyTorch has
none that takes a Python number or keeps full accuracy. ``_shape`` (the size
check of the family) is written by the generator after this section.
"""

import math

import torch

# stand-ins for the constants of the generated header
FAMILY = "family"


def _shape(theta, name):
    """Stand-in for the generated size check."""


# fmt: off
# template: helpers


def _theta(theta, name="theta", ref=None):
    """``theta`` as a floating tensor whose last axis has the right length.

    ``ref`` (another argument, a tensor) must live on the same device.
    """
    if not isinstance(theta, torch.Tensor):
        theta = torch.as_tensor(theta)
    if not theta.is_floating_point():
        raise TypeError(
            f"{FAMILY}: {name} must be a floating tensor (float32 or float64); "
            f"got dtype {theta.dtype}"
        )
    if ref is not None and theta.device != ref.device:
        raise ValueError(
            f"{FAMILY}: {name} is on device {theta.device} but the parameters are on "
            f"{ref.device}: {name} must be on the parameters' device"
        )
    _shape(theta, name)
    return theta


def _x(x, theta):
    """The variable ``x`` (a real tensor on ``theta``'s device) in ``theta``'s dtype."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, device=theta.device)
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{FAMILY}: x must be a real tensor (float or integer); got dtype {x.dtype}")
    if x.device != theta.device:
        raise ValueError(
            f"{FAMILY}: x is on device {x.device} but the parameters are on "
            f"{theta.device}: x must be on the parameters' device"
        )
    return x.to(theta.dtype)


def _bc(value, ref):
    """``value`` broadcast to the shape (and dtype, device) of ``ref``."""
    return value + torch.zeros_like(ref)


def _damping(damping, ref):
    """``damping`` as a tensor of ``ref``'s dtype and device; a known value must be finite and >= 0."""
    lam = torch.as_tensor(damping, dtype=ref.dtype, device=ref.device)
    try:
        bad = not bool(torch.all(torch.isfinite(lam) & (lam >= 0)))
    except RuntimeError:  # a value that only a transform (vmap) knows
        bad = False
    if bad:
        raise ValueError(f"{FAMILY}: damping must be finite and >= 0; got {damping!r}")
    return lam


def _softplus(z):
    r""":math:`\log(1 + e^z)` to float accuracy for every z, derivative :math:`\sigma(z)`.

    :math:`z + \operatorname{log1p}(e^{-z})` above 0, :math:`\operatorname{log1p}(e^{z})`
    below, each on inputs where it cannot overflow (no NaN gradient from the
    other branch). ``torch.nn.functional.softplus`` returns z above 20 and
    ``torch.logaddexp(z, 0)`` loses the relative accuracy of small values (1e-3
    at z = -30).
    """
    up = z > 0
    hi = torch.where(up, z, 0.0)
    lo = torch.where(up, 0.0, z)
    return torch.where(up, hi + torch.log1p(torch.exp(-hi)), torch.log1p(torch.exp(lo)))


def _logsumexp(*terms):
    r""":math:`\log \sum_i e^{a_i}` of tensors and numbers, broadcast together."""
    ref = next(t for t in terms if isinstance(t, torch.Tensor))
    ts = [t if isinstance(t, torch.Tensor) else torch.full_like(ref, t) for t in terms]
    return torch.logsumexp(torch.stack(torch.broadcast_tensors(*ts)), dim=0)


def _polygamma(n, x):
    r""":math:`\psi^{(n)}(x)`, :math:`n \ge 1`, :math:`x > 0`, to float64 accuracy.

    ``torch.special.polygamma(1, x)`` has a relative error up to 5e-10 in float64
    (a short asymptotic series); here :math:`\psi^{(n)}(x) = \psi^{(n)}(x + 10) +
    (-1)^{n+1} n! \sum_{k<10} (x + k)^{-n-1}` and the asymptotic series at
    :math:`y = x + 10` with :math:`B_2..B_{16}`: the first term left out is
    below 1e-16 of the value for n <= 3.
    """
    bernoulli = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)
    near = sum((x + k) ** -(n + 1) for k in range(10))
    y = x + 10
    far = math.factorial(n - 1) / y**n + math.factorial(n) / (2 * y ** (n + 1))
    for k, b in enumerate(bernoulli, start=1):
        far = far + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / y ** (2 * k + n)
    return (1.0 if n % 2 else -1.0) * (math.factorial(n) * near + far)


def _maximum(a, b):
    """Elementwise maximum of tensors or numbers."""
    if not isinstance(a, torch.Tensor):
        a, b = b, a
    return torch.clamp(a, min=b) if not isinstance(b, torch.Tensor) else torch.maximum(a, b)


def _minimum(a, b):
    """Elementwise minimum of tensors or numbers."""
    if not isinstance(a, torch.Tensor):
        a, b = b, a
    return torch.clamp(a, max=b) if not isinstance(b, torch.Tensor) else torch.minimum(a, b)
# end template: helpers

# template: domain guard


def _in_domain(theta):
    """True where every entry of ``DOMAIN_CHECKS`` holds, shape ``theta.shape[:-1]``."""
    ok = torch.ones(theta.shape[:-1], dtype=torch.bool, device=theta.device)
    for check in param_checks(theta):
        ok = ok & check
    return ok


def _nan_outside(value, ok, event_dims=0):
    """``value`` where ``ok`` (the parameters are in the domain), NaN elsewhere.

    ``event_dims`` trailing axes of ``value`` (the score's ``P``, a matrix's
    ``P, P``) follow one parameter point.
    """
    ok = ok.reshape(ok.shape + (1,) * event_dims)
    return torch.where(ok, value, math.nan)
# end template: domain guard
# fmt: on


def param_checks(theta):
    """Stand-in for the generated ``param_checks``."""
    return ()
