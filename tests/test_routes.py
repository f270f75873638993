"""The HTTP routes are declared twice, for API Gateway (template.yaml) and for the local watch
server (CargoLambda.toml), and described once (openapi.yaml); this keeps the three the same,
path parameter names included, and keeps the route table valid for OpenAPI and API Gateway."""

import json
import re
import tomllib
from pathlib import Path

import yaml

from dev.infra import load_template

ROOT = Path(__file__).resolve().parent.parent


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


OTHER_METHODS = {"PUT", "PATCH", "DELETE"}


def watch_routes():
    """The same table from the watch router: a path routed whole to one function, or the
    methods it lists; a function taking PUT, PATCH and DELETE is the path's `ANY`."""
    config = tomllib.loads((ROOT / "CargoLambda.toml").read_text())
    documented = openapi_routes()
    routes = set()
    for path, targets in config["watch"]["router"].items():
        # API Gateway routes a path with a trailing "/" as the path without it.
        path = path.rstrip("/") or "/"
        if isinstance(targets, str):
            routes |= {(m, p, targets) for m, p in documented if p == path}
            routes.add(("ANY", path, targets))
            continue
        methods = {t["method"]: t["function"] for t in targets}
        fallback = {methods[m] for m in OTHER_METHODS if m in methods}
        assert len(fallback) <= 1, f"{path}: other methods go to one function"
        routes |= {(m, path, f) for m, f in methods.items() if m not in OTHER_METHODS}
        routes |= {("ANY", path, f) for f in fallback}
    return routes


def openapi_routes():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item
            if method != "parameters"}


def test_template_and_watch_router_declare_the_same_routes():
    assert template_routes() == watch_routes()
    assert ("POST", "/sagas/{id}", "start-saga") in template_routes()
    assert ("GET", "/saga/{saga_id}", "saga-status") in template_routes()


def test_every_path_answers_other_methods_through_a_function():
    routes = template_routes()
    paths = {path for _, path, _ in routes}
    assert paths == {path for method, path, _ in routes if method == "ANY"}


def test_every_function_has_a_crate():
    for resource in template()["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            binary = resource["Metadata"]["BuildProperties"]["Binary"]
            assert (ROOT / "functions" / binary / "Cargo.toml").exists(), binary


def test_openapi_describes_every_route_and_nothing_else():
    routes = {(method, path) for method, path, _ in template_routes() if method != "ANY"}
    assert openapi_routes() == routes


def shape(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_no_two_paths_share_a_template():
    """OpenAPI 3: templated paths with the same hierarchy but different parameter names are
    identical, hence invalid; API Gateway matches routes by template too."""
    paths = {path for _, path in openapi_routes()} | {path for _, path, _ in template_routes()}
    shapes = {}
    for path in sorted(paths):
        assert shapes.setdefault(shape(path), path) == path, f"{path} and {shapes[shape(path)]}"


def test_one_parameter_name_per_path_level():
    """API Gateway refuses a route whose variable has another name than a sibling route's
    variable at the same level under the same parent (ConflictException)."""
    names = {}
    for _, path, _ in template_routes():
        segments = path.strip("/").split("/")
        for depth, segment in enumerate(segments):
            if segment.startswith("{"):
                parent = "/".join(segments[:depth])
                assert names.setdefault(parent, segment) == segment, \
                    f"{path}: {segment} where another route has {names[parent]} under /{parent}"


def test_route_groups_have_their_scopes():
    """ApiAuth=JWT: reads accept the read or the operate scope, operations only the operate
    scope, participant events only the participate scope, /health and /ui need no credentials;
    with IAM, every other route needs SigV4. The functions apply the same rule on the method
    (shared/src/api/auth.rs `required`): POST /events participates, other POSTs operate."""
    routes = template_route_resources()
    read = ["JwtReadScope", "JwtOperateScope"]
    operate = ["JwtOperateScope"]
    expected = {key: read for key in routes}
    expected.update({key: operate for key in routes if key.startswith("POST ")})
    expected["POST /events"] = ["JwtParticipateScope"]
    expected.update({key: None for key in routes
                     if key.split(" ")[1] in ("/health", "/ui", "/api/v1/saga/health")})
    for key, props in routes.items():
        if expected[key] is None:
            assert props["AuthorizationType"] == "NONE", key
            continue
        assert props["AuthorizationType"] == {"!If": ["UseJwt", "JWT", "AWS_IAM"]}, key
        condition, scopes, otherwise = props["AuthorizationScopes"]["!If"]
        assert condition == "UseJwt" and otherwise == {"!Ref": "AWS::NoValue"}, key
        assert [scope["!Ref"] for scope in scopes] == expected[key], key


def test_run_step_timeout_setting_matches_the_function():
    """The functions refuse definitions whose step timeouts do not fit in run-step's timeout;
    they learn it from RUN_STEP_TIMEOUT_SECONDS, which must be the function's Timeout."""
    resources = template()
    declared = resources["Globals"]["Function"]["Environment"]["Variables"]["RUN_STEP_TIMEOUT_SECONDS"]
    assert int(declared) == resources["Resources"]["RunStepFunction"]["Properties"]["Timeout"]


def test_the_client_apis_of_the_definitions_are_routed_to_their_functions():
    """A definition's client_api routes (the seeds' own) are in the route table: a start route
    on start-saga, a read route on saga-status."""
    routes = template_routes()
    declared = []
    for file in sorted((ROOT / "definitions").glob("*.json")):
        api = json.loads(file.read_text()).get("client_api")
        for route in (api or {}).get("routes", []):
            method, path = route["route"].split(" ", 1)
            function = "start-saga" if route.get("start") else "saga-status"
            declared.append((method, path, function))
            assert (method, path, function) in routes, f"{file.name}: {route['route']}"
            assert ("ANY", path, function) in routes, f"{file.name}: ANY {path}"
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
    """ApiAuth=IAM: the operate policy covers every POST route but /events, the participate
    policy only POST /events, the read policy only GETs."""
    resources = template()["Resources"]

    def patterns(policy):
        resource = resources[policy]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]
        resources_ = resource if isinstance(resource, list) else [resource]
        return [re.escape(r["!Sub"].split("${SagaApi}/*/", 1)[1]).replace(r"\*", ".*") for r in resources_]

    def allowed(policy, method, path):
        route = f"{method}/{re.sub(r'{[^}]+}', 'x', path).lstrip('/')}"
        return any(re.fullmatch(p, route) for p in patterns(policy))

    for key in template_route_resources():
        method, path = key.split(" ", 1)
        if method == "ANY":
            continue
        assert allowed("SagaApiReadPolicy", method, path) == (method == "GET"), key
        assert allowed("SagaApiOperatePolicy", method, path) == (path != "/events"), key
        assert allowed("SagaApiParticipatePolicy", method, path) == (key == "POST /events"), key


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
    sources = "\n".join(p.read_text() for p in (ROOT / "shared" / "src" / "api").glob("*.rs"))
    set_names = set(re.findall(r'set_header\(\s*&mut \w+,\s*"([a-z-]+)"', sources))
    set_names |= set(re.findall(r'\.header\("([a-z-]+)",', sources))
    # Request headers read with .header( in tests are not response headers.
    set_names -= {"idempotency-key", "prefer", "x-correlation-id", "x-task-id"}
    assert {"location", "idempotent-replayed", "preference-applied", "allow"} <= set_names, set_names
    missing = sorted(set_names - documented - GENERIC_HEADERS)
    assert not missing, f"response headers set in shared/src/api but not in openapi.yaml: {missing}"
