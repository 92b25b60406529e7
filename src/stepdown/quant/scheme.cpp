#include "stepdown/quant/scheme.h"

#include <deque>
#include <mutex>
#include <regex>

#include "stepdown/core/error.h"
#include "stepdown/quant/stepdown_schemes.h"

namespace stepdown::quant {
namespace {

struct SchemeRegistry {
  std::mutex mutex;
  std::deque<Scheme> schemes;
};

// general.file_type values are ggml's llama_ftype: ALL_F32 0, MOSTLY_F16 1, Q4_0 2,
// Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q4_K_S 14, Q5_K_S 16, Q6_K 18, BF16 32. A pure K-quant
// file is closest to the _S variants.
SchemeRegistry& scheme_registry() {
  static SchemeRegistry* r = [] {
    auto* created = new SchemeRegistry;
    const auto add = [&](const char* name, uint32_t ftype, const char* description) {
      created->schemes.push_back(Scheme{name, name, ftype, description});
    };
    add("f32", 0, "every weight in F32");
    add("f16", 1, "2-D weights in IEEE F16");
    add("bf16", 32, "2-D weights in BF16");
    add("q8_0", 7, "2-D weights in Q8_0 (8.5 bpw)");
    add("q4_0", 2, "2-D weights in Q4_0 (4.5 bpw)");
    add("q4_1", 3, "2-D weights in Q4_1 (5.0 bpw)");
    add("q5_0", 8, "2-D weights in Q5_0 (5.5 bpw)");
    add("q5_1", 9, "2-D weights in Q5_1 (6.0 bpw)");
    add("q4_k", 14, "2-D weights in Q4_K (4.5 bpw)");
    add("q5_k", 16, "2-D weights in Q5_K (5.5 bpw)");
    add("q6_k", 18, "2-D weights in Q6_K (6.5625 bpw)");
    for (Scheme& s : stepdown_quant_schemes()) created->schemes.push_back(std::move(s));
    return created;
  }();
  return *r;
}

bool is_regex(std::string_view pattern) { return pattern.find_first_of("^$()[]+|\\{}") != std::string_view::npos; }

bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const QuantFormat* fallback_format(const QuantFormat& format, int64_t cols) {
  const QuantFormat* current = &format;
  while (!row_fits(*current, cols)) {
    std::string next;
    if (!current->fallback.empty()) next = current->fallback;
    else if (current->name == "q4_k") next = "q5_0";
    else if (current->name == "q5_k") next = "q5_1";
    else if (current->name == "q6_k") next = "q8_0";
    else next = "f16";
    current = find_quant_format(next);
  }
  return current;
}

}  // namespace

void register_scheme(Scheme scheme) {
  SchemeRegistry& r = scheme_registry();
  std::lock_guard lock(r.mutex);
  for (const Scheme& s : r.schemes) {
    if (s.name == scheme.name) raise<InvalidArgument>("scheme '{}' is already registered", scheme.name);
  }
  r.schemes.push_back(std::move(scheme));
}

const Scheme* find_scheme(std::string_view name) {
  SchemeRegistry& r = scheme_registry();
  std::lock_guard lock(r.mutex);
  for (const Scheme& s : r.schemes) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<std::string> scheme_names() {
  SchemeRegistry& r = scheme_registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const Scheme& s : r.schemes) names.push_back(s.name);
  return names;
}

TensorOverride parse_override(std::string_view text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    raise<InvalidArgument>("--override '{}': expected PATTERN=TYPE, e.g. 'token_embd.weight=q8_0'", text);
  }
  TensorOverride rule{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
  if (find_quant_format(rule.format) == nullptr) {
    std::string known;
    for (const std::string& n : quant_format_names()) known += (known.empty() ? "" : ", ") + n;
    raise<InvalidArgument>("--override '{}': unknown type '{}' (known: {})", text, rule.format, known);
  }
  if (is_regex(rule.pattern)) {
    try {
      std::regex check(rule.pattern);
    } catch (const std::regex_error& e) {
      raise<InvalidArgument>("--override '{}': invalid regex '{}': {}", text, rule.pattern, e.what());
    }
  }
  return rule;
}

bool override_matches(const TensorOverride& rule, std::string_view tensor_name) {
  if (is_regex(rule.pattern)) {
    return std::regex_match(tensor_name.begin(), tensor_name.end(), std::regex(rule.pattern));
  }
  return glob_match(rule.pattern, tensor_name);
}

const QuantFormat* output_head_format(const QuantFormat& planned, std::string_view tensor_name) {
  if (tensor_name != "output.weight" && tensor_name != "token_embd.weight") return nullptr;
  switch (planned.dtype) {
    case DType::INT8_W8A8:
    case DType::INT8_OUTLIER: return find_quant_format(DType::INT8);
    case DType::FP8_E4M3_A8: return find_quant_format(DType::FP8_E4M3);
    default: return nullptr;
  }
}

std::vector<TensorPlan> plan_tensors(const std::vector<TensorView>& tensors, const Scheme& scheme,
                                     const std::vector<TensorOverride>& overrides) {
  const QuantFormat* weight_format = find_quant_format(scheme.weight_format);
  const QuantFormat* f32 = find_quant_format("f32");
  if (weight_format == nullptr) {
    raise<InvalidArgument>("scheme '{}' names unregistered format '{}'", scheme.name, scheme.weight_format);
  }
  std::vector<TensorPlan> plans;
  for (const TensorView& t : tensors) {
    TensorPlan plan{t.name, nullptr, {}};
    // Norm weights and biases stay F32 even when a pattern matches them, because
    // llama.cpp multiplies activations by them as F32.
    if (t.shape.size() < 2) {
      plans.push_back({t.name, f32, "1-D tensor"});
      continue;
    }
    for (const TensorOverride& rule : overrides) {
      if (override_matches(rule, t.name)) {
        plan.format = find_quant_format(rule.format);
        plan.note = "override '" + rule.pattern + "=" + rule.format + "'";
      }
    }
    if (plan.format != nullptr) {
      if (!row_fits(*plan.format, t.cols())) {
        raise<InvalidArgument>("tensor '{}': row length {} is not a multiple of {}'s block of {} values ({})",
                               t.name, t.cols(), plan.format->name, plan.format->block_elems, plan.note);
      }
    } else {
      plan.format = fallback_format(*weight_format, t.cols());
      if (plan.format != weight_format) {
        plan.note = "fallback: row length " + std::to_string(t.cols()) + " is not a multiple of " +
                    weight_format->name + "'s block of " + std::to_string(weight_format->block_elems);
      }
      if (const QuantFormat* twin = output_head_format(*plan.format, t.name)) {
        plan.format = twin;
        plan.note = "output head: weights only, activations stay f32";
      }
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace stepdown::quant
