"""Gate-only training and the MI-derived gate on a trained STD ResNet-8 (digits): the numbers in
docs/training-at-scale.md. Run: .venv/bin/python experiments/gate_only_digits.py (about a minute,
1 thread); writes /tmp/gateonly/result.json and prints it."""
import json, shutil, time
from pathlib import Path

import torch
torch.set_num_threads(1)
from threadpoolctl import threadpool_limits
from csg_interp.training import TrainConfig, fit
from csg_interp.training.pretrained import fit_gate_only
from csg_interp.metrics import extract_outputs, mutual_information_matrix, mi_score, gate_mi_agreement, gate_from_mi, accuracy
Path("/tmp/gateonly").mkdir(exist_ok=True)
shutil.rmtree("/tmp/gateonly/std", ignore_errors=True)
out = {}
t = time.time()
run = fit(TrainConfig(dataset="digits", model="resnet8", epochs=12, gate=False, out="/tmp/gateonly/std", device="cpu", seed=0).resolved(), progress=False)
out["std_train_s"] = time.time() - t
net = run.net
bundle = run.load_data()
test = extract_outputs(net, bundle.test, progress=False)
val = extract_outputs(net, bundle.val, progress=False)
out["std_test_acc"] = accuracy(test.logits, test.labels)
with threadpool_limits(1):
    M_test = mutual_information_matrix(test.features, test.labels, 10, n_jobs=1)
    M_val = mutual_information_matrix(val.features, val.labels, 10, n_jobs=1)
out["std_mis_test"] = mi_score(M_test)
t = time.time()
hist = fit_gate_only(net, bundle.train, epochs=30, lr=1e-2, tau=0.1, lam=1e-3, batch_size=128)
out["gate_only_s"] = time.time() - t
out["gate_only_density"] = hist[-1]["density"]
out["gate_only_first_loss"] = hist[0]["loss"]; out["gate_only_last_loss"] = hist[-1]["loss"]
test2 = extract_outputs(net, bundle.test, progress=False)
out["std_acc_after_gate_only"] = accuracy(test2.logits, test2.labels)
out["agreement_gate_only_vs_test_MI"] = gate_mi_agreement(net.gate.weight.detach(), M_test)
G_mi = gate_from_mi(M_val)
out["mi_gate_density"] = float(G_mi.mean())
out["agreement_mi_gate_val_vs_test_MI"] = gate_mi_agreement(G_mi, M_test)
out["agreement_gate_only_vs_mi_gate"] = float((net.gate.weight.detach().argmax(0) == G_mi.argmax(0)).float().mean())
out["chance_agreement"] = 0.1
json.dump(out, open("/tmp/gateonly/result.json", "w"), indent=1)
print(json.dumps(out, indent=1))
