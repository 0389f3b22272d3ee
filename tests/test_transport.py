"""Transport: private ipc directories, loopback by default, CURVE required when exposed, and
malformed messages dropped and counted while the channel goes on."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import zmq

import realtime.transport
from realtime.transport import (
    MAX_RECV_PART_BYTES,
    Channel,
    TransportError,
    check_exposure,
    curve_keys,
    ipc_endpoint,
    is_loopback,
    private_dir,
)
from realtime.wire import MAX_ARRAY_BYTES, MAX_PART_BYTES, Message, decode, encode


def test_ipc_directory_is_private():
    folder = private_dir()
    try:
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    finally:
        folder.rmdir()


def test_loopback_rules():
    assert is_loopback("ipc:///tmp/x") and is_loopback("tcp://127.0.0.1:5555")
    assert is_loopback("tcp://[::1]:5555") and is_loopback("tcp://localhost:5555")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://*:5555")
    with pytest.raises(TransportError, match="CURVE"):
        check_exposure("tcp://0.0.0.0:5555", None)
    check_exposure("tcp://0.0.0.0:5555", b"secret")


def test_round_trip_and_malformed_messages_are_counted():
    folder = private_dir()
    context = zmq.Context()
    endpoint = ipc_endpoint(folder, "t")
    server = Channel(context, zmq.PULL, endpoint, bind=True)
    client = Channel(context, zmq.PUSH, endpoint, bind=False)
    raw = context.socket(zmq.PUSH)
    raw.connect(endpoint)
    try:
        raw.send_multipart([b"not json"])
        raw.send_multipart([b'{"schema": 1, "kind": "frame", "arrays": [{"name": "a"}]}'])
        # from the same socket, so it arrives after the two malformed ones
        raw.send_multipart(
            encode(Message("frame", 3, arrays={"image": np.ones((2, 2, 3), np.uint8)}))
        )
        got = server.recv(timeout_ms=2000)
        assert got is not None and got.seq == 3 and got.arrays["image"].sum() == 12
        assert server.malformed == 2
    finally:
        raw.close(linger=0)
        client.close()
        server.close()
        context.term()
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


@pytest.fixture
def pull_and_push():
    """A receiving Channel on a private ipc endpoint and a raw PUSH socket connected to it."""
    folder = private_dir()
    context = zmq.Context()
    endpoint = ipc_endpoint(folder, "t")
    server = Channel(context, zmq.PULL, endpoint, bind=True)
    raw = context.socket(zmq.PUSH)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint)
    try:
        yield server, raw
    finally:
        raw.close(linger=0)
        server.close()
        context.term()
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def test_oversized_part_is_refused_before_decoding_and_the_channel_goes_on(pull_and_push):
    server, raw = pull_and_push
    assert MAX_RECV_PART_BYTES > MAX_PART_BYTES  # room for ZMTP and CURVE framing
    oversized = np.zeros(MAX_RECV_PART_BYTES + 1, np.uint8)
    raw.send_multipart(encode(Message("frame", 1, arrays={"image": oversized})), copy=False)
    assert server.recv(timeout_ms=1000) is None
    assert server.malformed == 0  # ZeroMQ dropped it (and the connection): decode never saw it
    # the sender reconnects by itself; PUSH waits for the connection
    raw.send_multipart(encode(Message("frame", 2, arrays={"image": np.ones(4, np.uint8)})))
    got = server.recv(timeout_ms=5000)
    assert got is not None and got.seq == 2 and server.malformed == 0


@pytest.fixture
def curve_pair():
    """A receiving Channel on loopback TCP with CURVE keys, and a client Channel holding them."""
    keys = curve_keys()
    context = zmq.Context()
    server = Channel(context, zmq.PULL, "tcp://127.0.0.1:0", bind=True, curve=keys)
    endpoint = server.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
    client = Channel(context, zmq.PUSH, endpoint, bind=False, curve=keys)
    try:
        yield server, client
    finally:
        client.close()
        server.close()
        context.term()


def test_the_largest_array_the_wire_accepts_still_gets_through_curve(curve_pair):
    # CURVE wraps each part in 33 more bytes, which the receiving bound must leave room for
    server, client = curve_pair
    client.send(Message("frame", 1, arrays={"image": np.zeros(MAX_ARRAY_BYTES, np.uint8)}))
    got = server.recv(timeout_ms=10_000)
    assert got is not None and got.arrays["image"].nbytes == MAX_ARRAY_BYTES


def test_anything_the_decoder_raises_is_counted_not_fatal(pull_and_push, monkeypatch):
    server, raw = pull_and_push
    calls = []

    def buggy_decode(frames):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a decoder bug")
        return decode(frames)

    monkeypatch.setattr(realtime.transport, "decode", buggy_decode)
    raw.send_multipart(encode(Message("frame", 1)))
    raw.send_multipart(encode(Message("frame", 2)))
    got = server.recv(timeout_ms=3000)
    assert got is not None and got.seq == 2 and server.malformed == 1


def test_curve_encrypted_tcp_on_loopback(curve_pair):
    server, client = curve_pair
    client.send(Message("heartbeat", 1))
    got = server.recv(timeout_ms=3000)
    assert got is not None and got.kind == "heartbeat"


def test_key_files_are_private_and_only_the_known_client_gets_in(tmp_path):
    from realtime.transport import authenticate_clients, read_key_file, write_key_files

    server_file, client_file = write_key_files(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(server_file).st_mode) == 0o600
    server_keys = read_key_file(server_file, "server")
    client_keys = read_key_file(client_file, "client")
    assert "secret" not in client_keys  # the capture host never holds the server's secret
    stranger = {**client_keys}
    stranger["client_public"], stranger["client_secret"] = zmq.curve_keypair()
    context = zmq.Context()
    auth = authenticate_clients(context, server_keys["client_public"])
    server = Channel(context, zmq.PULL, "tcp://127.0.0.1:0", bind=True, curve=server_keys)
    endpoint = server.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
    intruder = Channel(context, zmq.PUSH, endpoint, bind=False, curve=stranger)
    friend = Channel(context, zmq.PUSH, endpoint, bind=False, curve=client_keys)
    try:
        intruder.send(Message("frame", 666), block=False)
        friend.send(Message("frame", 1))
        got = [server.recv(timeout_ms=3000), server.recv(timeout_ms=1000)]
        assert [m.seq for m in got if m is not None] == [1]
    finally:
        for channel in (intruder, friend, server):
            channel.close()
        auth.stop()
        context.term()


def test_bad_key_files_are_clear_errors(tmp_path):
    from realtime.transport import read_key_file

    (tmp_path / "k").write_text('{"public": "short"}')
    with pytest.raises(TransportError, match="fnac keys"):
        read_key_file(tmp_path / "k", "server")
    with pytest.raises(TransportError, match="not a client key file"):
        read_key_file(tmp_path / "missing", "client")


def test_a_drain_takes_what_waits_at_the_sender_not_one_inbox_s_worth():
    """The inference side's inbox holds 4 messages and the capture side's queue many more: a
    drain that stopped when the inbox was empty would leave the rest to age at the sender (the
    live latency then grows with the queue); with a short settle it takes them all, in order."""
    folder = private_dir()
    context = zmq.Context()
    endpoint = ipc_endpoint(folder, "t")
    inbox = Channel(context, zmq.PULL, endpoint, bind=True, hwm=4)
    sender = Channel(context, zmq.PUSH, endpoint, bind=False, hwm=40)
    try:
        image = np.zeros((120, 160, 3), np.uint8)
        for seq in range(40):
            assert sender.send(Message("frame", seq, arrays={"image": image}))
        first = inbox.recv(timeout_ms=2000)
        assert first is not None and first.seq == 0
        taken = [m.seq for m in inbox.drain(limit=500, settle_ms=20)]
        assert taken == list(range(1, 40))
    finally:
        sender.close()
        inbox.close()
        context.term()
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
