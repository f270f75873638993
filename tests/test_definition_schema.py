"""The JSON Schema of definition files (definitions/schema/definition.schema.json) says what the
loader says: every bundled and test definition validates, each of tests/definitions/invalid is
refused at (or around) the field the loader names for it in tests/definitions/invalid-fields.json,
and tests/definitions/valid is accepted. core/src/definition/corpus_tests.rs loads the same
files with the loader."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "definitions" / "schema" / "definition.schema.json"
CORPUS = ROOT / "tests" / "definitions"
INVALID = sorted((CORPUS / "invalid").glob("*.json"))
EXPECTED = json.loads((CORPUS / "invalid-fields.json").read_text())
# Every definition the project keeps: the bundled ones, and those under tests/ (but the refused).
DEFINITIONS = sorted((ROOT / "definitions").glob("*.json")) + sorted(
    p for p in (ROOT / "tests").rglob("*.json")
    if (CORPUS / "invalid") not in p.parents and p != CORPUS / "invalid-fields.json")


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def name(path):
    return str(path.relative_to(ROOT))


def test_the_corpus_is_all_there():
    assert [p.name for p in INVALID] == sorted(EXPECTED)
    folders = {p.parent for p in DEFINITIONS}
    assert {ROOT / "definitions", ROOT / "tests" / "e2e" / "definitions", CORPUS / "valid"} <= folders


@pytest.mark.parametrize("path", DEFINITIONS, ids=name)
def test_every_definition_validates(validator, path):
    errors = [f"{field(e.absolute_path) or '.'}: {e.message}"
              for e in validator.iter_errors(json.loads(path.read_text()))]
    assert errors == []


def test_bundled_definitions_name_the_schema():
    for path in sorted((ROOT / "definitions").glob("*.json")):
        pointer = json.loads(path.read_text()).get("$schema")
        assert pointer == "./schema/definition.schema.json", name(path)
        assert (path.parent / pointer).resolve() == SCHEMA


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_what_the_loader_refuses_the_schema_refuses(validator, path):
    errors = list(leaves(validator.iter_errors(json.loads(path.read_text()))))
    assert errors, "the schema accepts it"
    expected = parts(EXPECTED[path.name])
    located = [list(e.absolute_path) for e in errors]
    # The schema blames the loader's field, a field inside it, or the object holding it.
    assert any(near(at, expected) for at in located), (EXPECTED[path.name], located)


def leaves(errors):
    """The errors that say what is wrong, through anyOf and if/then's nested ones."""
    for error in errors:
        if error.context:
            yield from leaves(error.context)
        else:
            yield error


def parts(field):
    """`steps[0].parallel.branches[1][0]` as ['steps', 0, 'parallel', 'branches', 1, 0]."""
    if field == ".":
        return []
    out = []
    for piece in field.replace("]", "").replace("[", ".").split("."):
        out.append(int(piece) if piece.isdigit() else piece)
    return out


def field(path):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def near(at, expected):
    shorter, longer = sorted((at, expected), key=len)
    return longer[:len(shorter)] == shorter and len(shorter) >= len(expected) - 1
