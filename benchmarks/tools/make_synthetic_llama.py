"""Write a random-weight Llama checkpoint of a published shape, shard by shard, never holding the model.

    python -m benchmarks.tools.make_synthetic_llama --shape llama-2-7b --out /tmp/llama2-7b-shape
    python -m benchmarks.tools.make_synthetic_llama --shape llama-2-70b --out DIR --layers 2   # a 2-layer slice

The tensors get the checkpoint names transformers expects, in bf16, one shard per decoder layer plus
one for the embeddings, final norm and head, with ``model.safetensors.index.json``; the SmolLM2
tokenizer is copied in, and the vocabulary grows to the tokenizer's 49,152 entries where the shape's is
smaller (Llama-2's 32,000), so every token id is valid.
Weights are N(0, 0.02) with a seeded generator, norms are ones: the point is memory and I/O, not
quality. A 7B shape is about 13.5 GB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm

SHAPES = {  # hidden, intermediate, layers, heads, kv heads, vocab, max positions, rope theta
    "llama-2-7b": (4096, 11008, 32, 32, 32, 32000, 4096, 10000.0),
    "llama-2-13b": (5120, 13824, 40, 40, 40, 32000, 4096, 10000.0),
    "llama-2-70b": (8192, 28672, 80, 64, 8, 32000, 4096, 10000.0),
    "llama-3-8b": (4096, 14336, 32, 32, 8, 128256, 8192, 500000.0),
    "llama-0.9b": (2048, 5632, 14, 16, 16, 32000, 2048, 10000.0),  # ~0.9B with the 49k vocabulary
    "tiny": (256, 688, 4, 8, 8, 32000, 2048, 10000.0),
}


def llama_config(shape: str, layers: int | None = None, vocab: int | None = None) -> dict:
    hidden, inter, n_layers, heads, kv, n_vocab, positions, theta = SHAPES[shape]
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
            "intermediate_size": inter, "num_hidden_layers": layers or n_layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "vocab_size": vocab or n_vocab, "max_position_embeddings": positions,
            "rms_norm_eps": 1e-5, "rope_theta": theta, "hidden_act": "silu", "tie_word_embeddings": False,
            "bos_token_id": 1, "eos_token_id": 2, "dtype": "bfloat16"}


def layer_shapes(cfg: dict, i: int) -> dict[str, tuple[int, ...]]:
    h, f = cfg["hidden_size"], cfg["intermediate_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    p = f"model.layers.{i}."
    return {p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
            p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h), p + "mlp.down_proj.weight": (h, f)}


def random_tensors(shapes: dict[str, tuple[int, ...]], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """N(0, 0.02) matrices and all-ones norm vectors in bf16 on the CPU (drawn in float32 row blocks, on
    the generator's device, to bound memory)."""
    out = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            out[name] = torch.ones(shape, dtype=torch.bfloat16)
            continue
        t = torch.empty(shape, dtype=torch.bfloat16)
        for start in range(0, shape[0], 1024):
            block = torch.randn((min(1024, shape[0] - start), shape[1]), generator=gen, device=gen.device)
            t[start:start + 1024] = (block * 0.02).bfloat16().cpu()
        out[name] = t
    return out


def write_checkpoint(out: Path, cfg: dict, seed: int = 0, progress: bool = True, device: str = "cpu") -> int:
    """Write every shard of ``cfg`` into ``out``; returns the bytes of weights written. ``device``: where
    the numbers are drawn (cuda is much faster at 7B; the values differ from the CPU's)."""
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator(device).manual_seed(seed)
    n = cfg["num_hidden_layers"]
    total = n + 1
    weight_map, size = {}, 0
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    resident = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,), "lm_head.weight": (v, h)}
    for number in tqdm(range(1, total + 1), desc="writing shards", disable=not progress):
        shapes = layer_shapes(cfg, number - 1) if number <= n else resident
        tensors = random_tensors(shapes, gen)
        name = f"model-{number:05d}-of-{total:05d}.safetensors"
        save_file(tensors, str(out / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in tensors})
        size += sum(t.numel() * t.element_size() for t in tensors.values())
        del tensors
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": size},
                                                                  "weight_map": weight_map}, indent=2))
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return size


def smollm2_tokenizer():
    """The SmolLM2 tokenizer (from the offline GGUF, via the crepe cache)."""
    from transformers import AutoTokenizer

    from crepe.models.loading import local_folder

    return AutoTokenizer.from_pretrained(local_folder("smollm2-135m"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama-2-7b")
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=None, help="write only this many decoder layers")
    ap.add_argument("--vocab", type=int, default=None, help="vocabulary size (default: the shape's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    if (out / "config.json").exists():
        print(f"{out} already holds a checkpoint; remove it first", file=sys.stderr)
        return 2
    tokenizer = smollm2_tokenizer()
    cfg = llama_config(args.shape, args.layers, args.vocab or max(SHAPES[args.shape][5], len(tokenizer)))
    size = write_checkpoint(out, cfg, args.seed)
    tokenizer.save_pretrained(out)
    print(f"wrote {args.shape} shape ({cfg['num_hidden_layers']} layers, {size / 1e9:.2f} GB bf16) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
