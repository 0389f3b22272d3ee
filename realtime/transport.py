"""Where workers meet: endpoints, exposure rules and message I/O over ZeroMQ.

- ``ipc://`` sockets live in a private directory (created 0700) on one host;
- ``tcp://`` binds to loopback unless the user names another address, and then only with CURVE
  keys (a non-loopback endpoint without keys is refused);
- messages are ``realtime.wire`` multiparts; a malformed one is dropped and counted.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path

import zmq

from realtime.wire import Message, WireError, decode, encode


class TransportError(ValueError):
    """An endpoint that may not or cannot be used; the message names the fix."""


def private_dir() -> Path:
    """A fresh directory only this user can enter, for ipc:// sockets."""
    return Path(tempfile.mkdtemp(prefix="fnac-ipc-"))  # mkdtemp creates it with mode 0700


def ipc_endpoint(directory: Path, name: str) -> str:
    return f"ipc://{directory / name}"


def is_loopback(endpoint: str) -> bool:
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = endpoint.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(endpoint: str, curve_secret: bytes | None) -> None:
    if not is_loopback(endpoint) and curve_secret is None:
        raise TransportError(
            f"{endpoint} is reachable beyond this machine: pass CURVE keys (--curve-keys) or "
            "bind to 127.0.0.1"
        )


class Channel:
    """One ZeroMQ socket with wire-format I/O and a count of what was dropped."""

    def __init__(
        self,
        context: zmq.Context,
        kind: int,
        endpoint: str,
        bind: bool,
        hwm: int = 1000,
        curve: dict[str, bytes] | None = None,
    ) -> None:
        self.socket = context.socket(kind)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        if kind == zmq.SUB:
            self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        if curve:
            if bind:
                self.socket.curve_secretkey = curve["secret"]
                self.socket.curve_publickey = curve["public"]
                self.socket.curve_server = True
            else:
                self.socket.curve_secretkey = curve["client_secret"]
                self.socket.curve_publickey = curve["client_public"]
                self.socket.curve_serverkey = curve["public"]
        if bind:
            check_exposure(endpoint, curve.get("secret") if curve else None)
            self.socket.bind(endpoint)
        else:
            self.socket.connect(endpoint)
        self.malformed = 0

    def send(self, msg: Message, block: bool = True) -> bool:
        try:
            self.socket.send_multipart(encode(msg), copy=False, flags=0 if block else zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def recv(self, timeout_ms: int | None = None) -> Message | None:
        """The next well-formed message, or None after ``timeout_ms``."""
        while True:
            if timeout_ms is not None and not self.socket.poll(timeout_ms):
                return None
            frames = self.socket.recv_multipart(copy=False)
            try:
                return decode([f.buffer for f in frames])
            except WireError:
                self.malformed += 1
                timeout_ms = 0 if timeout_ms is not None else None

    def drain(self, limit: int | None = None) -> list[Message]:
        """The messages waiting now, in order, at most ``limit`` of them (never blocks)."""
        out = []
        while limit is None or len(out) < limit:
            msg = self.recv(timeout_ms=0)
            if msg is None:
                return out
            out.append(msg)
        return out

    def close(self) -> None:
        self.socket.close(linger=0)


def curve_keys() -> dict[str, bytes]:
    """A fresh server and client key pair."""
    public, secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    return {
        "public": public,
        "secret": secret,
        "client_public": client_public,
        "client_secret": client_secret,
    }


def endpoint_dir_is_private(endpoint: str) -> bool:
    if not endpoint.startswith("ipc://"):
        return True
    return (os.stat(Path(endpoint[6:]).parent).st_mode & 0o077) == 0
