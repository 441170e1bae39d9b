"""Optional cross-encoder reranking (`QA_RERANKER`): off unless a model is named.

A cross-encoder reads the question and a sentence together and scores how well the sentence
answers it, which a bi-encoder cannot. None ships with this project (the embedded package
holds only the bi-encoder), so it is off by default; name any sentence-transformers
`CrossEncoder` id already in the local cache, or a model folder, to turn it on. Nothing is
downloaded: the hub is in offline mode, as for the embedding model.

It reorders only the few best sentences the fused ranking found (`Policy.rerank_top`): each
gets `Policy.rerank_weight * sigmoid(cross-encoder score)` added to its fused score, so among
them the cross-encoder decides, while "not in this document" keeps being decided on the
calibrated fused score from before reranking. Its choice still has to meet the question beyond
the question's names (`tokens.asked_match`), like any first quote.
"""

from __future__ import annotations

import threading

import numpy as np

from .errors import ModelError


class Reranker:
    """A sentence-transformers CrossEncoder, loaded once, on first use; safe across threads."""

    def __init__(self, name: str):
        self.name = name
        self._model = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._model is None:
                self._model = _load(self.name)
        return self._model

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        """Relevance of each text to the question in (0, 1): the model's logit through a sigmoid
        (for a model with several labels, the last label's)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        model = self.load()
        import torch

        with self._lock:
            out = model.predict([(question, t) for t in texts], batch_size=32, show_progress_bar=False,
                                activation_fn=torch.nn.Sigmoid(), convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)[:, -1]


def _load(name: str):
    from .embedding import offline_model_path

    target, _ = offline_model_path(name, "Reranker", "QA_RERANKER / --reranker, or unset it")
    try:
        from sentence_transformers import CrossEncoder
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the CLI or the server log
        return CrossEncoder(target, device="cpu")
    except Exception as exc:  # any load failure becomes one clear message
        raise ModelError(f"Could not load the reranker {name!r}: it must be a sentence-transformers CrossEncoder "
                         "folder, or a hub id already in the local cache (nothing is downloaded). Unset QA_RERANKER "
                         f"to answer without it. ({type(exc).__name__}: {exc})") from exc
