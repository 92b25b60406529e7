#!/usr/bin/env python3
"""Quality of every quantization method in the stepdown CLI, next to llama.cpp's
llama-quantize with an importance matrix, measured by one tool.

For each model (stories260K, a true float llama2.c checkpoint, and SmolLM2-135M, whose F32
input is the dequantized Q4_1 file re-encoded), the script

  1. writes the F32 input GGUF with `stepdown quantize MODEL --scheme f32`;
  2. runs `stepdown quantize F32 --scheme S --method M`, calibrated on the first half of
     the text, for each method the CLI registers (rtn, gptq, awq, smoothquant, outlier,
     fp8, mixed) and each bit width. A method that is not registered gets a row with the
     reason. Bit widths are 4 and 3, at group size 128 where stepdown has such a scheme,
     else the GGUF type of that width;
  3. with --llama-tools DIR, runs llama-imatrix on the same calibration half and
     llama-quantize --imatrix at Q4_K_M, Q4_0 and Q8_0 on the same F32 input;
  4. scores every output with `stepdown ppl OUT --base F32 --text EVAL --json` on the second
     half of the text: mean KLD, same-top-token %, perplexity;
  5. prints a Markdown table and writes it with a JSON copy under --work-dir.

Seconds and peak RSS come from /usr/bin/time -v around the quantize step (for llama.cpp,
imatrix and quantize summed, and the larger peak). "closes % of RTN gap" is
100 * (KLD_rtn - KLD_method) / KLD_rtn at the same bit width, for GPTQ and AWQ.

The mixed row uses levels {that width's scheme format, q8_0} with target_bpw = the RTN row's
bits per weight + --mixed-extra-bpw, so it spends a stated number of extra bits where the
measured sensitivity shows they help most. --mixed-base adds one mixed row per base method
that fills the chosen formats (mixed+gptq).

    python3 bench/quality_methods.py --stepdown build/tools/stepdown/stepdown \\
        --llama-tools /path/to/llama-tools/bin --work-dir /tmp/quality --threads 2
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["rtn", "gptq", "awq", "smoothquant", "outlier", "fp8", "mixed"]
# Bit width -> stepdown schemes to try in order: the first registered one. Rows whose length
# is not a multiple of 128 take the scheme's fallback (g64, then g32, then int8 or f16).
# So SmolLM2's 576-wide q, k, v, o, gate and up rows and stories260K's 64-wide rows are
# g64, and the manifest lists each fallback. q4_0 is the GGUF type of that width.
SCHEMES = {4: ["int4-g128", "int4-g64", "int4-g32", "q4_0"], 3: ["int3-g128", "int3-g64"]}
# Methods that choose their own format and so run once, not per bit width.
WIDTHLESS = {"fp8": "fp8", "smoothquant": "w8a8", "outlier": "int8-outlier"}
LLAMA_TYPES = ["Q4_K_M", "Q4_0", "Q8_0"]


def run_timed(command: list[str], log: Path, env: dict | None = None) -> tuple[str, float, float]:
    """Run `command` under /usr/bin/time -v; return stdout, wall seconds, peak RSS in MiB."""
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - start
    log.write_text(done.stdout + "\n----- stderr -----\n" + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"exit code {done.returncode}; see {log}\n{done.stderr[-1500:]}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    rss = int(match.group(1)) / 1024.0 if match else float("nan")
    return done.stdout, seconds, rss


def known_names(stepdown: str, model: Path, flag: str) -> list[str]:
    """Return the names the CLI lists after "known:" for an unknown --scheme or --method."""
    args = [stepdown, "quantize", str(model), "-o", "/dev/null/none.gguf", "--scheme", "f32", "--method", "rtn"]
    args[args.index(flag) + 1] = "none-such"
    done = subprocess.run(args, capture_output=True, text=True)
    match = re.search(r"known: ([^)]*)\)", done.stderr)
    if not match:
        raise RuntimeError(f"{flag} listing not found in: {done.stderr[-500:]}")
    return [n.strip() for n in match.group(1).split(",")]


def score(stepdown: str, model: Path, base: Path, text: Path, ctx: int, threads: int, log: Path) -> dict:
    out, _, _ = run_timed([stepdown, "ppl", str(model), "--base", str(base), "--text", str(text),
                           "--ctx", str(ctx), "--threads", str(threads), "--json"], log)
    result = json.loads(out)
    return {"kld": result["kld"]["mean"], "kld_stderr": result["kld"]["mean_stderr"],
            "same_top": 100.0 * result["kld"]["same_top_rate"], "ppl": result["perplexity"]["ppl"],
            "ppl_base": result["base"]["perplexity"]["ppl"]}


def bpw_of(manifest: Path) -> float:
    return json.loads(manifest.read_text())["bits_per_weight"]


def gguf_bpw(path: Path) -> float:
    """bits per weight over every tensor of a GGUF, counted as stepdown's manifest does."""
    import gguf  # the gguf-py reader, only for llama.cpp's outputs
    reader = gguf.GGUFReader(str(path))
    params = sum(int(t.n_elements) for t in reader.tensors)
    nbytes = sum(int(t.n_bytes) for t in reader.tensors)
    return 8.0 * nbytes / params


