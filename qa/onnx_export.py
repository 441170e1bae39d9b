"""The embedded model exported to ONNX, once per machine, cached and keyed by its checksum.

`exported(model_dir)` is what the ONNX encoder calls: the path of `model.onnx` for that model
folder, exporting it first when it is missing (torch is imported only then). The export is
the model's transformer only (input ids + attention mask -> one vector per word piece); the
pooling and normalising the sentence-transformers modules describe are done in numpy by
`qa.onnx_encoder`, so the same file also gives the word pieces.

Where it goes: `$XDG_CACHE_HOME/qa/onnx` (default `~/.cache/qa/onnx`), one folder per model
checksum and export format, e.g. `all-MiniLM-L6-v2-3f0c9d2a1b4e5f67-e1/model.onnx`. A
different model file (another checksum) gets its own folder; nothing is overwritten in
place. Files are written to a temporary name and renamed, so a reader never sees half a
model, and two processes exporting at once both end with the same complete file.

Hashing the 90 MB weights costs ~0.2 s, too much for every `qa ask`, so the checksum is
remembered per (path, size, mtime) in `checksums.json` beside the exports.

    python -m qa.embedding --export      # at setup (the Makefile runs it); prints the path
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

#: bump when the exported graph changes (inputs, outputs, opset): old exports are then ignored
EXPORT_FORMAT = 1
#: ONNX opset of the export; 17 has LayerNormalization as one op, which onnxruntime runs fused
OPSET = 17
#: weights file the checksum is taken of (sentence-transformers folders hold one of these)
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
#: an export is published only if its vectors match torch's this closely on a probe text
PROBE = "Che Guevara visited Pyongyang in 1960; Neufmarché café, naïve."
PROBE_MIN_COSINE = 0.9999

_LOCK = threading.Lock()


def cache_root() -> Path:
    """Folder holding every export: $XDG_CACHE_HOME/qa/onnx, or ~/.cache/qa/onnx."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qa" / "onnx"


def weights_file(model_dir: Path) -> Path:
    for name in WEIGHTS:
        if (model_dir / name).is_file():
            return model_dir / name
    raise ModelError(f"No weights ({' or '.join(WEIGHTS)}) in the model folder {model_dir}. "
                     "Reinstall the project (pip install -e .) or set QA_ENCODER=torch.")


def checksum(path: Path, root: Path | None = None) -> str:
    """sha256 of a file, remembered in root/checksums.json per (path, size, mtime)."""
    root = root or cache_root()
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_path = root / "checksums.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    from .store import sha256_file

    memo[key] = sha256_file(path)
    try:
        _write_atomic(memo_path, json.dumps(memo, indent=1).encode("utf-8"))
    except OSError:  # a read-only cache only costs the hash next time
        pass
    return memo[key]


def export_dir(model_dir: Path, root: Path | None = None) -> Path:
    """The folder this model's export lives in (whether or not it exists yet)."""
    digest = checksum(weights_file(model_dir), root)
    return (root or cache_root()) / f"{_label(model_dir)}-{digest[:16]}-e{EXPORT_FORMAT}"


def exported(model_dir: str | Path, root: Path | None = None) -> Path:
    """Path of the model's ONNX file, exporting it first if this machine has none yet."""
    model_dir = Path(model_dir)
    target = export_dir(model_dir, root) / "model.onnx"
    if target.is_file():
        return target
    with _LOCK:  # one export per process; other processes race harmlessly (atomic rename)
        if not target.is_file():
            log.warning("exporting the embedding model to ONNX once (about 10 s): %s", target)
            try:
                export(model_dir, target)
            except OSError as exc:
                raise ModelError(f"Could not write the ONNX export of the embedding model to {target.parent} "
                                 f"({exc.strerror or exc}). Make {cache_root()} writable (or set XDG_CACHE_HOME), "
                                 "or set QA_ENCODER=torch.") from exc
    return target


@dataclass(frozen=True)
class Quantization:
    """One way of making an int8 model from the fp32 export (onnxruntime.quantization).

    method "dynamic": `quantize_dynamic` (int8 weights, activations quantized per call, integer
    matrix products) with `op_types` (None: every op it supports, the word-embedding Gather
    included), `per_channel`, `reduce_range` (7-bit weights) and `exclude` (node names holding
    any of these strings stay fp32). method "nbits": `MatMulNBitsQuantizer` weight-only int8
    (`block_size` weights share a scale and zero point; `accuracy_level` 0: dequantized and
    multiplied in fp32, 4: activations int8 too)."""

    name: str
    method: str = "dynamic"
    op_types: tuple[str, ...] | None = None
    per_channel: bool = False
    reduce_range: bool = False
    exclude: tuple[str, ...] = ()
    block_size: int = 32
    accuracy_level: int = 0
    symmetric: bool = True


