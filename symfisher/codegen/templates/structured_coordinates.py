# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the block-diagonal helper of the coordinates kernel modules.

A coordinates module (``diag_gaussian``) prints its base family's kernels
elementwise; its Hessian, Fisher and Cramér–Rao matrices are assembled from
``B x B`` diagonals by ``_blockdiag``.
"""

import jax.numpy as jnp

# fmt: off
# template: blockdiag


def _blockdiag(blocks):
    """``(..., B d, B d)`` matrix from a ``B x B`` grid of ``(..., d)`` diagonals."""
    rows = [
        jnp.concatenate(
            [b[..., :, None] * jnp.eye(b.shape[-1], dtype=b.dtype) for b in row], axis=-1
        )
        for row in blocks
    ]
    return jnp.concatenate(rows, axis=-2)
# end template: blockdiag
# fmt: on
