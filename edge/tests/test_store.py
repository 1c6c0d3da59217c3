"""The disk queue: order, bounds, dead letters and persistence across a restart."""

import time

from edge.store import Store


def message(number: int, ts: str = "2026-12-06T05:00:00Z") -> tuple[str, dict]:
    return ("press-01", {"ts": ts, "values": {"count_total": number}})


def bodies(store: Store, limit: int = 100) -> list[int]:
    batch = store.peek(limit)
    return [] if batch is None else [int(body.split(":")[-1].rstrip("}")) for _, body in batch[1]]


def test_keeps_messages_in_order_across_a_restart(tmp_path):
    store = Store(tmp_path / "q.sqlite3", max_rows=100, max_age=1e9)
    store.enqueue([message(n) for n in range(5)])
    store.close()
    reopened = Store(tmp_path / "q.sqlite3", max_rows=100, max_age=1e9)
    assert reopened.depth == 5
    assert bodies(reopened) == [0, 1, 2, 3, 4]


def test_drops_the_oldest_and_counts_them_when_full(tmp_path):
    store = Store(tmp_path / "q.sqlite3", max_rows=3, max_age=1e9)
    assert store.enqueue([message(n) for n in range(2)]) == 0
    assert store.enqueue([message(n) for n in range(2, 5)]) == 2
    assert bodies(store) == [2, 3, 4]
    assert store.counters()["dropped_full"] == 2
    store.close()
    assert Store(tmp_path / "q.sqlite3", max_rows=3, max_age=1e9).counters()["dropped_full"] == 2


def test_drops_messages_older_than_max_age(tmp_path):
    store = Store(tmp_path / "q.sqlite3", max_rows=100, max_age=3600)
    store.enqueue([message(1, "2026-12-06T03:00:00Z"), message(2, "2026-12-06T04:30:00Z")])
    now = 1796533200.0  # 2026-12-06T05:00:00Z
    assert store.expire(now) == 1
    assert bodies(store) == [2] and store.counters()["dropped_expired"] == 1


def test_batches_one_device_at_a_time_oldest_first_and_skips_held_devices(tmp_path):
    store = Store(tmp_path / "q.sqlite3", max_rows=100, max_age=1e9)
    store.enqueue([message(1), ("packer-01", {"values": {"count_total": 9}}), message(2)])
    device, rows = store.peek(10)
    assert device == "press-01" and len(rows) == 2
    assert store.peek(10, skip={"press-01"})[0] == "packer-01"
    store.delete([row_id for row_id, _ in rows])
    assert store.depth == 1 and store.peek(10)[0] == "packer-01"


def test_moves_refused_messages_to_dead_letters_with_the_reason(tmp_path):
    store = Store(tmp_path / "q.sqlite3", max_rows=100, max_age=1e9)
    store.enqueue([message(1), message(2)])
    (first_id, _), _ = store.peek(10)[1]
    store.dead_letter([(first_id, "values.count_total: A piece counter is a whole number >= 0.")], 400)
    assert store.depth == 1 and bodies(store) == [2]
    assert store.dead_letters() == [
        {"id": first_id, "device": "press-01", "message": message(1)[1], "status": 400,
         "reason": "values.count_total: A piece counter is a whole number >= 0."}
    ]  # fmt: skip
    assert store.counters()["dead_letters"] == 1


def test_a_message_without_ts_is_aged_from_when_it_was_queued(tmp_path):
    store = Store(tmp_path / "q.sqlite3", max_rows=100, max_age=60)
    store.enqueue([("press-01", {"values": {"temperature": 1.0}})])
    assert store.expire(time.time()) == 0 and store.depth == 1
