#include "stepdown/decide/render.h"

#include "stepdown/decide/report.h"

namespace stepdown::decide {

void render_reports(const nlohmann::json& decision, const std::filesystem::path& out_dir) {
  write_reports(decision, out_dir);
}

}  // namespace stepdown::decide
