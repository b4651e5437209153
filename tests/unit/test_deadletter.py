"""The dead-letter file: every event Kafka did not confirm is kept, one JSON line each."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.config.resolve import load_settings
from foot_traffic.errors import DeliveryError
from foot_traffic.kafka.deadletter import DEFAULT_DEAD_LETTER_FILE, DeadLetterFile, dead_letter_line
from foot_traffic.kafka.producer import KafkaSink
from tests.unit.fakes import FakeProducer, fake_sink

EVENT = '{"event_type":"foot_traffic","customer_id":"c-1","time_slot":"17:00–19:59"}'.encode()


def make_sink(path: Path) -> tuple[KafkaSink, FakeProducer]:
    """A sink with a dead-letter file, wired to a fake producer."""
    return fake_sink(dead_letters=DeadLetterFile(path))


def read_lines(path: Path) -> list[dict[str, str]]:
    """The dead-letter file's records."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_line_holds_topic_key_event_text_and_error() -> None:
    """A dead letter is one compact JSON line whose value is the event's JSON text, unchanged."""
    line = dead_letter_line("t", "c-1", EVENT, "_MSG_TIMED_OUT: Local: Message timed out")
    assert line.endswith("\n")
    assert line.count("\n") == 1
    record = json.loads(line)
    assert list(record) == ["topic", "key", "value", "error"]
    assert record == {
        "topic": "t",
        "key": "c-1",
        "value": EVENT.decode(),
        "error": "_MSG_TIMED_OUT: Local: Message timed out",
    }
    assert json.loads(record["value"])["time_slot"] == "17:00–19:59"


def test_file_is_created_on_the_first_dead_letter_only(tmp_path: Path) -> None:
    """A run that delivers everything leaves no file behind, and closing it says nothing."""
    path = tmp_path / "dl.jsonl"
    letters = DeadLetterFile(path)
    letters.close()
    assert not path.exists()
    assert letters.written == 0


def test_each_line_is_on_disk_before_close_and_earlier_lines_are_kept(tmp_path: Path) -> None:
    """Lines are flushed one by one (a crash loses none) and appended after an earlier run's."""
    path = tmp_path / "dl.jsonl"
    path.write_text('{"earlier": "run"}\n', encoding="utf-8")
    letters = DeadLetterFile(path)
    assert letters.write("t", "c-1", EVENT, "E: one")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert letters.write("t", "c-2", EVENT, "E: two")
    assert [r.get("key") for r in read_lines(path)] == [None, "c-1", "c-2"]
    letters.close()
    assert letters.written == 2


def test_close_logs_the_path_and_the_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Closing a file that received dead letters logs how many and where, once."""
    letters = DeadLetterFile(tmp_path / "dl.jsonl")
    for i in range(3):
        letters.write("t", f"c-{i}", EVENT, "E: x")
    letters.close()
    letters.close()
    lines = [r.getMessage() for r in caplog.records if "Dead letters:" in r.getMessage()]
    assert lines == [f"Dead letters: 3 undelivered event(s) appended to {tmp_path / 'dl.jsonl'}"]


def test_unwritable_file_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that cannot be opened gives an error line naming the customer; the producer keeps going."""
    letters = DeadLetterFile(tmp_path / "missing-dir" / "dl.jsonl")
    assert not letters.write("t", "c-9", EVENT, "E: x")
    assert (letters.written, letters.unwritten) == (0, 1)
    assert any("customer_id=c-9" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_relative_path_is_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default DEAD_LETTER_FILE lies in the working directory."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.dead_letter_file == Path(DEFAULT_DEAD_LETTER_FILE)
    assert DeadLetterFile(settings.dead_letter_file).path == tmp_path / DEFAULT_DEAD_LETTER_FILE


def test_failed_delivery_reports_become_dead_letters(tmp_path: Path) -> None:
    """Each failed report, and only those, is written with its topic, key, event and error."""
    path = tmp_path / "dl.jsonl"
    sink, producer = make_sink(path)
    for i in range(3):
        sink.send(f"c-{i}", EVENT, None, "17:00–19:59")
    sink.send_to("sensors", "s-1", b'{"event_type":"exit"}')
    producer.deliver(None)
    producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    producer.deliver(None)
    producer.deliver(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS))
    assert (sink.delivered, sink.failed) == (2, 2)
    sink.close()
    records = read_lines(path)
    assert [(r["topic"], r["key"]) for r in records] == [("t", "c-1"), ("sensors", "s-1")]
    assert records[0]["value"] == EVENT.decode()
    assert records[0]["error"].startswith("_MSG_TIMED_OUT: ")
    assert records[1]["error"].startswith("NOT_ENOUGH_REPLICAS: ")


def test_events_purged_at_close_become_dead_letters(tmp_path: Path) -> None:
    """Events still unconfirmed at close are purged, counted as failed and written; the file is closed."""
    path = tmp_path / "dl.jsonl"
    sink, producer = make_sink(path)
    for i in range(4):
        sink.send(f"c-{i}", EVENT, None, "17:00–19:59")
    producer.deliver(None)
    sink.close()
    assert (sink.delivered, sink.failed) == (1, 3)
    assert [r["key"] for r in read_lines(path)] == ["c-1", "c-2", "c-3"]
    assert all(r["error"].startswith("_PURGE_QUEUE: ") for r in read_lines(path))
    assert sink.dead_letters is not None
    assert sink.dead_letters.written == sink.failed


def test_event_the_client_refuses_becomes_a_dead_letter(tmp_path: Path) -> None:
    """An event produce() rejects outright is written before the run stops with a DeliveryError."""
    path = tmp_path / "dl.jsonl"
    sink, producer = make_sink(path)
    producer.refuse = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    with pytest.raises(DeliveryError):
        sink.send("c-1", EVENT, None, "17:00–19:59")
    sink.close()
    assert sink.failed == 1
    ((record),) = read_lines(path)
    assert (record["key"], record["value"]) == ("c-1", EVENT.decode())
    assert record["error"].startswith("MSG_SIZE_TOO_LARGE: ")


def test_delivery_timeout_setting_reaches_the_producer() -> None:
    """KAFKA_DELIVERY_TIMEOUT_MS defaults to 120 s, and is librdkafka's message.timeout.ms."""
    assert load_settings({}).delivery_timeout_ms == 120_000
    assert load_settings({"KAFKA_DELIVERY_TIMEOUT_MS": "5000"}).delivery_timeout_ms == 5000
    _, producer = fake_sink(extra={"message.timeout.ms": 5000})
    assert producer.config["message.timeout.ms"] == 5000
