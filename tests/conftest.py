import os
import tempfile

# A private, initially empty cache for the whole test session (xdist workers
# inherit the controller's).
if "SYMFISHER_CACHE_DIR" not in os.environ:
    os.environ["SYMFISHER_CACHE_DIR"] = tempfile.mkdtemp(prefix="symfisher-test-cache-")
os.environ.setdefault("JAX_ENABLE_X64", "1")

from hypothesis import settings

settings.register_profile("ci", max_examples=50, derandomize=True, deadline=None)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

from symfisher.families.catalog import families  # noqa: E402

CATALOG = families()


def reference_file() -> str:
    """The textbook reference: ../shared/reference, else the copy in tests/data."""
    here = os.path.dirname(__file__)
    candidates = [
        os.path.join(here, "..", "..", "shared", "reference", "textbook_fisher.json"),
        os.path.join(here, "data", "textbook_fisher.json"),
    ]
    for c in candidates:
        if os.path.exists(c):
            return c
    raise FileNotFoundError("textbook_fisher.json not found")
