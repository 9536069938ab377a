"""Cold starts pay only for what every request needs: every Lambda of a Chalice app imports all
of app.py, so Stripe, argon2, jinja2 and Powertools' batch utility must load only where they are used."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAZY = ("stripe", "argon2", "aws_lambda_powertools.utilities.batch", "jinja2")


def _modules_after_import_app() -> set[str]:
    code = "import json, sys\nimport app\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "", "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "dev"}).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_importing_the_app_loads_neither_stripe_nor_argon2_nor_the_batch_utility() -> None:
    loaded = _modules_after_import_app()
    assert [name for name in LAZY if name in loaded] == []
