"""The embedded model on ONNX Runtime: same vectors and word pieces as sentence-transformers,
without importing torch.

What sentence-transformers does with the model folder, done here with the fast `tokenizers`
tokenizer, onnxruntime and numpy (the folder's own files say each step):

- tokenize: `tokenizer.json`, truncated to `max_seq_length` pieces (`sentence_bert_config.json`,
  256 here), [CLS] and [SEP] included; lower-cased first if `do_lower_case`;
- the transformer: `model.onnx` exported from the same weights (`qa.onnx_export`), one
  vector per piece;
- pooling: the mean of the piece vectors under the attention mask (`1_Pooling/config.json`
  says mean tokens, nothing else); then L2 normalising (the `Normalize` module);
- word pieces: every piece's string, id and vector (`TokenVectors`), as the torch encoder
  gives them; which of them are content is the callers' choice (`qa.tokens.content`).

Measured against sentence-transformers (tests/test_onnx_encoder.py): sentence cosine
>= 0.9999 and identical piece ids on a fixed set of texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embedding import BatchingEncoder, TokenVectors, normalise, offline_model_path, quiet_threads, resolve_model
from .errors import ModelError

#: onnxruntime threads per call. One: a question is a tiny graph (thread hand-offs cost more
#: than they save), the web app runs several callers' batches, and this 2-core machine is
#: shared; measured with bench (docs/scaling.md): 1 thread beat 2 under load for queries and
#: for build batches.
ORT_THREADS = 1
#: texts per onnxruntime call when many are encoded (a build): sorted by length first, so a
#: batch pads to little more than its own longest text, and as many as fit BATCH_TOKENS padded
#: pieces, at most MAX_BATCH: 128 one-line texts, 32 of 64 pieces, 8 of 256. Short texts
#: (one-line paragraphs) ran 305-469 texts/s in calls of 128 against 202-374 in calls of 32;
#: long ones keep the attention's buffers small (32 texts of 256 pieces held ~100 MB each call)
BATCH_TOKENS = 32 * 64
MAX_BATCH = 128
#: a build's batches run this many at a time (one onnxruntime thread each); a question is
#: never split, so answering stays on one thread. The 1 MB book: 292 s with 2 against 357 s
#: with 1 at load ~4 (docs/scaling.md)
BUILD_THREADS = 2


@dataclass(frozen=True)
class Layout:
    """What a sentence-transformers folder says about tokenizing and pooling."""

    max_tokens: int
    lower: bool


def read_layout(model_dir: Path) -> Layout:
    """The folder's tokenizing and pooling, or ModelError when it pools in a way not done here."""
    cfg = _json(model_dir / "sentence_bert_config.json")
    modules = _json(model_dir / "modules.json") or []
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    pool = _json(model_dir / pooling["path"] / "config.json") if pooling else {}
    modes = {k for k, v in pool.items() if k.startswith("pooling_mode_") and v}
    if kinds[:2] != ["Transformer", "Pooling"] or modes != {"pooling_mode_mean_tokens"} or \
            any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise ModelError(f"The model in {model_dir} is not transformer + mean pooling (modules {kinds}, "
                         f"pooling {sorted(modes)}); run it with QA_ENCODER=torch.")
    return Layout(max_tokens=int(cfg.get("max_seq_length") or 256), lower=bool(cfg.get("do_lower_case")))


