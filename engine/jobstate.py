"""Job state machine: ComfyUI executor events in, job states and progress out.

Pure: plain data in, plain data out. The tracker never raises on odd input (events arrive
out of order, for prompts we never submitted, or after a job has ended); it ignores what
it cannot apply and logs it on ``comfyui_studio.jobstate``.

Event shapes are those recorded from ComfyUI 0.3.64 (shared/comfyui/SURFACE.md §4):
``executing {"node": null}`` marks the end of a prompt, ``execution_cached`` lists the
nodes that will not run, ``progress_state`` repeats every non-pending node on each update,
and a prompt queued without a client id yields only ``progress``/``progress_state``/``status``
(and a broadcast ``execution_interrupted``), so its outcome must be read from the history.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Literal

log = logging.getLogger("comfyui_studio.jobstate")


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    LOST = "lost"


TERMINAL: frozenset[JobState] = frozenset(
    {
        JobState.DONE,
        JobState.ERROR,
        JobState.INTERRUPTED,
        JobState.CANCELLED,
        JobState.REJECTED,
        JobState.LOST,
    }
)

# Outcomes straight from `queued` are allowed: a missed `execution_start` (or a fully cached
# prompt) must not hide ComfyUI's verdict. `lost` is a conclusion drawn from absence, so real
# evidence from ComfyUI arriving later still wins over it.
ALLOWED: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        JobState.QUEUED: frozenset(
            {
                JobState.RUNNING,
                JobState.DONE,
                JobState.ERROR,
                JobState.INTERRUPTED,
                JobState.CANCELLED,
                JobState.REJECTED,
                JobState.LOST,
            }
        ),
        JobState.RUNNING: frozenset({JobState.DONE, JobState.ERROR, JobState.INTERRUPTED, JobState.LOST}),
        JobState.LOST: frozenset({JobState.RUNNING, JobState.DONE, JobState.ERROR, JobState.INTERRUPTED}),
        JobState.DONE: frozenset(),
        JobState.ERROR: frozenset(),
        JobState.INTERRUPTED: frozenset(),
        JobState.CANCELLED: frozenset(),
        JobState.REJECTED: frozenset(),
    }
)

ChangeKind = Literal["state", "progress", "output", "queue"]
UiOutput = Mapping[str, object]

_EMPTY_OUTPUTS: Mapping[str, UiOutput] = MappingProxyType({})
_FORGOTTEN_MEMORY = 4096
_OUTCOME_EVENTS = frozenset({"execution_success", "execution_error", "execution_interrupted"})


@dataclass(frozen=True)
class JobError:
    """Where and why a job failed (also used for `rejected` and `lost`, without a node)."""

    node_id: str | None
    node_type: str | None
    exception_type: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return {
            "node_id": self.node_id,
            "node_type": self.node_type,
            "exception_type": self.exception_type,
            "message": self.message,
        }


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable view of one job; collections are shared, never copied per event."""

    prompt_id: str
    state: JobState
    foreign: bool
    current_node: str | None
    node_value: float
    node_max: float
    overall: float | None  # None when the graph's nodes are unknown (foreign, not expected)
    cached_nodes: tuple[str, ...]
    executed_nodes: tuple[str, ...]
    outputs: Mapping[str, UiOutput]
    error: JobError | None
    queued_at: int | None
    started_at: int | None
    finished_at: int | None
    awaiting_outcome: bool  # ComfyUI finished it but its outcome was not seen: read the history

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for event payloads and resync snapshots."""
        return {
            "prompt_id": self.prompt_id,
            "state": self.state.value,
            "foreign": self.foreign,
            "current_node": self.current_node,
            "node_value": self.node_value,
            "node_max": self.node_max,
            "overall": self.overall,
            "cached_nodes": list(self.cached_nodes),
            "executed_nodes": list(self.executed_nodes),
            "outputs": {k: dict(v) for k, v in self.outputs.items()},
            "error": self.error.to_dict() if self.error else None,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "awaiting_outcome": self.awaiting_outcome,
        }


# The name for the progress part of a snapshot; one type serves both.


@dataclass(frozen=True)
class Change:
    """What one event moved. `previous` is the state before a "state" change (None: job is new)."""

    kind: ChangeKind
    prompt_id: str | None
    snapshot: JobSnapshot | None
    previous: JobState | None = None
    node_id: str | None = None  # the node whose output arrived, for "output"
    queue_remaining: int | None = None  # for "queue"


@dataclass
class _Job:
    prompt_id: str
    state: JobState
    foreign: bool
    announced: bool
    expected: frozenset[str] | None = None
    done: set[str] = field(default_factory=set)
    done_expected: int = 0
    current_node: str | None = None
    node_value: float = 0.0
    node_max: float = 1.0
    cached: tuple[str, ...] = ()
    executed: tuple[str, ...] = ()
    outputs: Mapping[str, UiOutput] = field(default_factory=lambda: _EMPTY_OUTPUTS)
    error: JobError | None = None
    queued_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    awaiting_outcome: bool = False
    snap: JobSnapshot | None = None  # cached until the next mutation


def _str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _num(value: object, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _str_list(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


class JobTracker:
    """Turns executor events into job states; one instance per ComfyUI host.

    Not thread-safe: feed it from the event loop (the host tap runs there).
    """

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._forgotten: deque[str] = deque(maxlen=_FORGOTTEN_MEMORY)
        self._forgotten_set: set[str] = set()
        self.queue_remaining: int | None = None
        self._handlers = {
            "execution_start": self._on_start,
            "execution_cached": self._on_cached,
            "executing": self._on_executing,
            "progress": self._on_progress,
            "progress_state": self._on_progress_state,
            "executed": self._on_executed,
            "execution_success": self._on_success,
            "execution_error": self._on_error,
            "execution_interrupted": self._on_interrupted,
        }

    # ---- queries -------------------------------------------------------------------------------

    def get(self, prompt_id: str) -> JobSnapshot | None:
        job = self._jobs.get(prompt_id)
        return self._snap(job) if job else None

    def jobs(self) -> list[JobSnapshot]:
        """Every job in memory, in the order they were first seen (for resync snapshots)."""
        return [self._snap(j) for j in self._jobs.values()]

    def active(self) -> list[JobSnapshot]:
        return [self._snap(j) for j in self._jobs.values() if j.state not in TERMINAL]

    def awaiting_outcome(self) -> list[str]:
        """Running jobs ComfyUI has finished without telling us how: resolve them from /history."""
        return [j.prompt_id for j in self._jobs.values() if j.awaiting_outcome and j.state not in TERMINAL]

    # ---- explicit transitions ------------------------------------------------------------------

    def expect(
        self,
        prompt_id: str,
        node_ids: Iterable[str],
        foreign: bool = False,
        *,
        now_ms: int | None = None,
    ) -> list[Change]:
        """Register a submitted job (state `queued`) with the node ids that will execute.

        On a job already known (e.g. a foreign one whose graph was read from /queue later) it
        only sets the node ids, so overall progress becomes available.
        """
        nodes = frozenset(node_ids)
        job = self._jobs.get(prompt_id)
        if job is not None:
            job.expected = nodes
            job.done_expected = len(job.done & nodes)
            job.snap = None
            return [Change("progress", prompt_id, self._snap(job))]
        self._unforget(prompt_id)
        job = _Job(prompt_id, JobState.QUEUED, foreign, announced=True, expected=nodes, queued_at=now_ms)
        self._jobs[prompt_id] = job
        return [Change("state", prompt_id, self._snap(job), None)]

    def mark_cancelled(self, prompt_id: str, *, now_ms: int | None = None) -> list[Change]:
        """Removed from ComfyUI's queue while pending."""
        return self._explicit(prompt_id, JobState.CANCELLED, None, now_ms)

    def mark_lost(self, prompt_id: str, reason: str, *, now_ms: int | None = None) -> list[Change]:
        """ComfyUI no longer knows the job (restart, history evicted)."""
        return self._explicit(prompt_id, JobState.LOST, JobError(None, None, "lost", reason), now_ms)

    def mark_rejected(
        self,
        prompt_id: str,
        message: str,
        *,
        error_type: str | None = None,
        node_id: str | None = None,
        now_ms: int | None = None,
    ) -> list[Change]:
        """ComfyUI refused the graph at submit; creates the job if it was never expected."""
        err = JobError(node_id, None, error_type, message)
        if prompt_id not in self._jobs:
            self.expect(prompt_id, (), now_ms=now_ms)
        return self._explicit(prompt_id, JobState.REJECTED, err, now_ms)

    def mark_failed(
        self, prompt_id: str, message: str, *, error_type: str | None = None, now_ms: int | None = None
    ) -> list[Change]:
        """The studio could not hand the job to ComfyUI (unreachable): it ends in `error`."""
        return self._explicit(prompt_id, JobState.ERROR, JobError(None, None, error_type, message), now_ms)

    def forget(self, prompt_id: str) -> bool:
        """Drop a terminal job from memory; late events for it are then ignored, not re-created."""
        job = self._jobs.get(prompt_id)
        if job is None or job.state not in TERMINAL:
            return False
        del self._jobs[prompt_id]
        if len(self._forgotten) == self._forgotten.maxlen:
            self._forgotten_set.discard(self._forgotten[0])
        self._forgotten.append(prompt_id)
        self._forgotten_set.add(prompt_id)
        return True

    def apply_history(self, prompt_id: str, entry: Mapping[str, object], *, now_ms: int) -> list[Change]:
        """Settle a job from its ComfyUI /history entry (status messages + outputs).

        The entry's status messages are the executor's own events (`execution_start`,
        `execution_cached`, `execution_success|error|interrupted`), so they are fed as such.
        """
        known = self._jobs.get(prompt_id)
        if known is not None and known.state in TERMINAL and known.state is not JobState.LOST:
            return []  # already settled by its events
        changes: list[Change] = []
        outputs = entry.get("outputs")
        if isinstance(outputs, Mapping):
            for node_id, ui in outputs.items():
                if isinstance(node_id, str) and isinstance(ui, Mapping):
                    data = {"prompt_id": prompt_id, "node": node_id, "output": ui}
                    changes += self.feed("executed", data, now_ms=now_ms)
        status = entry.get("status")
        messages = status.get("messages") if isinstance(status, Mapping) else None
        saw_outcome = False
        if isinstance(messages, list):
            for msg in messages:
                if isinstance(msg, (list, tuple)) and len(msg) == 2 and isinstance(msg[1], Mapping):
                    kind = msg[0]
                    if isinstance(kind, str):
                        saw_outcome |= kind in _OUTCOME_EVENTS
                        changes += self.feed(kind, {**msg[1], "prompt_id": prompt_id}, now_ms=now_ms)
        if not saw_outcome and isinstance(status, Mapping):
            # Older entries may lack the messages: fall back on status_str.
            ok = status.get("status_str") == "success"
            kind = "execution_success" if ok else "execution_error"
            data = {"prompt_id": prompt_id, "exception_message": "failed (from history)"}
            changes += self.feed(kind, data, now_ms=now_ms)
        return changes

    # ---- events --------------------------------------------------------------------------------

    def feed(self, event_type: str, data: Mapping[str, object], *, now_ms: int) -> list[Change]:
        """Apply one executor event; returns what moved (often nothing)."""
        if event_type == "status":
            return self._on_status(data)
        handler = self._handlers.get(event_type)
        if handler is None:
            return []
        prompt_id = _str(data, "prompt_id")
        if prompt_id is None:
            log.debug("%s without prompt_id ignored", event_type)
            return []
        job = self._jobs.get(prompt_id)
        if job is not None:
            return handler(job, data, now_ms)
        if prompt_id in self._forgotten_set:
            return []
        # Queued from ComfyUI's own editor or another client: track it as a foreign job,
        # kept only if the event tells us something (not e.g. a lone finished marker).
        job = _Job(prompt_id, JobState.QUEUED, foreign=True, announced=False)
        self._jobs[prompt_id] = job
        changes = handler(job, data, now_ms)
        if not job.announced:
            del self._jobs[prompt_id]
        return changes

    def _on_status(self, data: Mapping[str, object]) -> list[Change]:
        status = data.get("status")
        info = status.get("exec_info") if isinstance(status, Mapping) else None
        remaining = info.get("queue_remaining") if isinstance(info, Mapping) else None
        if not isinstance(remaining, int) or isinstance(remaining, bool):
            return []
        self.queue_remaining = remaining
        changes = [Change("queue", None, None, queue_remaining=remaining)]
        if remaining == 0:
            # Nothing pending or running: any job still `running` here ended unseen
            # (a prompt queued without client id never sends its outcome).
            changes += self._await_running(None)
        return changes

    def _on_start(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        if job.state is JobState.RUNNING:
            return []
        changes = self._transition(job, JobState.RUNNING, now_ms)
        if changes:
            # One worker runs one prompt: a new start means any other running job has ended.
            changes += self._await_running(job)
        return changes

    def _on_cached(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        changes = self._ensure_running(job, now_ms, "execution_cached")
        if changes is None:
            return []
        nodes = _str_list(data.get("nodes"))
        if nodes:
            job.cached = tuple(dict.fromkeys((*job.cached, *nodes)))
            for node in nodes:
                self._mark_done(job, node)
            job.snap = None
            changes.append(Change("progress", job.prompt_id, self._snap(job)))
        return changes

    def _on_executing(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        node = data.get("node")
        if node is None:
            # The "prompt finished" marker: normally after the outcome, which settled the job.
            if job.state is not JobState.RUNNING or job.awaiting_outcome:
                return []
            self._await_outcome(job)
            return [Change("progress", job.prompt_id, self._snap(job))]
        if not isinstance(node, str):
            return []
        changes = self._ensure_running(job, now_ms, "executing")
        if changes is None:
            return []
        self._enter_node(job, node)
        changes.append(Change("progress", job.prompt_id, self._snap(job)))
        return changes

    def _on_progress(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        changes = self._ensure_running(job, now_ms, "progress")
        if changes is None:
            return []
        node = _str(data, "node")
        if node is not None and node != job.current_node:
            self._enter_node(job, node)
        job.node_value = _num(data.get("value"), job.node_value)
        job.node_max = _num(data.get("max"), job.node_max)
        job.snap = None
        changes.append(Change("progress", job.prompt_id, self._snap(job)))
        return changes

    def _on_progress_state(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        nodes = data.get("nodes")
        if not isinstance(nodes, Mapping):
            return []
        changes = self._ensure_running(job, now_ms, "progress_state")
        if changes is None:
            return []
        before = (job.current_node, job.node_value, job.node_max, len(job.done))
        running: tuple[str, Mapping[str, object]] | None = None
        for node_id, info in nodes.items():
            if not isinstance(node_id, str) or not isinstance(info, Mapping):
                continue
            state = info.get("state")
            if state == "finished":
                if node_id not in job.done:
                    self._mark_done(job, node_id)
            elif state == "running":
                running = (node_id, info)
        if running is not None:
            node_id, info = running
            if node_id != job.current_node:
                self._enter_node(job, node_id)
            job.node_value = _num(info.get("value"), job.node_value)
            job.node_max = _num(info.get("max"), job.node_max)
        if (job.current_node, job.node_value, job.node_max, len(job.done)) != before:
            job.snap = None
            changes.append(Change("progress", job.prompt_id, self._snap(job)))
        return changes

    def _on_executed(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        node = _str(data, "node")
        output = data.get("output")
        if node is None or not isinstance(output, Mapping):
            return []
        changes = self._ensure_running(job, now_ms, "executed")
        if changes is None:
            return []
        # Copy-on-write so snapshots already handed out never change under their holder.
        job.outputs = MappingProxyType({**job.outputs, node: MappingProxyType(dict(output))})
        self._mark_done(job, node)
        job.snap = None
        changes.append(Change("output", job.prompt_id, self._snap(job), node_id=node))
        return changes

    def _on_success(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        if JobState.DONE not in ALLOWED[job.state]:
            return self._transition(job, JobState.DONE, now_ms)  # logs the illegal move
        if job.current_node is not None:
            self._mark_done(job, job.current_node)
        job.current_node = None
        return self._transition(job, JobState.DONE, now_ms)

    def _on_error(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        if JobState.ERROR not in ALLOWED[job.state]:
            return self._transition(job, JobState.ERROR, now_ms)  # logs the illegal move
        self._record_executed(job, data)
        error = JobError(
            _str(data, "node_id"),
            _str(data, "node_type"),
            _str(data, "exception_type"),
            _str(data, "exception_message") or "",
        )
        changes = self._transition(job, JobState.ERROR, now_ms)
        if changes:
            job.error = error
            job.current_node = error.node_id
            job.snap = None
            changes[-1] = Change("state", job.prompt_id, self._snap(job), changes[-1].previous)
        return changes

    def _on_interrupted(self, job: _Job, data: Mapping[str, object], now_ms: int) -> list[Change]:
        if JobState.INTERRUPTED not in ALLOWED[job.state]:
            return self._transition(job, JobState.INTERRUPTED, now_ms)
        self._record_executed(job, data)
        job.current_node = _str(data, "node_id") or job.current_node
        return self._transition(job, JobState.INTERRUPTED, now_ms)

    # ---- internals -----------------------------------------------------------------------------

    def _explicit(self, prompt_id: str, target: JobState, error: JobError | None, now_ms: int | None) -> list[Change]:
        job = self._jobs.get(prompt_id)
        if job is None:
            log.warning("%s for unknown job %s ignored", target.value, prompt_id)
            return []
        changes = self._transition(job, target, now_ms)
        if changes and error is not None:
            job.error = error
            job.snap = None
            changes[-1] = Change("state", prompt_id, self._snap(job), changes[-1].previous)
        return changes

    def _transition(self, job: _Job, target: JobState, now_ms: int | None) -> list[Change]:
        if target not in ALLOWED[job.state]:
            log.warning("illegal transition %s -> %s for %s ignored", job.state.value, target.value, job.prompt_id)
            return []
        previous = job.state if job.announced else None
        job.announced = True
        job.state = target
        job.awaiting_outcome = False
        if target is JobState.RUNNING:
            job.started_at = now_ms if job.started_at is None else job.started_at
        elif target in TERMINAL:
            job.finished_at = now_ms
            if target is not JobState.ERROR and target is not JobState.INTERRUPTED:
                job.current_node = None
        job.snap = None
        return [Change("state", job.prompt_id, self._snap(job), previous)]

    def _ensure_running(self, job: _Job, now_ms: int, event_type: str) -> list[Change] | None:
        """Per-node events imply the job runs; None when the job has already ended."""
        if job.state is JobState.RUNNING:
            return []
        if job.state is JobState.QUEUED or job.state is JobState.LOST:
            # e.g. `executed` before `execution_start`, or a foreign job we meet mid-run
            return self._transition(job, JobState.RUNNING, now_ms)
        log.debug("%s for %s job %s ignored", event_type, job.state.value, job.prompt_id)
        return None

    def _enter_node(self, job: _Job, node: str) -> None:
        if job.current_node is not None and job.current_node != node:
            self._mark_done(job, job.current_node)
        job.current_node = node
        job.node_value = 0.0
        job.node_max = 1.0
        job.snap = None

    def _mark_done(self, job: _Job, node: str) -> None:
        if node in job.done:
            return
        job.done.add(node)
        if job.expected is not None and node in job.expected:
            job.done_expected += 1
        if node not in job.cached and node not in job.executed:
            job.executed = (*job.executed, node)
        job.snap = None

    def _record_executed(self, job: _Job, data: Mapping[str, object]) -> None:
        for node in _str_list(data.get("executed")):
            self._mark_done(job, node)

    def _await_running(self, starting: _Job | None) -> list[Change]:
        changes: list[Change] = []
        for job in self._jobs.values():
            if job is not starting and job.state is JobState.RUNNING and not job.awaiting_outcome:
                self._await_outcome(job)
                changes.append(Change("progress", job.prompt_id, self._snap(job)))
        return changes

    def _await_outcome(self, job: _Job) -> None:
        log.info("job %s ended without an outcome event; needs its history", job.prompt_id)
        job.awaiting_outcome = True
        job.snap = None

    def _unforget(self, prompt_id: str) -> None:
        if prompt_id in self._forgotten_set:
            self._forgotten_set.discard(prompt_id)
            try:
                self._forgotten.remove(prompt_id)
            except ValueError:
                pass

    def _overall(self, job: _Job) -> float | None:
        if job.state is JobState.DONE:
            return 1.0
        if not job.expected:
            return None
        frac = 0.0
        node = job.current_node
        if node is not None and node in job.expected and node not in job.done and job.node_max > 0:
            frac = min(1.0, max(0.0, job.node_value / job.node_max))
        return min(1.0, (job.done_expected + frac) / len(job.expected))

    def _snap(self, job: _Job) -> JobSnapshot:
        snap = job.snap
        if snap is None:
            snap = JobSnapshot(
                prompt_id=job.prompt_id,
                state=job.state,
                foreign=job.foreign,
                current_node=job.current_node,
                node_value=job.node_value,
                node_max=job.node_max,
                overall=self._overall(job),
                cached_nodes=job.cached,
                executed_nodes=job.executed,
                outputs=job.outputs,
                error=job.error,
                queued_at=job.queued_at,
                started_at=job.started_at,
                finished_at=job.finished_at,
                awaiting_outcome=job.awaiting_outcome,
            )
            job.snap = snap
        return snap