def split_text(text: Path, work: Path) -> tuple[Path, Path]:
    data = text.read_text()
    calib, evaluation = work / "calib.txt", work / "eval.txt"
    calib.write_text(data[: len(data) // 2])
    evaluation.write_text(data[len(data) // 2:])
    return calib, evaluation


def bench_model(args, name: str, source: list[str], ctx: int, seq_len: int, samples: int, work: Path) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    calib, evaluation = split_text(Path(args.text), work)
    stepdown, threads = args.stepdown, str(args.threads)
    f32 = work / "f32.gguf"
    run_timed([stepdown, "quantize", *source, "--scheme", "f32", "-o", str(f32), "--threads", threads],
              work / "f32.log")
    methods = known_names(stepdown, f32, "--method")
    schemes = known_names(stepdown, f32, "--scheme")
    calib_args = ["--calib", str(calib), "--calib-samples", str(samples), "--calib-seq-len", str(seq_len),
                  "--seed", "1"]
    rows: list[dict] = []

    def add(row: dict, out: Path, log_tag: str) -> None:
        row.update(score(stepdown, out, f32, evaluation, ctx, args.threads, work / f"{log_tag}.ppl.log"))
        rows.append(row)
        print(f"{name}: {row}", file=sys.stderr, flush=True)

    # (method, label, base method of mixed) in table order.
    runs = []
    for method in METHODS:
        if method not in methods:
            rows.append({"model": name, "tool": "stepdown", "method": method, "skipped": "not registered in the CLI"})
        elif method != "mixed":
            runs.append((method, method, None))
        else:
            for base in args.mixed_base.split(","):
                if base != "rtn" and base not in methods:
                    rows.append({"model": name, "tool": "stepdown", "method": f"mixed+{base}",
                                 "skipped": f"base method {base} not registered in the CLI"})
                else:
                    runs.append((method, "mixed" if base == "rtn" else f"mixed+{base}", base))

    rtn_bpw: dict[int, float] = {}
    mixed_bits = {int(b) for b in args.mixed_bits.split(",")}
    for method, label, base in runs:
        widths = [None] if method in WIDTHLESS else sorted(SCHEMES, reverse=True)
        if method == "mixed":
            widths = [b for b in widths if b in mixed_bits]
        for bits in widths:
            if bits is None:
                scheme = WIDTHLESS[method]
                if scheme not in schemes:
                    rows.append({"model": name, "tool": "stepdown", "method": label,
                                 "skipped": f"scheme {scheme} not registered"})
                    continue
            else:
                scheme = next((s for s in SCHEMES[bits] if s in schemes), None)
                if scheme is None:
                    rows.append({"model": name, "tool": "stepdown", "method": label, "bits": bits,
                                 "skipped": f"no registered {bits}-bit scheme ({', '.join(SCHEMES[bits])})"})
                    continue
            tag = f"{label}-{scheme}"
            out = work / f"{tag}.gguf"
            command = [stepdown, "quantize", str(f32), "--scheme", scheme, "-o", str(out), "--threads", threads]
            if method == "mixed" and args.mixed_calib_samples:
                command += ["--method", method, *calib_args[:2], "--calib-samples", str(args.mixed_calib_samples),
                            *calib_args[4:]]
            elif method != "rtn":
                command += ["--method", method, *calib_args]
            if method == "mixed":
                if bits not in rtn_bpw:
                    rows.append({"model": name, "tool": "stepdown", "method": label, "bits": bits,
                                 "skipped": "no RTN row at this width to set the target from"})
                    continue
                target = rtn_bpw[bits] + args.mixed_extra_bpw
                command += ["--method-param", f"target_bpw={target:.4f}", "--method-param", "high=q8_0",
                            "--method-param", f"base_method={base}"]
            try:
                _, seconds, rss = run_timed(command, work / f"{tag}.log")
            except RuntimeError as error:
                rows.append({"model": name, "tool": "stepdown", "method": label, "bits": bits, "scheme": scheme,
                             "skipped": f"failed: {str(error).splitlines()[0]}"})
                continue
            bpw = bpw_of(Path(str(out) + ".manifest.json"))
            if method == "rtn" and bits is not None:
                rtn_bpw[bits] = bpw
            shown_scheme = f"{scheme}+q8_0" if method == "mixed" else scheme
            add({"model": name, "tool": "stepdown", "method": label, "bits": bits, "scheme": shown_scheme,
                 "bpw": bpw, "seconds": seconds, "peak_rss_mib": rss}, out, tag)

    if args.llama_tools:
        tools = Path(args.llama_tools)
        # The tools load libllama and libggml from their own folder.
        env = dict(os.environ, LD_LIBRARY_PATH=str(tools))
        imatrix = work / "imatrix.gguf"
        try:
            _, im_seconds, im_rss = run_timed(
                [str(tools / "llama-imatrix"), "-m", str(f32), "-f", str(calib), "-o", str(imatrix),
                 "-c", str(seq_len), "-t", threads], work / "imatrix.log", env)
        except RuntimeError as error:
            im_seconds, im_rss = None, None
            for t in LLAMA_TYPES:
                rows.append({"model": name, "tool": "llama.cpp", "method": f"imatrix {t}",
                             "skipped": f"llama-imatrix failed: {str(error).splitlines()[0]}"})
        if im_seconds is not None:
            for t in LLAMA_TYPES:
                out = work / f"llama-{t}.gguf"
                try:
                    _, seconds, rss = run_timed([str(tools / "llama-quantize"), "--imatrix", str(imatrix), str(f32),
                                                 str(out), t, threads], work / f"llama-{t}.log", env)
                except RuntimeError as error:
                    rows.append({"model": name, "tool": "llama.cpp", "method": f"imatrix {t}",
                                 "skipped": f"failed: {str(error).splitlines()[0]}"})
                    continue
                add({"model": name, "tool": "llama.cpp", "method": "imatrix", "scheme": t, "bpw": gguf_bpw(out),
                     "seconds": seconds + im_seconds, "peak_rss_mib": max(rss, im_rss)}, out, f"llama-{t}")
    else:
        rows.append({"model": name, "tool": "llama.cpp", "method": "imatrix", "skipped": "no --llama-tools given"})

    # How much of RTN's KLD each calibrated method removes at the same scheme.
    for row in rows:
        if row.get("method") in ("gptq", "awq") and "kld" in row:
            rtn = next((r for r in rows if r.get("method") == "rtn" and r.get("scheme") == row["scheme"]
                        and "kld" in r), None)
            if rtn and rtn["kld"] > 0:
                row["closes_rtn_gap_pct"] = 100.0 * (rtn["kld"] - row["kld"]) / rtn["kld"]
    return rows


def markdown(rows: list[dict], conditions: dict) -> str:
    lines = ["| model | tool | method | scheme | bpw | mean KLD | same top % | PPL | closes % of RTN gap | seconds "
             "| peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    skipped = []
    for r in rows:
        if "skipped" in r:
            skipped.append(f"- {r['model']}: {r['tool']} {r['method']}"
                           f"{' ' + str(r['bits']) + '-bit' if r.get('bits') else ''}: {r['skipped']}")
            continue
        gap = f"{r['closes_rtn_gap_pct']:.1f}" if "closes_rtn_gap_pct" in r else ""
        lines.append(f"| {r['model']} | {r['tool']} | {r['method']} | {r['scheme']} | {r['bpw']:.3f} "
                     f"| {r['kld']:.5f} ± {r['kld_stderr']:.5f} | {r['same_top']:.2f} | {r['ppl']:.4f} | {gap} "
                     f"| {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} |")
    bases = sorted({(r["model"], r["ppl_base"]) for r in rows if "ppl_base" in r})
    text = "\n".join(lines) + "\n\n"
    text += "F32 perplexity: " + ", ".join(f"{m} {p:.4f}" for m, p in bases) + "\n\n"
    if skipped:
        text += "Rows not measured:\n" + "\n".join(skipped) + "\n\n"
    text += "Conditions: " + ", ".join(f"{k} {v}" for k, v in conditions.items()) + "\n"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stepdown", default=str(ROOT / "build" / "tools" / "stepdown" / "stepdown"))
    parser.add_argument("--llama-tools", help="folder with llama-imatrix and llama-quantize")
    parser.add_argument("--work-dir", required=True, help="scratch folder for every output (never the repository)")
    parser.add_argument("--text", default=str(ROOT / "bench" / "data" / "lighthouse-keeper.txt"),
                        help="first half calibrates, second half scores")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="stories260K,smollm2", help="comma-separated: stories260K, smollm2")
    parser.add_argument("--shared-dir", default=str(ROOT.parent / "shared"))
    parser.add_argument("--model-cache", default=str(Path.home() / ".cache" / "stepdown" / "models"))
    parser.add_argument("--mixed-base", default="rtn,gptq",
                        help="comma-separated base methods for the mixed rows (rtn, gptq, awq)")
    parser.add_argument("--mixed-bits", default="4,3", help="bit widths that get mixed rows")
    parser.add_argument("--mixed-calib-samples", type=int, default=0,
                        help="calibration windows for the mixed rows; 0 uses the model's default")
    parser.add_argument("--mixed-extra-bpw", type=float, default=0.6,
                        help="bits per weight the mixed row may spend above the RTN row of its width")
    args = parser.parse_args()

    work = Path(args.work_dir).resolve()
    if ROOT in work.parents or work == ROOT:
        sys.exit(f"--work-dir {work} is inside the repository; give a folder outside it")
    stories = Path(args.shared_dir) / "models" / "stories260K"
    models = {
        # name: (source arguments, ppl ctx, calibration sequence length, calibration samples)
        "stories260K": ([str(stories / "stories260K.bin"), "--tokenizer", str(stories / "tok512.bin")], 128, 128, 16),
        "smollm2": ([str(Path(args.model_cache) / "SmolLM2-135M-Instruct.Q4_1.gguf")], 256, 256, 4),
    }
    rows = []
    for name in args.models.split(","):
        if name not in models:
            sys.exit(f"--models: unknown model {name}; expected stories260K or smollm2")
        source, ctx, seq_len, samples = models[name]
        rows += bench_model(args, name, source, ctx, seq_len, samples, work / name)

    conditions = {
        "threads": args.threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "load average at end": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "cores": os.cpu_count(),
        "text": Path(args.text).name,
        "mixed extra bpw": args.mixed_extra_bpw,
        "mixed calibration windows": args.mixed_calib_samples or "as the other methods",
    }
    text = markdown(rows, conditions)
    (work / "quality_methods.md").write_text(text)
    (work / "quality_methods.json").write_text(json.dumps({"conditions": conditions, "rows": rows}, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
