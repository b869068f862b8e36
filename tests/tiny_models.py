"""Tiny randomly initialised causal LMs built from configs, one per supported family."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM

VOCAB = 128
# a subprocess's hang guard only: tests bound their work (tiny models, few windows), never wall time, so
# this cannot trip on a busy machine; it only stops a process that hangs forever
HANG_GUARD_S = 6 * 3600
FAST_PRUNE_ARGS = ["--nsamples", "4", "--seqlen", "32", "--eval-seqlen", "32", "--max-eval-windows", "4"]
_COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
TINY_CONFIGS: dict[str, dict] = {
    "llama": _COMMON,
    "mistral": _COMMON,
    "qwen2": _COMMON,
    "qwen3": dict(_COMMON, head_dim=16),
    "gemma": dict(_COMMON, head_dim=16),
    "gemma2": dict(_COMMON, head_dim=16),
    "gemma3_text": dict(_COMMON, head_dim=16),
    "opt": dict(vocab_size=VOCAB, hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=256, word_embed_proj_dim=64),
    "gpt2": dict(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=256),
    "gpt_neox": dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=256),
    # mixture of experts: 4 routed experts, 2 per token (fused 3D expert tensors in transformers 5)
    "mixtral": dict(_COMMON, intermediate_size=64, num_local_experts=4, num_experts_per_tok=2),
    "qwen2_moe": dict(_COMMON, moe_intermediate_size=32, shared_expert_intermediate_size=64, num_experts=4,
                      num_experts_per_tok=2),
    "qwen3_moe": dict(_COMMON, head_dim=16, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2),
}
MOE_FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe")


def tiny_model(model_type: str = "llama", seed: int = 0) -> torch.nn.Module:
    """A 2-layer random model of ``model_type`` in float32, eval mode."""
    config = AutoConfig.for_model(model_type, **TINY_CONFIGS[model_type])
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def tiny_windows(n: int = 4, seq: int = 32, seed: int = 0) -> torch.Tensor:
    """Random token windows [n, seq] from an explicit generator."""
    return torch.randint(0, VOCAB, (n, seq), generator=torch.Generator().manual_seed(seed))


SAMPLE_TEXT = " ".join(
    "the quick brown fox jumps over the lazy dog while a small model learns to predict the next token".split() * 200
)


def tiny_tokenizer():
    """A byte-level BPE tokenizer with VOCAB entries, trained in memory on SAMPLE_TEXT (deterministic:
    the byte alphabet is a set, so its subset is taken in sorted order)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=sorted(pre_tokenizers.ByteLevel.alphabet())[:100], show_progress=False)
    tok.train_from_iterator([SAMPLE_TEXT], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def save_tiny_folder(path, model_type: str = "llama", seed: int = 0):
    """Save a tiny model + tokenizer as a HF folder at ``path``; returns the path."""
    model = tiny_model(model_type, seed)
    model.save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path
