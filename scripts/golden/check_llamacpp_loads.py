#!/usr/bin/env python3
"""Check that llama.cpp (llama-cpp-python) loads a GGUF written by `stepdown quantize` and
print its greedy continuation, e.g. for stories260K written with its tokenizer embedded:

  build/tools/stepdown/stepdown quantize ../shared/models/stories260K/stories260K.bin \
      --tokenizer ../shared/models/stories260K/tok512.bin --scheme q8_0 -o /tmp/s.gguf
  scripts/golden/check_llamacpp_loads.py /tmp/s.gguf "Once upon a time"

Exits non-zero when llama.cpp fails to load the file.
"""
import sys

import llama_cpp


def main():
    path = sys.argv[1]
    prompt = sys.argv[2] if len(sys.argv) > 2 else ""
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=2, seed=0, logits_all=True, verbose=False)
    ids = llm.tokenize(prompt.encode(), add_bos=True)
    llm.eval(ids)
    out = []
    for _ in range(n):
        token = int(max(range(llm.n_vocab()), key=lambda i: llm.scores[llm.n_tokens - 1][i]))
        if token == llm.token_eos():
            break
        out.append(token)
        llm.eval([token])
    print("prompt ids:", ids)
    print("greedy ids:", out)
    print("text:", repr(prompt + llm.detokenize(out).decode("utf-8", errors="replace")))


if __name__ == "__main__":
    main()
