"""Demo saga participants for the local stack, one HTTP server on one port:

- image saga (seed 001): the Anonymizer at /anonymize and the AI Model at /process;
- order saga (seed 003): a café under /cafeteria (products, inventory reservations, orders);
- campaign saga (seed 004): the campaign, influencer, brand and tracking services under /campaign;
- /bulk answers as many bytes as asked (large payloads, in the tests), /bulk/undo undoes it, and
  /stuck is always down (503);
- /later acknowledges an awaited action at once and answers later by callback (see
  `answer_later`); GET /_callbacks lists the callbacks it sent.

Every participant honours the Idempotency-Key header: a repeated call with the same key gets the
first answer again without acting twice. A compensation finds what its action did through the
Compensates-Idempotency-Key header (the action's key), so it can undo an action whose answer
the orchestrator never saw (a timeout); for an action that never took effect it is a harmless
no-op.

Failure injection, from the X-Demo-Faults header (a JSON object that the orchestrator fills
from the saga input's fields below when the local stack sets DEMO_FAULTS=true, so no saga
definition carries them), else from the request body (the image saga sends its input whole):
  "fail_at": "<step>"            the participant of that step answers 500 every time (retryable,
                                 so the step gives up once its retries run out);
  "fail_at": "<step>", "fail_mode": "final"   it answers 422 (final: no retries);
  "fail_times": {"<step>": N}    it answers 503 to the first N attempts of each idempotency key;
  "delay_ms": {"<step>": N}      it waits N ms before answering (to catch a saga mid-step);
  "apply_then_refuse": "<step>"  its first attempt acts, then answers only after 3.5 s (past the
                                 caller's timeout); every later attempt of that key is refused
                                 with 422, as a participant that changed its mind would;
and from the environment: PARTICIPANT_FAILURE_RATE (0..1, random 500s on every participant),
PARTICIPANT_LATENCY_MS (added to every answer), and CAMPAIGN_FAILURE_RATES (seed 004's rates,
"influencer=0.05,marca=0.10,tracking=0.15" by default; "0" turns them off).

The café also answers seed 003's own reads: GET /api/v1/pedidos/, /api/v1/pedidos/{id} and
/api/v1/pedidos/inventario/reservas.

GET /_calls lists every call received (participant, idempotency key, attempt, body, answer
status, trace headers); DELETE /_calls forgets them. Tests use these to see what the orchestrator sent.
"""

import functools
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .ports import ports_for
from .tokens import PARTICIPATE_SCOPE, dev_token

# The callbacks' credentials: a participant's, as the local stack reads unsigned tokens.
PARTICIPANT_TOKEN = dev_token(PARTICIPATE_SCOPE)

FAILURE_RATE = float(os.environ.get("PARTICIPANT_FAILURE_RATE", "0"))
LATENCY_MS = float(os.environ.get("PARTICIPANT_LATENCY_MS", "0"))


def parse_rates(text):
    if text.strip() in ("", "0"):
        return {}
    return {name: float(rate) for name, rate in (pair.split("=") for pair in text.split(","))}


CAMPAIGN_FAILURE_RATES = parse_rates(os.environ.get("CAMPAIGN_FAILURE_RATES",
                                                    "influencer=0.05,marca=0.10,tracking=0.15"))
CAMPAIGN_ERRORS = {
    "influencer": "Error de red",
    "marca": "Error en sistema de notificaciones",
    "tracking": "Error en base de datos",
}

lock = threading.Lock()
calls = []
# The callbacks the answer-later participant sent: url, answer, the orchestrator's status.
callbacks = []
attempts_by_key = {}
answers_by_key = {}


