"""Deterministic stand-in vectors and the context-length rules of /api/embed."""

import hashlib
import math
import struct


class ContextLengthError(ValueError):
    """The input has more tokens than the context and truncation is off."""


def count_tokens(text: str) -> int:
    """Count tokens as whitespace-separated words.

    NOTE: this approximates a real tokenizer, which usually yields more tokens
    than words (and adds the BERT [CLS] and [SEP] tokens), so real Ollama
    reaches the context limit with fewer words than the emulator.
    """
    return len(text.split())


def fit_to_context(text: str, context_length: int, truncate: bool) -> tuple[str, int]:
    """Return the text the model embeds and its token count.

    With truncate (Ollama's default) an input longer than the context keeps its
    first context_length tokens; without it the input is rejected.
    """
    words = text.split()
    if len(words) <= context_length:
        return text, len(words)

    if not truncate:
        raise ContextLengthError("the input length exceeds the context length")
    return " ".join(words[:context_length]), context_length


def raw_vector(weights_digest: str, text: str, dimensions: int) -> list[float]:
    """Return the unnormalised vector of a text, as the model runner would.

    Values are uniform in [-1, 1), drawn from SHAKE-256 of the weights digest
    and the text, so equal weights and equal text give equal vectors and any
    change of the text (a task prefix included) gives a different one.
    """
    seed = weights_digest.encode() + b"\x00" + text.encode("utf-8")
    stream = hashlib.shake_256(seed).digest(4 * dimensions)
    integers = struct.unpack(f"<{dimensions}I", stream)
    return [value / 2**31 - 1.0 for value in integers]


def normalise(vector: list[float]) -> list[float]:
    """Scale a vector to unit L2 norm, as Ollama's embed handler does."""
    norm = math.sqrt(sum(value * value for value in vector))
    scale = 1.0 / max(norm, 1e-12)
    return [value * scale for value in vector]


def embed_vector(
    weights_digest: str, text: str, model_dimensions: int, requested_dimensions: int
) -> list[float]:
    """Return the normalised vector that /api/embed sends for one input.

    A requested dimension count between 1 and the model's keeps the first
    values and normalises again; other values are ignored, as in Ollama.
    """
    vector = normalise(raw_vector(weights_digest, text, model_dimensions))
    if 0 < requested_dimensions < model_dimensions:
        vector = normalise(vector[:requested_dimensions])
    return vector
