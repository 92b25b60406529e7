#!/usr/bin/env python3
"""Record llama.cpp's greedy decoding of SmolLM2-135M-Instruct for the C++ comparison test.

Runs the GGUF file through llama-cpp-python (the PyPI package, which builds llama.cpp)
with logits_all=True. For each of five chat prompts, rendered with SmolLM2's ChatML
template (the default system message included, as the model's own template adds it), it
feeds the prompt, then takes 64 greedy steps without stopping at <|im_end|>. Every step
records the chosen id, llama.cpp's 10 highest logits with their ids, and the margin
between its top two logits.

Output: tests/golden/smollm2/llamacpp_greedy.json

With --gemma3 it records Gemma-3-270M (Q4_K_M, a pretrained model without instruction
tuning) instead: three plain-text prompts after BOS, 32 steps each, into
tests/golden/gemma3/llamacpp_greedy.json.

Usage: scripts/golden/make_llamacpp_fixtures.py [MODEL.gguf] [OUT_DIR]
       scripts/golden/make_llamacpp_fixtures.py --gemma3 [MODEL.gguf] [OUT_DIR]
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import llama_cpp

STEPS = 64
TOP_N = 10
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the ocean.",
    "Explain what a hash table is in two sentences.",
    "List three fruits that are red.",
    "How do I reverse a list in Python?",
]


def render_chatml(user_text):
    return (f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user_text}<|im_end|>\n"
            f"<|im_start|>assistant\n")


GEMMA_PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):",
]


def main():
    args = sys.argv[1:]
    gemma = bool(args) and args[0] == "--gemma3"
    if gemma:
        args = args[1:]
    default_model = "gemma-3-270m-q4_k_m.gguf" if gemma else "SmolLM2-135M-Instruct.Q4_1.gguf"
    model = Path(args[0] if args else os.path.expanduser("~/.cache/stepdown/models/" + default_model))
    out_dir = Path(args[1] if len(args) > 1 else
                   Path(__file__).resolve().parents[2] / "tests/golden" / ("gemma3" if gemma else "smollm2"))
    steps_per_prompt = 32 if gemma else STEPS
    prompts = GEMMA_PROMPTS if gemma else PROMPTS
    out_dir.mkdir(parents=True, exist_ok=True)
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_batch=512, logits_all=True, n_threads=2,
                          seed=0, verbose=False)

    result = {
        "model": model.name,
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "llama_cpp_python_version": llama_cpp.__version__,
        "steps": steps_per_prompt,
        "prompts": [],
    }
    for text in prompts:
        rendered = text if gemma else render_chatml(text)
        prompt_ids = llm.tokenize(rendered.encode("utf-8"), add_bos=gemma, special=True)
        llm.reset()
        llm.eval(prompt_ids)
        steps = []
        for _ in range(steps_per_prompt):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            order = np.argsort(-logits, kind="stable")[:TOP_N]
            chosen = int(order[0])
            steps.append({
                "id": chosen,
                "top_ids": [int(i) for i in order],
                "top_logits": [float(logits[i]) for i in order],
                "margin": float(logits[order[0]] - logits[order[1]]),
            })
            llm.eval([chosen])
        generated = [s["id"] for s in steps]
        result["prompts"].append({"text": text, "rendered": rendered, "prompt_ids": prompt_ids, "steps": steps})
        print(repr(llm.detokenize(generated).decode("utf-8", errors="replace")[:120]))
    (out_dir / "llamacpp_greedy.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
