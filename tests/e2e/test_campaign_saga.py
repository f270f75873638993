"""Seed 004's campaign saga on the local stack: create the campaign, then influencers, brand,
tracking, each with a compensation and tried once; the status reports steps executed, the failed
step, compensations and time."""

import pytest

STEPS = ["crear_campana", "influencer", "marca", "tracking"]
CAMPAIGN = {"nombre": "Campaña Demo", "tipo": "influencer_marketing", "presupuesto": 50000,
            "marca": {"id_marca": "m-1", "nombre_marca": "Alpes"},
            "influencers": [{"nombre": "Tech", "plataforma": "Instagram"}]}


def test_a_campaign_completes_and_reports_its_steps_and_time(api):
    saga = api.run_to_end("campaign", CAMPAIGN)
    assert saga["status"] == "COMPLETED"
    summary = saga["summary"]
    assert summary["steps_executed"] == STEPS
    assert "failed_step" not in summary
    assert summary["compensations"] == []
    assert summary["total_time_ms"] >= 0


@pytest.mark.parametrize("failing", STEPS)
def test_a_failure_at_any_step_reverts_it_and_the_earlier_steps_in_reverse_order(api, failing):
    # As seed 004 does ("Tracking falla -> Compensar: Tracking, Marca, Influencers"): the
    # definition compensates the failed step too, even one the service refused (a 422 here).
    saga = api.run_to_end("campaign", {**CAMPAIGN, "fail_at": failing, "fail_mode": "final"})
    assert saga["status"] == "COMPENSATED"
    finished = STEPS[:STEPS.index(failing)]
    summary = saga["summary"]
    assert summary["failed_step"] == failing
    assert summary["steps_executed"] == finished
    assert summary["compensations"] == [failing, *reversed(finished)]
    reverted = [c["participant"] for c in api.calls(saga["id"]) if c["path"].endswith("/revertir")]
    assert reverted == [f"{name}:compensation" for name in [failing, *reversed(finished)]]
