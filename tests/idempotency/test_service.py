"""Claims in the database: one winner per key on any number of replicas, takeover of
abandoned claims, expiry and the periodic purge (on SQLite and PostgreSQL)."""

import asyncio
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.idempotency import middleware, service
from mediakeep.ingest.sweeper import run_sweeper
from mediakeep.kit.time import now
from mediakeep.models.idempotency import IdempotencyKey
from mediakeep.services import Services
from tests.idempotency.support import new_key, stored_rows

DAY = timedelta(hours=24)


def _services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def _fingerprint(
    key: str, path: str = "/api/v1/things", caller: str = "mk_caller"
) -> service.Fingerprint:
    return service.fingerprint(
        secret_key="s" * 48,
        caller_material=caller,
        org_ref=None,
        key=key,
        method="POST",
        path=path,
    )


async def _age(app: FastAPI, row_id: int, **values: object) -> None:
    async with _services(app).db.write_session() as session:
        await session.execute(
            update(IdempotencyKey).where(IdempotencyKey.id == row_id).values(**values)
        )


async def test_of_many_simultaneous_claims_exactly_one_wins(app: FastAPI) -> None:
    fp = _fingerprint(new_key())
    db = _services(app).db
    outcomes = await asyncio.gather(*(middleware.claim(db, fp, DAY) for _ in range(10)))
    winners = [o for o in outcomes if isinstance(o, service.Claimed)]
    assert len(winners) == 1
    assert all(isinstance(o, service.Busy) for o in outcomes if o is not winners[0])


async def test_a_finished_claim_replays_its_sealed_answer(app: FastAPI) -> None:
    key = new_key()
    fp = _fingerprint(key)
    db = _services(app).db
    claimed = await middleware.claim(db, fp, DAY)
    assert isinstance(claimed, service.Claimed)
    await middleware.finish(db, fp, claimed, 201, "application/json", b'{"id": "x"}')
    replay = await middleware.claim(db, fp, DAY)
    assert replay == service.Replay(201, "application/json", b'{"id": "x"}')
    row = next(r for r in await stored_rows(app) if r.id == claimed.row_id)
    assert row.state == "done"
    assert row.body is not None
    assert b'"id"' not in row.body  # sealed
    # Another caller presenting the same key has its own, independent claim.
    theirs = await middleware.claim(db, _fingerprint(key, caller="mk_other"), DAY)
    assert isinstance(theirs, service.Claimed)


async def test_a_5xx_or_429_answer_is_not_kept(app: FastAPI) -> None:
    db = _services(app).db
    for status in (500, 503, 429, 408):
        fp = _fingerprint(new_key())
        claimed = await middleware.claim(db, fp, DAY)
        assert isinstance(claimed, service.Claimed)
        await middleware.finish(db, fp, claimed, status, "application/json", b"{}")
        assert isinstance(await middleware.claim(db, fp, DAY), service.Claimed), status


async def test_an_answer_too_large_to_keep_is_not_kept(app: FastAPI) -> None:
    db = _services(app).db
    fp = _fingerprint(new_key())
    claimed = await middleware.claim(db, fp, DAY)
    assert isinstance(claimed, service.Claimed)
    await middleware.finish(db, fp, claimed, 201, "application/json", None)
    assert isinstance(await middleware.claim(db, fp, DAY), service.Claimed)


async def test_a_claim_whose_holder_stopped_renewing_is_taken_over(app: FastAPI) -> None:
    db = _services(app).db
    fp = _fingerprint(new_key())
    dead = await middleware.claim(db, fp, DAY)
    assert isinstance(dead, service.Claimed)
    assert isinstance(await middleware.claim(db, fp, DAY), service.Busy)
    await _age(app, dead.row_id, locked_until=now() - timedelta(seconds=1))
    alive = await middleware.claim(db, fp, DAY)
    assert isinstance(alive, service.Claimed)
    assert alive.row_id == dead.row_id
    assert alive.owner != dead.owner
    # The old holder, should it wake up, can no longer write an answer over the new one.
    await middleware.finish(db, fp, dead, 201, "application/json", b'{"stale": true}')
    await middleware.finish(db, fp, alive, 201, "application/json", b'{"fresh": true}')
    replay = await middleware.claim(db, fp, DAY)
    assert isinstance(replay, service.Replay)
    assert replay.body == b'{"fresh": true}'


