"""Every route of the route table (api/routes.json) refuses the roles its access does not
serve, on the local stack as API Gateway and the functions do in AWS: readers are refused on
every write, participants on every operator route and read, and a
request without credentials on everything but the public routes (health, the dashboard page);
participants' routes (events, callbacks) refuse operators."""

import re
import uuid

import pytest
import requests

from dev.stack import OPERATE_SCOPE, PARTICIPATE_SCOPE, READ_SCOPE, dev_token
from test_routes import TABLE

ROUTES = sorted((r["method"], r["path"], r["access"]) for r in TABLE["routes"])
WRITES = [(m, p) for m, p, access in ROUTES if access in ("operate", "participate")]
OPERATES = [(m, p) for m, p, access in ROUTES if access == "operate"]
PARTICIPATES = [(m, p) for m, p, access in ROUTES if access == "participate"]
READS = [(m, p) for m, p, access in ROUTES if access == "read"]
PUBLIC = [(m, p) for m, p, access in ROUTES if access == "public"]


def concrete(path):
    """The path with its parameters filled in: a saga type to start, else an id."""
    if path == "/sagas/{id}":
        return "/sagas/image"
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def call(api, method, path, *scopes, authorization=...):
    header = f"Bearer {dev_token(*scopes)}" if authorization is ... else authorization
    return requests.request(method, f"{api.url}{concrete(path)}", json={}, timeout=30,
                            headers={"Authorization": header, "Prefer": "wait=0"})


def assert_refused(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_the_route_table_has_writes_reads_and_the_events_route():
    assert ("POST", "/events") in WRITES and ("POST", "/sagas/{id}/cancel") in WRITES
    assert all(m == "POST" for m, _ in WRITES), WRITES
    assert len(READS) >= 8, READS


@pytest.mark.parametrize("method,path", WRITES)
def test_a_reader_is_refused_on_every_write(api, method, path):
    response = call(api, method, path, READ_SCOPE)
    assert_refused(response, 403)
    assert "saga/read" in response.json()["detail"]


@pytest.mark.parametrize("method,path", OPERATES)
def test_a_participant_is_refused_on_every_operator_route(api, method, path):
    assert_refused(call(api, method, path, PARTICIPATE_SCOPE), 403)


@pytest.mark.parametrize("method,path", READS)
def test_reads_take_readers_and_operators_and_refuse_participants(api, method, path):
    assert call(api, method, path, READ_SCOPE).status_code not in (401, 403)
    assert call(api, method, path, OPERATE_SCOPE).status_code not in (401, 403)
    assert_refused(call(api, method, path, PARTICIPATE_SCOPE), 403)


@pytest.mark.parametrize("method,path", WRITES + READS)
def test_a_request_without_credentials_is_refused(api, method, path):
    response = call(api, method, path, authorization=None)
    assert_refused(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("method,path", PARTICIPATES)
def test_an_operator_is_refused_on_every_participant_route(api, method, path):
    assert {p for _, p in PARTICIPATES} == {"/events", "/callbacks/{token}", "/callbacks/{token}/heartbeat"}
    assert_refused(call(api, method, path, OPERATE_SCOPE), 403)


def test_events_take_participants(api):
    event = {"message_id": f"m-{uuid.uuid4()}", "event_type": "ImageReadyForAnonymization",
             "correlation_id": f"auth-{uuid.uuid4()}", "task_id": "t-1"}
    response = requests.post(f"{api.url}/events", json=[event], timeout=30,
                             headers={"Authorization": f"Bearer {dev_token(PARTICIPATE_SCOPE)}"})
    assert response.status_code == 200, response.text


def test_a_token_that_is_not_one_counts_as_none(api):
    assert_refused(call(api, "GET", "/sagas", authorization="Bearer not-a-token"), 401)


@pytest.mark.parametrize("method,path", PUBLIC)
def test_the_health_routes_and_the_page_need_no_credentials(api, method, path):
    assert {p for _, p in PUBLIC} == {"/health", "/ui", "/api/v1/saga/health"}
    assert call(api, method, path, authorization=None).status_code == 200
