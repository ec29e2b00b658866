"""rosettamt-serve: one trained model behind an HTTP API and a web page.

LibreTranslate's ``POST /translate`` and ``GET /languages`` (so its clients work unchanged),
rosettamt's ``POST /v1/translate`` (beam size, n-best with scores, length penalty, the
cross-attention of every layer and head), ``GET /health``, the page at ``/`` and the API docs at
``/docs``, all served offline from files inside the package (static/).

Modules: server.py (options, bind, uvicorn, signals), app.py (routes and error bodies),
schemas.py (request/response shapes for validation and /docs), requests.py (what a request may
ask: items, sizes, key, language pair), service.py (state, search settings within bounds, the
awaitable translate), batcher.py (dynamic batching on one worker thread), model.py (the
Translator as the batcher's model). Every translation goes through Translator.

Importing this package imports neither FastAPI nor torch; ``python -m rosettamt.serve`` runs
rosettamt-serve.
"""