async def test_a_running_claim_is_renewed(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _services(app).db
    fp = _fingerprint(new_key())
    claimed = await middleware.claim(db, fp, DAY)
    assert isinstance(claimed, service.Claimed)
    await _age(app, claimed.row_id, locked_until=now() - timedelta(seconds=1))
    monkeypatch.setattr(service, "RENEW_EVERY", timedelta(0))
    renewing = asyncio.create_task(middleware.keep_claimed(db, claimed))
    try:
        for _ in range(200):
            row = next(r for r in await stored_rows(app) if r.id == claimed.row_id)
            if row.locked_until > now():
                break
            await asyncio.sleep(0.01)
        assert row.locked_until > now() + timedelta(seconds=30)
    finally:
        renewing.cancel()
    assert isinstance(await middleware.claim(db, fp, DAY), service.Busy)


async def test_a_key_past_its_ttl_is_claimed_afresh(app: FastAPI) -> None:
    db = _services(app).db
    fp = _fingerprint(new_key())
    claimed = await middleware.claim(db, fp, DAY)
    assert isinstance(claimed, service.Claimed)
    await middleware.finish(db, fp, claimed, 201, "application/json", b"{}")
    await _age(app, claimed.row_id, expires_at=now() - timedelta(seconds=1))
    again = await middleware.claim(db, fp, DAY)
    assert isinstance(again, service.Claimed)
    row = next(r for r in await stored_rows(app) if r.id == again.row_id)
    assert (row.state, row.owner, row.status) == ("in_progress", again.owner, None)
    assert row.expires_at > now() + DAY - timedelta(minutes=1)


async def test_a_key_reused_elsewhere_is_a_mismatch(app: FastAPI) -> None:
    db = _services(app).db
    key = new_key()
    claimed = await middleware.claim(db, _fingerprint(key), DAY)
    assert isinstance(claimed, service.Claimed)
    other = await middleware.claim(db, _fingerprint(key, path="/api/v1/other"), DAY)
    assert other == service.Mismatch("POST", "/api/v1/things")


async def test_an_answer_sealed_under_another_secret_is_unreadable(app: FastAPI) -> None:
    db = _services(app).db
    key = new_key()
    fp = _fingerprint(key)
    claimed = await middleware.claim(db, fp, DAY)
    assert isinstance(claimed, service.Claimed)
    await middleware.finish(db, fp, claimed, 201, "application/json", b"{}")
    rotated = service.fingerprint(
        secret_key="t" * 48,
        caller_material="mk_caller",
        org_ref=None,
        key=key,
        method="POST",
        path="/api/v1/things",
    )
    assert isinstance(await middleware.claim(db, rotated, DAY), service.Unreadable)


async def test_the_sweeper_purges_expired_keys(app: FastAPI) -> None:
    db = _services(app).db
    expired, current = _fingerprint(new_key()), _fingerprint(new_key())
    old = await middleware.claim(db, expired, DAY)
    fresh = await middleware.claim(db, current, DAY)
    assert isinstance(old, service.Claimed)
    assert isinstance(fresh, service.Claimed)
    await _age(app, old.row_id, expires_at=now() - timedelta(minutes=1))
    sweeper = asyncio.create_task(run_sweeper(_services(app)))
    try:
        for _ in range(500):
            ids = {row.id for row in await stored_rows(app)}
            if old.row_id not in ids:
                break
            await asyncio.sleep(0.01)
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
    assert old.row_id not in ids
    assert fresh.row_id in ids
    async with db.write_session() as session:
        assert await service.purge_expired(session) == 0
