"""Where workers meet: endpoints, exposure rules and message I/O over ZeroMQ.

- ``ipc://`` sockets live in a private directory (created 0700) on one host;
- ``tcp://`` binds to loopback unless the user names another address, and then only with CURVE
  keys (a non-loopback endpoint without keys is refused);
- messages are ``realtime.wire`` multiparts; a malformed one is dropped and counted, and a part
  larger than the wire format accepts is refused by ZeroMQ before it is allocated.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import zmq

from realtime.wire import MAX_PART_BYTES, Message, decode, encode

# ZeroMQ's MAXMSGSIZE bounds each part as it arrives on the connection, wrapping included (CURVE
# adds 33 bytes a part), so a little room above the largest part ``decode`` accepts. A peer that
# sends more is disconnected (it reconnects by itself) and the part is never allocated. It does
# not bound the number of parts, nor apply to inproc://.
MAX_RECV_PART_BYTES = MAX_PART_BYTES + 4096


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
            f"{endpoint} is reachable beyond this machine: pass the CURVE keys `fnac keys` "
            "writes (--keys FILE) or bind to 127.0.0.1"
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
        self.hwm = hwm
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_RECV_PART_BYTES)  # bounds inbound parts only
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
        """The next well-formed message, or None after ``timeout_ms``; anything ``decode`` refuses
        (or raises on) is dropped and counted in ``malformed``."""
        while True:
            if timeout_ms is not None and not self.socket.poll(timeout_ms):
                return None
            frames = self.socket.recv_multipart(copy=False)
            try:
                return decode([f.buffer for f in frames])
            except Exception:  # WireError by contract, but a decoder bug must not kill the worker
                self.malformed += 1
                timeout_ms = 0 if timeout_ms is not None else None

    def drain(self, limit: int | None = None, settle_ms: int = 0) -> list[Message]:
        """The messages waiting now, in order, at most ``limit`` of them (``take``, as a list)."""
        return list(self.take(limit, settle_ms))

    def take(self, limit: int | None = None, settle_ms: int = 0) -> Iterator[Message]:
        """The messages waiting now, one at a time as they are read (the reader keeps only what
        it needs: a flood is never all in memory at once), at most ``limit`` of them.
        ``settle_ms``: after a round that found messages, wait that long for more. A receiving
        queue refills from the sender's only as it is read, a large message at a time, so a
        drain that stopped at the first empty look would leave older messages waiting at the
        sender; it stops when a whole settle brings nothing."""
        taken = 0
        while limit is None or taken < limit:
            msg = self.recv(timeout_ms=0)
            if msg is not None:
                taken += 1
                yield msg
                continue
            if not (settle_ms and taken and self.socket.poll(settle_ms)):
                return

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


SERVER_KEYS = ("public", "secret", "client_public")  # what the binding (inference) side holds
CLIENT_KEYS = ("public", "client_public", "client_secret")  # what the capture side holds


def write_key_files(folder: str | Path) -> tuple[Path, Path]:
    """A fresh CURVE key set as ``server.key`` (for the host that binds: the inference side) and
    ``client.key`` (for the capture host), each readable by this user only. The server accepts
    only the client whose public key it holds."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = curve_keys()
    paths = []
    for name, wanted in (("server.key", SERVER_KEYS), ("client.key", CLIENT_KEYS)):
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({k: keys[k].decode() for k in wanted}, fh, indent=2)
        paths.append(path)
    return paths[0], paths[1]


def read_key_file(path: str | Path, role: str) -> dict[str, bytes]:
    """``role`` "server" or "client": the keys that side needs, checked."""
    wanted = SERVER_KEYS if role == "server" else CLIENT_KEYS
    try:
        values = json.loads(Path(path).read_text())
        keys = {k: values[k].encode() for k in wanted}
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise TransportError(
            f"{path} is not a {role} key file ({exc}); write a pair with fnac keys DIR"
        ) from exc
    if any(len(v) != 40 for v in keys.values()):
        raise TransportError(
            f"{path}: CURVE keys are 40 z85 characters; write a pair with fnac keys"
        )
    return keys


class _AllowedClients:
    """ZAP credentials provider: only the listed client public keys (z85) get in."""

    def __init__(self, allowed: set[bytes]) -> None:
        self.allowed = allowed

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.allowed


def authenticate_clients(context: zmq.Context, client_public: bytes):
    """Start ZeroMQ's authenticator in this process: CURVE clients other than ``client_public``
    are refused. Returns it; ``stop()`` it before the context terminates."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve_callback("*", _AllowedClients({client_public}))
    return auth
