"""Can the photonic network represent the PDE's solution at all? A supervised fit, no PDE.

    python benchmarks/bench_pinn_fit.py [--case burgers_fo_odd] [--steps 2000] [--points 1000]
                                        [--lr 0.03] [--wide] [--seed 0]

A capacity control for docs/pinn.md#burgers-where-the-error-comes-from. It takes the chip,
network, task options (input gain, symmetry, Fourier features) and initial phases of a
``bench_pinn.py`` case, and trains the phases first order (autograd through the chip's
straight-through model, ``torch.optim.Adam`` with a cosine schedule) on the squared error of
u = pde.transform(x, NN(x)) against the reference solution at ``--points`` points per step,
drawn from a fixed pool of 20 000 uniform points with their reference values. No residual, no
derivative estimator: if this fit cannot reach an error, no PINN loss on this network will.
``--wide`` swaps in ``bench_pinn.BURGERS_WIDE`` (4.5× the phases). Prints the batch loss and
the task's relative L2 on its test points five times per run.
"""

from __future__ import annotations

import argparse
import time

import torch

import bench_pinn  # the cases, their networks and chips (benchmarks/ is the script's folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="burgers_fo_odd", help="a bench_pinn.py case (its network, chip and task options)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--points", type=int, default=1000, help="points per step")
    ap.add_argument("--lr", type=float, default=0.03, help="Adam learning rate (cosine over the run)")
    ap.add_argument("--wide", action="store_true", help="the 4.5x wider BURGERS_WIDE network")
    ap.add_argument("--test-points", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.case not in bench_pinn.CASES + bench_pinn.OPT_IN_CASES:
        ap.error(f"--case: {args.case!r} is not a bench_pinn.py case")
    if args.steps < 5 or args.points < 1 or not args.lr > 0:
        ap.error("--steps >= 5, --points >= 1 and --lr > 0 needed")
    torch.set_num_threads(1)
    cfg = bench_pinn.case_config(args.case, bench_pinn.MODES["cpu"])
    cfg.update(test_points=args.test_points, residual_points=min(cfg["residual_points"], args.test_points))
    if args.wide:
        cfg["spec"] = bench_pinn.BURGERS_WIDE
    exp = bench_pinn.experiment(cfg, seed=args.seed)
    task, chip = exp.task, exp.chip
    gen = torch.Generator().manual_seed(args.seed)
    pool = task.pde.sample_interior(20_000, gen)
    ref = task.pde.reference(pool)
    params = exp.params.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([params], lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    print(f"# {args.case}{' (wide)' if args.wide else ''}: {exp.spec.name}, {chip.num_phases} phases, supervised fit "
          f"of u to the reference, {args.points} points per step, Adam lr {args.lr:g} cosine, seed {args.seed}")
    print("  step   batch MSE   rel L2    CPU s")
    t0 = time.process_time()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, pool.shape[0], (args.points,), generator=gen)
        u = task.pde.transform(pool[idx], task.model(chip, params[None], differentiable=True)(pool[idx])[0])
        loss = ((u - ref[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % (args.steps // 5) == 0 or step == args.steps:
            rel = task.evaluate(chip, params.detach())["relative_l2"]
            print(f"{step:6d}   {loss.item():.3e}   {rel:.4f}   {time.process_time() - t0:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