class OnnxEncoder(BatchingEncoder):
    """The embedded model on onnxruntime; micro-batching and the cache are `BatchingEncoder`'s."""

    backend = "onnx"
    #: run this int8 variant (`qa.onnx_export.QUANTIZATIONS`) instead of fp32 (None)
    quantization: str | None = None

    def _load_backend(self) -> tuple[object, int]:
        folder, _ = offline_model_path(resolve_model(self.name), "Model", "QA_MODEL / --model")
        runtime = Runtime.load(Path(folder), self.quantization)
        return runtime, runtime.dim

    def _encode_now(self, texts: list[str], pieces: bool = False, parallel: bool = False) -> tuple[np.ndarray, list | None]:
        runtime: Runtime = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), ([] if pieces else None)
        encodings = runtime.tokenize(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        parts: list | None = [None] * len(texts) if pieces else None
        batches = batched(sorted(range(len(texts)), key=lambda i: len(encodings[i].ids)),
                          [len(e.ids) for e in encodings])

        def one(rows: list[int], lock: bool = True) -> None:
            ids, mask = pad([encodings[i].ids for i in rows])
            if lock:
                with self._model_lock:
                    tokens = runtime.run(ids, mask)
            else:
                tokens = runtime.run(ids, mask)
            vectors[rows] = mean_pool(tokens, mask)
            if pieces:  # copies: a view would keep the whole padded batch alive
                for j, i in enumerate(rows):
                    n = len(encodings[i].ids)
                    parts[i] = TokenVectors(tuple(encodings[i].tokens), np.asarray(encodings[i].ids, dtype=np.int64),
                                            np.array(tokens[j, :n], dtype=np.float32))

        if parallel and len(batches) > 1 and BUILD_THREADS > 1:  # a build: batches side by side, one thread each
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(BUILD_THREADS) as pool:  # session.run is thread-safe and releases the GIL
                list(pool.map(lambda rows: one(rows, lock=False), batches))
        else:
            for rows in batches:
                one(rows)
        return normalise(vectors), parts


def batched(order: list[int], lengths: list[int]) -> list[list[int]]:
    """Consecutive runs of `order` (texts sorted by length) as model calls: as many texts as
    fit BATCH_TOKENS padded pieces, at most MAX_BATCH.

    >>> [len(b) for b in batched(list(range(300)), [10] * 300)]
    [128, 128, 44]
    >>> [len(b) for b in batched(list(range(40)), [256] * 40)]
    [8, 8, 8, 8, 8]
    """
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) >= MAX_BATCH or (len(cur) + 1) * lengths[i] > BATCH_TOKENS):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists -> (ids, attention mask), int64, padded with 0 ([PAD]) to the longest.

    >>> pad([[101, 7, 102], [101, 102]])[1].tolist()
    [[1, 1, 1], [1, 1, 0]]
    """
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, r in enumerate(rows):
        ids[j, :len(r)] = r
        mask[j, :len(r)] = 1
    return ids, mask


def mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each text's piece vectors under its attention mask (sentence-transformers'
    mean-tokens pooling): (batch, tokens, dim), (batch, tokens) -> (batch, dim)."""
    if mask.all():  # one text, or texts of one length: no padding to leave out
        return tokens.mean(axis=1)
    m = mask[..., None].astype(np.float32)
    return (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


class Runtime:
    """The loaded pieces: tokenizer, onnxruntime session, layout. `tokenizer` answers
    `tokenize` and `convert_ids_to_tokens` as a transformers tokenizer does."""

    def __init__(self, session, tokenizer, layout: Layout, dim: int):
        self.session, self.fast, self.layout, self.dim = session, tokenizer, layout, dim
        self.tokenizer = _TokenizerView(tokenizer)

    @classmethod
    def load(cls, model_dir: Path, quantization: str | None = None) -> Runtime:
        quiet_threads()
        layout = read_layout(model_dir)
        from .onnx_export import exported, quantized
        from .onnx_session import open_session

        path = quantized(model_dir, variant=quantization) if quantization else exported(model_dir)
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"onnxruntime or tokenizers is missing ({exc}): install the project "
                             "(pip install -e .) or set QA_ENCODER=torch.") from None
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(layout.max_tokens)
        tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = ORT_THREADS
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no warnings about the graph on stderr
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no arena: it would keep the largest batch's buffers (a build's 32 x 256-piece batch holds
        # ~100 MB of attention scores) for the life of the process; a question ran as fast without
        options.enable_cpu_mem_arena = False
        try:
            session = open_session(path, options, ["CPUExecutionProvider"])  # the graph optimised once
        except Exception as exc:  # a damaged file: say which, and how to get a new one
            raise ModelError(f"Could not load the ONNX model {path} ({type(exc).__name__}: {exc}). Delete its "
                             "folder to export it again, or set QA_ENCODER=torch.") from exc
        dim = int(_json(model_dir / "config.json").get("hidden_size") or session.get_outputs()[0].shape[-1])
        return cls(session, tokenizer, layout, dim)

    def tokenize(self, texts: list[str]) -> list:
        if self.layout.lower:
            texts = [t.lower() for t in texts]
        return self.fast.encode_batch(list(texts))

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


class _TokenizerView:
    """The two transformers-tokenizer calls callers use (tests name pieces with them)."""

    def __init__(self, fast):
        self._fast = fast

    def tokenize(self, text: str) -> list[str]:
        return self._fast.encode(text, add_special_tokens=False).tokens

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self._fast.id_to_token(int(i)) for i in ids]


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not read {path} ({exc}); reinstall the model or set QA_ENCODER=torch.") from exc
