#pragma once
// Target devices and latency prediction for the climb: decide's one entry to device
// profiles (bench/device_profile.h) and the latency model (bench/latency_predict.h).
#include <map>
#include <string>
#include <vector>

#include "stepdown/bench/device_profile.h"
#include "stepdown/bench/host_info.h"
#include "stepdown/bench/latency_predict.h"

namespace stepdown::decide {

using DeviceProfile = bench::DeviceProfile;
using ModelCost = bench::ModelCost;
using Efficiency = bench::Efficiency;
using LatencyPrediction = bench::LatencyPrediction;

// Results of the host probes, measured once per host: peak compute and weight streaming rate per
// precision key ("f32", "bf16", "int8", ...).
struct HostProbes {
  std::map<std::string, double> peak_tflops;
  std::map<std::string, double> streaming_gb_per_s;
};

// The profile of a target named in the policy: "host" (this machine with the measured
// bandwidth and probes), a builtin profile name, or a YAML file path. Throws
// InvalidArgument listing the known names for anything else.
DeviceProfile resolve_device(const std::string& name_or_path, double host_read_bandwidth_gbps,
                             const bench::HostInfo& host, const HostProbes& probes);

// Predicts `cost` on `device` at the efficiency a measured run reached on `host`.
LatencyPrediction predict(const DeviceProfile& device, const ModelCost& cost, const Efficiency& efficiency);

// The efficiency that makes predict() on `host` return the measured TTFT and TPOT.
Efficiency calibrate(const DeviceProfile& host, const ModelCost& cost, double measured_ttft_ms,
                     double measured_tpot_ms);

// `calibrated` (measured with a model of `precision`) spread over the other precisions in
// proportion to how fast this host's kernels stream each format. For predictions on this
// host only. Returns `calibrated` unchanged when the probes lack `precision`.
Efficiency for_host_formats(const Efficiency& calibrated, const std::string& precision, const HostProbes& probes);

}  // namespace stepdown::decide