#: the int8 variants `python -m bench.int8` measures; each is its own file beside model.onnx
#: (model-<name>.onnx), made once per machine from the fp32 export when measured. None is used
#: when answering: each moved some development set's figures by more than 0.005, questions only
#: or documents too (docs/scaling.md, "fp32, not int8")
QUANTIZATIONS = {q.name: q for q in (
    Quantization("int8"),  # the first one measured (issue 13): per-tensor, every op
    Quantization("int8-pc", per_channel=True),
    Quantization("int8-pc-rr", per_channel=True, reduce_range=True),
    Quantization("int8-mm", op_types=("MatMul",)),
    Quantization("int8-mm-pc", op_types=("MatMul",), per_channel=True),
    Quantization("int8-mm-pc-rr", op_types=("MatMul",), per_channel=True, reduce_range=True),
    Quantization("int8-mm-pc-noattn", op_types=("MatMul",), per_channel=True,
                 exclude=("/attention/self/",)),
    Quantization("int8-mm-pc-nolast", op_types=("MatMul",), per_channel=True, exclude=("/layer.5/",)),
    Quantization("int8-mm-pc-noffn2", op_types=("MatMul",), per_channel=True,
                 exclude=tuple(f"layer.{i}/output/dense/" for i in range(6))),
    Quantization("int8-w32", method="nbits", block_size=32),
    Quantization("int8-w16-a4", method="nbits", block_size=16, accuracy_level=4),
    Quantization("int8-w32-a4", method="nbits", block_size=32, accuracy_level=4),
    Quantization("int8-w32-a4-asym", method="nbits", block_size=32, accuracy_level=4, symmetric=False),
    Quantization("int8-w32-a4-nolast", method="nbits", block_size=32, accuracy_level=4, exclude=("/layer.5/",)),
    Quantization("int8-w32-a4-noffn2", method="nbits", block_size=32, accuracy_level=4,
                 exclude=tuple(f"layer.{i}/output/dense/" for i in range(6))),
    Quantization("int8-w64-a4", method="nbits", block_size=64, accuracy_level=4),
    Quantization("int8-w128-a4", method="nbits", block_size=128, accuracy_level=4),
)}


def quantized(model_dir: str | Path, root: Path | None = None, variant: str = "int8") -> Path:
    """Path of an int8 quantization of the export (`QUANTIZATIONS[variant]`), made from it
    when missing, written to a temporary name and renamed like the export itself. Measuring
    only (bench/int8.py): answering runs the fp32 export."""
    q = QUANTIZATIONS[variant]
    source = exported(model_dir, root)
    target = source.with_name(f"model-{q.name}.onnx")
    if target.is_file():
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".model-{q.name}-", suffix=".onnx.tmp", dir=target.parent)
    os.close(fd)
    try:
        quantize(q, source, Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"Could not write the int8 model {target} ({exc.strerror or exc}). Make "
                         f"{cache_root()} writable (or set XDG_CACHE_HOME), or set QA_ENCODER=torch.") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def quantize(q: Quantization, source: Path, target: Path) -> None:
    """Write `q` of the fp32 model at `source` to `target`."""
    import onnx

    names = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node]
    exclude = [n for n in names if any(part in n for part in q.exclude)] or None
    if q.method == "nbits":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=8, block_size=q.block_size,
                                         is_symmetric=q.symmetric, accuracy_level=q.accuracy_level,
                                         op_types_to_quantize=("MatMul",), nodes_to_exclude=exclude)
        quantizer.process()
        onnx.save(quantizer.model.model, str(target))
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=q.per_channel,
                     reduce_range=q.reduce_range, op_types_to_quantize=list(q.op_types) if q.op_types else None,
                     nodes_to_exclude=exclude)


def export(model_dir: Path, target: Path) -> None:
    """torch.onnx.export of the model's transformer; checked against torch, then renamed into place."""
    from .embedding import offline_model_path

    offline_model_path(str(model_dir), "Model", "QA_MODEL")  # hub offline, quiet, before transformers loads
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    class TokenEmbeddings(torch.nn.Module):
        """input_ids, attention_mask -> last hidden state (what sentence-transformers pools)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    # a padded batch of two, so the traced graph is the general one (a mask with zeros)
    sample = tokenizer([PROBE, "a"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"])
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".onnx.tmp", dir=target.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():  # the tracer's warnings are about code paths not taken
            warnings.simplefilter("ignore")
            # the reference first: exporting leaves the torch model giving other vectors
            want = TokenEmbeddings(model)(*args).numpy()
            torch.onnx.export(TokenEmbeddings(model), args, tmp, input_names=["input_ids", "attention_mask"],
                              output_names=["token_embeddings"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "token_embeddings": {0: "batch", 1: "tokens"}})
        got = _run_onnx(tmp, {"input_ids": args[0].numpy(), "attention_mask": args[1].numpy()})
        mask = args[1].numpy().astype(bool)
        a, b = want[mask], got[mask]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        if float(cos.min()) < PROBE_MIN_COSINE:
            raise ModelError(f"The ONNX export of {model_dir} does not reproduce the model (cosine "
                             f"{float(cos.min()):.6f} on a probe text); set QA_ENCODER=torch.")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _run_onnx(path: str, feeds: dict):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.astype("int64") for k, v in feeds.items()})[0]


def _label(model_dir: Path) -> str:
    """A readable name for the export folder: the model's name where the folder says it."""
    name = model_dir.name
    if name == "model" and model_dir.parent.name.startswith("gt_"):  # the embedded package's folder
        return "all-MiniLM-L6-v2"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + "-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
