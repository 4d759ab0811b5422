"""Shared fixtures: a tiny BERT sentence-transformer built offline, and paths to real PDFs."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"
NIST_PDF = RESOURCES / "nist_ai_600_1.pdf"
BLUEPRINT_PDF = RESOURCES / "blueprint_ai_bill_of_rights.pdf"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may read or write the user's Hugging Face cache or token.
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's WordPiece vocabulary, saved as a sentence-transformers folder.

    Real tokenisation, random weights: fast enough to train in a second.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ragtune.models import bundled_model_path

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_bert")
    hf_dir = root / "hf"
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    assert tokenizer("zero trust")["input_ids"] != tokenizer("risk")["input_ids"], "tokenizer lost its vocabulary"
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
    )
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_word_embedding_dimension(), "mean")])
    out = root / "st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def _tiny_model_loaded(tiny_model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_dir), device="cpu")


@pytest.fixture
def tiny_model(_tiny_model_loaded):
    """A fresh copy of the tiny model for each test (training changes weights in place)."""
    return copy.deepcopy(_tiny_model_loaded)


@pytest.fixture(scope="session")
def nist_pages():
    """Extracted pages of NIST AI 600-1 (the real PDF), shared by tests that only read them."""
    from ragtune.extract import extract_folder

    return extract_folder(NIST_PDF).pages
