"""The HTTP face of a Service: LibreTranslate's /translate and /languages, rosettamt's /v1/translate,
/health, the page at / and the API docs at /docs, all served from files inside the package.

Every error is ``{"error": "..."}`` with its status: 400 bad input, 403 key, 413 size, 429 queue
full, 503 loading / stopping / timed out; a bug is a 500 with the same shape, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from rosettamt import __version__
from rosettamt.serve import schemas
from rosettamt.serve.requests import ApiError, check_items, check_key, libre_response, parse_libre, pick_pair
from rosettamt.serve.service import Service

log = logging.getLogger("rosettamt.serve")
STATIC = Path(__file__).resolve().parent / "static"
SWAGGER = "/static/vendor/swagger-ui"
ERRORS: Dict[Any, Any] = {code: {"model": schemas.ErrorResponse} for code in (400, 403, 413, 429, 503)}


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}``; characters UTF-8 cannot carry (lone surrogates a caller sent) are escaped."""
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyLimit:
    """413 for a body past what max_chars could need: at once when Content-Length says so, else as
    soon as the bytes received (chunked, or more than a lying Content-Length) pass the limit."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    def refusal(self, size: str) -> JSONResponse:
        response = error(413, f"Invalid request: a body of {size} bytes is larger than this server takes "
                              f"({self.limit})")
        response.headers["Connection"] = "close"  # the rest of the body is not read
        return response

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            await self.refusal(str(int(length)))(scope, receive, send)
            return
        seen, started, refused = 0, False, False

        async def counted() -> Dict[str, Any]:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # answer now; the app sees a client that left
                    if not started:
                        await self.refusal(f"over {self.limit}")(scope, receive, reply)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def reply(message: Dict[str, Any]) -> None:
            nonlocal started
            if not refused:  # after the 413, whatever the app answers to the "disconnect" is dropped
                started = True
                await send(message)

        try:
            await self.app(scope, counted, reply)
        except Exception:  # noqa: BLE001 - the app failing on the cut-off body, already answered
            if not refused:
                raise


async def libre_fields(request: Request) -> Dict[str, Any]:
    """A LibreTranslate request's fields: JSON or form body over the query string; 400 if unreadable."""
    fields: Dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except Exception as err:  # noqa: BLE001 - a malformed form is the caller's error
            raise ApiError(400, f"Invalid request: unreadable form body ({err})") from None
        for key in form.keys():
            values = form.getlist(key)
            if not all(isinstance(v, str) for v in values):
                raise ApiError(400, f"Invalid request: {key} must be text, not a file")
            fields[key] = values[0] if len(values) == 1 else list(values)
        return fields
    body = await request.body()
    if not body.strip():
        return fields
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid request: send JSON (Content-Type: application/json) or form fields") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid request: the JSON body must be an object")
    fields.update(data)
    return fields


def v1_translation(cands: List[Any], attention: bool) -> Dict[str, Any]:
    """One item's n-best list as /v1 answers it; with attention, pieces and weights (5 decimals)."""
    best = cands[0]
    out: Dict[str, Any] = {"text": best.text, "score": best.score}
    if not attention:
        out["nbest"] = [{"text": c.text, "score": c.score} for c in cands]
        return out
    out["source_pieces"] = best.src_tokens
    out["nbest"] = [{"text": c.text, "score": c.score, "target_pieces": c.tgt_tokens,
                     "attention": c.weights.astype("float64").round(5).tolist()} for c in cands]
    return out


def create_app(service: Service, stop_timeout: float = 30.0) -> FastAPI:
    """The FastAPI app around ``service``: starts its worker (which loads the model) and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        await asyncio.get_running_loop().run_in_executor(None, service.stop, stop_timeout)

    app = FastAPI(title="rosettamt", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="LibreTranslate-compatible /translate and /languages; rosettamt's /v1/translate "
                              "with n-best scores and cross-attention. The page at / uses the same API.")
    app.add_middleware(BodyLimit, limit=service.cfg.max_chars * 12 + 65536)  # \uXXXX escapes, other fields
    if service.cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(service.cfg.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return error(err.status, err.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for e in err.errors()[:3]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return error(400, "Invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return error(err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return error(500, f"internal error ({type(err).__name__}); the server log has the details")

    @app.post("/translate", response_model=schemas.LibreResponse, responses=ERRORS, tags=["LibreTranslate"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  kind: {"schema": schemas.LibreRequest.model_json_schema()}
                  for kind in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")}}})
    async def translate(request: Request) -> JSONResponse:
        """Translate q (a text or a list of texts), as LibreTranslate does."""
        info = service.info()
        fields = await libre_fields(request)
        req = parse_libre(fields, info.source, info.target, service.cfg.max_nbest - 1, service.cfg.api_keys,
                          info.directions)
        settings = service.settings(nbest=req.alternatives + 1, direction=req.direction)
        detected = service.detect_sources(req.items, req.direction) if req.auto_source else ()  # before: see there
        results = await service.translate(req.items, settings)
        return JSONResponse(libre_response(req, results, detected))

    @app.post("/detect", response_model=List[schemas.Detection], responses=ERRORS, tags=["LibreTranslate"])
    async def detect(request: Request) -> JSONResponse:
        """Which of the model's languages q is in, best first, with confidences in percent (a model
        saved without language profiles answers its source language)."""
        service.info()
        fields = await libre_fields(request)
        check_key(fields.get("api_key"), service.cfg.api_keys)
        items, _ = check_items(fields.get("q"))
        return JSONResponse(service.detect("\n".join(items)))

    @app.get("/languages", response_model=List[schemas.Language], tags=["LibreTranslate"])
    async def languages() -> JSONResponse:
        """The model's language pair (every direction of a multilingual model), as LibreTranslate lists languages."""
        return JSONResponse(service.info().languages())

    @app.post("/v1/translate", response_model=schemas.V1Response, responses=ERRORS, tags=["rosettamt"])
    async def translate_v1(body: schemas.V1Request) -> JSONResponse:
        """Translate with a chosen search; n-best lists with scores; optionally the cross-attention."""
        info = service.info()
        check_key(body.api_key, service.cfg.api_keys)
        items, as_list = check_items(body.q)
        direction, auto = pick_pair(body.source, body.target, info.source, info.target, info.directions)
        settings = service.settings(body.beam_size, body.nbest, body.length_penalty, body.attention, direction)
        detected = service.detect_sources(items, direction) if auto else ()
        results = await service.translate(items, settings)
        used = {"beam_size": settings.beam_size, "nbest": settings.nbest, "length_penalty": settings.length_penalty}
        if info.directions:  # a multilingual model says which direction it translated in (auto: see each text's)
            used.update(source="auto" if auto else direction[0], target=direction[1])
        translations = [v1_translation(cands, settings.attention) for cands in results]
        for item, found in zip(translations, detected):
            item["detected_language"] = found
        return JSONResponse({"translations": translations, "settings": used, "model": info.as_dict()})

    @app.get("/health", tags=["rosettamt"])
    async def health() -> JSONResponse:
        """Status (ok, loading, stopping, failed: 200 only when ok), the model, limits, batching counters."""
        body = service.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="rosettamt API",
                                   swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg",
                                   swagger_ui_parameters={"validatorUrl": None})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.openapi = without_422(app.openapi)  # type: ignore[method-assign]
    return app


def without_422(make: Any) -> Any:
    """FastAPI documents a 422 for every body it validates; this server answers those with 400."""

    def openapi() -> Dict[str, Any]:
        schema = make()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        return schema

    return openapi
