#!/usr/bin/env python3
"""Generates the ROUGE and Porter stemmer fixtures under tests/golden/rouge/.

The oracle is Google's rouge-score (PyPI `rouge-score`, tested with 0.1.2) and the NLTK
PorterStemmer it calls (tested with nltk 3.10.4). Output is deterministic for a given seed:

  pairs.jsonl  one object per pair: target, prediction, and for "plain" and "stemmed"
               (use_stemmer False/True) the precision, recall and fmeasure of rouge1,
               rouge2, rougeL and rougeLsum.
  stems.tsv    word<TAB>stem from nltk.stem.porter.PorterStemmer().stem(word).

Usage: scripts/golden/make_rouge_fixtures.py [--seed 1234] [--pairs 1200] [--out DIR]
"""
import argparse
import json
import pathlib
import random

import nltk
import rouge_score
from nltk.stem import porter
from rouge_score import rouge_scorer

ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]

# Words chosen to exercise the rules of each stemmer step, NLTK's irregular forms, and
# its extensions (4-letter -ies/-ied, y after a vowel, -alli, -fulli, -logi, 2-letter *o).
STEMMER_WORDS = """
caresses ponies ties caress cats dies flies lies spies feed agreed bleed plastered bled
motoring sing conflated troubled sized hopping tanned falling hissing fizzed failing
filing died spied tied cried happy sky skies enjoy by spy fly try toy syzygy yoyo
relational conditional rational valenci hesitanci digitizer conformabli radicalli
differentli vileli analogousli vietnamization predication operator feudalism
decisiveness hopefulness callousness formaliti sensitiviti sensibiliti fruitfulli
geologi archaeologi theologi triplicate formative formalize electriciti electrical
hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible
irritant replacement adjustment dependent adoption homologou communism activate
angulariti homologous effective bowdlerize probate rate cease controll roll dying lying
tying news innings inning outings outing cannings canning howe proceed exceed succeed
generalization generalizations oscillators generously abilities agreement agreements
national nationalities emotional emotionally rationalization optimization optimizing
eed ied ies sses ing ed ational iveness ement ment ent ion sion tion ization fulness
running runner ran runs easily fairly crying played playing studies studying studied
universal university universe organization organize organizer connection connections
connective connected connecting relativity relatively hopelessness carefully wonderful
mississippi zzz aaaa yyyy yyyyy byyy ayyy 2020s 3rd 1990 abc123 x86 utf8 covid19
""".split()

COMMON_WORDS = """
the a an of to and in is it that for on with as was at by be this are from or have not
model answer question refund order account password shipping delivery invoice customer
quick brown fox jumps over lazy dog cat sat mat summary report policy return item
""".split()

NON_ASCII_WORDS = [
    "café", "résumé", "naïve", "Straße", "Ærø", "İstanbul", "ıldız", "K", "Å", "Ωmega",
    "東京", "日本語", "😀", "élan", "coöperate", "München", "São", "Paulo", "Łódź", "ﬁne",
    "Ⅻ", "²", "١٢٣", "Ⅳ", "ǅ", "ﬀ", "ΣΊΣΥΦΟΣ", "naïveté", "Zoë", "piñata",
]

PUNCTUATION = [",", ".", "!", "?", ";", ":", "-", "--", "'", "\"", "(", ")", "...", "/", "_", "@", "#", "$5", "%"]


def random_word(rng):
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(STEMMER_WORDS)
    if roll < 0.65:
        return rng.choice(COMMON_WORDS)
    if roll < 0.75:
        return rng.choice(NON_ASCII_WORDS)
    if roll < 0.82:
        return str(rng.randint(0, 10000))
    if roll < 0.90:
        return rng.choice(COMMON_WORDS).upper() if rng.random() < 0.5 else rng.choice(STEMMER_WORDS).title()
    return rng.choice(COMMON_WORDS) + rng.choice(PUNCTUATION) + rng.choice(COMMON_WORDS)


def random_sentence(rng, length):
    words = [random_word(rng) for _ in range(length)]
    out = []
    for word in words:
        out.append(word)
        if rng.random() < 0.15:
            out.append(rng.choice(PUNCTUATION))
    separator = rng.choice([" ", " ", " ", "  ", "\t", " \u00a0 "])
    return separator.join(out)


