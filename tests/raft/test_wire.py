"""The wire codec: round trips, and nothing but WireError out of hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftkv.raft.types import ConfState, Entry, EntryKind, Message, MessageType, SnapshotMeta
from raftkv.raft.wire import (
    HEADER,
    MAX_ID_BYTES,
    FrameReader,
    WireError,
    decode,
    encode,
    frame,
)

u64 = st.integers(min_value=0, max_value=2**64 - 1)
small = st.integers(min_value=0, max_value=2**20)
# Characters from a fixed pool (ASCII, accented, CJK, emoji): st.text() would
# make hypothesis write a cache directory into the working tree.
node_ids = st.lists(st.sampled_from("abz09:.-_éß漢字🙂"), max_size=20).map("".join)

entries = st.builds(
    Entry,
    index=u64,
    term=u64,
    kind=st.sampled_from(list(EntryKind)),
    data=st.binary(max_size=64),
)
confs = st.builds(
    ConfState,
    voters=st.lists(node_ids, max_size=5).map(tuple),
    learners=st.lists(node_ids, max_size=3).map(tuple),
)
metas = st.builds(SnapshotMeta, index=u64, term=u64, conf=confs)
messages = st.builds(
    Message,
    type=st.sampled_from(list(MessageType)),
    src=node_ids,
    dst=node_ids,
    term=u64,
    log_term=u64,
    index=u64,
    entries=st.lists(entries, max_size=5),
    commit=u64,
    reject=st.booleans(),
    reject_hint=u64,
    hint_term=u64,
    context=st.binary(max_size=16),
    snap_meta=st.none() | metas,
    snap_offset=u64,
    snap_data=st.binary(max_size=64),
    snap_done=st.booleans(),
    group=st.integers(min_value=0, max_value=2**32 - 1),
)


@settings(database=None)  # no .hypothesis directory in the tree
@given(messages)
def test_round_trip(msg: Message) -> None:
    assert decode(encode(msg)) == msg


@settings(max_examples=500, database=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_wire_error(buf: bytes) -> None:
    try:
        decode(buf)
    except WireError:
        pass


@settings(max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.data())
def test_corrupted_messages_raise_only_wire_error(msg: Message, data: st.DataObject) -> None:
    buf = bytearray(encode(msg))
    how = data.draw(st.sampled_from(["truncate", "flip", "extend", "header"]))
    if how == "truncate":
        buf = buf[: data.draw(st.integers(0, len(buf) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] ^= data.draw(st.integers(1, 255))
    elif how == "extend":
        buf += data.draw(st.binary(min_size=1, max_size=8))
    else:
        # Lengths and counts in the header are what a hostile peer would inflate.
        i = data.draw(st.integers(HEADER.size - 16, HEADER.size - 1))
        buf[i] = 0xFF
    try:
        out = decode(bytes(buf))
    except WireError:
        return
    assert isinstance(out, Message)


def test_truncated_and_trailing_are_errors() -> None:
    buf = encode(Message(MessageType.App, "a", "b", entries=[Entry(1, 1, EntryKind.NORMAL, b"x")]))
    for n in range(len(buf)):
        with pytest.raises(WireError):
            decode(buf[:n])
    with pytest.raises(WireError):
        decode(buf + b"\0")


def test_huge_counts_do_not_allocate() -> None:
    # A header announcing 2**32 - 1 entries in a tiny message is refused at once.
    buf = bytearray(encode(Message(MessageType.App, "a", "b")))
    buf[HEADER.size - 8 : HEADER.size - 4] = b"\xff\xff\xff\xff"
    with pytest.raises(WireError):
        decode(bytes(buf))


def test_unencodable_messages_raise_wire_error() -> None:
    with pytest.raises(WireError):
        encode(Message(MessageType.App, "a", "b", term=2**64))
    with pytest.raises(WireError):
        encode(Message(MessageType.App, "x" * (MAX_ID_BYTES + 1), "b"))
    with pytest.raises(WireError):
        decode("not bytes")  # type: ignore[arg-type]


@settings(database=None)
@given(st.lists(st.binary(max_size=50), max_size=10), st.data())
def test_frames_reassemble_from_any_split(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = FrameReader(max_frame_size=100)
    out: list[bytes] = []
    last = 0
    for c in cuts + [len(stream)]:
        out.extend(reader.feed(stream[last:c]))
        last = c
    assert out == payloads
    assert reader.pending_bytes() == 0


def test_oversized_frame_is_refused() -> None:
    reader = FrameReader(max_frame_size=10)
    assert reader.feed(frame(b"0123456789")) == [b"0123456789"]
    with pytest.raises(WireError):
        reader.feed((11).to_bytes(4, "little") + b"x")
    with pytest.raises(WireError):
        reader.feed(b"more")  # the stream is out of sync now
    with pytest.raises(WireError):
        frame(b"x" * 11, max_frame_size=10)


@settings(max_examples=200, database=None)
@given(st.binary(max_size=200))
def test_frame_reader_random_bytes(buf: bytes) -> None:
    reader = FrameReader(max_frame_size=64)
    try:
        for f in reader.feed(buf):
            assert len(f) <= 64
    except WireError:
        pass
