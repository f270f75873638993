"""Seed 003's order saga on the local stack: validate, reserve, create, confirm; failures at
every step roll back the finished ones, newest first."""

import pytest
import requests

STEPS = ["ValidarProductos", "ReservarInventario", "CrearPedido", "ConfirmarPedido"]
ORDER = {"cliente": "Juan Pérez", "items": [{"producto_id": 1, "cantidad": 2}, {"producto_id": 3, "cantidad": 1}]}


def cafeteria(api, path):
    return requests.get(f"{api.participants}/cafeteria/{path}", timeout=10).json()


def test_an_order_runs_every_step_and_passes_data_between_them(api):
    saga = api.run_to_end("order", ORDER)
    assert saga["status"] == "COMPLETED"
    assert [(s["name"], s["executed"], s["compensated"]) for s in saga["steps"]] == [
        (name, True, False) for name in STEPS]
    validated, reserved, created, confirmed = (s["output"] for s in saga["steps"])
    assert validated["total"] == 9.0
    assert created["total"] == 9.0 and created["cliente"] == "Juan Pérez"
    assert confirmed["estado"] == "confirmado" and confirmed["id"] == created["id"]
    assert reserved["reserva_id"] in cafeteria(api, "inventario/reservas")["reservas"]
    assert saga["summary"]["steps_executed"] == STEPS
    assert saga["summary"]["compensations"] == []


def test_a_missing_product_fails_validation_without_retries(api):
    saga = api.run_to_end("order", {"cliente": "Ana", "items": [{"producto_id": 99, "cantidad": 1}]})
    assert saga["status"] == "COMPENSATED"
    validate = saga["steps"][0]
    assert validate["status"] == "FAILED" and validate["attempts"] == 1
    assert "Producto 99 no existe" in validate["error"]
    assert saga["summary"] == {"steps_executed": [], "failed_step": "ValidarProductos",
                               "compensations": [], "total_time_ms": saga["summary"]["total_time_ms"]}
    assert [c["participant"] for c in api.calls(saga["id"])] == ["ValidarProductos"]


@pytest.mark.parametrize("failing", STEPS)
def test_a_failure_at_any_step_compensates_it_and_the_finished_ones_newest_first(api, failing):
    before = cafeteria(api, "inventario/reservas")["stock"]
    saga = api.run_to_end("order", {**ORDER, "fail_at": failing})
    assert saga["status"] == "COMPENSATED"
    index = STEPS.index(failing)
    finished = STEPS[:index]
    # A 500 may have taken effect, so the failed step is compensated too (ValidarProductos
    # has no compensation).
    compensable = [s for s in finished + [failing] if s != "ValidarProductos"]
    assert saga["summary"]["failed_step"] == failing
    assert saga["summary"]["steps_executed"] == finished
    assert saga["summary"]["compensations"] == list(reversed(compensable))
    failed = saga["steps"][index]
    assert failed["status"] == "FAILED" and failed["attempts"] == 3
    for step in saga["steps"]:
        assert step["compensated"] == (step["name"] in compensable)
    # The participants saw the compensations in that order, each with its own stable key and
    # the key of the action it undoes.
    compensation_calls = [c for c in api.calls(saga["id"]) if c["participant"].endswith(":compensation")]
    assert [c["participant"].split(":")[0] for c in compensation_calls] == list(reversed(compensable))
    for call in compensation_calls:
        step = call["participant"].split(":")[0]
        assert call["idempotency_key"] == f"{saga['id']}:{step}:compensation"
        assert call["compensates"] == f"{saga['id']}:{step}:action"
    # The failed action never took effect here (the café answered 500 before acting), so its
    # compensation was a harmless no-op.
    if failing in ("ReservarInventario", "CrearPedido"):
        undo = compensation_calls[0]
        assert undo["status"] == 200
        assert undo["answer"].get("liberada", undo["answer"].get("eliminado")) is False
    # The effects are undone: stock is back, and no order of this saga is left confirmed.
    assert cafeteria(api, "inventario/reservas")["stock"] == before
    created = saga["steps"][2].get("output")
    if created:
        orders = {o["id"]: o for o in cafeteria(api, "pedidos")}
        assert created["id"] not in orders


def test_a_step_that_timed_out_is_compensated_and_what_it_did_is_undone(api):
    before = cafeteria(api, "inventario/reservas")["stock"]
    # The café creates the order 3.5 s after each request, past the 3 s timeout of every
    # attempt: the orchestrator never sees the answer, but the order exists.
    saga = api.run_to_end("order", {**ORDER, "delay_ms": {"CrearPedido": 3500}}, timeout=60)
    assert saga["status"] == "COMPENSATED"
    create = saga["steps"][2]
    assert create["status"] == "FAILED" and "output" not in create
    assert saga["summary"]["compensations"] == ["CrearPedido", "ReservarInventario"]
    undo = next(c for c in api.calls(saga["id"]) if c["participant"] == "CrearPedido:compensation")
    assert undo["answer"]["eliminado"] is True, undo
    assert undo["answer"]["pedido_id"] not in {o["id"] for o in cafeteria(api, "pedidos")}
    assert cafeteria(api, "inventario/reservas")["stock"] == before


def test_a_step_the_participant_refused_is_not_compensated(api):
    saga = api.run_to_end("order", {**ORDER, "fail_at": "CrearPedido", "fail_mode": "final"})
    assert saga["status"] == "COMPENSATED"
    assert "422" in saga["steps"][2]["error"] and saga["steps"][2]["attempts"] == 1
    assert saga["summary"]["compensations"] == ["ReservarInventario"]
    assert "CrearPedido:compensation" not in [c["participant"] for c in api.calls(saga["id"])]


def test_a_compensation_that_gives_up_leaves_the_saga_failed_with_the_reason(api):
    saga = api.run_to_end("order", {**ORDER, "fail_at": "CrearPedido",
                                    "fail_times": {"ReservarInventario:compensation": 99}})
    assert saga["status"] == "FAILED"
    reserve = saga["steps"][1]
    assert reserve["compensation"]["status"] == "FAILED"
    assert reserve["compensation"]["attempts"] == 3
    assert saga["failure"]["step"] == "ReservarInventario"
    assert saga["failure"]["error"].startswith("compensation gave up:")
