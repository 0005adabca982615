"""Text embeddings for similar-case search.

With OPENAI_API_KEY set, OpenAI's ``text-embedding-3-small`` (asked for 64 dimensions so it fits
the same pgvector column). Without a key, a *deterministic local embedder*: a hashed bag of
(lightly stemmed) words. It is not a language model; it only makes texts that share words land
near each other, which is enough for the lab's similarity search and batching lessons to run
offline and give the same answer every time.
"""

from __future__ import annotations

import hashlib
import math
import os
import re

DIMENSIONS = 64
LOCAL_MODEL = "lab-hash-embedder-v1"
OPENAI_MODEL = "text-embedding-3-small"

_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have hi hello i i'm im in is it its my me of on "
    "or our please so that the this to was we with you your yours thanks thank".split())
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    # A tiny suffix strip so "refunds"/"refunded"/"refund" share a bucket.
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _features(text: str) -> list[str]:
    # Single words only: with 64 buckets, word pairs mostly add collisions on short texts.
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def local_embed(text: str) -> list[float]:
    """Deterministic 64-dim unit vector for ``text`` (all zeros only for empty text)."""
    vec = [0.0] * DIMENSIONS
    for feature in _features(text):
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % DIMENSIONS
        sign = 1.0 if digest[4] & 1 else -1.0
        vec[index] += sign
    norm = math.sqrt(sum(v * v for v in vec))
    return [v / norm for v in vec] if norm else vec


def embedding_model() -> str:
    return OPENAI_MODEL if os.environ.get("OPENAI_API_KEY") else LOCAL_MODEL


def embed_texts(texts: list[str]) -> tuple[str, list[list[float]]]:
    """Embed many texts in one call; returns (model name, vectors)."""
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise TypeError("embed_texts expects a list of strings")
    if os.environ.get("OPENAI_API_KEY"):
        from openai import OpenAI  # only needed when keyed

        response = OpenAI().embeddings.create(model=OPENAI_MODEL, input=texts,
                                              dimensions=DIMENSIONS)
        return OPENAI_MODEL, [item.embedding for item in response.data]
    return LOCAL_MODEL, [local_embed(t) for t in texts]


def embed_text(text: str) -> tuple[str, list[float]]:
    model, vectors = embed_texts([text])
    return model, vectors[0]


def to_pgvector(vec: list[float]) -> str:
    """pgvector's text form, e.g. ``[0.1,0.2]``; psycopg passes it as a string literal."""
    return "[" + ",".join(f"{v:.6f}" for v in vec) + "]"
