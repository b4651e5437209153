"""Reading committed progress back while another process keeps committing: the read ends at the end it found.

A fleet member that joins, or takes over partitions, reads the state topic back while the
other members go on committing every COMMIT_INTERVAL_MS. Records then never stop coming, so
a read that waited for the partition's end to show up would wait until the writers stop.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from foot_traffic.kafka.resume import _tail, read_state, state_topic, unit_key
from foot_traffic.model.units import Unit
from foot_traffic.run.positions import Position

READ_S = 20.0
"""The reads' timeout: far longer than a read of a few hundred records takes, far shorter than the writer runs."""


def _create(broker: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)]).values():
        future.result(30)


def _position(index: int) -> bytes:
    return Position(dt.date(2025, 8, 12), index, False, 0).encode()


@pytest.fixture
def busy_writer(broker: str, topic: str) -> Iterator[tuple[threading.Event, list[int]]]:
    """A transactional producer committing a unit's position and an event, one transaction after another.

    Yields its stop flag and the indexes it has committed so far (appended after each commit).
    """
    _create(broker, topic)
    _create(broker, state_topic(topic))
    producer = Producer({"bootstrap.servers": broker, "transactional.id": f"busy-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    stop, committed = threading.Event(), []
    unit = Unit("s0", dt.date(2025, 8, 12))

    def write() -> None:
        index = 0
        while not stop.is_set():
            producer.begin_transaction()
            producer.produce(topic, value=f'{{"n":{index}}}'.encode(), key=b"k")
            producer.produce(state_topic(topic), value=_position(index), key=unit_key(unit))
            producer.commit_transaction(30)
            committed.append(index)
            index += 1

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield stop, committed
    finally:
        stop.set()
        thread.join(60)


@pytest.mark.kafka
def test_the_state_is_read_back_while_another_process_keeps_committing(
    broker: str, topic: str, busy_writer: tuple[threading.Event, list[int]]
) -> None:
    """read_state returns while commits go on, with a position at least as far as the last committed before it."""
    stop, committed = busy_writer
    while len(committed) < 50:  # a few hundred records behind the read, and more coming all along
        threading.Event().wait(0.05)
    for _ in range(3):
        before = committed[-1]
        state = read_state(broker, topic, None, READ_S)
        (position,) = state.progress.values()
        assert position.index >= before
        assert not stop.is_set(), "the writer was still committing during the read"


@pytest.mark.kafka
def test_the_topic_tail_is_read_back_while_another_process_keeps_committing(
    broker: str, topic: str, busy_writer: tuple[threading.Event, list[int]]
) -> None:
    """The old tail scan returns while commits go on, with an event at least as far as the last committed before it."""
    _, committed = busy_writer
    while len(committed) < 50:
        threading.Event().wait(0.05)
    for _ in range(3):
        before = committed[-1]
        tails = _tail(broker, topic, None, READ_S)
        found = tails[0]
        assert found is not None
        assert int(found[1].decode().removeprefix('{"n":').removesuffix("}")) >= before
