# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the size checks in ``_theta`` of the structured kernel modules.

A structured module takes its size from the last axis of ``theta``: a coordinates
module holds ``BLOCK`` parameter vectors of one length d, a softmax or simplex
module at least ``LOW`` entries. :mod:`symfisher.codegen.structured` writes a
section, with ``BLOCK`` or ``LOW`` filled in as a number, into the ``_theta`` of
the generated header (:data:`symfisher.codegen.emit.HEADER`), for which the
two functions here stand.
"""

import jax.numpy as jnp

# stand-ins for the constants of the generated header
FAMILY = "family"
PARAMS = ("a", "b")
# placeholders: numbers in the generated check
BLOCK = 2  # template: the number of parameters of the coordinates' base family
LOW = 1  # template: the least length of the last axis


def _damping(damping, ref):
    """Stand-in for ``_damping`` of the generated header: ``damping`` in ``ref``'s dtype."""
    return jnp.asarray(damping).astype(ref.dtype)


def _theta_blocks(theta, name="theta"):
    """``theta`` of a coordinates module: ``BLOCK`` parameter vectors of length d."""
    theta = jnp.asarray(theta)
    # fmt: off
    # template: blocks
    if theta.ndim == 0 or theta.shape[-1] == 0 or theta.shape[-1] % BLOCK:
        raise ValueError(
            f"{FAMILY}: {name}.shape[-1] must be a positive multiple of {BLOCK} "
            f"(parameters {', '.join(PARAMS)}, each of length d); got shape {theta.shape}"
        )
    # end template: blocks
    # fmt: on
    return theta


def _theta_at_least(theta, name="theta"):
    """``theta`` of a softmax or simplex module: at least ``LOW`` entries."""
    theta = jnp.asarray(theta)
    # fmt: off
    # template: at least
    if theta.ndim == 0 or theta.shape[-1] < LOW:
        raise ValueError(
            f"{FAMILY}: {name}.shape[-1] must be at least {LOW} "
            f"({PARAMS}); got shape {theta.shape}"
        )
    # end template: at least
    # fmt: on
    return theta
