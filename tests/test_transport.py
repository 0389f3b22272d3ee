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
