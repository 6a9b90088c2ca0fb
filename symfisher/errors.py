"""Error types: one base class, subclasses say where things went wrong."""


class SymfisherError(Exception):
    """Base class of every error symfisher raises on purpose."""


class ParseError(SymfisherError, ValueError):
    """A user string was rejected by the safe expression parser."""


class DomainError(SymfisherError, ValueError):
    """A parameter value lies outside its declared domain, or a point is malformed."""


class FamilyError(SymfisherError, ValueError):
    """A family definition is inconsistent (unknown name, bad support, bad size)."""


class DerivationError(SymfisherError):
    """A derived quantity is unavailable (unresolved, singular, non-regular)."""


class SymbolicTimeout(SymfisherError, TimeoutError):
    """A SymPy computation exceeded its time limit."""


class HangError(BaseException):
    """A SymPy step recorded as finishing ran past its hang guard.

    Deliberately not an ``Exception`` (like ``KeyboardInterrupt``): no fallback,
    ``except Exception`` included, may turn it into a different result, so a
    slow machine gets this error, never a different answer.
    """
