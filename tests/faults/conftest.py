"""`make faults` runs the fault tests in two lanes at once, each on its own stacks and ports:
FAULTS_LANE=a or b picks a lane's tests (about half the suite's time each); unset, all run."""

import os

# The second lane's tests; the first lane runs the rest.
LANE_B = {
    "test_function_processes_killed_with_sigkill_lose_no_saga",
    "test_a_thousand_sagas_at_concurrency_sixteen",
    "test_run_step_killed_at_random_points_loses_no_saga",
    "test_restarting_the_whole_stack_mid_run_loses_no_saga",
    "test_a_call_that_always_kills_its_invocation_ends_the_saga_within_its_budget",
    "test_campaigns_at_the_seeds_failure_rates_are_compensated_as_often_as_the_seed_expects",
}


def pytest_collection_modifyitems(config, items):
    lane = os.environ.get("FAULTS_LANE")
    if lane not in ("a", "b"):
        return
    keep = [item for item in items if (item.name in LANE_B) == (lane == "b")]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
