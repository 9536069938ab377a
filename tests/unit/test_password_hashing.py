"""Guests' passwords are hashed with argon2id at the library's recommended cost in the product
(the test suite lowers it for speed in its own process: tests/conftest.py), and verify."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_product_hashes_passwords_with_argon2id_at_the_recommended_cost() -> None:
    code = ("from chalicelib import auth\n"
            "stored = auth.hash_password('correct horse battery')\n"
            "print(stored.rsplit('$', 2)[0])\n"
            "print(auth.verify_password(stored, 'correct horse battery'), auth.verify_password(stored, 'wrong'),"
            " auth.verify_password(None, 'correct horse battery'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "", "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "dev"}).stdout.split("\n")
    assert out[0] == "$argon2id$v=19$m=65536,t=3,p=4"
    assert out[1] == "True False False"
