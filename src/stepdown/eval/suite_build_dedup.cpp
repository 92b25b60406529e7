// Near-duplicate detection for suite building: MinHash signatures of 3-word shingles,
// locality-sensitive hashing (LSH) over bands of the signature to find candidate pairs,
// and the exact Jaccard similarity of the shingle sets to confirm each candidate.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <utf8proc.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/suite_build.h"

namespace stepdown::eval {
namespace {

constexpr size_t kShingleWords = 3;
constexpr size_t kSignatureSize = 128;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view text, uint64_t hash = 0xCBF29CE484222325ull) {
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

bool is_word_character(utf8proc_int32_t code_point) {
  switch (utf8proc_category(code_point)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}

// Lowercased runs of letters and digits; everything else separates words.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t code_point = -1;
    utf8proc_ssize_t length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
                                               static_cast<utf8proc_ssize_t>(text.size() - offset), &code_point);
    if (length <= 0) {
      length = 1;
      code_point = -1;
    }
    offset += static_cast<size_t>(length);
    if (code_point >= 0 && is_word_character(code_point)) {
      utf8proc_uint8_t encoded[4];
      const utf8proc_ssize_t size = utf8proc_encode_char(utf8proc_tolower(code_point), encoded);
      current.append(reinterpret_cast<const char*>(encoded), static_cast<size_t>(size));
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

// Sorted, unique hashes of the text's shingles. A text shorter than a shingle is one
// shingle of all its words, so short texts are compared whole.
std::vector<uint64_t> shingle_set(std::string_view text) {
  const std::vector<std::string> words = words_of(text);
  std::vector<uint64_t> shingles;
  const size_t count = words.size() < kShingleWords ? 1 : words.size() - kShingleWords + 1;
  for (size_t start = 0; start < count; ++start) {
    uint64_t hash = 0xCBF29CE484222325ull;
    for (size_t i = start; i < std::min(words.size(), start + kShingleWords); ++i) {
      hash = fnv1a(words[i], hash);
      hash = fnv1a("\x1f", hash);  // a separator, so "ab c" and "a bc" differ
    }
    shingles.push_back(hash);
  }
  std::sort(shingles.begin(), shingles.end());
  shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
  return shingles;
}

double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t common = 0;
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) {
      ++common;
      ++i;
      ++j;
    } else if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  const size_t union_size = a.size() + b.size() - common;
  return union_size == 0 ? 1.0 : static_cast<double>(common) / static_cast<double>(union_size);
}

std::vector<uint64_t> minhash_signature(const std::vector<uint64_t>& shingles) {
  std::vector<uint64_t> signature(kSignatureSize, UINT64_MAX);
  for (uint64_t shingle : shingles) {
    for (size_t k = 0; k < kSignatureSize; ++k) {
      signature[k] = std::min(signature[k], splitmix64(shingle ^ splitmix64(k + 1)));
    }
  }
  return signature;
}

// Rows per LSH band. A pair with Jaccard similarity s shares at least one band with
// probability 1 - (1 - s^rows)^(128 / rows). This picks the largest band, which gives the
// fewest false candidates to confirm, whose miss probability at the threshold is below
// 1e-6, and 1 row when none is.
size_t rows_per_band(double threshold) {
  size_t best = 1;
  for (size_t rows : {1, 2, 4, 8, 16}) {
    const double bands = static_cast<double>(kSignatureSize / rows);
    const double miss = std::pow(1.0 - std::pow(threshold, static_cast<double>(rows)), bands);
    if (miss < 1e-6) best = rows;
  }
  return best;
}

}  // namespace

std::vector<size_t> find_near_duplicates(const std::vector<std::string>& texts, double threshold) {
  if (!(threshold > 0.0 && threshold <= 1.0)) {
    raise<InvalidArgument>("near-duplicate threshold must be in (0, 1], got {}", threshold);
  }
  // NOTE: below a threshold of about 0.11 even 1-row bands miss more than 1 in 10^6
  // pairs at the threshold, so a few near-duplicates can survive.
  const size_t rows = rows_per_band(threshold);
  const size_t bands = kSignatureSize / rows;

  std::vector<std::vector<uint64_t>> shingles(texts.size());
  std::unordered_map<uint64_t, std::vector<size_t>> buckets;  // (band, band hash) -> kept texts
  std::vector<size_t> duplicates;
  for (size_t index = 0; index < texts.size(); ++index) {
    shingles[index] = shingle_set(texts[index]);
    const std::vector<uint64_t> signature = minhash_signature(shingles[index]);
    std::vector<uint64_t> keys(bands);
    for (size_t band = 0; band < bands; ++band) {
      uint64_t key = splitmix64(band);
      for (size_t r = 0; r < rows; ++r) key = splitmix64(key ^ signature[band * rows + r]);
      keys[band] = key;
    }

    std::unordered_set<size_t> candidates;
    for (uint64_t key : keys) {
      auto it = buckets.find(key);
      if (it != buckets.end()) candidates.insert(it->second.begin(), it->second.end());
    }
    bool duplicate = false;
    for (size_t candidate : candidates) {
      if (jaccard(shingles[index], shingles[candidate]) >= threshold) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) {
      duplicates.push_back(index);
      shingles[index].clear();
      continue;
    }
    for (uint64_t key : keys) buckets[key].push_back(index);
  }
  return duplicates;
}

}  // namespace stepdown::eval
