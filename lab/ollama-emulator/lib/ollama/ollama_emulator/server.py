"""`ollama serve`: the HTTP server and its route handlers."""

import ipaddress
import json
import logging
import math
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .catalogue import (
    DEFAULT_NUM_CTX,
    CatalogueModel,
    find_model_by_weights,
    parse_model_name,
)
from .config import Settings, keep_alive_from_json
from .embedding import ContextLengthError, embed_vector, fit_to_context, raw_vector
from .logs import configure_logging, format_access_line, format_go_time
from .pull import Puller, PullError, PullFailureBudget
from .requests import BadRequestError, decode_request
from .scheduler import LoadedModel, Scheduler, ServerBusyError
from .store import ModelStore, StoredModel

LOG = logging.getLogger("ollama_emulator")
ACCESS_LOG = logging.getLogger("ollama_emulator.access")

# Go's time.Duration maximum (about 292 years), which Ollama uses for a
# negative keep_alive; /api/ps then shows an expiry that far ahead.
_FOREVER_SECONDS = (2**63 - 1) / 1e9


class HTTPError(Exception):
    """End a request with this status and {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServerState:
    """State shared by every request handler."""

    settings: Settings
    version: str
    store: ModelStore
    puller: Puller
    scheduler: Scheduler


@dataclass(frozen=True)
class RunnableModel:
    """A pulled model together with its catalogue entry and scheduling key."""

    stored: StoredModel
    catalogue: CatalogueModel

    @property
    def key(self) -> str:
        """Return the runner key: tags that share weights share one runner."""
        return self.stored.weights_digest


_ROUTES: dict[str, dict[str, str]] = {
    "/": {"GET": "handle_root", "HEAD": "handle_root"},
    "/api/version": {"GET": "handle_version", "HEAD": "handle_version"},
    "/api/tags": {"GET": "handle_tags", "HEAD": "handle_tags"},
    "/api/ps": {"GET": "handle_ps"},
    "/api/pull": {"POST": "handle_pull"},
    "/api/embed": {"POST": "handle_embed"},
    "/api/embeddings": {"POST": "handle_embeddings"},
    "/api/delete": {"DELETE": "handle_delete"},
}


class OllamaRequestHandler(BaseHTTPRequestHandler):
    """Route one HTTP/1.1 request to its handler and log it like Gin."""

    protocol_version = "HTTP/1.1"
    server_version = "ollama-emulator"
    server: "OllamaHTTPServer"

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def log_request(self, code: object = "-", size: object = "-") -> None:
        """Skip the default access line; _dispatch writes a Gin-style one."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base class name)
        LOG.warning("http: %s from %s", format % args, self.client_address[0])

    @property
    def state(self) -> ServerState:
        """Return the state shared by all requests."""
        return self.server.state

    def _dispatch(self) -> None:
        started = time.monotonic()
        self._status = 0
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
            methods = _ROUTES.get(path)
            if methods is None:
                self._send_text(404, "404 page not found")
            elif self.command not in methods:
                self._send_text(405, "405 method not allowed")
            else:
                getattr(self, methods[self.command])(body)
        except HTTPError as error:
            self._send_json(error.status, {"error": error.message})
        except ServerBusyError as error:
            LOG.warning("rejected %s %s: %s", self.command, path, error)
            self._send_json(503, {"error": str(error)})
        except (BrokenPipeError, ConnectionResetError) as error:
            LOG.warning("client %s went away: %s", self.client_address[0], error)
            self.close_connection = True
        except Exception as error:  # respond with 500 even on a bug in a handler
            LOG.exception("internal error on %s %s", self.command, path)
            if not self._status:
                self._send_json(500, {"error": f"internal error: {error}"})
            self.close_connection = True
        finally:
            ACCESS_LOG.info(
                format_access_line(
                    self._status,
                    time.monotonic() - started,
                    self.client_address[0],
                    self.command,
                    path,
                )
            )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_body(self, status: int, content_type: str, body: bytes) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_text(self, status: int, text: str) -> None:
        self._send_body(status, "text/plain; charset=utf-8", text.encode())

    def _send_json(self, status: int, document: object) -> None:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        self._send_body(status, "application/json; charset=utf-8", body.encode())

    def _start_stream(self) -> None:
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_stream_line(self, document: object) -> None:
        line = json.dumps(document, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # Routes.

    def handle_root(self, body: bytes) -> None:
        """GET or HEAD /: the liveness text."""
        self._send_text(200, "Ollama is running")

    def handle_version(self, body: bytes) -> None:
        """GET /api/version."""
        self._send_json(200, {"version": self.state.version})

    def handle_tags(self, body: bytes) -> None:
        """GET /api/tags: the pulled models, most recently modified first."""
        models = []
        for stored in self.state.store.list_models():
            name = stored.name.display()
            models.append(
                {
                    "name": name,
                    "model": name,
                    "modified_at": format_go_time(stored.modified_at),
                    "size": stored.size,
                    "digest": stored.digest,
                    "details": stored.details,
                }
            )
        self._send_json(200, {"models": models})

    def handle_ps(self, body: bytes) -> None:
        """GET /api/ps: the loaded models and when they unload."""
        models = []
        for loaded in self.state.scheduler.loaded_models():
            expires_at = loaded.expires_at
            if math.isinf(expires_at):
                expires_at = time.time() + _FOREVER_SECONDS
            models.append(
                {
                    "name": loaded.display_name,
                    "model": loaded.display_name,
                    "size": loaded.size,
                    "digest": loaded.digest,
                    "details": loaded.details,
                    "expires_at": format_go_time(expires_at),
                    # NOTE: the emulator reports the whole model as loaded on
                    # the GPU; real Ollama reports what fits in VRAM.
                    "size_vram": loaded.size,
                    "context_length": loaded.context_length,
                }
            )
        self._send_json(200, {"models": models})

    def handle_pull(self, body: bytes) -> None:
        """POST /api/pull: progress lines, or one object when stream is false."""
        request = self._decode(body, "PullRequest")
        raw_name = request.get("model") or request.get("name") or ""
        name = parse_model_name(raw_name)
        if name is None:
            raise HTTPError(400, "invalid model name")

        LOG.info("pulling model %s", name.display())
        events = self.state.puller.pull(name)
        if request.get("stream") is False:
            self._pull_without_stream(events, raw_name)
            return

        self._start_stream()
        try:
            for event in events:
                self._write_stream_line(event)
        except (PullError, OSError) as error:
            # Headers are already sent, so the error becomes the last line of
            # the 200 response, as in Ollama.
            LOG.error("pull of %s failed: %s", raw_name, error)
            self._write_stream_line({"error": str(error)})
        self._end_stream()

    def _pull_without_stream(self, events: object, raw_name: str) -> None:
        last_event: dict = {}
        try:
            for event in events:
                last_event = event
        except (PullError, OSError) as error:
            LOG.error("pull of %s failed: %s", raw_name, error)
            raise HTTPError(500, str(error)) from None
        self._send_json(200, last_event)

    def handle_embed(self, body: bytes) -> None:
        """POST /api/embed: normalised vectors for a string or a list of strings."""
        request = self._decode(body, "EmbedRequest")
        keep_alive = self._keep_alive(request)
        inputs = _embed_inputs(request.get("input"))
        raw_name = request.get("model") or ""
        model = self._runnable_model(raw_name)

        started = time.monotonic()
        if not inputs:
            # An empty input loads the model without taking a service slot.
            self._touch_model(model, request, keep_alive)
            self._send_json(200, {"model": raw_name, "embeddings": []})
            return

        context_length = self._context_length(model, request)
        with self._service_slot(model, request, keep_alive) as load_seconds:
            texts = []
            token_count = 0
            for text in inputs:
                fitted, tokens = self._fit(text, context_length, request, 400)
                texts.append(fitted)
                token_count += tokens

            dimensions = request.get("dimensions") or 0
            vectors = [
                embed_vector(model.key, text, model.catalogue.dimensions, dimensions)
                for text in texts
            ]
            time.sleep(self.state.settings.service_seconds(len(texts)))

        self._send_json(
            200,
            {
                "model": raw_name,
                "embeddings": vectors,
                "total_duration": int((time.monotonic() - started) * 1e9),
                "load_duration": int(load_seconds * 1e9),
                "prompt_eval_count": token_count,
            },
        )

    def handle_embeddings(self, body: bytes) -> None:
        """POST /api/embeddings (superseded): one unnormalised vector for `prompt`."""
        request = self._decode(body, "EmbeddingRequest")
        keep_alive = self._keep_alive(request)
        raw_name = request.get("model") or ""
        model = self._runnable_model(raw_name)

        prompt = request.get("prompt") or ""
        if not prompt:
            # Ollama loads the model and returns an empty vector, also when
            # the caller sent `input` (a field of /api/embed) instead.
            self._touch_model(model, request, keep_alive)
            self._send_json(200, {"embedding": []})
            return

        context_length = self._context_length(model, request)
        with self._service_slot(model, request, keep_alive):
            # NOTE: this endpoint does not truncate, and Ollama reports the
            # runner's context error as status 500 here.
            fitted, _ = self._fit(prompt, context_length, {"truncate": False}, 500)
            vector = raw_vector(model.key, fitted, model.catalogue.dimensions)
            time.sleep(self.state.settings.service_seconds(1))

        self._send_json(200, {"embedding": vector})

    def handle_delete(self, body: bytes) -> None:
        """DELETE /api/delete: remove a model; 404 if it is not pulled."""
        request = self._decode(body, "DeleteRequest")
        raw_name = request.get("model") or request.get("name") or ""
        name = parse_model_name(raw_name)
        if name is None:
            raise HTTPError(400, f"name {json.dumps(raw_name)} is invalid")

        if not self.state.store.delete(name):
            raise HTTPError(404, f"model '{raw_name}' not found")

        LOG.info("deleted model %s", name.display())
        self._send_body(200, "text/plain; charset=utf-8", b"")

    # Helpers of the routes.

    def _decode(self, body: bytes, struct_name: str) -> dict:
        try:
            return decode_request(body, struct_name)
        except BadRequestError as error:
            raise HTTPError(400, str(error)) from None

    def _keep_alive(self, request: dict) -> float:
        value = request.get("keep_alive")
        if value is None:
            return self.state.settings.keep_alive_seconds
        try:
            return keep_alive_from_json(value)
        except ValueError as error:
            raise HTTPError(400, str(error)) from None

    def _runnable_model(self, raw_name: str) -> RunnableModel:
        if not raw_name:
            raise HTTPError(400, "model is required")

        name = parse_model_name(raw_name)
        if name is None:
            raise HTTPError(400, "invalid model name")

        stored = self.state.store.find(name)
        if stored is None:
            message = f"model {json.dumps(raw_name)} not found, try pulling it first"
            raise HTTPError(404, message)

        catalogue = find_model_by_weights(stored.weights_digest)
        if catalogue is None:
            raise HTTPError(
                500,
                f"the emulator cannot run {raw_name}: its weights layer "
                f"{stored.weights_digest} is not one it pulled",
            )
        return RunnableModel(stored, catalogue)

    def _context_length(self, model: RunnableModel, request: dict) -> int:
        options = request.get("options") or {}
        num_ctx = options.get("num_ctx")
        if isinstance(num_ctx, bool) or not isinstance(num_ctx, (int, float)):
            num_ctx = DEFAULT_NUM_CTX
        if num_ctx <= 0:
            num_ctx = DEFAULT_NUM_CTX
        return min(int(num_ctx), model.catalogue.trained_context)

    def _fit(
        self, text: str, context_length: int, request: dict, status: int
    ) -> tuple[str, int]:
        truncate = request.get("truncate")
        try:
            return fit_to_context(text, context_length, truncate is not False)
        except ContextLengthError as error:
            raise HTTPError(status, str(error)) from None

    def _loaded_model(self, model: RunnableModel, request: dict) -> LoadedModel:
        return LoadedModel(
            display_name=model.stored.name.display(),
            digest=model.stored.digest,
            size=model.stored.size,
            details=model.stored.details,
            context_length=self._context_length(model, request),
            expires_at=0.0,
        )

    def _touch_model(
        self, model: RunnableModel, request: dict, keep_alive: float
    ) -> None:
        scheduler = self.state.scheduler
        scheduler.begin_use(model.key, self._loaded_model(model, request), keep_alive)
        scheduler.end_use(model.key, keep_alive)

    @contextmanager
    def _service_slot(
        self, model: RunnableModel, request: dict, keep_alive: float
    ) -> Iterator[float]:
        """Queue for a runner slot, load the model, and restart keep-alive after.

        Yields the load time in seconds. Raises ServerBusyError past the queue.
        """
        scheduler = self.state.scheduler
        with scheduler.slot(model.key):
            started = time.monotonic()
            loaded = self._loaded_model(model, request)
            scheduler.begin_use(model.key, loaded, keep_alive)
            load_seconds = time.monotonic() - started
            try:
                yield load_seconds
            finally:
                scheduler.end_use(model.key, keep_alive)


def _embed_inputs(value: object) -> list[str]:
    """Return the texts of an /api/embed `input`; an empty string means none."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise HTTPError(400, "invalid input type")


class OllamaHTTPServer(ThreadingHTTPServer):
    """Threading HTTP server bound to an IPv4 or IPv6 address."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], family: int, state: ServerState):
        self.address_family = family
        self.state = state
        super().__init__(address, OllamaRequestHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup; "::" also takes IPv4."""
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


def _bind_target(host: str, port: int) -> tuple[int, str]:
    if not host:
        # An empty host (OLLAMA_HOST=":PORT") listens on every interface.
        return (socket.AF_INET6, "::") if socket.has_ipv6 else (socket.AF_INET, "")

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        return family, sockaddr[0]

    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return family, host


def _listen_address(server: OllamaHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(settings: Settings, version: str) -> int:
    """Run the server until SIGTERM or SIGINT; return the process exit status."""
    configure_logging()
    LOG.info(
        "server config OLLAMA_HOST=%s OLLAMA_MODELS=%s OLLAMA_KEEP_ALIVE=%ss "
        "OLLAMA_NUM_PARALLEL=%d OLLAMA_MAX_QUEUE=%d "
        "OLLAMA_EMULATOR_EMBED_SECONDS=%s OLLAMA_EMULATOR_EMBED_ITEM_SECONDS=%s "
        "OLLAMA_EMULATOR_EMBED_CONCURRENCY=%d "
        "OLLAMA_EMULATOR_PULL_SECONDS=%s OLLAMA_EMULATOR_PULL_FAILURES=%d",
        settings.host.url(),
        settings.models_dir,
        settings.keep_alive_seconds,
        settings.num_parallel,
        settings.max_queue,
        settings.embed_seconds,
        settings.embed_item_seconds,
        settings.embed_concurrency,
        settings.pull_seconds,
        settings.pull_failures,
    )

    store = ModelStore(settings.models_dir)
    try:
        store.blobs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        return 1

    state = ServerState(
        settings=settings,
        version=version,
        store=store,
        puller=Puller(
            store, settings.pull_seconds, PullFailureBudget(settings.pull_failures)
        ),
        scheduler=Scheduler(settings.embed_concurrency, settings.max_queue),
    )

    host, port = settings.host.host, settings.host.port
    try:
        family, bind_host = _bind_target(host, port)
        server = OllamaHTTPServer((bind_host, port), family, state)
    except OSError as error:
        reason = error.strerror or error
        print(f"Error: listen tcp {host}:{port}: {reason}", file=sys.stderr, flush=True)
        return 1

    def stop(signal_number: int, frame: object) -> None:
        LOG.info("received %s, shutting down", signal.Signals(signal_number).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    LOG.info("Listening on %s (version %s)", _listen_address(server), version)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    LOG.info("server stopped")
    return 0
