"""What a guest reads for an error, from the portal's own messages.js run in Node: a closed slot
is the chosen one (choose another) or the session's own (nothing to do: its closure cancels it)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

PORTAL_JS = Path(__file__).resolve().parents[2] / "portal" / "js"


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """messages.js and what it imports, in a folder Node reads as ES modules."""
    folder = tmp_path_factory.mktemp("portal-js")
    for name in ("messages.js", "format.js"):
        shutil.copy(PORTAL_JS / name, folder / name)
    (folder / "package.json").write_text('{"type": "module"}')
    return folder


def guest_message(folder: Path, error: dict[str, object], context: dict[str, object]) -> str:
    script = ("import { guestMessage } from './messages.js';\n"
              f"process.stdout.write(guestMessage({json.dumps(error)}, {json.dumps(context)}));\n")
    (folder / "ask.js").write_text(script)
    done = subprocess.run(["node", "ask.js"], cwd=folder, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def test_a_move_out_of_a_closed_slot_tells_the_guest_there_is_nothing_to_do(messages: Path) -> None:
    error = {"code": "slot_closed", "details": {"slot_id": "slot-10am"}}

    said = guest_message(messages, error, {"action": "edit", "venueName": "Bounce", "sessionSlotId": "slot-10am"})

    assert said == ("Bounce has closed this session's time slot, so it can no longer be moved. Bounce cancels it "
                    "for you and emails you about its refund: there is nothing to do.")


def test_a_move_into_a_closed_slot_asks_for_another_slot(messages: Path) -> None:
    error = {"code": "slot_closed", "details": {"slot_id": "slot-11am"}}

    said = guest_message(messages, error, {"action": "edit", "venueName": "Bounce", "sessionSlotId": "slot-10am"})

    assert said == "Bounce has closed that time slot. Choose another one."


def test_a_cancellation_in_a_closed_slot_says_to_untick_it(messages: Path) -> None:
    error = {"code": "slot_closed", "details": {"slot_ids": ["slot-10am"]}}

    said = guest_message(messages, error, {"action": "cancel", "venueName": "Bounce"})

    assert "Untick it to cancel the others." in said
