"""The supervisor of the live pipeline's worker processes: starts them, restarts one that dies or
whose heartbeats stop (with back-off, giving up on one that keeps failing at start), keeps a warm
spare where asked, and stops them all, leaving no process behind. No torch, no ZeroMQ: the
process entries and their specs are given to it (``realtime.workers``)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from typing import Any

from fnac.threads import share_cores

log = logging.getLogger(__name__)


@dataclass
class Supervisor:
    """Starts the workers, restarts one that dies or whose heartbeats stop, stops them all.

    A worker's heartbeat clock starts with its first heartbeat (the inference worker's ready
    message counts as one), so loading a model, compiling or warming up an engine before that
    never counts as a stall: start-up has its own, longer deadline, ``start_s`` (``torch.compile``
    of both encoders takes a minute or more on 2 cores), after which a worker that said nothing
    is taken for hung at start. The warm-up must leave nothing to compile for the first frames
    (``InferenceStage.warm_up``): once heartbeats flow, ``stall_s`` applies. A worker that dies
    again before its first heartbeat (a camera that is gone, a model that no longer loads) or
    hangs at start is restarted after a delay that doubles each time, and given up after
    ``give_up_after`` such attempts: restarting it at once, for ever, would only spin the CPU and
    flood the log.

    For the workers named in ``standby`` it keeps a warm spare (started with a ``go`` event once
    the active one is healthy, so the two never load at once); a restart promotes the spare
    instead of starting from nothing."""

    specs: dict[str, tuple[Any, Any]]  # name -> (process entry, its spec)
    stall_s: float = 5.0  # no heartbeat for this long: the worker is hung
    start_s: float = 600.0  # no first heartbeat this long after its start: hung at start
    backoff_s: float = 0.5  # delay before the first restart; doubles while starts keep failing
    backoff_max_s: float = 8.0
    give_up_after: int = 5  # failed starts in a row (no heartbeat in between)
    processes: dict[str, mp.Process] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    beats: dict[str, float] = field(default_factory=dict)  # name -> last heartbeat (monotonic)
    started: dict[str, float] = field(default_factory=dict)  # name -> when it was started
    failing: dict[str, int] = field(default_factory=dict)  # name -> failed starts in a row
    pending: dict[str, tuple[float, str]] = field(default_factory=dict)  # name -> (when, why)
    gave_up: dict[str, str] = field(default_factory=dict)  # name -> why
    standby: set[str] = field(default_factory=set)  # names that keep a warm spare
    spares: dict[str, tuple[mp.Process, Any]] = field(default_factory=dict)  # name -> (spare, go)
    spare_failures: dict[str, int] = field(default_factory=dict)
    max_spare_failures: int = 3

    def __post_init__(self) -> None:
        self.context = mp.get_context("spawn")
        share_cores()  # the workers inherit it: their libraries load after the spawn

    def _release(self, name: str) -> None:
        """Close a finished worker's Process object: its pipes stay open until closed (or
        garbage collected), one pair per start, which a long run would pile up."""
        old = self.processes.get(name)
        if old is not None and not old.is_alive():
            old.join(0)
            old.close()

    def _spawn(self, name: str, go: Any = None) -> mp.Process:
        target, spec = self.specs[name]
        kwargs = {} if go is None else {"go": go}
        label = f"fnac-{name}" if go is None else f"fnac-{name}-standby"
        proc = self.context.Process(
            target=target, args=(spec,), kwargs=kwargs, name=label, daemon=True
        )
        proc.start()
        return proc

    def start(self, name: str) -> bool:
        """Start worker ``name``: promote its warm spare if one is alive, else a new process.
        Returns whether it was a promotion."""
        self._release(name)
        proc, go = self.spares.pop(name, (None, None))
        promoted = proc is not None and proc.is_alive()
        if promoted:
            go.set()
        else:
            if proc is not None:
                proc.close()
            proc = self._spawn(name)
        self.processes[name] = proc
        self.beats.pop(name, None)
        self.started[name] = time.monotonic()
        return promoted

    def starting(self, name: str) -> None:
        """Worker ``name`` begins its start-up now (it waited at a gate since its spawn): its
        start-up deadline runs from here."""
        if name in self.processes:
            self.started[name] = time.monotonic()

    def _keep_spare(self, name: str) -> None:
        """Start a spare for ``name`` once its active worker is healthy and none is alive; a
        spare that dies unused is counted, and after a few no more are started."""
        if name in self.gave_up or name not in self.beats:
            return
        proc, _ = self.spares.get(name, (None, None))
        if proc is not None and proc.is_alive():
            return
        if proc is not None:
            failures = self.spare_failures[name] = self.spare_failures.get(name, 0) + 1
            log.warning("%s standby exited (exit code %s)", name, proc.exitcode)
            proc.close()
            del self.spares[name]
            if failures >= self.max_spare_failures:
                log.error("%s standby failed %d times: running without one", name, failures)
        if self.spare_failures.get(name, 0) >= self.max_spare_failures:
            return
        go = self.context.Event()
        self.spares[name] = (self._spawn(name, go), go)

    def beat(self, name: str) -> None:
        """Record a heartbeat (or any sign of life) from worker ``name``."""
        if name in self.processes:
            self.beats[name] = time.monotonic()

    def _schedule(self, name: str, why: str, now: float) -> str:
        """Plan the restart of a worker that died or hung: at once after a run that sent
        heartbeats, later and later while it keeps failing before its first one."""
        streak = 1 if name in self.beats else self.failing.get(name, 0) + 1
        self.failing[name] = streak
        if streak > self.give_up_after:
            self.gave_up[name] = why
            event = f"{name} worker {why}; gave up after {streak - 1} failed restarts"
            log.error(event)
            return event
        delay = 0.0 if streak == 1 else min(self.backoff_s * 2 ** (streak - 2), self.backoff_max_s)
        self.pending[name] = (now + delay, why)
        return "" if delay == 0 else f"{name} worker {why}; restarting in {delay:.1f} s"

    def _restart(self, name: str, why: str) -> str:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        how = "restarted from the warm standby" if self.start(name) else "restarted"
        event = f"{name} worker {why}; {how} ({self.restarts[name]})"
        log.warning(event)
        return event

    def check(self) -> list[str]:
        """Restart workers that died (not those that finished cleanly) or stalled, with back-off;
        returns what happened. ``gave_up`` names the workers it stopped restarting."""
        events = []
        now = time.monotonic()
        for name, proc in list(self.processes.items()):
            if name in self.finished or name in self.pending or name in self.gave_up:
                continue
            if proc.is_alive():
                last = self.beats.get(name)
                if last is not None and now - last > self.stall_s:
                    why = f"sent no heartbeat for {now - last:.1f} s"
                elif last is None and now - self.started.get(name, now) > self.start_s:
                    why = f"said nothing in the {self.start_s:.0f} s it had to start"
                else:
                    continue
                proc.kill()
                proc.join(2.0)
            elif proc.exitcode == 0:
                self.finished.add(name)
                continue
            else:
                why = f"died (exit code {proc.exitcode})"
            events.append(self._schedule(name, why, now))
        for name, (when, why) in list(self.pending.items()):  # due now, or scheduled just above
            if now >= when:
                del self.pending[name]
                events.append(self._restart(name, why))
        for name in self.standby:
            self._keep_spare(name)
        return [e for e in events if e]

    def stop(self, timeout: float = 3.0) -> None:
        everyone = [*self.processes.values(), *(proc for proc, _ in self.spares.values())]
        for proc in everyone:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in everyone:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for name in list(self.processes):
            self._release(name)
        self.processes = {name: p for name, p in self.processes.items() if _open(p)}
        for proc, _ in self.spares.values():
            if not proc.is_alive():
                proc.close()
        self.spares = {}


def _open(proc: mp.Process) -> bool:
    """Whether ``proc`` was not closed (a closed Process answers nothing, not even is_alive)."""
    try:
        proc.is_alive()
    except ValueError:
        return False
    return True
