"""Which float32 CPU operations give different bits on this machine than on another?

    python tools/fingerprint.py > tools/fingerprints/<cpu>.json      # this machine
    python tools/fingerprint.py --compare tools/fingerprints/amd-epyc-family25-model1.json
    ONEDNN_MAX_CPU_ISA=AVX512_CORE python tools/fingerprint.py --compare ...   # test a setting

It applies the reference environment of tools/reference_env.py before torch loads
(a variable you set yourself wins, to test another pin), then hashes the bits of each
operation's result on fixed inputs: random draws, matrix products of the shapes small
energy nets use, elementwise math, reductions, convolution, autograd through an MLP and a
conv net, one Adam step, and 200 steps of a small training loop. --compare prints the
operations whose bits differ from a saved file. tools/fingerprints/README.md records what
the saved machines showed.
"""
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import reference_env  # noqa: E402

for k, v in reference_env.reference_env().items():
    os.environ.setdefault(k, v)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def h(*ts):
    m = hashlib.sha256()
    for t in ts:
        m.update(t.detach().contiguous().cpu().numpy().tobytes())
    return m.hexdigest()[:16]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=gen(seed))


def mlp(seed, d_in=2, width=64):
    g = gen(seed)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                              torch.nn.SiLU(), torch.nn.Linear(width, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def conv(seed):
    g = gen(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.SiLU(),
                              torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.SiLU(),
                              torch.nn.Flatten(), torch.nn.Linear(32 * 16, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net


def fingerprints():
    out = {}
    out["randn"] = h(randn(100_000))
    out["rand"] = h(torch.rand(100_000, generator=gen(1)))
    out["randint"] = h(torch.randint(0, 1000, (10_000,), generator=gen(2)).float())
    for (n, k, m) in [(256, 2, 64), (256, 64, 64), (64, 256, 64), (1000, 128, 128), (128, 1000, 128), (4096, 64, 1)]:
        a, b = randn(n, k, seed=3), randn(k, m, seed=4)
        out[f"matmul {n}x{k} @ {k}x{m}"] = h(a @ b)
    a, b, c = randn(512, 64, seed=5), randn(64, 64, seed=6), randn(64, seed=7)
    out["F.linear 512x64"] = h(F.linear(a, b, c))
    out["addmm"] = h(torch.addmm(c, a, b))
    x = randn(100_000, seed=8)
    for name, f in [("exp", torch.exp), ("log(|x|+1)", lambda t: torch.log(t.abs() + 1)), ("tanh", torch.tanh),
                    ("sigmoid", torch.sigmoid), ("silu", F.silu), ("softplus", F.softplus), ("sqrt(|x|)", lambda t: t.abs().sqrt()),
                    ("sin", torch.sin), ("cos", torch.cos), ("erf", torch.erf), ("log1p(|x|)", lambda t: torch.log1p(t.abs()))]:
        out[f"elementwise {name}"] = h(f(x))
    x2 = randn(1000, 100, seed=9)
    out["sum"] = h(x2.sum()); out["sum dim1"] = h(x2.sum(1)); out["mean dim0"] = h(x2.mean(0))
    out["logsumexp dim1"] = h(torch.logsumexp(x2, 1)); out["norm dim1"] = h(x2.norm(dim=1))
    out["cumsum"] = h(x2.cumsum(1)); out["var dim1"] = h(x2.var(1))
    out["cdist"] = h(torch.cdist(randn(300, 2, seed=10), randn(400, 2, seed=11)))
    out["softmax"] = h(torch.softmax(x2, 1))
    img = randn(64, 1, 8, 8, seed=12)
    w = randn(16, 1, 3, 3, seed=13)
    out["conv2d fwd"] = h(F.conv2d(img, w, padding=1))
    # autograd through an MLP energy (value and input gradient), as the samplers do
    net = mlp(0)
    xs = randn(1024, 2, seed=14).requires_grad_(True)
    e = net(xs).squeeze(-1)
    (gx,) = torch.autograd.grad(e.sum(), xs)
    out["mlp energy"] = h(e); out["mlp input grad"] = h(gx)
    # parameter gradient and one Adam step
    net = mlp(1)
    loss = net(randn(256, 2, seed=15)).mean() - net(randn(256, 2, seed=16)).mean()
    loss.backward()
    out["mlp param grads"] = h(*[p.grad for p in net.parameters()])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    opt.step()
    out["adam step"] = h(*net.parameters())
    cnet = conv(2)
    imgs = randn(128, 1, 8, 8, seed=17).requires_grad_(True)
    ce = cnet(imgs).squeeze(-1)
    (gi,) = torch.autograd.grad(ce.sum(), imgs, create_graph=False)
    out["conv energy"] = h(ce); out["conv input grad"] = h(gi)
    cnet.zero_grad(); cnet(randn(128, 1, 8, 8, seed=18)).mean().backward()
    out["conv param grads"] = h(*[p.grad for p in cnet.parameters()])
    # 200 steps of a small CD-like training loop with Langevin negatives
    net = mlp(3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = gen(19)
    data = torch.randn(2000, 2, generator=g) * 0.5 + 1.0
    for it in range(200):
        batch = data[torch.randint(0, 2000, (128,), generator=g)]
        xm = torch.randn(128, 2, generator=g)
        for _ in range(5):
            xm = xm.detach().requires_grad_(True)
            (gm,) = torch.autograd.grad(net(xm).sum(), xm)
            xm = xm - 0.05 * gm + (0.1 ** 0.5) * torch.randn(xm.shape, generator=g)
        loss = net(batch).mean() - net(xm.detach()).mean() + 0.1 * (net(batch) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
        if it in (0, 9, 49, 199):
            out[f"training loop after {it + 1} steps"] = h(*net.parameters())
    return out


def machine():
    info = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()}
    try:
        cpu = open("/proc/cpuinfo").read()
        for key in ("model name", "cpu family", "model"):
            line = next(l for l in cpu.splitlines() if l.split(":")[0].strip() == key)
            info[key] = line.split(":", 1)[1].strip()
        flags = next(l for l in cpu.splitlines() if l.startswith("flags")).split()
        info["avx512f"] = "avx512f" in flags
        info["avx2"] = "avx2" in flags
    except (OSError, StopIteration):
        pass
    info["env"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR",
                                                  "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    info["mkldnn"] = torch.backends.mkldnn.is_available()
    return info


if __name__ == "__main__":
    result = {"machine": machine(), "ops": fingerprints()}
    if "--compare" in sys.argv:
        other = json.load(open(sys.argv[sys.argv.index("--compare") + 1]))
        diff = [k for k in result["ops"] if other["ops"].get(k) != result["ops"][k]]
        print("this machine:", result["machine"])
        print("other:       ", other["machine"])
        print(f"{len(diff)} of {len(result['ops'])} operations differ" + (":" if diff else ""))
        for k in diff:
            print("  ", k)
    else:
        print(json.dumps(result, indent=1))
