"""The README's curl walk-through, run as written against the stack `make run` starts: a person
who copies it gets a venue, a purchase, a cancellation and exactly one refund."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import RunningStack

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.slow


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Try it with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_curl_walkthrough_works_as_written(live_stack: RunningStack) -> None:
    assert shutil.which("jq"), "the README's walk-through needs jq: apt-get install -y jq"
    script = walkthrough()
    for name, value in (("API", live_stack.url), ("ADMIN", live_stack.admin_key), ("STRIPE", live_stack.stripe_url)):
        script, replaced = re.subn(rf"^{name}=\S+", f"{name}={value}", script, count=1, flags=re.M)
        assert replaced == 1, f"the walk-through no longer sets {name}"
    script = "set -eu\n" + script + '\necho\necho "TXN=$TXN"\necho "PI=$PI"\necho "TOKEN=$TOKEN"\n'
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    printed = dict(line.split("=", 1) for line in ran.stdout.splitlines() if re.match(r"^(TXN|PI|TOKEN)=", line))
    assert all(value and value != "null" for value in printed.values()), ran.stdout
    assert '"error"' not in ran.stdout, ran.stdout

    receipt_url = f"{live_stack.url}/v1/me/transactions/{printed['TXN']}"
    deadline = time.monotonic() + 30
    while True:
        refunds = requests.get(receipt_url, headers={"Authorization": f"Bearer {printed['TOKEN']}"},
                               timeout=10).json()["refunds"]
        if (refunds and refunds[0]["status"] != "pending") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [(r["status"], r["amount"]) for r in refunds] == [("refunded", 5000)]
    paid = requests.get(f"{live_stack.stripe_url}/_standin/refunds", timeout=10).json()
    assert [r["amount"] for r in paid if r["payment_intent"] == printed["PI"]] == [5000]
