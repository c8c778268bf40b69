"""The activation cache across processes: concurrent builders build once, and a cache larger than
the memory budget builds and trains within it (peak RSS measured in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


CONCURRENT_SCRIPT = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import torch
    from sae_lab.data import cache as C

    class SlowModel:
        name, n_layers, d_model, calls = "slow", 1, 8, 0
        def fingerprint(self): return "f00"
        def activations(self, ids, hook):
            self.calls += 1
            time.sleep(0.2)
            return ids.float().reshape(-1, 1).repeat(1, 8)

    barrier = Path(sys.argv[2])  # start together, once both have imported torch
    (barrier / str(sys.argv[3])).touch()
    while len(list(barrier.iterdir())) < 2:
        time.sleep(0.01)
    model = SlowModel()
    acts = C.load_or_build(model, "h", torch.arange(100), {"d": 1}, Path(sys.argv[1]), shard_size=16, batch_size=10,
                           progress=False)
    assert torch.equal(acts[:, 0], torch.arange(100.0))
    print(model.calls)
''')


def test_concurrent_builders_build_once(tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_SCRIPT, str(tmp_path / "cache"), str(barrier), str(i)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    calls = sorted(int(out.strip().splitlines()[-1]) for out, _ in outs)
    assert calls == [0, 10]
    assert any("Waiting for another process" in out for out, _ in outs)


MEMORY_SCRIPT = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    import torch
    from sae_lab.data import ActivationDataModule, ShardedActivations, load_or_build

    def status(key):  # kB -> bytes
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    cache_dir, n_vectors, shard_size, cache_budget, d, steps = sys.argv[1], *map(int, sys.argv[2:7])

    class StreamModel:
        name, n_layers, d_model = "stream-lm", 1, d
        def fingerprint(self): return "f00"
        def hook_name(self, layer, site="resid_post"): return f"blocks.{layer}.hook_{site}"
        def activations(self, ids, hook):  # 4 positions per input; low-rank + hashed noise
            t = (ids.reshape(-1, 1) * 4 + torch.arange(4)).reshape(-1, 1)
            noise = ((t * 2654435761 + torch.arange(d) * 40503) % 65536).float() / 65536 - 0.5
            return noise + torch.sin(t.float() * 0.37) * torch.linspace(-2, 2, d)

    def stream():  # endless: max_vectors stops it
        i = 0
        while True:
            yield torch.arange(i * 64, (i + 1) * 64)
            i += 1

    torch.manual_seed(0)
    h = 256
    w_enc = (torch.randn(d, h) / d ** 0.5).requires_grad_()
    w_dec = (torch.randn(h, d) / h ** 0.5).requires_grad_()
    b = torch.zeros(h, requires_grad=True)
    opt = torch.optim.Adam([w_enc, w_dec, b], lr=1e-3)

    def step(x):
        loss = ((torch.relu(x @ w_enc + b) @ w_dec - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    step(torch.randn(256, d))  # warm up torch's allocator, threads and Adam state before the baseline
    try:
        open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
        base = status("VmRSS")
    except OSError:
        base = status("VmHWM")
    t0 = time.time()
    acts = load_or_build(StreamModel(), "h", stream(), {"stream": "lm"}, Path(cache_dir), max_vectors=n_vectors,
                         shard_size=shard_size, memory_budget=cache_budget, progress=False)
    build_peak = status("VmHWM") - base
    t1 = time.time()
    dm = ActivationDataModule(acts, acts, 256, data_seed=0, memory_budget=cache_budget)
    losses = []
    while len(losses) < steps:
        for batch in dm.batches:
            dm.batches.mark_consumed()
            losses.append(step(batch))
            if len(losses) == steps:
                break
    print(json.dumps({
        "mapped": isinstance(dm.train_data, ShardedActivations), "shape": list(acts.shape),
        "n_shards": getattr(acts, "n_shards", 0), "data_bytes": acts.nbytes, "epochs": dm.batches.epoch + 1,
        "build_peak_growth": build_peak, "peak_growth": status("VmHWM") - base,
        "rss_anon": status("RssAnon"), "rss_file": status("RssFile"), "base_rss": base,
        "first_loss": sum(losses[:10]) / 10, "last_loss": sum(losses[-10:]) / 10,
        "build_s": t1 - t0, "train_s": time.time() - t1}))
''')


def _run_memory_script(cache_dir, n_vectors, shard_size, cache_budget, d, steps):
    args = [str(cache_dir), str(n_vectors), str(shard_size), str(cache_budget), str(d), str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_cache_bigger_than_the_memory_budget_builds_and_trains_within_it(tmp_path):
    """Peak RSS growth (VmHWM, reset after imports and warm-up) of a subprocess that streams a cache of
    3.9x the budget to disk, then trains 300 Adam steps on batches from the DataModule."""
    mib = 1 << 20
    n_vectors, d, shard_size = 48_000, 1024, 2048   # 187.5 MiB of float32 in 8 MiB shards
    budget = 48 * mib                               # peak RSS growth allowed for build + training
    cache_budget = 8 * mib                          # the cache's share: it must stay memory-mapped
    r = _run_memory_script(tmp_path, n_vectors, shard_size, cache_budget, d, 300)
    # Control: the same cache loaded into memory (a budget it fits) shows up in the same measurement.
    ctrl = _run_memory_script(tmp_path, n_vectors, shard_size, 1 << 30, d, 20)
    print(f"\nmemory test: data {r['data_bytes'] / mib:.1f} MiB in {r['n_shards']} shards; peak RSS growth "
          f"build {r['build_peak_growth'] / mib:.1f} MiB, build+train {r['peak_growth'] / mib:.1f} MiB "
          f"(budget {budget / mib:.0f} MiB); end RssAnon {r['rss_anon'] / mib:.1f} MiB, "
          f"RssFile {r['rss_file'] / mib:.1f} MiB; {r['epochs']} epochs; loss {r['first_loss']:.4f} -> "
          f"{r['last_loss']:.4f}; build {r['build_s']:.1f}s, train {r['train_s']:.1f}s; control (cached, "
          f"loaded into memory): peak RSS growth {ctrl['peak_growth'] / mib:.1f} MiB")
    assert r["mapped"] and r["shape"] == [n_vectors, d] and r["n_shards"] == 24
    assert r["data_bytes"] == n_vectors * d * 4 > 3.5 * budget
    assert r["peak_growth"] < budget
    assert r["epochs"] >= 2 and r["last_loss"] < r["first_loss"]
    assert not ctrl["mapped"] and ctrl["peak_growth"] > r["data_bytes"]
