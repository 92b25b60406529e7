#pragma once
// `stepdown eval` and `stepdown suite golden` without the command line: turn suite items
// into generation requests, run them through an Engine, score every output with the
// item's metrics, and collect per-item results with per-stratum aggregates.
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "stepdown/engine/engine.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/results.h"
#include "stepdown/eval/suite.h"

namespace stepdown::eval {

// The greedy request for `item`: its prompt or messages, max_tokens, temperature 0.
engine::GenerationRequest request_for(const SuiteItem& item);

// Generates every item through `engine`, with a progress bar labelled `label`. A failure
// is rethrown as the same error type naming the item id (the first item of a failing
// batch when the engine does not say which).
std::vector<engine::GenerationResult> generate_items(std::span<const SuiteItem> items, engine::Engine& engine,
                                                     const std::string& label);

// Scores `outputs[i]` for `items[i]` with each of the item's metrics, created from
// `registry` once per name. Throws InvalidArgument naming the item and metric on failure.
std::vector<ItemResult> score_items(std::span<const SuiteItem> items,
                                    std::span<const engine::GenerationResult> outputs,
                                    const MetricRegistry& registry, const MetricOptions& options);

// Generates and scores every item; results carry items and aggregates, the caller fills
// the model and suite identity. Nothing is returned unless every item finished.
Results run_eval(std::span<const SuiteItem> items, engine::Engine& engine, const MetricRegistry& registry,
                 const MetricOptions& options);

// Every item with a reference: items whose reference a person wrote keep it (source
// human); every other item gets the engine's greedy output as its reference (source
// golden). Returns how many items were generated through `count_generated` when not null.
std::vector<SuiteItem> make_goldens(std::span<const SuiteItem> items, engine::Engine& engine,
                                    size_t* count_generated = nullptr);

// Lowercase hex SHA-256 of a file, or of a directory's regular files (sorted relative
// paths, each path then its bytes). Throws IoError naming the path when it cannot be read.
std::string sha256_path(const std::filesystem::path& path);
// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace stepdown::eval
