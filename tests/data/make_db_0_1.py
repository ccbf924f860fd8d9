"""Made ``db-0.1.db``: a database written by uptimed 0.1 (schema 6) through its own store, kept
so that every later migration is tested on a file the previous release wrote (what users have).

Run once, from the repository root, with the release checked out:
``python -m tests.data.make_db_0_1``.
Do not run it again on a later release: the point of the file is that it is old.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from uptimed.alerting import next_state
from uptimed.db import Store
from uptimed.models import CheckResult, SiteIn, SiteState, Status, WebhookIn

OUT = Path(__file__).with_name("db-0.1.db")
T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z


async def main() -> None:
    OUT.unlink(missing_ok=True)
    store = await Store.open(OUT)
    shop = await store.insert_site(
        SiteIn(url="https://shop.example/health", name="Shop", check_interval_seconds=60), T0
    )
    blog = await store.insert_site(
        SiteIn(url="http://blog.example/", name="Blog", expected_status_code=204, keep_alive=True),
        T0 + 1,
    )
    gone = await store.insert_site(SiteIn(url="http://gone.example/", name="Gone"), T0 + 2)
    for site in (shop, blog):
        await store.insert_webhook(
            WebhookIn(
                site_id=site.id, discord_webhook_url=f"https://discord.com/api/webhooks/1/{site.id}"
            ),
            T0 + 3,
        )
    await store.delete_site(gone.id, farewell=json.dumps({"content": "ended"}), now=T0 + 4)

    # Shop: UP, DOWN for two checks, UP again (a closed incident); Blog: DOWN still (open).
    states = {shop.id: SiteState(Status.INITIAL, T0), blog.id: SiteState(Status.INITIAL, T0 + 1)}
    plan = [(shop.id, True), (blog.id, False), (shop.id, False), (shop.id, False), (shop.id, True)]
    for n, (site_id, up) in enumerate(plan, 1):
        result = CheckResult(
            status=Status.UP if up else Status.DOWN,
            checked_at=T0 + n * 60_000,
            response_time_ms=40 + n,
            reason=None if up else "HTTP 503",
            http_status=200 if up else 503,
        )
        states[site_id], transition = next_state(site_id, states[site_id], result)
        if transition is None:
            await store.write_checks(
                [(site_id, 2, result.response_time_ms, result.checked_at, result.reason,
                  states[site_id].since)], [], [site_id],
            )  # fmt: skip
        else:
            await store.record_transition(
                site_id, result, states[site_id], transition,
                message=json.dumps({"content": f"{site_id} {transition.current}"}),
            )  # fmt: skip
    first = await store.next_message("https://discord.com/api/webhooks/1/1")
    assert first is not None
    await store.mark_delivered(first, T0 + 400_000)  # the rest stay pending
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
