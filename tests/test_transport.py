"""Transport: private ipc directories, loopback by default, CURVE required when exposed, and
malformed messages dropped and counted while the channel goes on."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import zmq

from realtime.transport import (
    Channel,
    TransportError,
    check_exposure,
    curve_keys,
    ipc_endpoint,
    is_loopback,
    private_dir,
)
from realtime.wire import Message, encode


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


def test_curve_encrypted_tcp_on_loopback():
    keys = curve_keys()
    context = zmq.Context()
    server = Channel(context, zmq.PULL, "tcp://127.0.0.1:0", bind=True, curve=keys)
    port = server.socket.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1]
    client = Channel(context, zmq.PUSH, f"tcp://127.0.0.1:{port}", bind=False, curve=keys)
    try:
        client.send(Message("heartbeat", 1))
        got = server.recv(timeout_ms=3000)
        assert got is not None and got.kind == "heartbeat"
    finally:
        client.close()
        server.close()
        context.term()
