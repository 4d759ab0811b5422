"""Texts and checks the ONNX, int8 and OpenVINO export tests share: what each exported encoder is compared on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LONG = " ".join(["zero trust architecture keeps every request under suspicion"] * 40)  # > 128 tokens
TEXTS = ["risk", "incident response plan for a data breach", LONG, "a", "policy enforcement point " * 6]
# Chunk-like prose from two "documents", so a sample that took the first ones only would miss the second.
CHUNKS = [
    f"Section {i}: incident handlers contain, eradicate and recover from the breach of system {i}." for i in range(40)
] + [
    f"Appendix {i}: the policy decision point grants access per session after checking device posture {i}."
    for i in range(40)
]


def _st(model_dir: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu").encode(TEXTS, batch_size=32, normalize_embeddings=True)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
