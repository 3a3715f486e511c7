"""Shared by the checker tests: where the reference corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# CI clones the repository with shared/ beside it: <repo>/../shared/corpus.
CORPUS = Path(os.environ.get("FAULTBED_CORPUS")
              or Path(__file__).resolve().parents[2].parent / "shared" / "corpus")


@pytest.fixture
def corpus() -> Path:
    """The corpus directory; a missing corpus fails the test, it is never skipped."""
    if not (CORPUS / "README.md").is_file():
        pytest.fail(f"reference corpus not found at {CORPUS}: clone shared/ beside the repository "
                    f"or set FAULTBED_CORPUS")
    return CORPUS