def random_text(rng, multiline):
    if not multiline:
        return random_sentence(rng, rng.randint(0, 25))
    lines = [random_sentence(rng, rng.randint(0, 12)) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.3:
        lines.insert(rng.randint(0, len(lines)), "")
    if rng.random() < 0.2:
        lines.insert(rng.randint(0, len(lines)), "   ")
    joiner = "\r\n" if rng.random() < 0.1 else "\n"
    text = joiner.join(lines)
    if rng.random() < 0.2:
        text += "\n"
    return text


def perturb(rng, text):
    """A prediction that shares much of `text`: words dropped, swapped, replaced, added."""
    lines = text.split("\n")
    new_lines = []
    for line in lines:
        words = line.split(" ")
        result = []
        for word in words:
            roll = rng.random()
            if roll < 0.15:
                continue
            if roll < 0.30:
                result.append(random_word(rng))
            elif roll < 0.40:
                result.extend([word, random_word(rng)])
            else:
                result.append(word)
        if len(result) > 1 and rng.random() < 0.3:
            i = rng.randrange(len(result) - 1)
            result[i], result[i + 1] = result[i + 1], result[i]
        new_lines.append(" ".join(result))
    if len(new_lines) > 1 and rng.random() < 0.3:
        rng.shuffle(new_lines)
    return "\n".join(new_lines)


def hand_written_pairs():
    pairs = [
        ("", ""),
        ("", "something"),
        ("something", ""),
        (" ", " "),
        ("\n\n\n", "\n"),
        ("\t \n \r\n", "words here"),
        ("...", "!!!"),
        ("the the the the", "the"),
        ("the", "the the the the"),
        ("a a a b b b", "b b b a a a"),
        ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
        ("Hello, world!", "hello world"),
        ("don't stop-believing", "dont stop believing"),
        ("İstanbul Kelvin K", "i stanbul kelvin k"),
        ("café naïve résumé", "caf na ve r sum"),
        ("東京 タワー", "東京"),
        ("version 2.0.1 released", "version 2 0 1"),
        ("caresses ponies ties", "caress poni ti"),
        ("generalizations oscillators", "generalization oscillator"),
        ("first line\nsecond line", "second line\nfirst line"),
        ("a b c\nd e f\ng h i", "a d g\nb e h\nc f i"),
        ("one sentence only", "one\nsentence\nonly"),
        ("x\n\n\ny", "y\n\n\nx"),
        ("running runner runs ran", "run run run run"),
        ("relational conditional rational", "relate condition rational"),
    ]
    for word in STEMMER_WORDS:
        pairs.append((word, porter.PorterStemmer().stem(word)))
    return pairs


def score_pair(scorers, target, prediction):
    record = {"target": target, "prediction": prediction}
    for name, scorer in scorers.items():
        scores = scorer.score(target, prediction)
        record[name] = {
            rouge_type: [scores[rouge_type].precision, scores[rouge_type].recall, scores[rouge_type].fmeasure]
            for rouge_type in ROUGE_TYPES
        }
    return record


def stem_words(rng):
    words = list(dict.fromkeys(STEMMER_WORDS + [w.lower() for w in COMMON_WORDS]))
    letters = "abcdefghijklmnopqrstuvwxyz"
    suffixes = ["sses", "ies", "ss", "s", "eed", "ied", "ed", "ing", "at", "bl", "iz", "y", "ational", "tional",
                "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization", "ation", "ator", "alism",
                "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli", "logi", "icate", "ative",
                "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible", "ant",
                "ement", "ment", "ent", "sion", "tion", "ou", "ism", "ate", "iti", "ous", "ive", "ize", "e", "ll"]
    for _ in range(3000):
        stem = "".join(rng.choice(letters if rng.random() < 0.6 else "aeiouy") for _ in range(rng.randint(0, 7)))
        words.append(stem + rng.choice(suffixes))
    for _ in range(200):
        words.append("".join(rng.choice(letters + "0123456789") for _ in range(rng.randint(1, 10))))
    words = [w for w in dict.fromkeys(words) if w]
    stemmer = porter.PorterStemmer()
    return [(word, stemmer.stem(word)) for word in words]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--pairs", type=int, default=1200, help="random pairs added to the hand-written ones")
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "rouge")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    scorers = {
        "plain": rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=False),
        "stemmed": rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True),
    }

    pairs = hand_written_pairs()
    for _ in range(args.pairs):
        multiline = rng.random() < 0.4
        target = random_text(rng, multiline)
        roll = rng.random()
        if roll < 0.6:
            prediction = perturb(rng, target)
        elif roll < 0.9:
            prediction = random_text(rng, multiline)
        else:
            prediction = rng.choice(["", " ", "\n", target, target.upper()])
        pairs.append((target, prediction))

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "pairs.jsonl", "w", encoding="utf-8") as f:
        for target, prediction in pairs:
            f.write(json.dumps(score_pair(scorers, target, prediction), ensure_ascii=False) + "\n")
    with open(args.out / "stems.tsv", "w", encoding="utf-8") as f:
        f.write(f"# word\tstem from nltk {nltk.__version__} PorterStemmer (rouge-score {rouge_score_version()})\n")
        for word, stem in stem_words(rng):
            f.write(f"{word}\t{stem}\n")
    print(f"wrote {len(pairs)} pairs and stems to {args.out}")


def rouge_score_version():
    from importlib import metadata
    return metadata.version("rouge-score")


if __name__ == "__main__":
    main()
