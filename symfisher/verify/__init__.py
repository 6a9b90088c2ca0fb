"""Monte Carlo verification of kernels: identities, KL, Cramér–Rao, with Holm control."""

from symfisher.verify.report import Report, Trace
from symfisher.verify.result import Check
from symfisher.verify.run import verify, verify_many

__all__ = ["Check", "Report", "Trace", "verify", "verify_many"]

from symfisher._callable import make_callable

make_callable(__name__, "symfisher.verify.run:verify")
