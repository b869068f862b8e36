"""The per-layer sparsity plot is drawn from report JSONs alone."""

import json

import pytest

from crepe.compose.plot import block_means, plot_reports


def test_block_means_average_the_linears_of_each_block_in_order():
    per_layer = {"layers.10.a": 0.5, "layers.2.a": 0.2, "layers.2.b": 0.4, "layers.10.b": 0.7}
    assert block_means(per_layer) == pytest.approx([0.3, 0.6])


def test_plot_is_written_from_reports_and_a_non_report_is_rejected(tmp_path):
    for name, alloc in (("u", "uniform"), ("o", "owl")):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "config": {"method": "ria", "allocation": {"method": alloc}},
            "per_layer_sparsity": {f"layers.{i}.q": 0.6 + 0.01 * i for i in range(4)}}))
    out = plot_reports([tmp_path / "u.json", tmp_path / "o.json"], tmp_path / "fig" / "s.png")
    assert out.is_file() and out.stat().st_size > 1000
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="per_layer_sparsity"):
        plot_reports([tmp_path / "bad.json"], tmp_path / "x.png")
