"""What stacking buys: one stacked run of 20 members vs the same 20 models trained one by one.

In one process, back to back, on the same data and device: the challenge's 20 configs
(weight and neuron pruning × the ten sparsities, seed 0) trained with the iterative schedule
(the original "train with pruning", every member pruned after every epoch), first as 20
separate runs (``run.run_job``), then as one stack (``run.run_jobs``). Prints

- stacked run time / time of the 20 separate runs (whole runs: fit, evaluation, results);
- stacked epoch time / one model's epoch time (``fit_time_s`` per epoch): what one epoch of
  M members costs in epochs of one model (M would mean no gain at all).

With ``--protocol`` on a CUDA device it then times the full seed protocol, 20 members × 100
epochs, as one stacked run (goal ≤ 60 s on one H100). Without CUDA it says so and skips it.

    python benchmarks/bench_train.py                         # CPU, 1 epoch
    python benchmarks/bench_train.py --model lenet5 --limit 2000   # 20 LeNet-5-Caffe members
    python benchmarks/bench_train.py --device cuda --protocol --tf32
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from prunelab.config import CONF_DIR
from prunelab.run import run_job, run_jobs

KS = [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]


def configs(out: Path, epochs: int, device: str, extra: list[str]) -> list[DictConfig]:
    """The 20 challenge configs, iterative schedule, each with its own output folder."""
    cfgs = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for strategy in ("weight", "neuron"):
            for k in KS:
                cfg = compose(
                    config_name="config",
                    overrides=[
                        f"strategy={strategy}", f"sparsity={k}", "seed=0",
                        "schedule=iterative", "schedule.epochs=0",
                        f"schedule.ramp_epochs={epochs}", "trainer=gpu" if device == "cuda"
                        else "trainer=cpu", "dense_cache=false", "save_model=false",
                        "inference_batch_size=null", f"paths.cache_dir={out / 'cache'}",
                        *extra,
                    ],
                )  # fmt: skip
                with open_dict(cfg):
                    cfg.paths.output_dir = str(out / f"{strategy}_{k}")
                cfgs.append(cfg)
    return cfgs


def run_separate(cfgs: list[DictConfig]) -> tuple[float, float]:
    """(wall seconds, mean fit seconds per epoch) of training ``cfgs`` one after another."""
    start = time.perf_counter()
    results = [run_job(cfg) for cfg in cfgs]
    wall = time.perf_counter() - start
    epochs = cfgs[0].schedule.ramp_epochs
    return wall, sum(r["fit_time_s"] for r in results) / len(results) / epochs


def run_stacked(cfgs: list[DictConfig]) -> tuple[float, float]:
    """(wall seconds, fit seconds per epoch) of training ``cfgs`` as one stacked run."""
    start = time.perf_counter()
    results = run_jobs(cfgs)
    wall = time.perf_counter() - start
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    return wall, results[0]["fit_time_s"] / cfgs[0].schedule.ramp_epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per model (default 1)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--limit", type=int, default=None, help="cap each split (data.limit)")
    parser.add_argument("--protocol", action="store_true", help="also 20 × 100 epochs (CUDA)")
    parser.add_argument("--tf32", action="store_true", help="float32_matmul_precision=high")
    parser.add_argument("--model", default="mlp", help="model=… (mlp, lenet5, conv6, yours)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is visible; use --device cpu")
    logging.basicConfig(level=logging.WARNING)
    extra = [f"data.limit={args.limit}"] if args.limit else []
    extra += [f"model={args.model}"] if args.model != "mlp" else []
    extra += ["float32_matmul_precision=high"] if args.tf32 else []

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sep_wall, sep_epoch = run_separate(configs(t / "separate", args.epochs, args.device, extra))
        st_wall, st_epoch = run_stacked(configs(t / "stacked", args.epochs, args.device, extra))
        protocol = None
        if args.protocol and args.device == "cuda":
            cfgs = configs(t / "protocol", 100, args.device, extra)
            protocol, _ = run_stacked(cfgs)

    device = f"CPU, {torch.get_num_threads()} threads"
    if args.device == "cuda":
        device = torch.cuda.get_device_name()
    setup = [args.model, f"{args.epochs} epoch(s)", device]
    setup += ["TF32"] if args.tf32 else []
    setup += [f"data.limit={args.limit}"] if args.limit else []
    print(f"# bench_train: 20 members (weight, neuron × 10 k), iterative, {', '.join(setup)}")
    rows = [
        ("20 separate runs", f"{sep_wall:8.1f} s", ""),
        ("1 stacked run of 20 members", f"{st_wall:8.1f} s", ""),
        ("ratio stacked / separate", f"{st_wall / sep_wall:8.2f}", "< 1: stacking pays"),
        ("epoch time, one model", f"{sep_epoch:8.2f} s", ""),
        ("epoch time, stacked (20 members)", f"{st_epoch:8.2f} s", ""),
        ("ratio stacked epoch / one epoch", f"{st_epoch / sep_epoch:8.2f}", "20 = no gain"),
    ]
    if args.protocol and protocol is None:
        rows.append(("full seed protocol (20 × 100 ep.)", "skipped", "needs --device cuda"))
    elif protocol is not None:
        rows.append(("full seed protocol (20 × 100 ep.)", f"{protocol:8.1f} s", "goal ≤ 60 s H100"))
    for label, value, note in rows:
        print(f"{label:<36}{value:>10}   {note}".rstrip())


if __name__ == "__main__":
    main()
