#include "stepdown/decide/render.h"

#include <spdlog/spdlog.h>

namespace stepdown::decide {

void render_reports(const nlohmann::json& decision, const std::filesystem::path& out_dir) {
  // NOTE: the renderer (write_reports in decide/report.h) is not in this build yet, so the
  // output folder has decision.json but no report.md or report.html.
  spdlog::info("report.md and report.html are not rendered by this build; decision.json has every figure");
}

}  // namespace stepdown::decide
