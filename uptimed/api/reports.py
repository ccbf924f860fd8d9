"""Handlers for a site's past: history pages (JSON or CSV), incidents, uptime over windows."""

from __future__ import annotations

import csv
import io

from aiohttp import web
from yarl import URL

from uptimed.api.openapi import operation
from uptimed.api.validation import parse_query, path_id
from uptimed.app_keys import CLOCK, RETENTION, STORE
from uptimed.db import reports
from uptimed.models import (
    HistoryQuery,
    HistoryRow,
    Incident,
    PageQuery,
    SiteId,
    Uptime,
    UptimeQuery,
)

routes = web.RouteTableDef()


def _next_link(request: web.Request, cursor: int | None) -> dict[str, str]:
    if cursor is None:
        return {}
    url: URL = request.url.update_query(cursor=str(cursor))
    # raw: percent-encoded as it came (decoded, "?%1F=x" put a control character in the header)
    return {"Link": f'<{url.raw_path_qs}>; rel="next"'}


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(reports.HISTORY_FIELDS)
    writer.writerows(row.values() for row in rows)  # None is written as an empty field
    return out.getvalue()


async def _history(request: web.Request, *, csv_format: bool) -> web.Response:
    store = request.app[STORE]
    site_id = path_id(request)
    query = parse_query(request, HistoryQuery)
    rows, cursor = await reports.history_page(store, site_id, query)
    if not rows:  # rows go with their site (ON DELETE CASCADE): only an empty page asks
        await store.get_site(site_id)
    headers = _next_link(request, cursor)
    if csv_format:
        headers["Content-Disposition"] = f'attachment; filename="site-{site_id}-history.csv"'
        return web.Response(text=_csv(rows), content_type="text/csv", headers=headers)
    return web.json_response(rows, headers=headers)


_PAGED = {"Link": 'The next (older) page, as <url>; rel="next"; absent on the last page.'}


@routes.get("/sites/{id}/history")
@operation(
    "A site's checks: the newest `limit` that match, oldest first",
    tags=["history"],
    path={"id": SiteId},
    query=HistoryQuery,
    response=list[HistoryRow],
    headers=_PAGED,
)
async def site_history(request: web.Request) -> web.Response:
    return await _history(request, csv_format=False)


@routes.get("/sites/{id}/history.csv")
@operation(
    "The same rows as CSV, for spreadsheets",
    tags=["history"],
    path={"id": SiteId},
    query=HistoryQuery,
    response=str,
    media_type="text/csv",
    headers=_PAGED,
)
async def site_history_csv(request: web.Request) -> web.Response:
    return await _history(request, csv_format=True)


async def _incidents(request: web.Request, site_id: int | None) -> web.Response:
    query = parse_query(request, PageQuery)
    page, cursor = await reports.incidents_page(
        request.app[STORE],
        site_id,
        limit=query.limit,
        cursor=query.cursor,
        now=request.app[CLOCK].now_ms(),
    )
    return web.json_response(
        [i.model_dump(mode="json") for i in page], headers=_next_link(request, cursor)
    )


@routes.get("/sites/{id}/incidents")
@operation(
    "A site's down periods, newest first",
    tags=["history"],
    path={"id": SiteId},
    query=PageQuery,
    response=list[Incident],
    headers=_PAGED,
)
async def site_incidents(request: web.Request) -> web.Response:
    site = await request.app[STORE].get_site(path_id(request))
    return await _incidents(request, site.id)


@routes.get("/incidents")
@operation(
    "Down periods of all sites, newest first",
    tags=["history"],
    query=PageQuery,
    response=list[Incident],
    headers=_PAGED,
)
async def all_incidents(request: web.Request) -> web.Response:
    return await _incidents(request, None)


@routes.get("/sites/{id}/uptime")
@operation(
    "Uptime, checks, down time, incidents and response times over windows",
    tags=["history"],
    path={"id": SiteId},
    query=UptimeQuery,
    response=Uptime,
)
async def site_uptime(request: web.Request) -> web.Response:
    app = request.app
    site = await app[STORE].get_site(path_id(request))
    query = parse_query(request, UptimeQuery)
    now = app[CLOCK].now_ms()
    windows = await reports.uptime(
        app[STORE], site, list(dict.fromkeys(query.window)), now=now, retention=app[RETENTION]
    )
    return web.json_response(Uptime(site_id=site.id, windows=windows).model_dump(mode="json"))
