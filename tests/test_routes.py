"""The route table is code (api/src/routes.rs, written out as api/routes.json with the
bundled definitions' client API routes); this checks template.yaml, openapi.yaml and
CargoLambda.toml against it, path parameter names included, and keeps the table valid for
OpenAPI and API Gateway."""

import json
import re
from pathlib import Path

import yaml

from dev import routes as route_table
from dev.infra import load_template

ROOT = Path(__file__).resolve().parent.parent

TABLE = route_table.load()


def template():
    return load_template(ROOT / "template.yaml")


def template_route_resources():
    """route key -> the AWS::ApiGatewayV2::Route resource's properties."""
    resources = template()["Resources"]
    return {r["Properties"]["RouteKey"]: r["Properties"]
            for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"}


def template_routes():
    """(method, path, function) of every route; `ANY` stands for the other methods."""
    resources = template()["Resources"]
    routes = set()
    for key, props in template_route_resources().items():
        method, path = key.split(" ", 1)
        integration = re.fullmatch(r"integrations/\$\{(\w+)\}", props["Target"]["!Sub"]).group(1)
        function = resources[integration]["Properties"]["IntegrationUri"]["!GetAtt"].split(".")[0]
        routes.add((method, path, resources[function]["Metadata"]["BuildProperties"]["Binary"]))
    return routes


def table_access():
    """route key (`ANY` for a path's other methods) -> the access the table declares."""
    access = {f"{r['method']} {r['path']}": r["access"] for r in TABLE["routes"]}
    access.update({f"ANY {o['path']}": o["access"] for o in TABLE["other_methods"]})
    return access


def table_routes():
    """(method, path, function) of the table, with `ANY` for each path's other methods."""
    routes = {(r["method"], r["path"], r["function"]) for r in TABLE["routes"]}
    return routes | {("ANY", o["path"], o["function"]) for o in TABLE["other_methods"]}


def openapi():
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def openapi_routes():
    return {(method.upper(), path) for path, item in openapi()["paths"].items() for method in item
            if method != "parameters"}


def test_the_template_declares_the_table():
    assert template_routes() == table_routes()
    assert ("POST", "/sagas/{id}", "start-saga") in template_routes()
    assert ("GET", "/saga/{saga_id}", "saga-status") in template_routes()


def test_the_watch_router_is_generated_from_the_table():
    assert (ROOT / "CargoLambda.toml").read_text() == route_table.render(TABLE), \
        "run python dev/routes.py --write"


def test_every_path_answers_other_methods_through_a_function():
    paths = {r["path"] for r in TABLE["routes"]}
    assert paths == {o["path"] for o in TABLE["other_methods"]}


def test_every_function_has_a_crate():
    for resource in template()["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            binary = resource["Metadata"]["BuildProperties"]["Binary"]
            assert (ROOT / "functions" / binary / "Cargo.toml").exists(), binary


def test_openapi_describes_every_route_and_nothing_else():
    routes = {(r["method"], r["path"]) for r in TABLE["routes"]}
    assert openapi_routes() == routes
    paths = openapi()["paths"]
    for r in TABLE["routes"]:
        if "operation" in r:
            operation = paths[r["path"]][r["method"].lower()]["operationId"]
            assert operation == r["operation"], (r["method"], r["path"])


def shape(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_no_two_paths_share_a_template():
    """OpenAPI 3: templated paths with the same hierarchy but different parameter names are
    identical, hence invalid; API Gateway matches routes by template too."""
    paths = {path for _, path, _ in table_routes()}
    shapes = {}
    for path in sorted(paths):
        assert shapes.setdefault(shape(path), path) == path, f"{path} and {shapes[shape(path)]}"


def test_one_parameter_name_per_path_level():
    """API Gateway refuses a route whose variable has another name than a sibling route's
    variable at the same level under the same parent (ConflictException)."""
    names = {}
    for _, path, _ in table_routes():
        segments = path.strip("/").split("/")
        for depth, segment in enumerate(segments):
            if segment.startswith("{"):
                parent = "/".join(segments[:depth])
                assert names.setdefault(parent, segment) == segment, \
                    f"{path}: {segment} where another route has {names[parent]} under /{parent}"


def test_routes_have_the_scopes_of_their_access():
    """ApiAuth=JWT: a route the table declares readable accepts the read or the operate scope,
    an operator route only the operate scope, a participant route only the participate scope,
    a public one no credentials; with IAM, every other route needs SigV4. The functions check
    the same access from the same table (api/src/auth.rs)."""
    scopes = {"read": ["JwtReadScope", "JwtOperateScope"], "operate": ["JwtOperateScope"],
              "participate": ["JwtParticipateScope"], "public": None}
    access = table_access()
    for key, props in template_route_resources().items():
        assert key in access, f"{key} is not in the route table"
        expected = scopes[access[key]]
        if expected is None:
            assert props["AuthorizationType"] == "NONE", key
            continue
        assert props["AuthorizationType"] == {"!If": ["UseJwt", "JWT", "AWS_IAM"]}, key
        condition, listed, otherwise = props["AuthorizationScopes"]["!If"]
        assert condition == "UseJwt" and otherwise == {"!Ref": "AWS::NoValue"}, key
        assert [scope["!Ref"] for scope in listed] == expected, key


def test_run_step_timeout_setting_matches_the_function():
    """The functions refuse definitions whose step timeouts do not fit in run-step's timeout;
    they learn it from RUN_STEP_TIMEOUT_SECONDS, which must be the function's Timeout."""
    resources = template()
    declared = resources["Globals"]["Function"]["Environment"]["Variables"]["RUN_STEP_TIMEOUT_SECONDS"]
    assert int(declared) == resources["Resources"]["RunStepFunction"]["Properties"]["Timeout"]


def test_the_table_has_the_client_apis_of_the_definitions():
    """routes.json lists the bundled definitions' client API routes: those of definitions/."""
    declared = set()
    for file in sorted((ROOT / "definitions").glob("*.json")):
        definition = json.loads(file.read_text())
        for route in (definition.get("client_api") or {}).get("routes", []):
            declared.add((*route["route"].split(" ", 1), definition["type"]))
    listed = {(r["method"], r["path"], r["client_api"]) for r in TABLE["routes"] if "client_api" in r}
    assert declared == listed
    assert len(declared) >= 3, declared


def test_every_function_that_writes_sagas_may_do_what_the_table_does():
    """Writes go through SagaTable, which reads payload and definition-version items in batches
    (BatchGetItem), writes them (PutItem) and gives a finished saga's items its TTL
    (UpdateItem); saga-status only reads."""
    table_actions = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    for name, resource in template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        granted = set()
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                if statement.get("Resource") == {"!GetAtt": "SagaTable.Arn"}:
                    granted |= set(statement["Action"])
        if name == "SagaStatusFunction":
            assert granted == {"dynamodb:GetItem", "dynamodb:BatchGetItem"}, name
        else:
            assert granted == table_actions, name


def test_iam_policies_give_each_role_its_routes():
    """ApiAuth=IAM: the read policy covers the readable (and public) routes, the operate policy
    every route but the participants', the participate policy only theirs."""
    resources = template()["Resources"]

    def patterns(policy):
        resource = resources[policy]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]
        resources_ = resource if isinstance(resource, list) else [resource]
        return [re.escape(r["!Sub"].split("${SagaApi}/*/", 1)[1]).replace(r"\*", ".*") for r in resources_]

    def allowed(policy, method, path):
        route = f"{method}/{re.sub(r'{[^}]+}', 'x', path).lstrip('/')}"
        return any(re.fullmatch(p, route) for p in patterns(policy))

    for route in TABLE["routes"]:
        method, path, access = route["method"], route["path"], route["access"]
        assert allowed("SagaApiReadPolicy", method, path) == (access in ("read", "public")), path
        assert allowed("SagaApiOperatePolicy", method, path) == (access != "participate"), path
        assert allowed("SagaApiParticipatePolicy", method, path) == (access == "participate"), path


def test_the_functions_check_the_routes_as_the_template_declares_them():
    """AUTH_MODE follows ApiAuth, the scopes are the template's; unsigned local tokens are a
    local stack setting only."""
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["AUTH_MODE"] == {"!If": ["UseJwt", "jwt", "iam"]}
    assert variables["AUTH_PARTICIPATE_SCOPE"] == {"!Ref": "JwtParticipateScope"}
    assert "AUTH_LOCAL_TOKENS" not in yaml.safe_dump(template())


# Headers every response may carry, which the document need not list per response.
GENERIC_HEADERS = {"content-type", "cache-control", "content-security-policy", "x-content-type-options",
                   "referrer-policy"}


def test_every_response_header_the_api_sets_is_documented():
    """A header the functions put on a response (`set_header(&mut response, "name"`, or
    `.header("name"` on a response builder) is in openapi.yaml's components/headers or on a
    response there."""
    api = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert api["openapi"].startswith("3.1")
    documented = {name.lower() for name in api["components"]["headers"]}
    for response in api["components"]["responses"].values():
        documented |= {name.lower() for name in response.get("headers", {})}
    for path in api["paths"].values():
        for operation in path.values():
            for response in (operation.get("responses") or {}).values():
                documented |= {name.lower() for name in response.get("headers", {})}
    sources = "\n".join(p.read_text() for p in (ROOT / "api" / "src").glob("*.rs"))
    set_names = set(re.findall(r'set_header\(\s*&mut \w+,\s*"([a-z-]+)"', sources))
    set_names |= set(re.findall(r'\.header\("([a-z-]+)",', sources))
    # Request headers read with .header( in tests are not response headers.
    set_names -= {"idempotency-key", "prefer", "x-correlation-id", "x-task-id"}
    assert {"location", "idempotent-replayed", "preference-applied", "allow"} <= set_names, set_names
    missing = sorted(set_names - documented - GENERIC_HEADERS)
    assert not missing, f"response headers set in api/src but not in openapi.yaml: {missing}"
