"""`python -m bench` and `python -m bench.closure` run for minutes: asking either for help, or
giving it a word it does not know, says what it does and starts nothing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["bench", "bench.closure"])
def test_help_says_what_runs_and_an_unknown_word_is_refused(module: str) -> None:
    helped = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: python -m {module}")
    assert "docs/" in helped.stdout  # where its figures are written
    refused = subprocess.run([sys.executable, "-m", module, "--sizes=10"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("usage:") and "closing a slot" not in refused.stdout
