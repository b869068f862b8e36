import pytest
import torch
from tiny_models import TINY_CONFIGS, tiny_model, tiny_windows
from transformers import AutoConfig, AutoModelForCausalLM

from crepe.config import PruneConfig
from crepe.engine.layerwise import run_layerwise
from crepe.evaluation.perplexity import layerwise_perplexity, perplexity
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.models.adapters import (
    decoder_linears,
    get_adapter,
    supported_model_types,
    weight_view,
)
from crepe.prune.model import prune_model


@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt", "ria", "crepe"])
def test_every_family_prunes_every_linear_to_the_requested_sparsity(model_type, method):
    model = tiny_model(model_type)
    summary = prune_model(model, tiny_windows(), PruneConfig(method=method, sparsity=0.5), progress=False)
    assert len(summary.linears) == len(decoder_linears(model)) > 0
    for name, module in decoder_linears(model).items():
        w = weight_view(module)
        assert (w == 0).sum().item() == pytest.approx(0.5 * w.numel(), abs=w.shape[0])
    assert torch.isfinite(model(tiny_windows()).logits).all()


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "opt"])
def test_nm_pruning_gives_valid_groups_in_every_linear(model_type):
    model = tiny_model(model_type)
    prune_model(model, tiny_windows(), PruneConfig(method="crepe", sparsity=0.5, pattern=Pattern(2, 4)), progress=False)
    assert all(is_valid_nm(weight_view(m), 2, 4) for m in decoder_linears(model).values())


def test_embeddings_and_lm_head_are_never_pruned():
    model = tiny_model("gpt_neox")  # untied head
    head, emb = model.get_output_embeddings().weight.clone(), model.get_input_embeddings().weight.clone()
    prune_model(model, tiny_windows(), PruneConfig(method="wanda", sparsity=0.7), progress=False)
    assert torch.equal(model.get_output_embeddings().weight, head)
    assert torch.equal(model.get_input_embeddings().weight, emb)


@pytest.mark.parametrize("model_type", ["llama", "gemma2", "opt", "gpt2"])
def test_each_layer_sees_the_outputs_of_the_already_pruned_layers(model_type):
    """Statistics the engine hands to layer 1 equal those of a normal forward pass of the model
    whose layer 0 is pruned and layer 1 still dense: propagation and captured kwargs are right."""
    windows = tiny_windows()
    model = tiny_model(model_type)
    seen = {}

    def prune_and_record(index, layer, linears, stats):
        seen[index] = {n: s.sq_sum.clone() for n, s in stats.items()}
        if index == 0:
            for m in linears.values():
                weight_view(m).masked_fill_(weight_view(m).abs() < weight_view(m).abs().median(), 0)
        return index == 0

    run_layerwise(model, windows, {"sq_sum"}, prune_and_record, batch_size=2, progress=False)
    layer1 = get_adapter(model).layers(model)[1]
    expected = {n: torch.zeros_like(v) for n, v in seen[1].items()}
    def accumulate(name):
        def hook(module, inputs, output):
            expected[name] += inputs[0].reshape(-1, inputs[0].shape[-1]).pow(2).sum(0)
        return hook

    hooks = [m.register_forward_hook(accumulate(n)) for n, m in get_adapter(model).linears(layer1).items()]
    with torch.no_grad():
        model(windows)
    for h in hooks:
        h.remove()
    for name in seen[1]:
        torch.testing.assert_close(seen[1][name], expected[name], rtol=1e-4, atol=1e-4)


def _record_shifts_and_prune_layer0(seen: dict, with_weight: bool = False):
    """An engine callback: keep each layer's dense shifts (with the weights they saw) in ``seen`` by
    layer, and prune layer 0 to half by magnitude, so that layer 1's two streams differ."""
    def callback(index, layer, linears, stats):
        seen[index] = {n: (weight_view(linears[n]).clone(), s.dense_shift) if with_weight else s.dense_shift
                       for n, s in stats.items()}
        if index == 0:
            for m in linears.values():
                weight_view(m).masked_fill_(weight_view(m).abs() < weight_view(m).abs().median(), 0)
        return index == 0
    return callback


@pytest.mark.parametrize("model_type,dense_share", [("llama", 1.0), ("opt", 1.0), ("llama", 0.5)])
def test_the_dense_stream_pairs_each_linears_inputs_with_the_dense_models(model_type, dense_share):
    """With the "dense_shift" need, each linear W of layer 1 gets W (X_dense^T X - X^T X): X from the
    model whose layer 0 is pruned, X_dense from the dense model, token by token (whether the engine
    took the shared X^T X_dense or the linear's output difference); layer 0 (nothing pruned yet) none.
    With a dense share of 1/2 only the first of the two batches counts, scaled to every token."""
    windows = tiny_windows()
    model, dense = tiny_model(model_type), tiny_model(model_type)
    seen = {}
    run_layerwise(model, windows, {"dense_shift"}, _record_shifts_and_prune_layer0(seen, with_weight=True),
                  batch_size=2, progress=False, dense_share=dense_share)
    assert all(shift is None for _, shift in seen[0].values())

    def inputs_of_layer1(m):
        got = {}

        def keep(name):
            def hook(module, inputs, output):
                got[name] = inputs[0].reshape(-1, inputs[0].shape[-1])
            return hook

        layer1 = get_adapter(m).layers(m)[1]
        hooks = [lin.register_forward_hook(keep(n)) for n, lin in get_adapter(m).linears(layer1).items()]
        with torch.no_grad():
            m(windows)
        for h in hooks:
            h.remove()
        return got

    pruned_x, dense_x = inputs_of_layer1(model), inputs_of_layer1(dense)
    for name, (weight, shift) in seen[1].items():
        carried = round(len(pruned_x[name]) * dense_share)  # the first batch's tokens at a share of 1/2
        x, x_dense = pruned_x[name][:carried], dense_x[name][:carried]
        expected = weight @ (x_dense.t() @ x - x.t() @ x) / dense_share
        torch.testing.assert_close(shift, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))
        assert float(expected.abs().max()) > 0


