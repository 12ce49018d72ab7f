"""The background sender: takes due deliveries from the outbox and POSTs them.

At least once: a delivery leaves the outbox only when a receiver answered 2xx (or after 24 h
of retries); a sender that dies mid-send loses only its lease, and another sender (or the same
one after a restart) sends the delivery again. A slow receiver holds one slot of its own
webhook (at most PER_WEBHOOK at once) and of the global pool, never the other tenants'.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from datetime import timedelta

import httpx
import structlog

from mediakeep.events.service import prune_before_all_orgs
from mediakeep.ingest.remote import FetchError, check_url
from mediakeep.kit.time import now, rfc3339
from mediakeep.models import WebhookDelivery
from mediakeep.services import Services
from mediakeep.webhooks.repository import DeliveryQueue
from mediakeep.webhooks.signing import sign

log = structlog.get_logger(__name__)

POOL = 32
PER_WEBHOOK = 4
RETRY_FOR = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=3)
MAX_DELAY = timedelta(hours=6)
EXCERPT = 1024
IDLE_SECONDS = 0.5
PRUNE_EVERY_SECONDS = 600.0
KEEP_EVENTS = timedelta(days=7)  # the SSE replay window
KEEP_DELIVERIES = timedelta(days=30)  # finished deliveries, for GET .../deliveries

_wake: asyncio.Event | None = None


def wake() -> None:
    """Tell this process's sender that deliveries were just queued."""
    if _wake is not None:
        _wake.set()


