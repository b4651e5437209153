"""Logging set-up, done once by the command line; modules only take a named logger.

LOG_FORMAT=text writes ``time LEVEL logger: message`` lines; LOG_FORMAT=json writes
one JSON object a line, with the same message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from foot_traffic.events.encoding import PerGroup
from foot_traffic.events.fields import CUSTOMER_ID, ENTRY_TIME
from foot_traffic.run.eventlog import EmittedLines, PlanLines

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
"""What every LogRecord holds: anything else came from a call's ``extra`` and is worth a field."""


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``; a batch of emitted events as one such line per event."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, or the lines of a batch's events or plans, each with the record's prefix."""
        if isinstance(record.msg, EmittedLines | PlanLines):
            prefix = super().format(logging.makeLogRecord({**vars(record), "msg": "", "args": None}))
            if isinstance(record.msg, PlanLines):
                return "\n".join(prefix + text for text, _ in record.msg.lines)
            return record.msg.render(record.msg.message_parts(prefix.encode()))
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then any ``extra`` fields and traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (newlines of a traceback escaped inside its string)."""
        if isinstance(record.msg, EmittedLines):
            return record.msg.render(_json_parts(record))
        if isinstance(record.msg, PlanLines):
            lines = record.msg.lines
            each = ({**vars(record), **fields, "msg": text, "args": None} for text, fields in lines)
            return "\n".join(self.format(logging.makeLogRecord(one)) for one in each)
        entry: dict[str, object] = {**_head(record), "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
        except (TypeError, ValueError):  # an extra JSON cannot hold (NaN, non-string keys, a cycle): its text
            plain = {key: value if isinstance(value, str) else str(value) for key, value in entry.items()}
            return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))


def _head(record: logging.LogRecord) -> dict[str, object]:
    """The fields every JSON line starts with."""
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC).astimezone()
    return {"time": moment.isoformat(timespec="milliseconds"), "level": record.levelname, "logger": record.name}


def _json_parts(record: logging.LogRecord) -> list[bytes | slice | PerGroup]:
    """The pieces of each event's JSON line: the same object a record of its own with its fields would give."""
    head = json.dumps(_head(record), ensure_ascii=False, separators=(",", ":"))[:-1] + ',"message":"'
    return [
        *EmittedLines.message_parts(head.encode(), _json_slot),
        b'","customer_id":"',
        CUSTOMER_ID,
        b'","entry_time":"',
        ENTRY_TIME,
        _json_tail,
    ]


def _json_slot(store_id: str | None, slot: str) -> bytes:
    """A slot's label inside a JSON string."""
    return json.dumps(slot, ensure_ascii=False)[1:-1].encode()


def _json_tail(store_id: str | None, slot: str) -> bytes:
    """The end of an event's JSON log line: its slot and store fields."""
    store = "" if store_id is None else ',"store_id":' + json.dumps(store_id, ensure_ascii=False)
    return f'","time_slot":{json.dumps(slot, ensure_ascii=False)}{store}}}'.encode()


QUIET_LIBRARIES = ("httpx", "httpx2", "matplotlib")
"""Loggers of libraries whose INFO lines (one per HTTP request, font-cache notices) are not this program's business."""


def fields_wanted() -> bool:
    """Whether a handler of the root logger writes records' extra fields (the JSON format does, text does not)."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send every log record to standard error at ``level``, as text or JSON; librdkafka's chatter only at DEBUG.

    The one place logging is configured: modules only get a named logger.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("foot_traffic.librdkafka").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
