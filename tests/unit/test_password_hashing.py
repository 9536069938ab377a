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


def test_an_unknown_email_costs_one_argon2_run_as_a_wrong_password_does_even_first_in_a_process(
        monkeypatch) -> None:
    """Timing must not tell which emails have accounts: a login for an unknown email runs argon2
    once, at the hasher's own parameters, exactly as a wrong password for a known guest does, and
    that holds for a process's first unknown email too (no hash made on the spot to compare with)."""
    import argon2
    from argon2 import _password_hasher

    from chalicelib import auth

    runs: list[tuple[str, argon2.Parameters]] = []
    real_hash, real_verify = _password_hasher.hash_secret, _password_hasher.verify_secret

    def counted_hash(*args, **kwargs):  # type: ignore[no-untyped-def]
        encoded = real_hash(*args, **kwargs)
        runs.append(("hash", argon2.extract_parameters(encoded.decode())))
        return encoded

    def counted_verify(encoded, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(("verify", argon2.extract_parameters(encoded.decode())))
        return real_verify(encoded, *args, **kwargs)

    monkeypatch.setattr(_password_hasher, "hash_secret", counted_hash)
    monkeypatch.setattr(_password_hasher, "verify_secret", counted_verify)
    stored = auth.hash_password("correct horse battery")
    runs.clear()

    assert auth.verify_password(stored, "wrong") is False
    wrong_password = list(runs)
    runs.clear()
    assert auth.verify_password(None, "correct horse battery") is False
    unknown_email = list(runs)

    assert wrong_password == [("verify", argon2.extract_parameters(stored))]
    assert unknown_email == wrong_password
