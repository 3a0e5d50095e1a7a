"""JobTracker over the executor event sequences recorded from a real ComfyUI (fixtures/comfyui/traces)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfyui_studio.engine.jobstate import (
    ALLOWED,
    TERMINAL,
    Change,
    JobSnapshot,
    JobState,
    JobTracker,
)

TRACES = Path(__file__).parent / "fixtures" / "comfyui" / "traces"
LOGGER = "comfyui_studio.jobstate"


def load(name: str) -> dict:
    data = json.loads((TRACES / name).read_text())
    return data.get("interrupt_and_queue_ops", data)


def ws_events(trace: dict) -> Iterator[tuple[str, dict]]:
    for entry in trace["log"]:
        if "ws" in entry:
            yield entry["ws"]["type"], entry["ws"]["data"]


def graph_nodes(trace: dict, prompt_id: str) -> list[str]:
    return list(trace["history"][prompt_id]["prompt"][2])


def replay(tracker: JobTracker, trace: dict, start_ms: int = 1000) -> list[Change]:
    changes: list[Change] = []
    for i, (kind, data) in enumerate(ws_events(trace)):
        changes += tracker.feed(kind, data, now_ms=start_ms + i)
    return changes


def run_expected(name: str) -> tuple[JobTracker, str, list[Change]]:
    trace = load(name)
    pid = trace["prompt_id"]
    tracker = JobTracker()
    changes = tracker.expect(pid, graph_nodes(trace, pid), now_ms=999)
    changes += replay(tracker, trace)
    return tracker, pid, changes


def states(changes: list[Change], prompt_id: str) -> list[tuple[JobState | None, JobState]]:
    return [
        (c.previous, c.snapshot.state) for c in changes if c.kind == "state" and c.prompt_id == prompt_id and c.snapshot
    ]


# ---- recorded sequences ----------------------------------------------------------------------

OUTCOMES = [
    # trace, final state, executed nodes, cached nodes, output nodes
    ("t2i_success.json", JobState.DONE, ("1", "2", "3", "4"), (), {"4"}),
    ("t2i_cached_resubmit.json", JobState.DONE, (), ("1", "2", "3", "4"), {"4"}),
    ("upload_upscale.json", JobState.DONE, ("1", "2", "3", "4"), (), {"4"}),
    ("progress_previews_legacy.json", JobState.DONE, ("1", "2", "3"), (), {"3"}),
    ("progress_previews_metadata.json", JobState.DONE, ("2", "3"), ("1",), {"3"}),
    ("execution_error.json", JobState.ERROR, ("1",), (), set()),
]


@pytest.mark.parametrize(("trace", "final", "executed", "cached", "outputs"), OUTCOMES)
def test_recorded_run_ends_in_the_outcome_comfyui_reported(trace, final, executed, cached, outputs):
    tracker, pid, changes = run_expected(trace)
    snap = tracker.get(pid)
    assert snap is not None
    assert snap.state is final
    assert snap.executed_nodes == executed
    assert snap.cached_nodes == cached
    assert set(snap.outputs) == outputs
    assert not snap.foreign
    assert states(changes, pid) == [
        (None, JobState.QUEUED),
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.RUNNING, final),
    ]
    assert snap.queued_at == 999
    assert snap.started_at is not None and snap.finished_at is not None
    assert snap.started_at <= snap.finished_at
    assert not snap.awaiting_outcome


@pytest.mark.parametrize("trace", [t[0] for t in OUTCOMES])
def test_overall_progress_never_goes_backwards_and_stays_in_range(trace):
    _, pid, changes = run_expected(trace)
    values = [c.snapshot.overall for c in changes if c.snapshot and c.prompt_id == pid]
    values = [v for v in values if v is not None]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_success_outputs_carry_the_ui_output_as_comfyui_sent_it():
    tracker, pid, changes = run_expected("t2i_success.json")
    outs = [c for c in changes if c.kind == "output"]
    assert [c.node_id for c in outs] == ["4"]
    assert outs[0].snapshot.state is JobState.RUNNING  # produced while running, not only at the end
    assert dict(tracker.get(pid).outputs["4"]) == {
        "images": [{"filename": "studio_t2i_00002_.png", "subfolder": "", "type": "output"}]
    }
    assert tracker.get(pid).overall == 1.0
    assert tracker.get(pid).current_node is None


def test_cached_resubmit_is_complete_without_any_node_running():
    _, pid, changes = run_expected("t2i_cached_resubmit.json")
    cached = next(c for c in changes if c.kind == "progress" and c.snapshot.cached_nodes)
    assert cached.snapshot.overall == 1.0


def test_node_steps_are_tracked_per_node_and_overall():
    _, pid, changes = run_expected("progress_previews_metadata.json")
    steps = [
        (c.snapshot.current_node, c.snapshot.node_value, c.snapshot.node_max)
        for c in changes
        if c.kind == "progress" and c.snapshot.current_node == "2" and c.snapshot.node_max == 4
    ]
    assert [v for _, v, _ in steps][-1] == 4
    assert {v for _, v, _ in steps} >= {1, 2, 3, 4}
    # graph {1 cached, 2, 3}: half of node 2 done = (1 + 0.5) / 3
    half = next(c.snapshot for c in changes if c.kind == "progress" and c.snapshot.node_value == 2)
    assert half.overall == pytest.approx(1.5 / 3)


def test_execution_error_keeps_node_type_and_message():
    tracker, pid, _ = run_expected("execution_error.json")
    snap = tracker.get(pid)
    assert snap.error is not None
    assert snap.error.to_dict() == {
        "node_id": "2",
        "node_type": "StudioProbeProgress",
        "exception_type": "RuntimeError",
        "message": "StudioProbeProgress asked to fail\n",
    }
    assert snap.current_node == "2"
    assert snap.overall == pytest.approx(2 / 3)  # node 1 done, node 2 at 2/2 when it raised


def test_interrupts_and_queue_removals_from_the_recorded_session():
    trace = load("interrupt_queue_validation.json")
    ids = trace["prompt_ids"]
    tracker = JobTracker()
    for key in ("running", "p2", "p3_deleted", "p4_front"):
        tracker.expect(ids[key], ["1", "2", "3"], now_ms=0)
    changes: list[Change] = []
    for i, (kind, data) in enumerate(ws_events(trace)):
        changes += tracker.feed(kind, data, now_ms=i)
        if kind == "progress":  # the session deleted p3 from the queue here, then cleared p2
            changes += tracker.mark_cancelled(ids["p3_deleted"], now_ms=i)
            changes += tracker.mark_cancelled(ids["p2"], now_ms=i)
    assert tracker.get(ids["running"]).state is JobState.INTERRUPTED
    assert tracker.get(ids["p4_front"]).state is JobState.INTERRUPTED
    assert tracker.get(ids["running"]).current_node == "2"
    assert tracker.get(ids["running"]).executed_nodes == ("1",)
    assert tracker.get(ids["p3_deleted"]).state is JobState.CANCELLED
    assert tracker.get(ids["p2"]).state is JobState.CANCELLED
    queue = [c.queue_remaining for c in changes if c.kind == "queue"]
    assert queue[0] == 0 and queue[-1] == 0 and max(queue) == 4
    assert tracker.queue_remaining == 0


def test_prompt_from_another_client_is_tracked_as_a_foreign_job_and_settled_from_history():
    trace = load("no_client_id.json")
    pid = trace["prompt_id"]
    tracker = JobTracker()
    changes = replay(tracker, trace)
    snap = tracker.get(pid)
    assert snap.foreign
    assert states(changes, pid) == [(None, JobState.RUNNING)]
    assert snap.overall is None  # its graph was never given
    # Only progress_state reached us; the empty queue says it has ended, outcome unknown.
    assert snap.state is JobState.RUNNING and snap.awaiting_outcome
    assert tracker.awaiting_outcome() == [pid]

    settled = tracker.apply_history(pid, trace["history"][pid], now_ms=5000)
    snap = tracker.get(pid)
    assert snap.state is JobState.DONE
    assert set(snap.outputs) == {"4"}
    assert snap.finished_at == 5000
    assert tracker.awaiting_outcome() == []
    assert [c.kind for c in settled if c.kind == "state"] == ["state"]


def test_expect_on_a_foreign_job_enables_overall_progress():
    trace = load("no_client_id.json")
    pid = trace["prompt_id"]
    tracker = JobTracker()
    events = list(ws_events(trace))
    for i, (kind, data) in enumerate(events[:6]):
        tracker.feed(kind, data, now_ms=i)
    assert tracker.get(pid).overall is None
    tracker.expect(pid, graph_nodes(trace, pid))
    snap = tracker.get(pid)
    assert snap.foreign and snap.state is JobState.RUNNING
    assert snap.overall is not None and 0 < snap.overall < 1


def test_status_events_become_queue_changes():
    tracker, _, changes = run_expected("t2i_success.json")
    assert [c.queue_remaining for c in changes if c.kind == "queue"] == [0, 1, 1, 0]
    assert all(c.prompt_id is None and c.snapshot is None for c in changes if c.kind == "queue")


def test_history_entry_of_a_failed_run_settles_as_error():
    trace = load("execution_error.json")
    pid = trace["prompt_id"]
    tracker = JobTracker()
    tracker.expect(pid, graph_nodes(trace, pid))
    tracker.apply_history(pid, trace["history"][pid], now_ms=1)
    snap = tracker.get(pid)
    assert snap.state is JobState.ERROR
    assert snap.error.exception_type == "RuntimeError"


def test_history_does_not_override_an_outcome_already_seen():
    tracker, pid, _ = run_expected("t2i_success.json")
    before = tracker.get(pid)
    assert tracker.apply_history(pid, {"status": {"status_str": "error"}}, now_ms=1) == []
    assert tracker.get(pid) is before


# ---- out of order, late and malformed events -----------------------------------------------

P = "p-1"


def ev(kind: str, **data: object) -> tuple[str, dict]:
    return kind, {"prompt_id": P, **data}


OUT_OF_ORDER = [
    # events fed after expect(P, ["1", "2"]), final state, output nodes
    (
        "executed before execution_start",
        [ev("executed", node="2", output={"images": []}), ev("execution_start"), ev("execution_success")],
        JobState.DONE,
        {"2"},
    ),
    (
        "progress before execution_start",
        [ev("progress", node="1", value=1, max=2), ev("execution_start"), ev("executing", node="2")],
        JobState.RUNNING,
        set(),
    ),
    ("success without start", [ev("execution_success")], JobState.DONE, set()),
    (
        "finished marker before outcome",
        [ev("execution_start"), ev("executing", node=None)],
        JobState.RUNNING,
        set(),
    ),
    (
        "everything after done is ignored",
        [
            ev("execution_start"),
            ev("execution_success"),
            ev("executing", node="1"),
            ev("progress", node="1", value=1, max=3),
            ev("progress_state", nodes={"1": {"state": "running", "value": 0, "max": 1}}),
            ev("executed", node="2", output={"images": []}),
            ev("execution_error", node_id="1", exception_message="late"),
            ev("execution_interrupted", node_id="1"),
            ev("execution_start"),
        ],
        JobState.DONE,
        set(),
    ),
    (
        "duplicate start is not a transition",
        [ev("execution_start"), ev("execution_start"), ev("execution_cached", nodes=["1"])],
        JobState.RUNNING,
        set(),
    ),
    (
        "interrupt of a job we met mid-run",
        [ev("executing", node="2"), ev("execution_interrupted")],
        JobState.INTERRUPTED,
        set(),
    ),
]


@pytest.mark.parametrize(
    ("events", "final", "outputs"), [c[1:] for c in OUT_OF_ORDER], ids=[c[0] for c in OUT_OF_ORDER]
)
def test_out_of_order_events_are_applied_without_crashing(events, final, outputs):
    tracker = JobTracker()
    tracker.expect(P, ["1", "2"])
    for i, (kind, data) in enumerate(events):
        tracker.feed(kind, data, now_ms=i)
    snap = tracker.get(P)
    assert snap.state is final
    assert set(snap.outputs) == outputs


def test_finished_marker_without_outcome_asks_for_the_history():
    tracker = JobTracker()
    tracker.expect(P, ["1"])
    tracker.feed("execution_start", {"prompt_id": P}, now_ms=1)
    changes = tracker.feed("executing", {"node": None, "prompt_id": P}, now_ms=2)
    assert changes[0].snapshot.awaiting_outcome
    assert tracker.awaiting_outcome() == [P]


def test_a_new_start_means_the_previous_running_job_has_ended():
    tracker = JobTracker()
    tracker.feed("execution_start", {"prompt_id": "a"}, now_ms=1)
    tracker.feed("execution_start", {"prompt_id": "b"}, now_ms=2)
    assert tracker.awaiting_outcome() == ["a"]


def test_events_for_unknown_prompts_create_foreign_jobs_but_a_lone_marker_does_not():
    tracker = JobTracker()
    assert tracker.feed("executing", {"node": None, "prompt_id": "x"}, now_ms=1) == []
    assert tracker.get("x") is None
    changes = tracker.feed("execution_interrupted", {"prompt_id": "y", "node_id": "3"}, now_ms=1)
    assert states(changes, "y") == [(None, JobState.INTERRUPTED)]
    assert tracker.get("y").foreign


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("execution_start", {}),
        ("execution_start", {"prompt_id": 7}),
        ("executing", {"prompt_id": P, "node": 3}),
        ("progress", {"prompt_id": P, "node": "1", "value": "x", "max": None}),
        ("progress_state", {"prompt_id": P, "nodes": ["1"]}),
        ("progress_state", {"prompt_id": P, "nodes": {"1": "running"}}),
        ("executed", {"prompt_id": P, "node": "1", "output": "nope"}),
        ("execution_cached", {"prompt_id": P, "nodes": "1"}),
        ("status", {"status": "busy"}),
        ("status", {"status": {"exec_info": {"queue_remaining": True}}}),
        ("feature_flags", {"supports_preview_metadata": True}),
        ("crystools.monitor", {"cpu": 3}),
    ],
)
def test_malformed_or_unknown_events_never_raise(kind, data):
    tracker = JobTracker()
    tracker.expect(P, ["1"])
    tracker.feed(kind, data, now_ms=1)
    assert tracker.get(P).state in (JobState.QUEUED, JobState.RUNNING)


# ---- explicit transitions and the table ------------------------------------------------------


def to_state(tracker: JobTracker, state: JobState) -> None:
    tracker.expect(P, ["1"])
    steps = {
        JobState.QUEUED: [],
        JobState.RUNNING: [("execution_start", {})],
        JobState.DONE: [("execution_success", {})],
        JobState.ERROR: [("execution_error", {"exception_message": "x"})],
        JobState.INTERRUPTED: [("execution_interrupted", {})],
    }
    if state in steps:
        for kind, data in steps[state]:
            tracker.feed(kind, {"prompt_id": P, **data}, now_ms=1)
    elif state is JobState.CANCELLED:
        tracker.mark_cancelled(P)
    elif state is JobState.LOST:
        tracker.mark_lost(P, "restart")
    elif state is JobState.REJECTED:
        tracker.mark_rejected(P, "bad graph")
    assert tracker.get(P).state is state


def apply(tracker: JobTracker, action: str) -> list[Change]:
    if action == "cancel":
        return tracker.mark_cancelled(P, now_ms=2)
    if action == "lose":
        return tracker.mark_lost(P, "gone", now_ms=2)
    if action == "reject":
        return tracker.mark_rejected(P, "refused", now_ms=2)
    return tracker.feed(action, {"prompt_id": P, "exception_message": "x"}, now_ms=2)


ILLEGAL = [
    (JobState.RUNNING, "cancel"),  # running jobs are interrupted, not cancelled
    (JobState.RUNNING, "reject"),
    (JobState.DONE, "cancel"),
    (JobState.DONE, "lose"),
    (JobState.DONE, "execution_error"),
    (JobState.DONE, "execution_start"),
    (JobState.ERROR, "execution_success"),
    (JobState.INTERRUPTED, "execution_success"),
    (JobState.CANCELLED, "execution_start"),
    (JobState.REJECTED, "execution_start"),
    (JobState.LOST, "cancel"),
]


@pytest.mark.parametrize(("start", "action"), ILLEGAL)
def test_illegal_transitions_are_ignored_and_logged(start, action, caplog):
    tracker = JobTracker()
    to_state(tracker, start)
    before = tracker.get(P)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        changes = apply(tracker, action)
    assert [c for c in changes if c.kind == "state"] == []
    assert tracker.get(P) == before
    assert any("illegal transition" in r.getMessage() for r in caplog.records)


LEGAL = [
    (JobState.QUEUED, "cancel", JobState.CANCELLED),
    (JobState.QUEUED, "reject", JobState.REJECTED),
    (JobState.QUEUED, "lose", JobState.LOST),
    (JobState.RUNNING, "lose", JobState.LOST),
    (JobState.RUNNING, "execution_interrupted", JobState.INTERRUPTED),
    (JobState.LOST, "execution_success", JobState.DONE),  # evidence beats a conclusion from absence
]


@pytest.mark.parametrize(("start", "action", "end"), LEGAL)
def test_legal_explicit_transitions(start, action, end):
    tracker = JobTracker()
    to_state(tracker, start)
    changes = apply(tracker, action)
    assert states(changes, P) == [(start, end)]
    assert tracker.get(P).finished_at == 2


def test_lost_and_rejected_keep_their_reason():
    tracker = JobTracker()
    tracker.expect(P, ["1"])
    tracker.mark_lost(P, "ComfyUI restarted")
    assert tracker.get(P).error.message == "ComfyUI restarted"
    changes = tracker.mark_rejected("never-queued", "Prompt has no outputs", error_type="prompt_no_outputs")
    assert changes[0].snapshot.state is JobState.REJECTED
    assert changes[0].snapshot.error.exception_type == "prompt_no_outputs"


def test_transition_table_is_closed_and_terminal_states_are_final():
    assert set(ALLOWED) == set(JobState)
    assert TERMINAL == set(JobState) - {JobState.QUEUED, JobState.RUNNING}
    for state in TERMINAL - {JobState.LOST}:
        assert ALLOWED[state] == frozenset()
    for targets in ALLOWED.values():
        assert JobState.QUEUED not in targets


def test_forget_drops_only_terminal_jobs_and_late_events_do_not_resurrect_them():
    tracker, pid, _ = run_expected("t2i_success.json")
    tracker.expect("pending", ["1"])
    assert tracker.forget("pending") is False
    assert tracker.forget(pid) is True
    assert tracker.get(pid) is None
    assert tracker.feed("progress_state", {"prompt_id": pid, "nodes": {"1": {"state": "running"}}}, now_ms=1) == []
    assert tracker.get(pid) is None
    assert [s.prompt_id for s in tracker.jobs()] == ["pending"]
    assert [s.prompt_id for s in tracker.active()] == ["pending"]


def test_snapshots_are_immutable_views_shared_until_the_job_changes():
    tracker = JobTracker()
    tracker.expect(P, ["1", "2"])
    tracker.feed("execution_start", {"prompt_id": P}, now_ms=1)
    tracker.feed("execution_cached", {"prompt_id": P, "nodes": ["1"]}, now_ms=1)
    early = tracker.get(P)
    assert tracker.get(P) is early  # no rebuild without a change
    progress = [
        tracker.feed("progress", {"prompt_id": P, "node": "2", "value": v, "max": 9}, now_ms=1) for v in range(9)
    ]
    tracker.feed("executed", {"prompt_id": P, "node": "2", "output": {"images": [1]}}, now_ms=2)
    assert dict(early.outputs) == {}  # an old snapshot never changes under its holder
    assert early.node_value == 0
    # progress does not copy the job's collections
    assert all(c[0].snapshot.cached_nodes is early.cached_nodes for c in progress)
    with pytest.raises(TypeError):
        tracker.get(P).outputs["x"] = {}  # type: ignore[index]


def test_snapshot_to_dict_is_json_ready():
    tracker, pid, _ = run_expected("execution_error.json")
    payload = json.loads(json.dumps(tracker.get(pid).to_dict()))
    assert payload["state"] == "error"
    assert payload["error"]["node_id"] == "2"
    assert isinstance(tracker.get(pid), JobSnapshot)
