"""The memory budget holds: capturing and reading a store 5x the budget keeps RSS growth inside it.

Measured in a fresh subprocess: the peak resident set (mapped shard pages
included) after the model is loaded is reset through /proc/self/clear_refs,
then a capture and a full shuffled read run, and the new peak minus the
level just after loading must stay below the budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interp.store.memory import reset_peak_rss

TINY = Path(__file__).parents[1] / "capture" / "tiny.py"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from interp.capture import capture_to_store
    from interp.capture.workers import load_factory
    from interp.store import Store
    from interp.store.memory import peak_rss, reset_peak_rss, rss

    tiny, out, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    model = load_factory(tiny + ":wide_model")()
    data = load_factory(tiny + ":wide_tokens")(model)
    base = rss()
    reset_peak_rss()  # the peak starts from the level just after the model loaded
    store = capture_to_store(model, data, "blocks.0.hook_resid_post", out, batch_size=4,
                             memory_budget=budget, progress=False)
    capture_peak = peak_rss() - base
    reader = Store(out, memory_budget=budget)
    n = sum(len(x) for x in reader.batches("blocks.0.hook_resid_post", 256, seed=0))
    reader.get(list(range(0, reader.n_tokens, 997)))
    size = sum(s.bytes for s in reader.manifest.shards)
    print(json.dumps({"growth": peak_rss() - base, "capture_growth": capture_peak, "store_bytes": size,
                      "n_read": n, "n_tokens": reader.n_tokens, "shards": len(reader.manifest.shards)}))
    """
)


@pytest.mark.skipif(not reset_peak_rss(), reason="needs Linux /proc/self/clear_refs to reset the peak RSS")
def test_capture_and_read_5x_budget_store_stay_in_budget(tmp_path):
    budget = 48 << 20
    env_n = str(5 * budget // (32 * (4096 * 4 + 40)) + 8)  # contexts of 32 tokens for > 5x the budget
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TINY), str(tmp_path / "s"), str(budget)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "WIDE_N": env_n},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["store_bytes"] >= 5 * budget
    assert r["n_read"] == r["n_tokens"]
    assert r["growth"] < budget, r



FAULTS = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    from interp.capture import capture_to_store
    from interp.capture.workers import load_factory
    from interp.store.memory import return_freed_memory

    def faults():  # minor page faults of 5 rounds that fill 12 live 4 MiB tensors, then free them
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            live = [torch.empty(1 << 20).fill_(1.0) for _ in range(12)]
            del live
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    torch.set_num_threads(1)
    model = load_factory(sys.argv[1] + ":tiny_model")()
    with return_freed_memory() as applied:
        inside = faults()
    capture_to_store(model, load_factory(sys.argv[1] + ":token_source")(model), "blocks.0.hook_resid_post",
                     sys.argv[2], batch_size=8, progress=False)
    faults()  # the first round may grow the heap
    print(json.dumps({"inside": inside, "after_capture": faults(), "applied": applied}))
    """
)


def test_returning_freed_memory_ends_with_the_capture(tmp_path):
    """Inside the block each large block is a fresh mapping whose pages fault in; after a capture, they are reused.

    A capture used to leave the setting on for the rest of the process, and small
    models' forward passes then ran ~1.6x slower.
    """
    proc = subprocess.run([sys.executable, "-c", FAULTS, str(TINY), str(tmp_path / "s")], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if not r["applied"]:
        pytest.skip("the C library has no mallopt (not glibc)")
    pages = 5 * 12 * (4 << 20) // 4096
    assert r["inside"] > pages // 2, r  # every round maps and faults in its 12,288 pages
    assert r["after_capture"] < pages // 10, r
