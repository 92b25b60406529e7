#include "stepdown/quant/method.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <mutex>

#include "stepdown/core/error.h"
#include "stepdown/quant/builtin_methods.h"

namespace stepdown::quant {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A deque keeps pointers handed out by find_quant_method valid as methods are added.
struct Registry {
  std::mutex mutex;
  std::deque<QuantMethod> methods;
};

Registry& registry() {
  static Registry* r = [] {
    auto* created = new Registry;
    for (QuantMethod& m : builtin_quant_methods()) created->methods.push_back(std::move(m));
    return created;
  }();
  return *r;
}

}  // namespace

void register_quant_method(QuantMethod method) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  method.name = lower(method.name);
  if (method.name == "rtn") raise<InvalidArgument>("quant method 'rtn' is built in and cannot be registered");
  for (const QuantMethod& m : r.methods) {
    if (m.name == method.name) raise<InvalidArgument>("quant method '{}' is already registered", method.name);
  }
  r.methods.push_back(std::move(method));
}

const QuantMethod* find_quant_method(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const std::string key = lower(name);
  for (const QuantMethod& m : r.methods) {
    if (m.name == key) return &m;
  }
  return nullptr;
}

std::vector<std::string> quant_method_names() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names{"rtn"};
  for (const QuantMethod& m : r.methods) names.push_back(m.name);
  return names;
}

}  // namespace stepdown::quant
