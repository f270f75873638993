"""Clients written for the seed systems, against the local stack: each gets its seed's routes,
statuses and fields (seeds 002, 003 and 004; seed 001's are in test_image_saga.py)."""

import re
import uuid

import requests

SEED_003_ORDER = {"cliente": "Juan Pérez", "items": [{"producto_id": 1, "cantidad": 2},
                                                     {"producto_id": 3, "cantidad": 1}]}
SEED_004_CAMPAIGN = {"nombre": "Campaña Demo", "tipo": "influencer_marketing", "presupuesto": 50000,
                     "marca": {"id_marca": "uuid", "nombre_marca": "Alpes"},
                     "influencers": [{"nombre": "Tech", "plataforma": "Instagram"}]}
ORDER_STEPS = ["ValidarProductos", "ReservarInventario", "CrearPedido", "ConfirmarPedido"]


def test_seed_003_creates_an_order_and_answers_in_its_shape(api):
    response = requests.post(f"{api.url}/api/v1/pedidos/", json=SEED_003_ORDER, timeout=30)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["mensaje"] == "Pedido creado exitosamente"
    assert body["pedido"]["estado"] == "confirmado" and body["pedido"]["total"] == 9.0
    assert [i["subtotal"] for i in body["pedido"]["items"]] == [5.0, 4.0]
    saga = body["saga"]
    assert saga["estado"] == "completada" and saga["nombre"].startswith("CrearPedido-")
    assert saga["steps"] == [{"nombre": n, "ejecutado": True, "compensado": False} for n in ORDER_STEPS]
    # The café's own reads, at the seed's paths, served by the demo café.
    order_id = body["pedido"]["id"]
    cafe = api.participants
    assert requests.get(f"{cafe}/api/v1/pedidos/{order_id}", timeout=10).json()["estado"] == "confirmado"
    assert any(o["id"] == order_id for o in requests.get(f"{cafe}/api/v1/pedidos/", timeout=10).json())
    assert "stock" in requests.get(f"{cafe}/api/v1/pedidos/inventario/reservas", timeout=10).json()


def test_seed_003_reverts_a_failed_order_and_answers_its_error_shape(api):
    order = {"cliente": "Ana", "items": [{"producto_id": 1, "cantidad": 1}, {"producto_id": 99, "cantidad": 1}]}
    response = requests.post(f"{api.url}/api/v1/pedidos/", json=order, timeout=30)
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert detail["mensaje"] == "Error al crear pedido. Se han revertido todos los cambios."
    assert detail["saga"]["estado"] == "compensada"
    assert [s["ejecutado"] for s in detail["saga"]["steps"]] == [False] * 4
    assert "99" in detail["error"]
    # A body of another shape is refused before any saga starts, naming the field.
    bad = requests.post(f"{api.url}/api/v1/pedidos/", json={"cliente": {}, "items": []}, timeout=30)
    assert bad.status_code == 422 and "cliente must be a string" in bad.json()["detail"]


def test_seed_004_runs_a_campaign_and_reports_its_state(api):
    response = requests.post(f"{api.url}/campana-saga", json=SEED_004_CAMPAIGN, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["estado"] == "COMPLETADA"
    assert body["pasos_ejecutados"] == ["crear_campana", "influencer", "marca", "tracking"]
    assert re.fullmatch(r"\d+\.\ds", body["tiempo_total"])
    state = requests.get(f"{api.url}/saga/{body['id_saga']}/estado", timeout=10)
    assert state.status_code == 200 and state.json()["estado"] == "COMPLETADA"
    missing = requests.get(f"{api.url}/saga/{uuid.uuid4()}/estado", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"detail": "Saga no encontrada"}


def test_seed_004_compensates_from_the_failed_step_as_the_seed_lists_it(api):
    # Brand and tracking run side by side; tracking answers late, so brand completed first.
    campaign = {**SEED_004_CAMPAIGN, "fail_at": "tracking", "fail_mode": "final",
                "delay_ms": {"tracking": 300}}
    body = requests.post(f"{api.url}/campana-saga", json=campaign, timeout=30).json()
    assert body["estado"] == "COMPENSADA", body
    assert body["paso_fallido"] == "tracking"
    assert body["compensaciones"] == ["tracking", "marca", "influencer", "crear_campana"]
    assert "tracking" in body["error"]
    state = requests.get(f"{api.url}/saga/{body['id_saga']}/estado", timeout=10).json()
    assert state == body | {"tiempo_total": state["tiempo_total"]}


def test_seed_002_reads_the_monitor_routes(api):
    correlation, task = f"run-{uuid.uuid4()}", f"task-{uuid.uuid4()}"
    events = [{"message_id": f"{correlation}-{i}", "event_type": t, "correlation_id": correlation,
               "task_id": task} for i, t in enumerate(["RetrievalStarted", "RetrievalCompleted"])]
    assert requests.post(f"{api.url}/events", json=events, timeout=30).status_code == 200
    base = f"{api.url}/api/v1/saga"
    assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}
    saga = requests.get(f"{base}/sagas/by-correlation/{correlation}", timeout=10).json()
    assert saga["correlation_id"] == correlation and saga["type"] == "image-pipeline"
    assert requests.get(f"{base}/sagas/{saga['id']}", timeout=10).json()["id"] == saga["id"]
    by_task = requests.get(f"{base}/sagas/by-task/{task}", timeout=10).json()["items"]
    assert [s["id"] for s in by_task] == [saga["id"]]
    listed = requests.get(f"{base}/sagas", params={"type": "image-pipeline", "limit": 100}, timeout=10)
    assert saga["id"] in [s["id"] for s in listed.json()["items"]]
    missing = requests.get(f"{base}/sagas/by-correlation/run-{uuid.uuid4()}", timeout=10)
    assert missing.status_code == 404
