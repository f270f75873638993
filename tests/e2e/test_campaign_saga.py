"""Seed 004's campaign saga on the local stack: create the campaign, notify each influencer,
then brand and tracking side by side, each with a compensation and tried once; the status
reports steps executed, the failed step, compensations and time."""

import pytest

STEPS = ["crear_campana", "influencer", "marca", "tracking"]
SIDE_BY_SIDE = {"marca": "tracking", "tracking": "marca"}
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
    # Brand and tracking run side by side: the failing one of them answers 300 ms late, so the
    # other has completed, and is undone right after it (the last finished first).
    body = {**CAMPAIGN, "fail_at": failing, "fail_mode": "final"}
    finished = STEPS[:STEPS.index(failing)]
    if failing in SIDE_BY_SIDE:
        body["delay_ms"] = {failing: 300}
        finished = ["crear_campana", "influencer", SIDE_BY_SIDE[failing]]
    saga = api.run_to_end("campaign", body)
    assert saga["status"] == "COMPENSATED"
    summary = saga["summary"]
    assert summary["failed_step"] == failing
    assert summary["steps_executed"] == finished
    assert summary["compensations"] == [failing, *reversed(finished)]
    reverted = [c["participant"] for c in api.calls(saga["id"]) if c["path"].endswith("/revertir")]
    assert reverted == [f"{name}:compensation" for name in [failing, *reversed(finished)]]


def test_each_influencer_is_notified_with_its_own_call_and_undone_on_a_failure(api):
    influencers = [{"nombre": f"inf-{i}", "plataforma": "Instagram"} for i in range(7)]
    saga = api.run_to_end("campaign", {**CAMPAIGN, "influencers": influencers, "fail_at": "tracking",
                                       "fail_mode": "final", "delay_ms": {"tracking": 300}})
    assert saga["status"] == "COMPENSATED"
    step = next(s for s in saga["steps"] if s["name"] == "influencer")
    assert len(step["items"]) == 7 and all(i["compensation"]["status"] == "COMPLETED" for i in step["items"])
    calls = api.calls(saga["id"])
    notified = sorted(c["body"]["influencer"]["nombre"] for c in calls if c["participant"] == "influencer")
    assert notified == sorted(i["nombre"] for i in influencers)
    undone = [c["body"]["influencer"]["nombre"] for c in calls if c["participant"] == "influencer:compensation"]
    assert sorted(undone) == notified
    assert saga["summary"]["compensations"] == ["tracking", "marca", "influencer", "crear_campana"]


def test_a_campaign_without_influencers_notifies_none(api):
    campaign = {k: v for k, v in CAMPAIGN.items() if k != "influencers"}
    saga = api.run_to_end("campaign", campaign)
    assert saga["status"] == "COMPLETED", saga
    assert saga["summary"]["steps_executed"] == STEPS
    assert not [c for c in api.calls(saga["id"]) if c["participant"] == "influencer"]
