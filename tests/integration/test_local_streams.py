"""The local stack's delivery of the notifications stream (infra/local/stack.py's StreamPosition),
as Lambda's event source delivers it: only the records its filter passes reach the sender (not
the sender's own status updates), and batch after batch is read with the iterator the last read
gave, one request a batch."""
from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.integration.test_emails import kinds_sent


def test_the_sender_gets_each_new_notice_once_and_none_of_its_own_updates(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    here, there = world.slot(venue), world.slot(venue)
    made = world.purchase(guest, [here])
    path = f"/v1/me/transactions/{made['transaction_id']}/sessions/{made['sessions'][0]['session_id']}"
    world.stack.deliver_streams()  # what earlier tests of this worker left in the stream
    [(position, handler)] = world.stack.stream_handlers()
    handed: list[list[str]] = []
    requests: list[str] = []

    def sender(event: dict[str, Any], context: Any) -> Any:
        handed.append([record["eventName"] for record in event["Records"]])
        return handler(event, context)

    def count(model: Any, **_: Any) -> None:
        requests.append(model.name)

    events = position._streams().meta.events
    events.register("before-call", count)
    try:
        for slot in (there, here, there):
            assert guest.api.patch(path, {"slot_id": slot["slot_id"]}).status == 200
            while position.deliver(sender):  # the notice (INSERT), then the sender's claim and sent mark (MODIFY)
                pass
    finally:
        events.unregister("before-call", count)
    assert handed == [["INSERT"]] * 3
    assert kinds_sent(world, guest) == {"session_changed": 3}
    assert set(requests) == {"GetRecords"}  # no new iterator for any batch
