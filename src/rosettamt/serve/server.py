"""rosettamt-serve's body: check the options, bind the port, serve the app with uvicorn while the
worker loads the model; on SIGTERM/SIGINT stop taking requests, answer those in flight, exit 0.

uvicorn's own Server re-raises a caught SIGTERM once it has shut down (the process then dies
of the signal, status 143); a server that finished its work cleanly should say so with 0, so
:class:`GracefulServer` keeps the signals to itself.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Iterator, List, Optional

from rosettamt.checkpoint import resolve_checkpoint
from rosettamt.config import ServeAppConfig, check_serve
from rosettamt.errors import UserError

log = logging.getLogger("rosettamt.serve")
EXTRA = "pip install 'rosettamt[serve]'"


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require_extra() -> None:
    """One line naming what to install when the serve extra is missing."""
    missing = [name for name, modules in (("fastapi", ["fastapi"]), ("uvicorn", ["uvicorn"]),
                                          ("python-multipart", ["python_multipart", "multipart"]))
               if not any(importable(m) for m in modules)]
    if missing:
        raise UserError(f"rosettamt-serve needs {', '.join(missing)}: {EXTRA}")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a taken port is a one-line error, not a traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UserError(f"serve.host={host}: unknown address ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}); choose another serve.port "
                        "(serve.port=0 takes any free one)") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: Any, service: Any, sock: socket.socket, access_log: bool, grace: float) -> Any:
    """A uvicorn Server for ``app`` on ``sock`` that exits 0 after a signal and stops if loading fails."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            originals = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:  # restored, and not raised again (uvicorn's would end the process with the signal)
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

        def on_signal(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                log.info("%s: no new requests; answering those in flight, then stopping", signal.Signals(sig).name)
            service.stopping = True
            self.handle_exit(sig, frame)  # a second SIGINT forces the exit, as in uvicorn

        async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
            await super().startup(sockets)
            if self.started:
                log.info("rosettamt-serve listening on %s/ (the page; API docs at /docs)", url_of(sock))

        async def on_tick(self, counter: int) -> bool:
            return service.batcher.load_error is not None or await super().on_tick(counter)

    config = uvicorn.Config(app, log_config=None, access_log=access_log, lifespan="on",
                            timeout_graceful_shutdown=grace)
    return GracefulServer(config)


def model_path(cfg: ServeAppConfig) -> Path:
    """The checkpoint (backend=rosettamt) or the export folder model_dir= (backend=ctranslate2)."""
    if str(cfg.backend) == "ctranslate2":
        from rosettamt.engine.ct2_options import resolve_model_dir

        return resolve_model_dir(cfg.checkpoint, cfg.run_dir, cfg.model_dir, cfg.decode)
    if cfg.model_dir is not None:
        raise UserError("model_dir= is the export folder of backend=ctranslate2; "
                        "give checkpoint= or run_dir= instead, or add backend=ctranslate2")
    return resolve_checkpoint(cfg.checkpoint, cfg.run_dir)


def run(cfg: ServeAppConfig) -> None:
    """rosettamt-serve: the checks and the bind first (one-line errors), then serve until a signal."""
    check_serve(cfg)
    require_extra()
    checkpoint = model_path(cfg)
    sock = bind(cfg.serve.host, cfg.serve.port)

    from rosettamt.device import setup_allocator
    from rosettamt.serve.app import create_app
    from rosettamt.serve.model import ServedModel, load_translator
    from rosettamt.serve.service import Service

    setup_allocator(cfg.decode.keep_freed_memory, cfg.device)

    def load() -> ServedModel:
        model = ServedModel(load_translator(checkpoint, cfg))
        more = (f" (the default of {len(model.info.directions)} directions: "
                f"{', '.join(f'{a}-{b}' for a, b in model.info.directions)})" if model.info.directions else "")
        log.info("ready: %s -> %s%s at %s/", model.info.source, model.info.target, more, url_of(sock))
        return model

    service = Service(load, cfg.serve, cfg.decode)
    app = create_app(service, stop_timeout=cfg.serve.request_timeout)
    server = make_server(app, service, sock, cfg.serve.access_log, grace=cfg.serve.request_timeout + 5)
    log.info("loading %s", checkpoint)
    server.run(sockets=[sock])
    if service.batcher.load_error is not None:
        raise service.batcher.load_error
    log.info("stopped after %d requests in %d batches", service.batcher.counters["requests"],
             service.batcher.counters["batches"])
