#!/usr/bin/env python3
"""Perplexity and KL divergence from `stepdown ppl` next to llama.cpp's own llama-perplexity,
on the same model, text and context.

llama-perplexity is not part of this repository: build it from llama.cpp's sources
(target llama-perplexity) and pass its path. The script runs

  stepdown ppl MODEL --text TEXT --ctx N --json
  llama-perplexity -m MODEL -f TEXT -c N -b N
and, with --base BASE,
  stepdown ppl MODEL --base BASE --text TEXT --ctx N --json
  llama-perplexity -m BASE  -f TEXT -c N -b N --kl-divergence-base LOGITS
  llama-perplexity -m MODEL -f TEXT -c N -b N --kl-divergence-base LOGITS --kl-divergence

and prints both numbers and their relative difference; it exits 1 when a relative
difference exceeds --tolerance (default 0.1%).

    python3 bench/compare_ppl.py --stepdown build/tools/stepdown/stepdown \\
        --llama-perplexity /tmp/llama.cpp-build/bin/llama-perplexity \\
        --model ~/.cache/stepdown/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --base /tmp/smollm2.q8_0.gguf --text bench/data/lighthouse-keeper.txt --ctx 512
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def run(command: list[str]) -> str:
    print("$ " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"command failed with exit code {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def number_after(pattern: str, text: str, what: str) -> float:
    match = re.search(pattern, text)
    if not match:
        sys.exit(f"llama-perplexity printed no {what} (pattern {pattern!r}); its output was:\n{text[-3000:]}")
    return float(match.group(1))


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stepdown", required=True, help="path of the stepdown CLI")
    parser.add_argument("--llama-perplexity", required=True, help="path of llama.cpp's llama-perplexity")
    parser.add_argument("--model", required=True)
    parser.add_argument("--base", help="reference model for KL divergence (same vocabulary)")
    parser.add_argument("--text", required=True)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest relative difference accepted")
    args = parser.parse_args()

    llama = [args.llama_perplexity, "-f", args.text, "-c", str(args.ctx), "-b", str(args.ctx), "-t", str(args.threads)]
    stepdown = [args.stepdown, "ppl", args.model, "--text", args.text, "--ctx", str(args.ctx), "--threads",
                str(args.threads), "--json"]

    rows = []  # (quantity, stepdown, llama.cpp)
    ours = run_json(stepdown)
    theirs = run(llama + ["-m", args.model])
    rows.append(("PPL", ours["perplexity"]["ppl"], number_after(r"Final estimate: PPL = ([0-9.]+)", theirs, "PPL")))

    if args.base:
        with tempfile.TemporaryDirectory() as tmp:
            logits = os.path.join(tmp, "base.kld")
            run(llama + ["-m", args.base, "--kl-divergence-base", logits])
            theirs = run(llama + ["-m", args.model, "--kl-divergence-base", logits, "--kl-divergence"])
        ours = run_json(stepdown + ["--base", args.base])
        rows.append(("PPL (candidate, KLD run)", ours["perplexity"]["ppl"],
                     number_after(r"Mean PPL\(Q\)\s*:\s*([0-9.]+)", theirs, "Mean PPL(Q)")))
        rows.append(("PPL (base)", ours["base"]["perplexity"]["ppl"],
                     number_after(r"Mean PPL\(base\)\s*:\s*([0-9.]+)", theirs, "Mean PPL(base)")))
        rows.append(("Mean KLD", ours["kld"]["mean"], number_after(r"Mean\s+KLD:\s*([0-9.eE+-]+)", theirs, "Mean KLD")))
        rows.append(("99.0% KLD", ours["kld"]["p99"], number_after(r"99\.0%\s+KLD:\s*([0-9.eE+-]+)", theirs, "99% KLD")))
        rows.append(("Same top p (%)", 100.0 * ours["kld"]["same_top_rate"],
                     number_after(r"Same top p:\s*([0-9.]+)", theirs, "Same top p")))

    print(f"model {args.model}, text {args.text}, ctx {args.ctx}" + (f", base {args.base}" if args.base else ""))
    print(f"{'quantity':<26} {'stepdown':>14} {'llama.cpp':>14} {'rel. diff':>10}")
    worst = 0.0
    for name, a, b in rows:
        diff = relative(a, b)
        worst = max(worst, diff)
        print(f"{name:<26} {a:>14.6f} {b:>14.6f} {100 * diff:>9.4f}%")
    print(f"largest relative difference {100 * worst:.4f}% (tolerance {100 * args.tolerance:.2f}%)")
    return 0 if worst <= args.tolerance else 1


def run_json(command: list[str]) -> dict:
    print("$ " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"command failed with exit code {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    sys.exit(main())
