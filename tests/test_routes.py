"""The HTTP routes are declared twice, for API Gateway (template.yaml) and for the local watch
server (CargoLambda.toml), and described once (openapi.yaml); this keeps the three the same."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


CloudFormationLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: loader.construct_scalar(node)
    if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node)
    if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node))


def normalise(path):
    """Path parameter names differ between the two routers; compare the shapes."""
    return re.sub(r"\{[^}]+\}", "{}", path)


OTHER_METHODS = {"PUT", "PATCH", "DELETE"}


def template_routes():
    """(method, path, function) of every HttpApi event; `ANY` stands for the other methods."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=CloudFormationLoader)
    routes = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        function = resource["Metadata"]["BuildProperties"]["Binary"]
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                routes.add((props["Method"], normalise(props["Path"]), function))
    return routes


def watch_routes():
    """The same shape from the watch router: a path routed whole to one function, or the
    methods it lists; a function taking PUT, PATCH and DELETE is the path's `ANY`."""
    config = tomllib.loads((ROOT / "CargoLambda.toml").read_text())
    documented = openapi_routes()
    routes = set()
    for path, targets in config["watch"]["router"].items():
        path = normalise(path)
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


def test_template_and_watch_router_declare_the_same_routes():
    assert template_routes() == watch_routes()
    assert ("POST", "/sagas/{}", "start-saga") in template_routes()


def test_every_path_answers_other_methods_through_a_function():
    routes = template_routes()
    paths = {path for _, path, _ in routes}
    assert paths == {path for method, path, _ in routes if method == "ANY"}


def test_every_function_has_a_crate():
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=CloudFormationLoader)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            binary = resource["Metadata"]["BuildProperties"]["Binary"]
            assert (ROOT / "functions" / binary / "Cargo.toml").exists(), binary


def openapi_routes():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return {(method.upper(), normalise(path)) for path, item in spec["paths"].items() for method in item}


def test_openapi_describes_every_route_and_nothing_else():
    routes = {(method, path) for method, path, _ in template_routes() if method != "ANY"}
    assert openapi_routes() == routes