def test_a_dense_group_keeps_outputs_while_narrower_than_its_input_then_the_input():
    """The cheaper product decides: outputs [t, out] while their summed width is below the input's,
    then the shared input [t, in] (and the outputs are dropped)."""
    from crepe.engine.statistics import DenseGroup

    x = torch.randn(2, 3, 8)
    group = DenseGroup(x)
    group.add(1, x, torch.randn(2, 3, 3))
    assert not group.shares_cross and set(group.outputs) == {1} and group.dense_input is None
    group.add(2, x, torch.randn(2, 3, 5))
    assert group.shares_cross and not group.outputs
    assert torch.equal(group.dense_input, x.reshape(6, 8))


def test_unknown_architecture_lists_the_supported_ones():
    with pytest.raises(ValueError, match="unsupported architecture 'bloom'.*llama"):
        get_adapter("bloom")
    assert {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "opt", "gpt2", "gpt_neox"} <= set(
        supported_model_types())


def test_nan_weights_are_refused_before_pruning():
    model = tiny_model("llama")
    weight_view(decoder_linears(model)["layers.1.mlp.up_proj"])[0, 0] = float("nan")
    with pytest.raises(ValueError, match="layers.1.mlp.up_proj.*NaN"):
        prune_model(model, tiny_windows(), PruneConfig(method="wanda"), progress=False)


def test_nm_width_mismatch_is_reported_with_the_layer_name():
    model = tiny_model("llama")  # widths 64 and 128: not multiples of 24
    with pytest.raises(ValueError, match="not a multiple of 24"):
        prune_model(model, tiny_windows(), PruneConfig(sparsity=12 / 24, pattern=Pattern(12, 24)), progress=False)


def test_per_layer_sparsity_plan_is_honoured():
    model = tiny_model("llama")
    plan = {"layers.0.mlp.down_proj": 0.25, "layers.1.self_attn.q_proj": 0.75}
    summary = prune_model(model, tiny_windows(), PruneConfig(method="wanda"), layer_sparsity=plan, progress=False)
    assert summary.linears["layers.0.mlp.down_proj"].sparsity == pytest.approx(0.25)
    assert summary.linears["layers.1.self_attn.q_proj"].sparsity == pytest.approx(0.75)
    assert summary.linears["layers.0.mlp.up_proj"].sparsity == pytest.approx(0.5)



@pytest.mark.parametrize("model_type", ["llama", "opt"])
def test_the_dense_stream_in_bfloat16_measures_the_float32_shift_to_bfloat16_precision(model_type):
    """``dense_dtype=bfloat16``: the dense forward under autocast gives each linear of layer 1 the
    float32 run's shift to within bfloat16's precision (and float32 statistics); float32 is the
    float32 path itself, bit for bit."""
    windows = tiny_windows()

    def shifts(dense_dtype):
        model, seen = tiny_model(model_type), {}
        run_layerwise(model, windows, {"dense_shift"}, _record_shifts_and_prune_layer0(seen), batch_size=2,
                      progress=False, dense_dtype=dense_dtype)
        return seen[1]

    full, same, low = shifts(None), shifts(torch.float32), shifts(torch.bfloat16)
    for name, shift in full.items():
        assert torch.equal(same[name], shift)
        assert low[name].dtype == torch.float32
        assert float((low[name] - shift).norm() / shift.norm()) < 0.05
    # q/k/v read the float32 norm of the float32 hidden states; what follows attention moves
    assert any(not torch.equal(low[name], shift) for name, shift in full.items())


def test_a_layer_computing_below_float32_keeps_its_own_dense_arithmetic():
    from crepe.engine.layerwise import _low_dtype

    layer = torch.nn.Linear(4, 4)
    assert _low_dtype(layer, torch.bfloat16) == torch.bfloat16
    assert _low_dtype(layer, torch.float32) is None and _low_dtype(layer, None) is None
    assert _low_dtype(layer.to(torch.float16), torch.bfloat16) is None


@pytest.mark.parametrize("model_type", ["gemma2", "gemma3_text"])
def test_each_layer_runs_with_the_mask_and_rotary_embedding_of_its_own_kind(model_type):
    """Gemma alternates sliding-window and full-attention layers (Gemma 3 also rotates them by different
    bases): the engine must give each layer what the model's own forward gives it, not the first layer's."""
    kinds = ["sliding_attention", "full_attention", "sliding_attention"]  # layer 2's inputs come from layer 1's kind
    config = AutoConfig.for_model(model_type, **dict(TINY_CONFIGS[model_type], sliding_window=8,
                                                     num_hidden_layers=len(kinds), layer_types=kinds))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    windows = tiny_windows()
    assert layerwise_perplexity(model, windows, progress=False) == perplexity(model, windows, progress=False)
    seen = []

    def record(index, layer, linears, stats):
        seen.append(stats["self_attn.q_proj"].sq_sum)
        return False

    run_layerwise(model, windows, {"sq_sum"}, record, batch_size=2, progress=False)
    hidden = model(windows, output_hidden_states=True).hidden_states
    norm = model.model.layers[2].input_layernorm
    assert torch.allclose(seen[2], norm(hidden[2]).pow(2).sum((0, 1)), rtol=1e-4)
