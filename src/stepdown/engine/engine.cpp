#include "stepdown/engine/engine.h"

namespace stepdown::engine {

std::vector<GenerationResult> Engine::generate_all(const std::vector<GenerationRequest>& requests,
                                                   const ProgressCallback& progress) {
  std::vector<GenerationResult> results;
  results.reserve(requests.size());
  for (const GenerationRequest& request : requests) {
    results.push_back(generate(request));
    if (progress) progress(results.size(), requests.size());
  }
  return results;
}

}  // namespace stepdown::engine
