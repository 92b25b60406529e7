#include "stepdown/decide/devices.h"

#include <spdlog/spdlog.h>

#include "stepdown/core/error.h"

namespace stepdown::decide {

DeviceProfile resolve_device(const std::string& name_or_path, double host_read_bandwidth_gbps,
                             const bench::HostInfo& host, const HostProbes& probes) {
  if (name_or_path == "host") {
    return probes.peak_tflops.empty() ? bench::host_device_profile(host_read_bandwidth_gbps, host)
                                      : bench::host_device_profile(host_read_bandwidth_gbps, host, probes.peak_tflops);
  }
  return bench::resolve_device_profile(name_or_path);
}

LatencyPrediction predict(const DeviceProfile& device, const ModelCost& cost, const Efficiency& efficiency) {
  return bench::predict_latency(device, cost, efficiency);
}

Efficiency calibrate(const DeviceProfile& host, const ModelCost& cost, double measured_ttft_ms,
                     double measured_tpot_ms) {
  return bench::calibrate_efficiency(host, cost, measured_ttft_ms, measured_tpot_ms);
}

Efficiency for_host_formats(const Efficiency& calibrated, const std::string& precision, const HostProbes& probes) {
  if (!probes.streaming_gb_per_s.contains(precision)) return calibrated;
  return bench::with_host_format_bandwidth(calibrated, precision, probes.streaming_gb_per_s);
}

}  // namespace stepdown::decide
