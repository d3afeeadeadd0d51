"""Data-parallel training across processes: ``torchrun --nproc_per_node N -m sae_training train ...``.

torchrun sets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR``; :func:`setup` then
joins the process group (gloo for CPU tensors; NCCL for CUDA ones when CUDA is available). Every
rank reads the same seeded sequence of store batches of the *global* size
``batch_size`` and trains on its own contiguous slice of ``batch_size / N``
rows, so a run on N processes sees the same data per step as a run on one,
and a resumed run picks up exactly where it stopped.

Gradients are averaged by an explicit all-reduce after each step rather than
by wrapping the SAE in ``DistributedDataParallel``: the TopK step writes
encoder gradients straight into ``.grad`` outside autograd (the sparse
backward of :mod:`sae_training.archs.sparse`), which DDP's autograd hooks
would never see. The all-reduce is DDP's (one flat bucket per SAE, summed and
divided by N), done after the custom backward has finished. The step's
statistics (latent firing counts, losses) are reduced as well, so every rank
agrees on dead latents and AuxK targets, and buffers (BatchTopK's threshold)
are averaged. Parameters start identical: rank 0's are broadcast.

Only rank 0 writes: the run's config, checkpoints (atomically), the saved
SAEs, the evaluation and ``train.json``. Every rank reads the full global
batch from the store and keeps its slice (store reads are cheap next to the
encoder GEMM; a strided reader would save that copy). torchrun sets
``OMP_NUM_THREADS=1``; pass ``--threads`` (cores / N) to use more per process.
The trainer keeps SAEs on the CPU, so in practice the traffic goes through gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from interp.errors import InputError

__all__ = ["Dist", "setup", "SINGLE"]


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel run.

    Attributes:
        rank: index of this process (0 writes all outputs).
        world: number of processes.
        owns_group: this process group was created by :func:`setup` (and is torn down by :meth:`close`).
    """

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def active(self) -> bool:
        """More than one process takes part."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """This is the process that writes outputs."""
        return self.rank == 0

    def local_rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size``."""
        per = batch_size // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            dist.barrier()

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers."""
        if self.active:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def average_grads(self, module: nn.Module) -> None:
        """Average the gradients of ``module`` over ranks (one flat all-reduce, as DDP's bucket)."""
        if not self.active:
            return
        params = [p for p in module.parameters() if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in params])  # [n_params]
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    @torch.no_grad()
    def average_buffers(self, module: nn.Module) -> None:
        """Average floating-point buffers (BatchTopK's running threshold) over ranks."""
        if self.active:
            for b in module.buffers():
                if b.is_floating_point():
                    dist.all_reduce(b)
                    b /= self.world

    def sum_tensor(self, t: Tensor) -> Tensor:
        """``t`` summed over ranks (in place)."""
        if self.active:
            dist.all_reduce(t)
        return t

    def mean_floats(self, values: list[float]) -> list[float]:
        """Each value averaged over ranks."""
        if not self.active or not values:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / self.world).tolist()

    def finish(self) -> None:
        """Wait for every rank to be done with all collectives before any leaves the group (the success path).

        A gloo barrier alone is not enough: a rank that returns from it first and tears
        down its connections can abort a peer still completing the barrier ("terminate
        called without an active exception"). So after the barrier the ranks also meet
        at the launcher's key-value store, which does not go through gloo.
        """
        if not self.active:
            return
        dist.barrier()
        store = dist.distributed_c10d._get_default_store()
        if store.add("sae_training/finished", 1) == self.world:
            store.set("sae_training/all-finished", "1")
        store.wait(["sae_training/all-finished"])

    def close(self) -> None:
        """Leave the process group if :func:`setup` created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


SINGLE = Dist()


def setup(batch_size: int) -> Dist:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else run alone.

    Raises:
        InputError: ``batch_size`` does not split evenly over the processes.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    owns = not dist.is_initialized()
    if owns:
        # CPU tensors go through gloo; CUDA tensors (when the SAE lives on a GPU) through NCCL.
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    d = Dist(dist.get_rank(), dist.get_world_size(), owns)
    if batch_size % d.world:
        d.close()
        raise InputError(f"--batch-size {batch_size} does not split over {d.world} processes. Use a multiple of "
                         f"{d.world} (the batch size is the global one; each process takes batch_size / {d.world}).")
    return d
