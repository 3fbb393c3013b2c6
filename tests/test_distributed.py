"""DDP on CPU: 2 processes with gloo on digits.

* equal (tolerance below) to one process that accumulates the same two half-batches per step;
* the gate (and every parameter) is identical on both ranks, bit for bit;
* only rank 0 writes; a run interrupted after epoch 1 and resumed equals the uninterrupted run.

Parameters are compared, not BatchNorm running statistics: in DDP each rank's running statistics
follow its own shard and DDP keeps rank 0's, while the one-process accumulation updates them with
both halves. Training-mode forward passes use batch statistics, so parameters do not depend on
them.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

from csg_interp.data import load_dataset
from csg_interp.training import Trainer, TrainConfig
from csg_interp.training.checkpoint import load_checkpoint
from csg_interp.training.distributed import (
    DistributedTrainer,
    choose_backend,
    init_distributed,
    is_torchrun,
)

pytestmark = pytest.mark.slow  # two spawned processes: ~45 s on 2 shared cores, mostly imports

WORLD = 2
BATCH = 16  # per rank; the accumulating process takes 2 × 16 per step
# float32 all-reduce (g0 + g1) / 2 vs accumulated (g0 + g1) / 2 after 3 epochs of Adam:
ATOL, RTOL = 1e-5, 1e-4


def _config(out: Path) -> TrainConfig:
    # 3 epochs of the scratch preset: STD, STD, CSG (the last epoch is a CSG epoch).
    return TrainConfig(
        dataset="digits", model="smallcnn", widths=[8, 8, 16], epochs=3, batch_size=BATCH,
        augment="none", seed=5, out=str(out), device="cpu",
    ).resolved()  # fmt: skip


def _bundle():
    bundle = load_dataset("digits")
    bundle.train = bundle.train.subset(range(96))  # 96 training images: 3 steps per rank
    return bundle


class _Crash(RuntimeError):
    pass


class _CrashAfterFirstEpoch(DistributedTrainer):
    """Every rank stops at the same point: after epoch 1's checkpoint and barrier."""

    def barrier(self) -> None:
        super().barrier()
        if self.epochs_done == 1:
            raise _Crash("simulated crash after epoch 1")


def _worker(rank: int, root: str, port: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    root_path = Path(root)
    context = init_distributed("cpu")
    bundle = _bundle()
    trainer = DistributedTrainer(_config(root_path / "ddp"), context=context, bundle=bundle, progress=False)
    trainer.fit()
    torch.save({k: v.detach().clone() for k, v in trainer.net.named_parameters()},
               root_path / f"rank{rank}.pt")
    try:
        _CrashAfterFirstEpoch(_config(root_path / "resumed"), context=context, bundle=bundle,
                              progress=False).fit()
    except _Crash:
        pass
    DistributedTrainer(_config(root_path / "resumed"), context=context, bundle=bundle,
                       progress=False).fit(resume=True)
    torch.distributed.destroy_process_group()


class _HalfBatchAccumulator(Trainer):
    """One process, each step = the two ranks' half-batches, gradients accumulated and averaged."""

    def _steps_per_epoch(self) -> int:
        return len(self._batches(0))  # the per-step learning-rate schedule counts these steps

    def _batches(self, epoch: int) -> list[torch.Tensor]:
        shards = []
        for rank in range(WORLD):
            sampler = DistributedSampler(self.bundle.train, num_replicas=WORLD, rank=rank,
                                         shuffle=True, seed=self.config.seed)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        batches = []
        for start in range(0, len(shards[0]), BATCH):
            halves = [shard[start : start + BATCH] for shard in shards]
            if len(halves[0]) >= 2:
                batches.append(torch.tensor(halves[0] + halves[1]))
        return batches

    def train_step(self, kind, images, labels):
        half = images.shape[0] // 2
        # every optimiser this step uses (the path's and, with SGD, the gate's own Adam)
        optimizers = self._optimizers_of(kind)
        gate, net = self.net.gate, self.net
        real_steps = [optimizer.step for optimizer in optimizers]
        averaged = {"done": False}

        def averaged_step(real_step):
            def step(*args, **kwargs):
                if not averaged["done"]:  # average the summed gradients once, before any step
                    for p in net.parameters():
                        if p.grad is not None:
                            p.grad.div_(WORLD)
                    averaged["done"] = True
                return real_step(*args, **kwargs)

            return step

        try:  # first half: backward only; second half: no zeroing, averaged step, projection
            for optimizer in optimizers:
                optimizer.step = lambda *a, **k: None
            gate.project_ = lambda: 0
            super().train_step(kind, images[:half], labels[:half])
            net.zero_grad = lambda *a, **k: None
            for optimizer, real_step in zip(optimizers, real_steps):
                optimizer.step = averaged_step(real_step)
            del gate.project_
            return super().train_step(kind, images[half:], labels[half:])
        finally:
            for optimizer in optimizers:
                vars(optimizer).pop("step", None)
            vars(net).pop("zero_grad", None)
            vars(gate).pop("project_", None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(root), _free_port()), nprocs=WORLD, join=True)
    return root


