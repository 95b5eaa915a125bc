"""The JSON output as a JSON Schema (draft 2020-12): `gradcli --json-schema` prints it.

Why a schema: `--json` is the interface for programs, so its shape is a promise.  The schema is
the promise written down; a test validates every JSON document the test-suite makes against it,
so the output and this description cannot drift apart.  Three documents: the result of
`grad`/`hess`/`shape`, the result of `check`, and an error (any command, exit 1 or 2).
"""

from __future__ import annotations

_DIM = {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}],
        "description": "a size, or the name of a dimension without one"}
_SHAPE = {"type": "array", "items": {"$ref": "#/$defs/dim"}, "description": "[] for a scalar, [n] a vector, "
                                                                              "[m, n] a matrix, more for a tensor"}
_VALUE = {"description": "a number, or nested arrays of numbers in the shape given; null for a value not "
                         "computed (no data) and for a non-finite entry",
          "oneOf": [{"type": "number"}, {"type": "null"}, {"type": "array", "items": {"$ref": "#/$defs/value"}}]}
_NULLABLE_INT = {"type": ["integer", "null"]}

_ERROR = {
    "type": "object", "required": ["kind", "message", "line", "column"], "additionalProperties": False,
    "properties": {
        "kind": {"enum": ["parse", "shape", "data", "math", "output", "usage", "internal"],
                 "description": "usage: exit 2; every other kind: exit 1"},
        "message": {"type": "string"},
        "line": _NULLABLE_INT, "column": _NULLABLE_INT,
    },
}

_DERIVATIVE = {
    "type": "object", "additionalProperties": False,
    "required": ["wrt", "kind", "formula", "latex", "shape", "layout", "value", "check"],
    "properties": {
        "wrt": {"type": "string", "description": "the symbol; \"x,y\" for a mixed Hessian block"},
        "kind": {"enum": ["gradient", "jacobian", "hessian", "tensor", "directional", "hessian-vector"],
                 "description": "tensor: the derivative of order k ≥ 3 (--order); directional: ∂f/∂x·v, of f's "
                                "shape; hessian-vector: H·v, of x's shape (--direction)"},
        "formula": {"type": ["string", "null"], "description": "gradcli's own language (re-parses); index "
                                                               "notation for a tensor; null from `shape`"},
        "latex": {"type": ["string", "null"], "description": "the right-hand side; a tensor's whole equation"},
        "shape": {"$ref": "#/$defs/shape"},
        "layout": {"enum": ["gradient", "numerator", "denominator", "vec"]},
        "value": {"$ref": "#/$defs/value"},
        "check": {"oneOf": [{"type": "null"}, {
            "type": "object", "required": ["max_rel_error", "ok"], "additionalProperties": False,
            "properties": {"max_rel_error": {"type": ["number", "null"]}, "ok": {"type": "boolean"}}}]},
        "direction": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "with --direction: {wrt symbol: the symbol of its direction}"},
        "order": {"type": "integer", "minimum": 2, "description": "a tensor's order: k for --order k, 2 for the "
                                                                   "Hessian of a vector or matrix f"},
        "claim": {"type": "object", "required": ["verdict", "ok", "message"],
                  "properties": {"verdict": {"type": "string"}, "ok": {"type": "boolean"},
                                 "message": {"type": "string"}},
                  "description": "with --claim: the verdict on the claimed derivative"},
    },
}

_RESULT = {
    "title": "grad, hess, shape",
    "type": "object", "additionalProperties": False,
    "required": ["formula", "shape", "symbols", "value", "derivatives", "notes"],
    "properties": {
        "formula": {"type": "string", "description": "f in gradcli's language"},
        "shape": {"$ref": "#/$defs/shape"},
        "symbols": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["shape", "source"], "additionalProperties": False,
            "properties": {"shape": {"$ref": "#/$defs/shape"},
                           "source": {"enum": ["data", "option", "where", "assumed"]}}}},
        "value": {"$ref": "#/$defs/value"},
        "derivatives": {"type": "array", "items": {"$ref": "#/$defs/derivative"}},
        "bindings": {"type": "array", "description": "shared subexpressions, in dependency order; each a "
                                                     "symbol of its shape in every formula after it",
                     "items": {"type": "object", "required": ["name", "formula", "latex", "shape"],
                               "additionalProperties": False,
                               "properties": {"name": {"type": "string"}, "formula": {"type": "string"},
                                              "latex": {"type": "string"}, "shape": {"$ref": "#/$defs/shape"}}}},
        "notes": {"type": "array", "items": {
            "type": "object", "required": ["kind", "message"],
            "properties": {"kind": {"type": "string"}, "message": {"type": "string"},
                           "symbol": {"type": ["string", "null"]}, "column": _NULLABLE_INT}}},
        "steps": {"type": "array", "description": "with --steps: one record per named intermediate",
                  "items": {"type": "object", "required": ["name"]}},
    },
}

_CHECK = {
    "title": "check",
    "type": "object", "additionalProperties": False, "required": ["results"],
    "properties": {
        "results": {"type": "array", "items": {
            "type": "object", "required": ["file", "line", "column", "formula", "ok", "expected_failure",
                                           "message", "warnings"],
            "properties": {"file": {"type": "string"}, "line": {"type": "integer"}, "column": {"type": "integer"},
                           "formula": {"type": "string"}, "ok": {"type": "boolean"},
                           "expected_failure": {"type": "boolean"}, "message": {"type": ["string", "null"]},
                           "warnings": {"type": "array", "items": {"type": "string"}},
                           "shape": {"$ref": "#/$defs/shape"},
                           "derivatives": {"type": "object", "additionalProperties": {"$ref": "#/$defs/shape"}}}}},
        "checked": {"type": "integer", "minimum": 0}, "failed": {"type": "integer", "minimum": 0},
        "expected_failures": {"type": "integer", "minimum": 0},
        "error": {"$ref": "#/$defs/error", "description": "a file that could not be read half-way"},
    },
    "oneOf": [{"required": ["checked", "failed", "expected_failures"]}, {"required": ["error"]}],
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "gradcli --json output",
    "description": "One JSON document on stdout: the result of grad/hess/shape, of check, or an error.",
    "oneOf": [{"$ref": "#/$defs/result"}, {"$ref": "#/$defs/check"},
              {"title": "error", "type": "object", "required": ["error"], "additionalProperties": False,
               "properties": {"error": {"$ref": "#/$defs/error"}}}],
    "$defs": {"dim": _DIM, "shape": _SHAPE, "value": _VALUE, "error": _ERROR, "derivative": _DERIVATIVE,
              "result": _RESULT, "check": _CHECK},
}


def schema_text() -> str:
    import json

    return json.dumps(SCHEMA, indent=2)
