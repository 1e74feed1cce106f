"""A loopback Bitrix24 incoming-webhook REST API, as unkind as the real one.

``POST /rest/<user_id>/<token>/<method>.json`` with a JSON (or form) body, like a portal's
incoming webhook. What it does like Bitrix24 and a friendly stub would not:

* errors are JSON ``{"error": "...", "error_description": "..."}`` with the real codes and
  statuses: a wrong token is 401 ``INVALID_CREDENTIALS``, an unknown method 404
  ``ERROR_METHOD_NOT_FOUND``, a bad CRM field 400 with an *empty* ``error`` code (what
  ``crm.*`` methods answer);
* ``fail_next()`` scripts the next answers of a method: the portal's 503 ``QUERY_LIMIT_EXCEEDED``
  (what it answers above two requests a second), an nginx HTML page, a 200 without ``result``;
* ``ASSIGNED_BY_ID`` / ``USER_ID`` must be a portal user, ``PHONE``/``EMAIL`` a list of
  ``{"VALUE", "VALUE_TYPE"}``, ``TYPE`` 1..4, ``CALL_ID`` one it issued and not finished;
* success is ``{"result": ..., "time": {...}}``; ids are integers, ``update`` answers ``true``.

Everything stored is inspectable (``leads``, ``deals``, ``calls``, ``comments``) and every
request is kept in ``requests`` for assertions on what was sent and how often.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.conftest import free_port

TOKEN = "k3yk3yk3yk3yk3y1"
USER_ID = 1
PORTAL_USERS = {1, 7}


class _Refused(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _bad(description: str) -> _Refused:
    """What ``crm.*`` methods answer to a bad field: 400 with an empty error code."""
    return _Refused(400, "", description)


@dataclass
class Scripted:
    status: int
    body: str
    content_type: str = "application/json"


@dataclass
class Bitrix24:
    port: int = field(default_factory=free_port)
    token: str = TOKEN
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    deals: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    """(method, params, status answered), in arrival order."""
    scripted: dict[str, list[Scripted]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(101))
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The incoming-webhook base URL an admin pastes into Omni."""
        return f"http://127.0.0.1:{self.port}/rest/{USER_ID}/{self.token}/"

    def fail_next(self, method: str, times: int = 1, status: int = 503, body: Any = None, **kw: str) -> None:
        """The next ``times`` calls of ``method`` get this answer (default: the rate limit)."""
        if body is None:
            body = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
        text = body if isinstance(body, str) else json.dumps(body)
        self.scripted.setdefault(method, []).extend(Scripted(status, text, **kw) for _ in range(times))

    def called(self, method: str) -> list[dict[str, Any]]:
        """Params of the calls of ``method`` that succeeded."""
        return [p for m, p, s in self.requests if m == method and s == 200]

    # --- the methods ----------------------------------------------------------------------

    def _fields(self, params: dict[str, Any]) -> dict[str, Any]:
        fields = params.get("fields")
        if not isinstance(fields, dict):
            raise _bad("Parameter 'fields' must be array.")
        assigned = fields.get("ASSIGNED_BY_ID")
        if assigned is not None and assigned not in PORTAL_USERS:
            raise _bad(f"Responsible user with ID {assigned} not found.")
        for key in ("PHONE", "EMAIL"):
            if key in fields:
                value = fields[key]
                if not isinstance(value, list) or not all(
                    isinstance(v, dict) and isinstance(v.get("VALUE"), str) and v.get("VALUE_TYPE")
                    for v in value
                ):
                    raise _bad(f"Field '{key}' must be a list of VALUE/VALUE_TYPE pairs.")
        return {k: v for k, v in fields.items() if k.isupper()}  # unknown lowercase keys: ignored

    def _add(self, store: dict[int, dict[str, Any]], params: dict[str, Any]) -> int:
        fields = self._fields(params)
        if not str(fields.get("TITLE", "")).strip():
            raise _bad("Required fields: Name")
        new_id = next(self._ids)
        store[new_id] = fields
        return new_id

    def _update(self, store: dict[int, dict[str, Any]], params: dict[str, Any]) -> bool:
        entity_id = params.get("id")
        if not isinstance(entity_id, int) or entity_id not in store:
            raise _bad("Not found")
        store[entity_id].update(self._fields(params))
        return True

    def _register(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("USER_ID") not in PORTAL_USERS and not params.get("USER_PHONE_INNER"):
            raise _Refused(400, "ERROR_USER_NOT_FOUND", "USER_ID or USER_PHONE_INNER should be set")
        if not params.get("PHONE_NUMBER"):
            raise _Refused(400, "ERROR_ARGUMENT", "PHONE_NUMBER should not be empty")
        if params.get("TYPE") not in (1, 2, 3, 4):
            raise _Refused(400, "ERROR_ARGUMENT", "Unknown TYPE")
        if not params.get("CALL_START_DATE"):
            raise _Refused(400, "ERROR_ARGUMENT", "CALL_START_DATE should not be empty")
        entity_type, entity_id = params.get("CRM_ENTITY_TYPE"), params.get("CRM_ENTITY_ID")
        store = {"LEAD": self.leads, "DEAL": self.deals}.get(str(entity_type))
        if store is None or entity_id not in store:
            raise _Refused(400, "ERROR_ARGUMENT", "CRM entity not found")
        call_id = f"externalCall.{len(self.calls) + 1:032x}.{int(time.time())}"
        self.calls[call_id] = {**params, "finished": None}
        return {
            "CALL_ID": call_id,
            "CRM_CREATED_LEAD": None,
            "CRM_ENTITY_TYPE": entity_type,
            "CRM_ENTITY_ID": entity_id,
        }

    def _finish(self, params: dict[str, Any]) -> dict[str, Any]:
        call = self.calls.get(str(params.get("CALL_ID")))
        if call is None:
            raise _Refused(400, "ERROR_CALL_NOT_FOUND", "Call is not found or already finished")
        if call["finished"] is not None:
            raise _Refused(400, "ERROR_CALL_NOT_FOUND", "Call is not found or already finished")
        if params.get("USER_ID") not in PORTAL_USERS:
            raise _Refused(400, "ERROR_USER_NOT_FOUND", "User is not found")
        call["finished"] = params
        return {
            "CALL_ID": params["CALL_ID"],
            "CALL_DURATION": params.get("DURATION"),
            "CALL_FAILED_CODE": "200",
        }

    def _comment(self, params: dict[str, Any]) -> int:
        fields = params.get("fields")
        if not isinstance(fields, dict):
            raise _bad("Parameter 'fields' must be array.")
        store = {"lead": self.leads, "deal": self.deals}.get(str(fields.get("ENTITY_TYPE")))
        if store is None or fields.get("ENTITY_ID") not in store:
            raise _Refused(400, "NOT_FOUND", "Entity not found")
        if not str(fields.get("COMMENT", "")).strip():
            raise _Refused(400, "ERROR_ARGUMENT", "Empty comment")
        self.comments.append(fields)
        return len(self.comments)

    def _run(self, method: str, params: dict[str, Any]) -> Any:
        if method == "crm.lead.add":
            return self._add(self.leads, params)
        if method == "crm.deal.add":
            return self._add(self.deals, params)
        if method == "crm.lead.update":
            return self._update(self.leads, params)
        if method == "crm.deal.update":
            return self._update(self.deals, params)
        if method == "telephony.externalcall.register":
            return self._register(params)
        if method == "telephony.externalcall.finish":
            return self._finish(params)
        if method == "crm.timeline.comment.add":
            return self._comment(params)
        raise _Refused(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")

    # --- HTTP -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        raw = await request.read()
        if request.content_type == "application/json":
            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                params = None
        else:
            params = dict(await request.post())
        started = time.time()

        def answer(status: int, body: dict[str, Any]) -> web.Response:
            self.requests.append((method, params if isinstance(params, dict) else {}, status))
            if status == 200:
                body["time"] = {"start": started, "finish": time.time(), "duration": time.time() - started}
            return web.json_response(body, status=status)

        if request.match_info["user"] != str(USER_ID) or request.match_info["token"] != self.token:
            return answer(
                401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}
            )
        queue = self.scripted.get(method)
        if queue:
            scripted = queue.pop(0)
            self.requests.append((method, params if isinstance(params, dict) else {}, scripted.status))
            return web.Response(
                status=scripted.status, text=scripted.body, content_type=scripted.content_type
            )
        if not isinstance(params, dict):
            return answer(400, {"error": "INVALID_REQUEST", "error_description": "Https required."})
        try:
            return answer(200, {"result": self._run(method, params)})
        except _Refused as exc:
            return answer(exc.status, {"error": exc.error, "error_description": exc.description})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/rest/{user}/{token}/{method}.json", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
