"""Distributed data-parallel training with PyTorch's gloo backend (CPU), for the demo and the
tests: every replica trains a small linear model on its own shard of a synthetic regression
problem, DistributedDataParallel averages the gradients across replicas after every backward
pass, and at the end the replicas check that they hold identical weights — which only happens if
the gradients really travelled between them.

Submarine sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK for framework pytorch:

    meta: {framework: pytorch, args: [/usr/bin/python3, train_ddp.py]}
    spec: {Master: {replicas: 1}, Worker: {replicas: 1}}
"""

import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main() -> int:
    dist.init_process_group("gloo", init_method="env://")
    rank, world = dist.get_rank(), dist.get_world_size()
    print(f"rank {rank} of {world} (master {os.environ['MASTER_ADDR']}:"
          f"{os.environ['MASTER_PORT']})", flush=True)

    # y = 3x - 2 + noise; each rank sees a different shard.
    generator = torch.Generator().manual_seed(100 + rank)
    x = torch.randn(256, 1, generator=generator)
    y = 3 * x - 2 + 0.01 * torch.randn(256, 1, generator=generator)

    torch.manual_seed(0)  # the same initial weights everywhere
    model = DistributedDataParallel(torch.nn.Linear(1, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()  # gradients are all-reduced (averaged) across the replicas here
        optimizer.step()
    weight, bias = model.module.weight.item(), model.module.bias.item()
    print(f"rank {rank}: loss {loss.item():.5f} weight {weight:.4f} bias {bias:.4f}", flush=True)

    # Every replica must hold the same weights.
    mine = torch.tensor([weight, bias])
    everyone = [torch.zeros(2) for _ in range(world)]
    dist.all_gather(everyone, mine)
    same = all(torch.allclose(mine, other) for other in everyone)
    print(f"rank {rank}: weights identical on all {world} replicas: {same}", flush=True)
    dist.destroy_process_group()
    return 0 if same and abs(weight - 3) < 0.1 and abs(bias + 2) < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
