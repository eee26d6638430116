"""What happens to PyTorch on the CPU when two processes share the cores: OpenMP's spinning against passive waiting.

Usage:  .venv/bin/python scripts/benchmarks/oversubscription.py [--side 64] [--batch 4] [--steps 20] [--rows 1,2,3,4,5]

Each run is a training loop of the faithful network (forward, the Deep-STORM loss, backward, an Adam step) on
random patches of side × side high-resolution pixels, in a process of its own that starts after its imports.
It runs alone and as two at once, each with as many threads as the machine has cores (PyTorch's default)
and OpenMP's default wait policy, with ``OMP_WAIT_POLICY=PASSIVE``, and with one thread each. The table
gives the wall and CPU seconds of each process's loop (two at once: the slower one) and the wall time over
that of the first row run.

``make test`` runs two workers on two cores, each with PyTorch's default threads (in the worker and in the
jobs of the workflows it runs), which is the "two at once" case; tests/conftest.py sets the passive policy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time, torch
sys.path.insert(0, {scripts!r})
from dstorm.model.loss import deepstorm_loss, loss_kernel
from dstorm.model.network import DeepSTORMNet
torch.manual_seed(0)
net = DeepSTORMNet()
opt = torch.optim.Adam(net.parameters())
x = torch.randn({batch}, 1, {side}, {side})
y = torch.rand({batch}, 1, {side}, {side})
kernel = loss_kernel()
def step():
    opt.zero_grad()
    deepstorm_loss(net(x), y, kernel).backward()
    opt.step()
step()  # warm-up
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # start together
t, c = time.perf_counter(), time.process_time()
for _ in range({steps}):
    step()
print(json.dumps({{"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "threads": torch.get_num_threads()}}))
"""


def run(n: int, env: dict, args) -> dict:
    """Start ``n`` processes, let them import and warm up, then start their loops at once."""
    code = CHILD.format(scripts=str(Path(__file__).resolve().parents[1]), batch=args.batch, side=args.side, steps=args.steps)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **env}) for _ in range(n)]  # fmt: skip
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"a benchmark process failed (exit {p.wait()})")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.communicate()[0]) for p in procs]
    return max(results, key=lambda r: r["wall"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=64, help="patch side, high-resolution pixels (multiple of 8)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", default="1,2,3,4,5", help="which rows of the table to run (1-based, comma-separated)")
    args = parser.parse_args()
    for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS"):  # the rows set their own (the test suite sets the first)
        os.environ.pop(key, None)
    cases = [
        ("alone", 1, "default", {}),
        ("alone", 1, "PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("two at once", 2, "default", {}),
        ("two at once", 2, "PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("two at once", 2, "default, 1 thread each", {"OMP_NUM_THREADS": "1"}),
    ]
    print(f"{os.cpu_count()} CPUs; {args.steps} training steps of {args.batch} patches of {args.side}² (faithful network)\n")
    print("| processes | OMP wait policy | threads each | wall s (slowest) | CPU s | wall / alone |")
    print("|---|---|---|---|---|---|")
    alone = None
    rows = [cases[int(i) - 1] for i in args.rows.split(",")]
    for label, n, policy, env in rows:
        r = run(n, env, args)
        alone = alone or r["wall"]
        print(f"| {label} | {policy} | {r['threads']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['wall'] / alone:.2f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
