"""The fake Bedrock server's event-stream encoder produces what botocore's decoder accepts."""

from __future__ import annotations

import json
import struct

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from tests.fakes.bedrock_server import encode_event, event, exception_event


def test_events_decode_with_valid_checksums() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event("contentBlockDelta", {"delta": {"text": "hé"}, "contentBlockIndex": 0}))
    buffer.add_data(exception_event("throttlingException", "slow down"))
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(first.payload) == {"delta": {"text": "hé"}, "contentBlockIndex": 0}
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "throttlingException"


def test_prelude_lengths_and_corruption_is_detected() -> None:
    raw = encode_event({":event-type": "x"}, b"{}")
    total, headers_length = struct.unpack(">II", raw[:8])
    assert total == len(raw)
    assert headers_length == 1 + len(":event-type") + 1 + 2 + 1
    corrupted = raw[:-6] + b"}" + raw[-5:]
    buffer = EventStreamBuffer()
    buffer.add_data(corrupted)
    with pytest.raises(ChecksumMismatch):
        list(buffer)
