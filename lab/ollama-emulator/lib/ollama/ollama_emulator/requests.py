"""Decode request bodies and reject bad ones with the texts Ollama's Go server sends."""

import json


class BadRequestError(ValueError):
    """The body is not valid for the endpoint; the message goes into "error"."""


# Go types of the request fields the emulator reads, per Ollama request struct.
# A JSON null is accepted for every field, as Go's encoding/json does.
REQUEST_FIELDS: dict[str, dict[str, str]] = {
    "EmbedRequest": {
        "model": "string",
        "truncate": "bool",
        "dimensions": "int",
        "options": "map[string]interface {}",
    },
    "EmbeddingRequest": {
        "model": "string",
        "prompt": "string",
        "options": "map[string]interface {}",
    },
    "PullRequest": {
        "model": "string",
        "name": "string",
        "insecure": "bool",
        "stream": "bool",
    },
    "DeleteRequest": {"model": "string", "name": "string"},
}


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches(value: object, go_type: str) -> bool:
    if go_type == "string":
        return isinstance(value, str)
    if go_type == "bool":
        return isinstance(value, bool)
    if go_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, dict)


def decode_request(body: bytes, struct_name: str) -> dict:
    """Parse a JSON object body and check the types of the fields the emulator uses.

    NOTE: the syntax error texts follow Go's encoding/json for the common cases
    (empty body, stray character, cut-off document) but not word for word in
    every case.
    """
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        raise BadRequestError("missing request body")

    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.pos >= len(text.rstrip()):
            raise BadRequestError("unexpected EOF") from None
        character = text[error.pos]
        raise BadRequestError(
            f"invalid character '{character}' looking for beginning of value"
        ) from None

    if not isinstance(document, dict):
        raise BadRequestError(
            f"json: cannot unmarshal {_json_kind(document)} into Go value of type "
            f"api.{struct_name}"
        )

    for field, go_type in REQUEST_FIELDS[struct_name].items():
        value = document.get(field)
        if value is None or _matches(value, go_type):
            continue
        kind = _json_kind(value)
        if kind == "number":
            kind = f"number {value}"
        raise BadRequestError(
            f"json: cannot unmarshal {kind} into Go struct field "
            f"{struct_name}.{field} of type {go_type}"
        )

    return document