class WebhookSender:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._pool = asyncio.Semaphore(POOL)
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._leased: set[str] = set()  # deliveries this sender is attempting
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def run(self) -> None:
        global _wake  # noqa: PLW0603
        _wake = asyncio.Event()
        try:
            next_prune = 0.0
            while True:
                try:
                    await self.dispatch_due()
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                        await self.prune()
                except Exception:
                    log.exception("webhook sender pass failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_SECONDS):
                        await _wake.wait()
                _wake.clear()
        finally:
            _wake = None
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._client.aclose()
            await self._release(self._leased)

    async def dispatch_due(self) -> int:
        free = POOL - len(self._tasks)
        if free <= 0:
            return 0
        at = now()
        busy = {hook for hook, n in self._in_flight.items() if n >= PER_WEBHOOK}
        lease = at + self.services.settings.webhook_timeout + timedelta(seconds=30)
        started = 0
        async with self.services.db.read_session() as session:
            due = await DeliveryQueue(session).due(at, free, busy)
            candidates = [(d.id, d.webhook_id) for d in due]
        for delivery_id, webhook_id in candidates:
            if self._in_flight.get(webhook_id, 0) >= PER_WEBHOOK:
                continue
            async with self.services.db.write_session() as session:
                if not await DeliveryQueue(session).lock(delivery_id, at, lease):
                    continue
            self._in_flight[webhook_id] = self._in_flight.get(webhook_id, 0) + 1
            self._leased.add(delivery_id)
            task = asyncio.create_task(self._send_one(delivery_id, webhook_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _send_one(self, delivery_id: str, webhook_id: str) -> None:
        try:
            async with self._pool:
                await self.attempt(delivery_id)
        except Exception:
            log.exception("webhook delivery failed unexpectedly", delivery_id=delivery_id)
        finally:
            self._leased.discard(delivery_id)
            self._in_flight[webhook_id] -= 1
            if not self._in_flight[webhook_id]:
                del self._in_flight[webhook_id]
            wake()

    async def attempt(self, delivery_id: str) -> None:
        """One attempt of one leased delivery, recorded whatever happens."""
        settings = self.services.settings
        async with self.services.db.read_session() as session:
            queue = DeliveryQueue(session)
            delivery = await queue.delivery(delivery_id)
            webhook = await queue.webhook(delivery.webhook_id) if delivery else None
        if delivery is None or delivery.status != "pending":
            return
        if webhook is None:
            return
        if not webhook.enabled and delivery.event_type != "webhook.test":
            await self._finish(delivery_id, None, 0, None, "the webhook is disabled", final=True)
            return
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "mediakeep-webhooks",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(webhook.secret, delivery.event_id, timestamp, body),
        }
        started = time.monotonic()
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        try:
            # The SSRF guard again at send time: DNS may have changed since creation.
            url, addresses = await check_url(
                webhook.url, allow_private=settings.allow_private_networks
            )
            async with asyncio.timeout(settings.webhook_timeout.total_seconds()):
                response = await self._post(url, addresses, headers, body)
            status = response.status_code
            excerpt = response.text[:EXCERPT]
        except FetchError as exc:
            error = f"refused: {exc}"
        except TimeoutError:
            error = f"timed out after {settings.webhook_timeout.total_seconds():g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:EXCERPT]
        latency = int((time.monotonic() - started) * 1000)
        await self._finish(delivery_id, status, latency, excerpt, error)

    async def _post(
        self, url: httpx.URL, addresses: Sequence[object], headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        # Connect to the checked address, not to a fresh lookup (DNS rebinding). The excerpt
        # is read raw: httpx would inflate a compressed answer whole, and a few hundred bytes
        # of brotli from a hostile receiver become gigabytes.
        headers = {**headers, "host": url.netloc.decode("ascii"), "accept-encoding": "identity"}
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        error: Exception | None = None
        for address in addresses:
            request = self._client.build_request(
                "POST",
                url.copy_with(host=str(address)),
                headers=headers,
                content=body,
                extensions=extensions,
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                error = exc
                continue
            try:
                chunks = bytearray()
                async for chunk in response.aiter_raw():
                    chunks += chunk
                    if len(chunks) >= EXCERPT:
                        break
            finally:
                await response.aclose()
            response._content = bytes(chunks[:EXCERPT])  # noqa: SLF001 - the excerpt only
            return response
        raise httpx.ConnectError(f"could not connect to {url.host}: {error}")

    async def _finish(
        self,
        delivery_id: str,
        status: int | None,
        latency_ms: int,
        excerpt: str | None,
        error: str | None,
        *,
        final: bool = False,
    ) -> None:
        at = now()
        ok = status is not None and 200 <= status < 300
        async with self.services.db.write_session() as session:
            queue = DeliveryQueue(session)
            delivery = await queue.delivery(delivery_id)
            if delivery is None:
                return
            webhook = await queue.webhook(delivery.webhook_id)
            delivery.attempts += 1
            delivery.attempt_log = [
                *(delivery.attempt_log or []),
                {
                    "at": rfc3339(at),
                    "status_code": status,
                    "latency_ms": latency_ms,
                    "response": excerpt,
                    "error": error,
                },
            ][-50:]
            delivery.last_status_code = status
            delivery.locked_until = None
            delivery.updated_at = at
            if ok:
                delivery.status = "succeeded"
                if webhook is not None:
                    webhook.failing_since = None
                return
            if final or at - delivery.created_at >= RETRY_FOR:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = at + self.retry_delay(delivery)
            if webhook is not None and webhook.enabled and delivery.event_type != "webhook.test":
                webhook.failing_since = webhook.failing_since or at
                if at - webhook.failing_since >= DISABLE_AFTER:
                    webhook.enabled = False
                    webhook.disabled_reason = "Deliveries failed for 3 days"
                    log.warning("webhook disabled after 3 days of failures", webhook_id=webhook.id)

    async def prune(self) -> None:
        """Drop events past the replay window and finished deliveries past their log window."""

        at = now()
        async with self.services.db.write_session() as session:
            await prune_before_all_orgs(session, at - KEEP_EVENTS)
            await DeliveryQueue(session).prune_finished(at - KEEP_DELIVERIES)

    async def _release(self, delivery_ids: set[str]) -> None:
        """On a clean stop, hand back the leases of interrupted attempts (sent again later)."""
        if not delivery_ids:
            return
        try:
            async with self.services.db.write_session() as session:
                await DeliveryQueue(session).release(sorted(delivery_ids))
        except Exception:
            log.exception("could not release webhook leases; they expire on their own")

    def retry_delay(self, delivery: WebhookDelivery) -> timedelta:
        base: timedelta = self.services.settings.webhook_retry_base
        delay: timedelta = min(base * (2 ** max(0, delivery.attempts - 1)), MAX_DELAY)
        return delay


async def run_webhook_sender(services: Services) -> None:
    await WebhookSender(services).run()