def test_ddp_equals_one_process_accumulating_the_two_half_batches(ddp_runs: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _HalfBatchAccumulator(_config(ddp_runs / "single"), bundle=_bundle(), progress=False)
        single.fit()
    finally:
        torch.set_num_threads(threads)
    ddp = load_checkpoint(ddp_runs / "ddp" / "last.pt")["model"]
    mine = single.net.state_dict()
    params = [name for name, _ in single.net.named_parameters()]
    assert "gate.weight" in params
    for name in params:
        torch.testing.assert_close(ddp[name], mine[name], atol=ATOL, rtol=RTOL, msg=name)
    # The comparison is not vacuous: the CSG epoch moved the gate away from all-pass.
    assert mine["gate.weight"].min() < 0.99


def test_gate_and_parameters_identical_on_every_rank(ddp_runs: Path) -> None:
    rank0, rank1 = (torch.load(ddp_runs / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name


def test_only_rank_zero_writes_and_logs_every_rank(ddp_runs: Path) -> None:
    run = ddp_runs / "ddp"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert [row["kind"] for row in rows] == ["std", "std", "csg"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == WORLD and manifest["status"] == "finished"
    # Each rank takes ceil(96 / 2) / 16 = 3 steps per epoch.
    assert rows[0]["steps"] == 3
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == [
        "best.pt", "config.json", "last.pt", "manifest.json", "metrics.jsonl"]


def test_resumed_ddp_run_equals_the_uninterrupted_one(ddp_runs: Path) -> None:
    straight = load_checkpoint(ddp_runs / "ddp" / "last.pt")
    resumed = load_checkpoint(ddp_runs / "resumed" / "last.pt")
    assert resumed["epochs_done"] == 3
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    rows = (ddp_runs / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3


def test_environment_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_torchrun({})
    assert not is_torchrun({"RANK": "0", "WORLD_SIZE": "1"})
    assert is_torchrun({"RANK": "1", "WORLD_SIZE": "2"})
    assert choose_backend("cpu") == ("gloo", "cpu")
    if not torch.cuda.is_available():
        assert choose_backend("auto") == ("gloo", "cpu")
        with pytest.raises(ValueError, match="CUDA is not available; use --device cpu"):
            choose_backend("cuda")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="not started by torchrun"):
        init_distributed("cpu")
    with pytest.raises(ValueError, match="needs an initialised process group"):
        DistributedTrainer(_config(Path("unused")))


def test_torchrun_cli_end_to_end(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "cli"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "csg_interp", "train", "--dataset", "digits", "--model", "smallcnn",
        "--widths", "8", "8", "16", "--epochs", "3", "--batch-size", "64", "--device", "cpu",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("CSG smallcnn on digits: 3 epochs") == 1  # printed by rank 0 only
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["status"] == "finished"
    # ceil(1237 / 2) = 619 samples per rank, batches of 64: 10 steps per epoch on each rank.
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["steps"] for row in rows] == [10, 10, 10]
