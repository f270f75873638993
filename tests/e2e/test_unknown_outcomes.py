"""Calls whose outcome is unknown, on the local stack: an attempt that may have taken effect is
remembered whatever later attempts answer, a pivot that may stand is never compensated around,
and a cancel is never overtaken by the pivot."""

import time

import requests

ORDER = {"cliente": "Incierto", "items": [{"producto_id": 2, "cantidad": 1}]}


def cafeteria(api, path):
    return requests.get(f"{api.participants}/cafeteria/{path}", timeout=10).json()


def compensations(api, saga_id):
    return [c["participant"] for c in api.calls(saga_id) if c["participant"].endswith(":compensation")]


def test_a_step_that_timed_out_then_was_refused_is_still_compensated(api):
    # CrearPedido's first attempt creates the order and answers past the 3 s timeout; its
    # retries are refused (422). The order exists, so it must be deleted.
    before = cafeteria(api, "inventario/reservas")["stock"]
    saga = api.run_to_end("order", {**ORDER, "apply_then_refuse": "CrearPedido"}, timeout=60)
    assert saga["status"] == "COMPENSATED", saga
    create = saga["steps"][2]
    assert create["status"] == "FAILED" and create["attempts"] == 2, create
    assert "422" in create["error"]
    assert saga["summary"]["compensations"] == ["CrearPedido", "ReservarInventario"]
    undo = next(c for c in api.calls(saga["id"]) if c["participant"] == "CrearPedido:compensation")
    assert undo["answer"]["eliminado"] is True, undo
    assert undo["answer"]["pedido_id"] not in {o["id"] for o in cafeteria(api, "pedidos")}
    assert cafeteria(api, "inventario/reservas")["stock"] == before


def test_a_pivot_that_may_have_taken_effect_stops_the_saga_for_an_operator(api):
    # Every attempt of the pivot times out after the café created the order: the steps before
    # it must not be undone while the order may stand.
    saga = api.run_to_end("pivotal", {**ORDER, "delay_ms": {"CrearPedido": 3500}}, timeout=60)
    assert saga["status"] == "FAILED", saga
    assert saga["failure"]["step"] == "CrearPedido"
    assert "may have taken effect" in saga["failure"]["error"]
    assert compensations(api, saga["id"]) == []
    reserve = saga["steps"][1]
    assert reserve["status"] == "COMPLETED" and not reserve["compensated"]


def test_a_cancel_during_the_step_before_the_pivot_stops_the_saga_before_it(api):
    # Under `boundaries` the step before the pivot is not written after the steps before it;
    # the write before the pivot is, and its version check sees the cancel.
    started = api.start("pivotal", {**ORDER, "delay_ms": {"ReservarInventario": 2500}})
    assert started.status_code == 202, started.text
    saga_id = started.json()["id"]
    # The café records a call once it answers: ValidarProductos answered, so
    # ReservarInventario's 2.5 s call is under way.
    deadline = time.time() + 20
    while not any(c["participant"] == "ValidarProductos" for c in api.calls(saga_id)):
        assert time.time() < deadline, "ValidarProductos never answered"
        time.sleep(0.05)
    response = requests.post(f"{api.url}/sagas/{saga_id}/cancel", timeout=30)
    assert response.status_code == 202, response.text
    saga = api.wait(saga_id, timeout=40)
    assert saga["status"] == "CANCELLED", saga
    participants = [c["participant"] for c in api.calls(saga_id)]
    assert "CrearPedido" not in participants, participants
    assert compensations(api, saga_id) == ["ReservarInventario:compensation"]
