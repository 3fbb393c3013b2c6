"""The trainer's public API on the session's tiny digits pair: run directories, load_run, logs."""

from __future__ import annotations

import json

import pytest
import torch

from csg_interp.training import CSGNet, TrainConfig, load_run


@pytest.mark.parametrize("name", ["csg", "std"])
def test_run_directory_holds_every_file(tiny_digits_pair, name):
    run_dir = tiny_digits_pair[name]
    for file in ("config.json", "manifest.json", "metrics.jsonl", "last.pt", "best.pt"):
        assert (run_dir / file).is_file(), file
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["data"]["classes"] == [str(i) for i in range(10)]
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["config"] == json.loads((run_dir / "config.json").read_text())
    assert 0.0 <= manifest["result"]["test_acc"] <= 1.0


def test_load_run_gives_network_config_history(tiny_digits_pair):
    run = load_run(tiny_digits_pair["csg"])
    assert isinstance(run.net, CSGNet) and not run.net.training
    assert next(run.net.parameters()).device.type == "cpu"
    assert run.config.gate and run.config.model == "smallcnn"
    assert [row["kind"] for row in run.history] == ["std", "std", "csg"]
    assert run.epochs_done == 3 and run.checkpoint == "last"
    std = load_run(tiny_digits_pair["std"])
    assert std.net.gate is None and not std.config.gate
    assert {row["kind"] for row in std.history} == {"std"}


def test_csg_epoch_trains_the_gate_std_epochs_do_not(tiny_digits_pair):
    run = load_run(tiny_digits_pair["csg"])
    densities = [row["gate_density"] for row in run.history]
    assert densities[0] == densities[1] == pytest.approx(0.5)  # init, untouched by STD epochs
    assert densities[2] < 0.5  # one CSG epoch made the gate sparser
    assert float(run.net.gate.density().detach()) == pytest.approx(densities[2])
    gate = run.net.gate.weight.detach()
    assert float(gate.min()) >= 0.0 and float(gate.max()) <= 1.0
    assert torch.allclose(gate.amax(dim=0), torch.ones(gate.shape[1]))  # max projection ran


def test_history_logs_losses_per_path_and_learning_rates(tiny_digits_pair):
    run = load_run(tiny_digits_pair["csg"])
    std_row, csg_row = run.history[0], run.history[2]
    assert std_row["ce_csg"] is None and std_row["hinge"] is None
    assert csg_row["ce_csg"] > 0 and csg_row["hinge"] >= 0
    assert csg_row["loss"] == pytest.approx(csg_row["ce_csg"] + csg_row["hinge"], rel=1e-6)
    assert csg_row["lr_gate"] == pytest.approx(0.1) and csg_row["lr_csg"] == pytest.approx(1e-3)
    assert 0.0 <= csg_row["val_acc"] <= 1.0


def test_load_data_returns_the_same_split(tiny_digits_pair):
    run = load_run(tiny_digits_pair["csg"])
    bundle = run.load_data()
    assert bundle.name == "digits"
    assert len(bundle.train) == run.manifest["data"]["sizes"]["train"]
    again = run.load_data()
    assert torch.equal(bundle.test.images, again.test.images)


def test_best_checkpoint_has_the_best_validation_accuracy(tiny_digits_pair):
    last = load_run(tiny_digits_pair["csg"], checkpoint="last")
    best = load_run(tiny_digits_pair["csg"], checkpoint="best")
    accs = [row["val_acc"] for row in last.history]
    best_epoch = max(range(len(accs)), key=lambda e: (accs[e], -e))
    assert best.epochs_done == best_epoch + 1


def test_std_and_csg_twins_start_from_the_same_weights():
    from csg_interp.training import build_net

    meta = {"num_classes": 10, "in_channels": 1, "mean": [0.5], "std": [0.25]}
    nets = []
    for gate in (True, False):
        torch.manual_seed(7)
        nets.append(build_net(TrainConfig(model="smallcnn", gate=gate), meta))
    csg_state, std_state = nets[0].state_dict(), nets[1].state_dict()
    assert set(csg_state) - set(std_state) == {"gate.weight"}
    assert all(torch.equal(std_state[k], csg_state[k]) for k in std_state)


def test_load_run_errors(tmp_path, tiny_digits_pair):
    with pytest.raises(FileNotFoundError, match="run directory .* not found"):
        load_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="checkpoint must be 'last' or 'best'"):
        load_run(tiny_digits_pair["csg"], checkpoint="final")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text(json.dumps({"dataset": "digits"}))
    with pytest.raises(FileNotFoundError, match="has not finished an epoch"):
        load_run(tmp_path / "half")


def test_feature_stages_split_small_resnets_at_their_stages():
    from csg_interp.models import build_backbone
    from csg_interp.training.runs import feature_stages, scope_parameters

    net = CSGNet.from_backbone(build_backbone("resnet8", 10, 1), normalize=([0.5], [0.25]))
    stages = feature_stages(net)
    assert len(stages) == 4  # stem (conv1, bn1, relu), layer1, layer2, layer3
    layer3 = list(net.features.body.layer3.parameters())
    last = scope_parameters(net, 1)
    assert len(last) == len(layer3) + 2  # + head weight and bias
    assert all(any(p is q for q in last) for p in layer3)
    assert not any(p is net.gate.weight for p in scope_parameters(net, "all"))
    with pytest.raises(ValueError, match="last 5 stages but the features have 4"):
        scope_parameters(net, 5)


def test_export_writes_the_plain_network_and_load_network_rejects_other_files(tmp_path, tiny_digits_pair):
    from csg_interp.training import CheckpointError, export_network, load_network

    run = load_run(tiny_digits_pair["csg"])
    path = export_network(run, tmp_path / "model.pt")
    plain = load_network(path)
    images = torch.rand(5, 1, 8, 8)
    assert torch.equal(plain(images), run.net(images))
    assert not any("gate" in name for name, _ in plain.named_parameters())
    with pytest.raises(CheckpointError, match="not a network exported by csg-interp export"):
        load_network(tiny_digits_pair["csg"] / "last.pt")
