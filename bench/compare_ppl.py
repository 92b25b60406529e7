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
difference exceeds --tolerance (default 0.1%). llama-perplexity runs with an f32 KV cache
(-ctk f32 -ctv f32), as stepdown keeps keys and values in f32; --kv-f16 keeps its default.

Where no llama-perplexity binary is at hand, --llama-cpp-python computes the same chunked
perplexity (and KLD, in double precision over the full vocabulary) from llama.cpp's logits
through llama-cpp-python.

Expect agreement to about 1e-7 on an F32 GGUF. On a quantized GGUF llama.cpp's CPU backend
also rounds activations to 8 bits inside each quantized dot product, which stepdown does
not do; that moves llama.cpp's PPL by a few tenths of a percent.

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
    peer = parser.add_mutually_exclusive_group(required=True)
    peer.add_argument("--llama-perplexity", help="path of llama.cpp's llama-perplexity")
    peer.add_argument("--llama-cpp-python", action="store_true", help="use llama-cpp-python as the peer")
    parser.add_argument("--model", required=True)
    parser.add_argument("--base", help="reference model for KL divergence (same vocabulary)")
    parser.add_argument("--text", required=True)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest relative difference accepted")
    parser.add_argument("--kv-f16", action="store_true", help="keep llama-perplexity's default f16 KV cache")
    args = parser.parse_args()
    if args.llama_cpp_python:
        return compare_with_python(args)

    llama = [args.llama_perplexity, "-f", args.text, "-c", str(args.ctx), "-b", str(args.ctx), "-t", str(args.threads)]
    if not args.kv_f16:
        llama += ["-ctk", "f32", "-ctv", "f32"]
    stepdown = stepdown_command(args)

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

    return report(args, rows, "llama-perplexity")


def report(args, rows, peer: str) -> int:
    print(f"model {args.model}, text {args.text}, ctx {args.ctx}" + (f", base {args.base}" if args.base else ""))
    print(f"{'quantity':<26} {'stepdown':>14} {peer:>16} {'rel. diff':>10}")
    worst = 0.0
    for name, a, b in rows:
        diff = relative(a, b)
        worst = max(worst, diff)
        print(f"{name:<26} {a:>14.6f} {b:>16.6f} {100 * diff:>9.4f}%")
    print(f"largest relative difference {100 * worst:.4f}% (tolerance {100 * args.tolerance:.2f}%)")
    return 0 if worst <= args.tolerance else 1


def chunk_log_probs(llm, tokens: list[int], ctx: int, bos):
    """Yields (log-probabilities (ctx/2 - 1, V), targets) for each whole chunk, as
    llama-perplexity scores it: BOS in place of the first token when the vocabulary adds
    BOS, and only the rows ctx/2 .. ctx-2."""
    import numpy as np

    first = ctx // 2
    for c in range(len(tokens) // ctx):
        chunk = list(tokens[c * ctx:(c + 1) * ctx])
        if bos is not None:
            chunk[0] = bos
        llm.reset()
        llm.eval(chunk)
        logits = np.array(llm.scores[first:ctx - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_probs = logits - (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))
        yield log_probs, np.array(tokens[c * ctx + first + 1:(c + 1) * ctx])


def compare_with_python(args) -> int:
    import numpy as np
    from llama_cpp import Llama, llama_vocab_get_add_bos, llama_model_get_vocab

    def load(path: str) -> "Llama":
        kv = {} if args.kv_f16 else {"type_k": 0, "type_v": 0}  # 0 is GGML_TYPE_F32
        return Llama(model_path=path, n_ctx=args.ctx, n_batch=args.ctx, logits_all=True, verbose=False,
                     n_threads=args.threads, **kv)

    def stats(nll: np.ndarray) -> float:
        return float(np.exp(nll.mean()))

    model = load(args.model)
    reference = load(args.base) if args.base else model
    text = open(args.text, "rb").read()
    tokens = reference.tokenize(text, add_bos=True, special=False)
    adds_bos = bool(llama_vocab_get_add_bos(llama_model_get_vocab(reference.model)))
    bos = reference.token_bos() if adds_bos else None
    print(f"{len(tokens)} tokens, {len(tokens) // args.ctx} chunks, add_bos {adds_bos}", file=sys.stderr)

    nll, base_nll, kld, same_top = [], [], [], []
    for log_q, targets in chunk_log_probs(model, tokens, args.ctx, bos):
        nll.append(-log_q[np.arange(len(targets)), targets])
    nll = np.concatenate(nll)
    rows = [("PPL", run_json(stepdown_command(args))["perplexity"]["ppl"], stats(nll))]
    if args.base:
        for (log_p, targets), (log_q, _) in zip(chunk_log_probs(reference, tokens, args.ctx, bos),
                                                 chunk_log_probs(model, tokens, args.ctx, bos)):
            base_nll.append(-log_p[np.arange(len(targets)), targets])
            kld.append((np.exp(log_p) * (log_p - log_q)).sum(axis=1))
            same_top.append(log_p.argmax(axis=1) == log_q.argmax(axis=1))
        kld = np.sort(np.concatenate(kld))
        ours = run_json(stepdown_command(args) + ["--base", args.base])
        rows.append(("PPL (base)", ours["base"]["perplexity"]["ppl"], stats(np.concatenate(base_nll))))
        rows.append(("Mean KLD", ours["kld"]["mean"], float(kld.mean())))
        rows.append(("99.0% KLD", ours["kld"]["p99"], float(np.interp(0.99 * (len(kld) - 1), np.arange(len(kld)), kld))))
        rows.append(("Same top p (%)", 100.0 * ours["kld"]["same_top_rate"],
                     100.0 * float(np.concatenate(same_top).mean())))
    return report(args, rows, "llama-cpp-python")


def stepdown_command(args) -> list[str]:
    return [args.stepdown, "ppl", args.model, "--text", args.text, "--ctx", str(args.ctx), "--threads",
            str(args.threads), "--json"]


def run_json(command: list[str]) -> dict:
    print("$ " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"command failed with exit code {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    sys.exit(main())
