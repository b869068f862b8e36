"""pho.search on a model streamed from disk (--offload disk): the same statistics and trial values as in
memory, and never more than one decoder layer resident."""

import pytest
from safetensors.torch import load_file

from crepe.streaming.store import StreamedLayers
from tests.pho.test_search import load, search_args

CASES = {"e2e": ["--proxy", "e2e", "--e2e-windows", "2"],
         "e2e_seq+sha": ["--proxy", "e2e_seq", "--pattern", "2:4", "--pruner", "sha", "--reduction-factor", "2",
                         "--e2e-windows", "4", "--sampler", "tpe"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_streamed_search_gives_the_in_memory_trial_values_holding_one_layer_at_most(
        case, cli, common_args, tmp_path, monkeypatch):
    resident = []
    original = StreamedLayers.load

    def spy(self, index, layer):
        layers = self.model.model.layers
        resident.append(sum(any(p.device.type != "meta" for p in l.parameters()) for l in layers))
        original(self, index, layer)

    monkeypatch.setattr(StreamedLayers, "load", spy)
    values, caches = {}, {}
    for offload in ("none", "disk"):
        args = [a if a != str(tmp_path / "cache") else str(tmp_path / f"cache-{offload}") for a in common_args]
        extra = ["--no-plots", "--offload", offload, *CASES[case]]
        assert cli("pho.search", search_args(args, tmp_path, name=offload, n=5, extra=extra)) == 0
        trials = load(tmp_path, offload).get_trials()
        values[offload] = [(t.state.name, t.params, t.intermediate_values, t.value) for t in trials]
        caches[offload] = load_file(str(next((tmp_path / f"cache-{offload}").glob("*.safetensors"))))
    assert resident and max(resident) == 0  # the layer being loaded is the only one ever held
    assert caches["none"].keys() == caches["disk"].keys()
    assert all(caches["none"][k].equal(caches["disk"][k]) for k in caches["none"])  # same key, same statistics
    for (state_a, params_a, steps_a, value_a), (state_b, params_b, steps_b, value_b) in zip(*values.values()):
        assert state_a == state_b and params_a == params_b and steps_a.keys() == steps_b.keys()
        assert value_b == pytest.approx(value_a, rel=1e-5, abs=1e-6)
        assert all(steps_b[k] == pytest.approx(steps_a[k], rel=1e-5) for k in steps_a)


def test_streamed_per_linear_proxies_and_climbs_are_refused_in_one_line(cli, common_args, tmp_path):
    extra = ["--no-plots", "--offload", "disk", "--proxy", "recon"]
    assert cli("pho.search", search_args(common_args, tmp_path, extra=extra)) == 2 and not (tmp_path / "pho.db").exists()
    hc = [*common_args, "--storage", f"sqlite:///{tmp_path / 'hc.db'}", "--study-name", "hc", "--offload", "disk",
          "--best-config", str(tmp_path / "hc.json")]
    assert cli("pho.hillclimb", hc) == 2 and not (tmp_path / "hc.db").exists()
