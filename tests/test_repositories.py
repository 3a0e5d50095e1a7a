"""The repository functions of db/, each on a real migrated store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from comfyui_studio.db import accounts, calls, gallery, secrets, sessions, workflows
from comfyui_studio.db.models import AuditLog, ComfyCall, Image, Job, Prompt
from comfyui_studio.db.store import Store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

pytestmark = pytest.mark.both_databases


async def _user(store: Store, name: str, role: str = "user") -> int:
    async with store.transaction() as session:
        return (await accounts.add(session, username=name, role=role)).id


async def test_a_transaction_commits_on_exit_and_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as session:
            await accounts.add(session, username="ghost")
            raise RuntimeError("the use case failed")
    async with store.transaction(actor_id=None) as session:
        assert await accounts.by_username(session, "ghost") is None
        await accounts.add(session, username="kept")
    async with store.transaction() as session:
        assert (await accounts.by_username(session, "kept")) is not None


async def test_users_by_name_taken_names_and_the_first_owner(store: Store) -> None:
    async with store.transaction() as session:
        owner_id = await accounts.ensure_owner(session)
        assert await accounts.ensure_owner(session) == owner_id  # made once
        bob = await accounts.add(session, username="bob")
        assert await accounts.name_taken(session, "bob")
        assert not await accounts.name_taken(session, "bob", except_id=bob.id)
        assert not await accounts.name_taken(session, "carol")
        assert [u.username for u in await accounts.all_users(session)] == ["owner", "bob"]
        assert (await accounts.get(session, bob.id)).username == "bob"  # type: ignore[union-attr]
        assert (await accounts.first_owner(session)).id == owner_id  # type: ignore[union-attr]


async def test_refresh_tokens_are_claimed_once_and_stale_families_pruned(store: Store) -> None:
    uid = await _user(store, "ann")
    async with store.transaction() as session:
        await sessions.add_family(session, "fam_old", uid, local=False, now=T0, expires_at=T0 + timedelta(days=1))
        await sessions.add_family(session, "fam_new", uid, local=True, now=T0, expires_at=T0 + timedelta(days=90))
        sessions.add_token(session, "fam_old", "a" * 64, T0, T0 + timedelta(days=1))
        sessions.add_token(session, "fam_new", "b" * 64, T0, T0 + timedelta(days=90))
    async with store.transaction() as session:
        token = await sessions.token_by_hash(session, "b" * 64)
        assert token is not None and token.family_id == "fam_new"
        assert await sessions.claim_token(session, token.id, T0)
        assert not await sessions.claim_token(session, token.id, T0), "a used token is not claimed again"
        family, user = await sessions.family_with_user(session, "fam_new")  # type: ignore[misc]
        assert family.local and user.username == "ann"
        assert await sessions.family_with_user(session, "fam_none") is None
        assert {f.id for f in await sessions.live_families(session, uid)} == {"fam_old", "fam_new"}
    async with store.transaction() as session:
        assert await sessions.prune(session, T0 + timedelta(days=30)) == 1
    async with store.transaction() as session:
        assert await sessions.get_family(session, "fam_old") is None
        assert await sessions.token_by_hash(session, "a" * 64) is None, "its tokens went with it"
        assert await sessions.get_family(session, "fam_new") is not None


async def test_secrets_are_put_listed_by_name_and_removed_per_owner(store: Store) -> None:
    ann, bob = await _user(store, "ann"), await _user(store, "bob")
    async with store.transaction(ann) as session:
        _row, created = await secrets.put(session, ann, "zeta", b"1")
        assert created
        row, created = await secrets.put(session, ann, "zeta", b"2")
        assert not created and row.ciphertext == b"2"
        await secrets.put(session, ann, "alpha", b"3")
        await secrets.put(session, bob, "alpha", b"4")
    async with store.transaction(ann) as session:
        assert [s.name for s in await secrets.of_owner(session, ann)] == ["alpha", "zeta"]
        row = await secrets.get(session, ann, "alpha")
        assert row is not None and row.ciphertext == b"3"
        await secrets.remove(session, row.id)
    async with store.transaction() as session:
        assert await secrets.get(session, ann, "alpha") is None
        assert await secrets.get(session, bob, "alpha") is not None


async def test_the_call_log_pages_newest_first_by_owner_and_job(store: Store) -> None:
    ann, bob = await _user(store, "ann"), await _user(store, "bob")
    async with store.transaction(ann) as session:
        session.add(Job(id="job_aaaaaaaaaaaaaaaaaaaaaaaaaa", owner_id=ann, graph={}))
        await session.flush()

        def call(owner: int, job: str | None = None) -> ComfyCall:
            return ComfyCall(
                operation="queue", method="GET", path="/queue", started_at=T0, ended_at=T0, runtime_ms=1.0,
                owner_id=owner, job_id=job,
            )  # fmt: skip

        calls.add_all(session, [call(ann), call(bob), call(ann, "job_aaaaaaaaaaaaaaaaaaaaaaaaaa"), call(ann)])
    async with store.transaction() as session:
        everyone = await calls.newest(session, 10)
        assert [c.id for c in everyone] == sorted((c.id for c in everyone), reverse=True) and len(everyone) == 4
        mine = await calls.newest(session, 10, owner_id=ann)
        assert len(mine) == 3 and all(c.owner_id == ann for c in mine)
        assert [c.id for c in await calls.newest(session, 10, owner_id=ann, before=mine[0].id)] == [
            c.id for c in mine[1:]
        ]
        assert [c.job_id for c in await calls.newest(session, 10, job_id="job_aaaaaaaaaaaaaaaaaaaaaaaaaa")] == [
            "job_aaaaaaaaaaaaaaaaaaaaaaaaaa"
        ]
        assert len(await calls.newest(session, 1)) == 1
        assert (await calls.get(session, mine[0].id)).owner_id == ann  # type: ignore[union-attr]


async def test_prompt_history_is_distinct_newest_first_and_a_job_hides_with_its_images(store: Store) -> None:
    ann = await _user(store, "ann")
    async with store.transaction(ann) as session:
        for text in ("a cat", "a dog", "a cat", "a fox"):
            session.add(Prompt(owner_id=ann, text=text))
            await session.flush()
        session.add(Job(id="job_bbbbbbbbbbbbbbbbbbbbbbbbbb", owner_id=ann, graph={}))
        await session.flush()
        session.add(
            Image(id="img_cccccccccccccccccccccccccc", owner_id=ann, job_id="job_bbbbbbbbbbbbbbbbbbbbbbbbbb",
                  kind="output", filename="x.png", folder_type="output")
        )  # fmt: skip
    async with store.transaction(ann) as session:
        history = await gallery.prompt_history(session, ann, 10, None)
        assert [text for text, _ in history] == ["a fox", "a cat", "a dog"]
        assert [text for text, _ in await gallery.prompt_history(session, ann, 10, history[0][1])] == ["a cat", "a dog"]
        assert len(await gallery.prompt_history(session, ann, 1, None)) == 1
        assert await gallery.hide_job(session, "job_bbbbbbbbbbbbbbbbbbbbbbbbbb", T0)
        assert not await gallery.hide_job(session, "job_dddddddddddddddddddddddddd", T0)
    async with store.transaction() as session:
        image = await gallery.get_image(session, "img_cccccccccccccccccccccccccc")
        assert image is not None and image.deleted_at == T0


async def test_workflows_versions_heads_visibility_and_the_slots_that_run_them(store: Store) -> None:
    ann, bob = await _user(store, "ann"), await _user(store, "bob")
    async with store.transaction(ann) as session:
        mine = await workflows.add(session, owner_id=ann, name="b mine", head_version=1)
        shared = await workflows.add(session, owner_id=bob, name="a shared", shared=True, head_version=1)
        private = await workflows.add(session, owner_id=bob, name="c private", head_version=1)
        gone = await workflows.add(session, owner_id=ann, name="d gone", head_version=1, deleted_at=T0)
        for row in (mine, shared, private, gone):
            workflows.add_version(session, workflow_id=row.id, number=1, graph={"1": {}})
        assert await workflows.next_version_number(session, mine.id) == 2
        workflows.add_version(session, workflow_id=mine.id, number=2, graph={"1": {}, "2": {}})
        mine.head_version = 2
        session.add(workflows.Action(owner_id=ann, slot="generate", label="Generate", workflow_id=mine.id))
        session.add(workflows.Action(owner_id=bob, slot="upscale", label="Up", workflow_id=shared.id, shared=True))
        session.add(workflows.Action(owner_id=bob, slot="secret", label="S", workflow_id=private.id))
    async with store.transaction(ann) as session:
        assert [w.name for w in await workflows.visible(session, ann)] == ["a shared", "b mine"]
        heads = await workflows.heads(session, [mine.id, shared.id])
        assert heads[mine.id].number == 2 and len(heads[mine.id].graph) == 2 and heads[shared.id].number == 1
        assert [v.number for v in await workflows.history(session, mine.id, 10)] == [2, 1]
        assert [v.number for v in await workflows.history(session, mine.id, 1)] == [2]
        first = await workflows.version(session, mine.id, 1)
        assert first is not None and (await workflows.version_by_id(session, first.id)) is not None
        assert await workflows.version(session, mine.id, 3) is None
        assert await workflows.slots_using(session, shared.id) == ["upscale"]
        assert sorted(await workflows.visible_action_slots(session, ann)) == sorted(
            [(mine.id, "generate"), (shared.id, "upscale")]
        )
        assert (await workflows.get(session, gone.id)).deleted_at == T0  # type: ignore[union-attr]


async def test_an_explicit_audit_row_names_its_actor(store: Store) -> None:
    from sqlalchemy import select

    from comfyui_studio.db import audit

    ann = await _user(store, "ann")
    async with store.transaction(ann) as session:
        audit.record(session, ann, "login", "session_families", "fam_x", {"reason": "test"})
    async with store.transaction() as session:
        row = await session.scalar(select(AuditLog).where(AuditLog.entity_id == "fam_x"))
        assert row is not None and row.actor_id == ann and row.action == "login" and row.changes == {"reason": "test"}
