#include "stepdown/quant/format.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <mutex>

#include "stepdown/core/error.h"
#include "stepdown/quant/builtin_formats.h"
#include "stepdown/quant/stepdown_schemes.h"

namespace stepdown::quant {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A deque keeps pointers handed out by find_quant_format valid as formats are added.
struct Registry {
  std::mutex mutex;
  std::deque<QuantFormat> formats;
};

Registry& registry() {
  static Registry* r = [] {
    auto* created = new Registry;
    for (QuantFormat& f : builtin_quant_formats()) created->formats.push_back(std::move(f));
    for (QuantFormat& f : stepdown_quant_formats()) created->formats.push_back(std::move(f));
    return created;
  }();
  return *r;
}

}  // namespace

void register_quant_format(QuantFormat format) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  format.name = lower(format.name);
  for (const QuantFormat& f : r.formats) {
    if (f.name == format.name) raise<InvalidArgument>("quant format '{}' is already registered", format.name);
  }
  r.formats.push_back(std::move(format));
}

const QuantFormat* find_quant_format(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const std::string key = lower(name);
  for (const QuantFormat& f : r.formats) {
    if (f.name == key) return &f;
  }
  return nullptr;
}

const QuantFormat* find_quant_format(DType dtype) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const QuantFormat& f : r.formats) {
    if (f.dtype == dtype) return &f;
  }
  return nullptr;
}

std::vector<std::string> quant_format_names() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const QuantFormat& f : r.formats) names.push_back(f.name);
  return names;
}

}  // namespace stepdown::quant
