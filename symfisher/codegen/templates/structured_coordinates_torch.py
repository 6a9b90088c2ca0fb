# Read as text by symfisher.codegen.structured (never imported there): the
# sections between `# template: NAME` and `# end template: NAME` are written
# byte for byte into the generated module.
"""Template: the block-diagonal helper of the PyTorch coordinates kernel modules.

The twin of ``structured_coordinates.py``: ``_blockdiag`` assembles the
Hessian, Fisher and Cramér–Rao matrices from ``B x B`` diagonals.
"""

import torch

# fmt: off
# template: blockdiag


def _blockdiag(blocks):
    """``(..., B d, B d)`` matrix from a ``B x B`` grid of ``(..., d)`` diagonals."""
    rows = [
        torch.cat(
            [b[..., :, None] * torch.eye(b.shape[-1], dtype=b.dtype, device=b.device) for b in row], dim=-1
        )
        for row in blocks
    ]
    return torch.cat(rows, dim=-2)
# end template: blockdiag
# fmt: on
