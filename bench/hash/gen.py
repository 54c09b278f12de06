#!/usr/bin/env python3
"""Generate the hashing benchmark's build context: about 50,000 files of 1-8 KiB in nested folders
plus 200 files of 2-8 MiB (about 1.2 GB in all), and a definition that builds from it.
Deterministic (seeded), so every run hashes the same bytes. Usage: gen.py OUTDIR"""
import os, random, sys

out = sys.argv[1]
ctx = os.path.join(out, "ctx")
random.seed(2026)
small, big = int(os.environ.get("SMALL", 50000)), int(os.environ.get("BIG", 200))
os.makedirs(ctx, exist_ok=True)
block = random.randbytes(8 << 20)
total = 0
for i in range(small):
    d = os.path.join(ctx, "src", f"d{i % 50:02d}", f"e{(i // 50) % 40:02d}")
    os.makedirs(d, exist_ok=True)
    n = random.randint(1024, 8192)
    off = random.randint(0, len(block) - n)
    with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
        f.write(i.to_bytes(4, "little") + block[off:off + n - 4])
    total += n
for i in range(big):
    d = os.path.join(ctx, "assets", f"a{i % 10}")
    os.makedirs(d, exist_ok=True)
    n = random.randint(2 << 20, 8 << 20)
    with open(os.path.join(d, f"blob{i}.bin"), "wb") as f:
        f.write(i.to_bytes(4, "little") + block[: n - 4])
    total += n
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM scratch\nCOPY . /ctx\n")
with open(os.path.join(out, "pipeline.nix"), "w") as f:
    f.write('''let std = import <std>; in
std.environment {
  project = "bench"; name = "bench"; registry = "127.0.0.1:5000/bench"; target = std.docker { };
  services.app = std.application { build.context = ./ctx; };
  # The same files split by size, to measure the per-file and the per-byte cost apart.
  services.small = std.application { build = { context = ./ctx/src; dockerfile = ./ctx/Dockerfile; }; };
  services.big = std.application { build = { context = ./ctx/assets; dockerfile = ./ctx/Dockerfile; }; };
}
''')
print(f"{small + big + 1} files, {total / 1e9:.2f} GB in {ctx}")
