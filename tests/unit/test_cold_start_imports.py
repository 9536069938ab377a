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


def test_importing_the_app_loads_no_service_but_the_access_checks_every_route_makes() -> None:
    """A cold receipt does not pay for the cancellation, closure, purchase and refund code
    (chalicelib/lazy.py): each service is imported by the first event that calls it."""
    loaded = _modules_after_import_app()
    services = sorted(name for name in loaded if name.startswith("chalicelib.services."))
    assert services == ["chalicelib.services.access", "chalicelib.services.stripe_key"]


_FIRST_USE = """
import sys, threading
from chalicelib.lazy import lazy_module
edits = lazy_module("chalicelib.services.edits")
assert "chalicelib.services.edits" not in sys.modules
barrier, found = threading.Barrier(8), []
def use():
    barrier.wait()
    found.append(edits.edit_session)
threads = [threading.Thread(target=use) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
real = sys.modules["chalicelib.services.edits"].edit_session
print(len(found), all(f is real for f in found))
"""


def test_a_lazy_service_is_imported_once_and_whole_when_threads_first_use_it_together() -> None:
    out = subprocess.run([sys.executable, "-c", _FIRST_USE], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "", "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "dev"}).stdout
    assert out.split() == ["8", "True"]
