"""Token windows for calibration and evaluation.

Evaluation (the papers' protocol): tokenise the joined text once, cut it into non-overlapping
windows of ``seqlen`` tokens, drop the remainder. Calibration: ``n`` windows of ``seqlen`` tokens
at uniformly random offsets drawn from an explicit, seeded generator.
With ``bos_per_window`` each window is ``seqlen - 1`` text tokens after the BOS token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WindowSpec:
    """How windows were cut: recorded next to every perplexity."""

    dataset: str
    split: str
    seqlen: int
    windows: int
    tokens: int
    bos_per_window: bool

    def describe(self) -> str:
        return (f"dataset={self.dataset} split={self.split} seqlen={self.seqlen} windows={self.windows} "
                f"tokens={self.tokens} bos_per_window={self.bos_per_window}")


def tokenize(tokenizer, text: str) -> torch.Tensor:
    """Token ids of the whole text, tokenised once: [T] int64."""
    if not text.strip():
        raise ValueError("the dataset text is empty")
    ids = tokenizer(text, return_attention_mask=False, verbose=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def _with_bos(windows: torch.Tensor, bos_id: int | None) -> torch.Tensor:
    if bos_id is None:
        raise ValueError("bos_per_window needs a tokenizer with a BOS token")
    return torch.cat([torch.full((windows.shape[0], 1), bos_id, dtype=windows.dtype), windows], dim=1)


def eval_windows(tokens: torch.Tensor, seqlen: int, max_windows: int | None = None,
                 bos_id: int | None = None, bos_per_window: bool = False) -> torch.Tensor:
    """Non-overlapping windows [w, seqlen]; the first ``max_windows`` if given."""
    if seqlen < 2:
        raise ValueError(f"seqlen must be >= 2, got {seqlen}")
    body = seqlen - 1 if bos_per_window else seqlen
    count = tokens.numel() // body
    if count == 0:
        raise ValueError(f"the text has {tokens.numel()} tokens: too short for one window of {seqlen}")
    if max_windows is not None:
        if max_windows < 1:
            raise ValueError(f"max windows must be >= 1, got {max_windows}")
        count = min(count, max_windows)
    windows = tokens[: count * body].view(count, body)
    return _with_bos(windows, bos_id) if bos_per_window else windows


def calibration_windows(tokens: torch.Tensor, nsamples: int, seqlen: int, seed: int,
                        bos_id: int | None = None, bos_per_window: bool = False) -> torch.Tensor:
    """``nsamples`` windows [n, seqlen] at random offsets from ``torch.Generator().manual_seed(seed)``.

    Raises ValueError when the text holds fewer than ``nsamples * seqlen`` tokens (the windows
    would mostly repeat each other).
    """
    if nsamples < 1 or seqlen < 2:
        raise ValueError(f"need nsamples >= 1 and seqlen >= 2, got {nsamples} and {seqlen}")
    body = seqlen - 1 if bos_per_window else seqlen
    if tokens.numel() < nsamples * body:
        raise ValueError(
            f"too little calibration data: {tokens.numel()} tokens for {nsamples} windows of {seqlen}; "
            "lower --nsamples/--seqlen or use a larger --calib-dataset"
        )
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, tokens.numel() - body + 1, (nsamples,), generator=generator)
    windows = torch.stack([tokens[s : s + body] for s in starts.tolist()])
    return _with_bos(windows, bos_id) if bos_per_window else windows