class Failure(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# -- seed 001: image saga -----------------------------------------------------------------------

def anonymize(body):
    return {"image_id": body.get("image_id"), "anonymized": True, "data": "<redacted>"}


def process(body):
    return {"image_id": body.get("image_id"), "model": "demo-classifier-1", "label": "no-finding",
            "score": 0.97}


# -- seed 003: café orders ----------------------------------------------------------------------

PRODUCTS = {
    1: ("Café Americano", 2.50),
    2: ("Capuchino", 3.00),
    3: ("Latte", 4.00),
    4: ("Té", 2.00),
    5: ("Croissant", 2.75),
}
stock = {product: 100 for product in PRODUCTS}
reservations = {}
orders = {}


def validate_products(body):
    priced = []
    for item in body.get("items") or []:
        product = PRODUCTS.get(item.get("producto_id"))
        if product is None:
            raise Failure(422, f"Producto {item.get('producto_id')} no existe")
        quantity = int(item.get("cantidad", 1))
        if quantity <= 0:
            raise Failure(422, f"Cantidad inválida para el producto {item['producto_id']}")
        name, price = product
        priced.append({"producto_id": item["producto_id"], "nombre": name, "cantidad": quantity,
                       "precio_unitario": price, "subtotal": round(price * quantity, 2)})
    if not priced:
        raise Failure(422, "El pedido no tiene productos")
    return {"items": priced, "total": round(sum(i["subtotal"] for i in priced), 2)}


def reserve_inventory(body):
    items = body.get("items") or []
    for item in items:
        if stock[item["producto_id"]] < item["cantidad"]:
            raise Failure(409, f"Stock insuficiente para el producto {item['producto_id']}")
    for item in items:
        stock[item["producto_id"]] -= item["cantidad"]
    reservation_id = str(uuid.uuid4())
    reservations[reservation_id] = items
    return {"reserva_id": reservation_id, "items": len(items)}


def release_inventory(body, action):
    reservation_id = body.get("reserva_id") or action.get("reserva_id")
    items = reservations.pop(reservation_id, [])
    for item in items:
        stock[item["producto_id"]] += item["cantidad"]
    return {"reserva_id": reservation_id, "liberada": bool(items)}


def create_order(body):
    order_id = len(orders) + 1
    orders[order_id] = {"id": order_id, "cliente": body.get("cliente"), "items": body.get("items"),
                        "total": body.get("total"), "estado": "creado"}
    return orders[order_id]


def delete_order(body, action):
    order_id = body.get("pedido_id") or action.get("id")
    return {"pedido_id": order_id, "eliminado": orders.pop(order_id, None) is not None}


def set_order_state(state):
    def change(body, action=None):
        order = orders.get(body.get("pedido_id"))
        if order is None:
            raise Failure(404, f"Pedido {body.get('pedido_id')} no existe")
        order["estado"] = state
        return order
    return change


# -- seed 004: campaign -------------------------------------------------------------------------

def campaign_service(service, action):
    def handle(body, _action=None):
        rate = CAMPAIGN_FAILURE_RATES.get(service, 0) if action != "revertir" else 0
        if rate and random.random() < rate:
            raise Failure(500, f"{CAMPAIGN_ERRORS[service]} (tasa de fallo {rate:.0%})")
        return {"servicio": service, "accion": action, "campana": body.get("nombre"), "ok": True}
    return handle


# -- tests: large answers, a participant that is down ----------------------------------------

def bulk(body):
    """Answers `answer_bytes` bytes of filler with the call's `mark` and the size of what it
    received (large payloads: tests/e2e/test_payloads.py)."""
    return {"mark": body.get("mark"), "received_bytes": len(json.dumps(body)),
            "blob": "b" * int(body.get("answer_bytes") or 0)}


def stuck(body):
    """A participant that is down: every call answers 503 (retryable)."""
    raise Failure(503, "the stuck participant is down")


# -- tests: parallel groups and for-each steps --------------------------------------------------

def branch(name):
    """A branch step of a parallel group: answers its name and what it received (its size, for
    a body over 4 KB)."""
    def answer(body, _action=None):
        size = len(json.dumps(body))
        return {"branch": name, "received": body if size <= 4096 else {"bytes": size}}
    return answer


def element(body):
    """One element of a for-each: an element whose item says `"fail": true` is refused (422);
    one whose item says `"answer_bytes": N` gets N bytes of filler in its answer."""
    item = body.get("item")
    if isinstance(item, dict) and item.get("fail"):
        raise Failure(422, f"element {body.get('index')} refused (its item asks to fail)")
    answer = {"index": body.get("index"), "item": item}
    if isinstance(item, dict) and item.get("answer_bytes"):
        answer["blob"] = "b" * int(item["answer_bytes"])
    return answer


# -- tests: actions that answer later, by callback ------------------------------------------

def answer_later(body, callback=None):
    """An awaited action's participant: acknowledges at once, then answers by POSTing to the
    call's Saga-Callback URL after `after_ms` (default 2000): `"answer": "succeeded"` (the
    default, with `output`), `"failed"` (with `error`, `retryable`), or `"never"`. It sends
    `heartbeats` heartbeats first, one every `after_ms / (heartbeats + 1)`."""
    if not callback:
        raise Failure(400, "no Saga-Callback header: this participant answers by callback")
    outcome = body.get("answer", "succeeded")
    if outcome != "never":
        threading.Thread(target=send_callback, args=(callback, body, outcome), daemon=True).start()
    return {"accepted": True}


answer_later.takes_callback = True


def send_callback(callback, body, outcome):
    beats = int(body.get("heartbeats") or 0)
    pause = float(body.get("after_ms", 2000)) / 1000 / (beats + 1)
    for _ in range(beats):
        time.sleep(pause)
        status = post_callback(f"{callback}/heartbeat", None)
        with lock:
            callbacks.append({"url": f"{callback}/heartbeat", "answer": None, "status": status, "at": time.time()})
    time.sleep(pause)
    answer = {"status": outcome}
    if outcome == "succeeded":
        answer["output"] = body.get("output", {"answered": True})
    else:
        answer.update(error=body.get("error", "refused later"), retryable=bool(body.get("retryable")))
    status = post_callback(callback, answer)
    with lock:
        callbacks.append({"url": callback, "answer": answer, "status": status, "at": time.time()})


def post_callback(url, answer):
    """POSTs to the orchestrator as a participant (the local stack's unsigned token)."""
    data = json.dumps(answer or {}).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "content-type": "application/json", "authorization": f"Bearer {PARTICIPANT_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


# (method, path) -> (step name used by failure injection, handler)
ROUTES = {
    ("POST", "/bulk"): ("bulk", bulk),
    ("POST", "/bulk/undo"): ("bulk:compensation", lambda body, action: {"undone": action.get("mark")}),
    ("POST", "/stuck"): ("stuck", stuck),
    ("POST", "/anonymize"): ("anonymize", anonymize),
    ("POST", "/process"): ("process", process),
    ("POST", "/cafeteria/productos/validar"): ("ValidarProductos", validate_products),
    ("POST", "/cafeteria/inventario/reservas"): ("ReservarInventario", reserve_inventory),
    ("POST", "/cafeteria/inventario/reservas/liberar"): ("ReservarInventario:compensation", release_inventory),
    ("POST", "/cafeteria/pedidos"): ("CrearPedido", create_order),
    ("POST", "/cafeteria/pedidos/eliminar"): ("CrearPedido:compensation", delete_order),
    ("POST", "/cafeteria/pedidos/confirmar"): ("ConfirmarPedido", set_order_state("confirmado")),
    ("POST", "/cafeteria/pedidos/cancelar"): ("ConfirmarPedido:compensation", set_order_state("cancelado")),
}
for _name in ("a", "b", "c"):
    ROUTES[("POST", f"/fan/{_name}")] = (f"fan_{_name}", branch(_name))
    ROUTES[("POST", f"/fan/{_name}/undo")] = (f"fan_{_name}:compensation", branch(f"{_name}/undo"))
ROUTES[("POST", "/fan/each")] = ("fan_each", element)
ROUTES[("POST", "/later")] = ("later", answer_later)
ROUTES[("POST", "/fan/each/undo")] = ("fan_each:compensation",
                                      lambda body, action: {"undone": body.get("index")})
# (service, its action, the saga step it serves: the name failure injection uses)
for _service, _action, _step in (("campana", "crear", "crear_campana"),
                                 ("influencer", "notificar", "influencer"),
                                 ("marca", "notificar", "marca"),
                                 ("tracking", "inicializar", "tracking")):
    ROUTES[("POST", f"/campaign/{_service}/{_action}")] = (_step, campaign_service(_service, _action))
    ROUTES[("POST", f"/campaign/{_service}/revertir")] = (f"{_step}:compensation",
                                                          campaign_service(_service, "revertir"))


def demo_faults(header, body):
    """The fault injection a call asks for: the X-Demo-Faults header, else the body's fields."""
    if header:
        try:
            faults = json.loads(header)
        except ValueError:
            faults = None
        if isinstance(faults, dict):
            return faults
    return body


def injected_failure(step, faults, attempt):
    """The failure the call asks for at this step, if any."""
    if faults.get("fail_at") == step:
        if faults.get("fail_mode") == "final":
            return Failure(422, f"{step} rejected the request (injected final failure)")
        return Failure(500, f"{step} failed (injected failure)")
    fail_times = faults.get("fail_times") or {}
    if isinstance(fail_times, dict) and attempt <= int(fail_times.get(step) or 0):
        return Failure(503, f"{step} unavailable (injected, attempt {attempt})")
    if FAILURE_RATE and random.random() < FAILURE_RATE:
        return Failure(500, f"{step} failed (random failure rate {FAILURE_RATE})")
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm holds the body
        # until the client's delayed ACK, adding tens of milliseconds to every call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            views = {
                "/_calls": lambda: list(calls),
                "/_callbacks": lambda: list(callbacks),
                "/health": lambda: {"status": "ok"},
                "/cafeteria/inventario/reservas": lambda: {"reservas": reservations, "stock": stock},
                "/cafeteria/pedidos": lambda: list(orders.values()),
            }
            # Seed 003's own reads of the café, at the seed's paths.
            seed = self.path.rstrip("/").removeprefix("/api/v1/pedidos")
            if self.path.startswith("/api/v1/pedidos"):
                views[self.path] = {"": lambda: list(orders.values()),
                                    "/inventario/reservas": lambda: {"reservas": reservations, "stock": stock},
                                    }.get(seed) or (lambda: orders.get(int(seed[1:])) if seed[1:].isdigit() else None)
            view = views.get(self.path)
            found = view() if view else None
            self.answer(200, found) if found is not None else self.answer(404, {"detail": "no encontrado"})

    def do_DELETE(self):
        if self.path != "/_calls":
            self.answer(404, {"error": "not found"})
            return
        with lock:
            calls.clear()
            attempts_by_key.clear()
        self.answer(200, {"cleared": True})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        route = ROUTES.get(("POST", self.path))
        if route is None:
            self.answer(404, {"error": f"no participant at {self.path}"})
            return
        step, handler = route
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.answer(400, {"error": "body is not JSON"})
            return
        if not isinstance(body, dict):
            body = {"value": body}
        key = self.headers.get("idempotency-key")
        received_at = time.time()
        faults = demo_faults(self.headers.get("x-demo-faults"), body)
        delay = faults.get("delay_ms") if isinstance(faults.get("delay_ms"), dict) else {}
        if LATENCY_MS or delay.get(step):
            time.sleep((LATENCY_MS + float(delay.get(step) or 0)) / 1000)
        with lock:
            attempt = attempts_by_key.get((step, key), 0) + 1
            attempts_by_key[(step, key)] = attempt
            action = self.action_answer(step)
            if faults.get("apply_then_refuse") == step and attempt > 1:
                status, payload = 422, {"error": f"{step} refuses this retry (injected)"}
            else:
                if getattr(handler, "takes_callback", False):
                    handler = functools.partial(handler, callback=self.headers.get("saga-callback"))
                status, payload = self.act(step, handler, body, faults, key, attempt, action)
            calls.append({"participant": step, "path": self.path, "idempotency_key": key,
                          "attempt": attempt, "body": body, "status": status, "answer": payload,
                          "compensates": self.headers.get("compensates-idempotency-key"),
                          "traceparent": self.headers.get("traceparent"),
                          "callback": self.headers.get("saga-callback"),
                          "xray": self.headers.get("x-amzn-trace-id"),
                          "received_at": received_at, "answered_at": time.time()})
        if faults.get("apply_then_refuse") == step and attempt == 1:
            time.sleep(3.5)
        self.answer(status, payload)

    def action_answer(self, step):
        """For a compensation: what its action answered, found by the action's key ({} when
        the action never took effect here)."""
        if not step.endswith(":compensation"):
            return None
        action_key = self.headers.get("compensates-idempotency-key")
        status, payload = answers_by_key.get((step.removesuffix(":compensation"), action_key), (None, {}))
        return payload if status == 200 else {}

    @staticmethod
    def act(step, handler, body, faults, key, attempt, action):
        """Runs the participant once per idempotency key; a repeat gets the first answer."""
        if key is not None and (step, key) in answers_by_key:
            return answers_by_key[(step, key)]
        failure = injected_failure(step, faults, attempt)
        try:
            if failure:
                raise failure
            result = (200, handler(body) if action is None else handler(body, action))
        except Failure as e:
            return e.status, {"error": str(e)}
        if key is not None:
            answers_by_key[(step, key)] = result
        return result


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else ports_for("run").participants
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"participants listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
