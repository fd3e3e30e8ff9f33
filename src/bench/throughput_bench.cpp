// The prefill / decode benchmark logic (throughput_bench.h): argument checks, the measurement loop
// (warm-up, timed repetitions, energy window), metrics, error classification, the case JSONs and
// the case marker. Nothing here knows the engine; the GPU is touched only by query_host_record
// and cuda_context_fault.
#include "bench/throughput_bench.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <system_error>

#include "cuda/device_info.h"
#include "cuda/timing.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "slidesparse/build_info.h"
#include "slidesparse/error.h"
#include "slidesparse/tuning/tuning_db.h"

namespace slidesparse {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string iso_time_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::ostringstream os;
  os << std::put_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return os.str();
}

// Single-quoted for a POSIX shell unless every character is plainly safe.
std::string shell_quote(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_./:,=+-@").find(c) != std::string_view::npos;
  });
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string fixed(double value, int precision) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << value;
  return os.str();
}

int default_task(const std::string& stage) {
  if (stage == "simple") return 5;
  return stage == "decode" ? 7 : 6;
}

// Prompts of one case: random token ids in [0, vocab) from a fixed seed, so every backend sees
// the same tokens.
std::vector<std::vector<int32_t>> make_prompts(const CasePlan& plan, int64_t vocab, uint64_t seed) {
  SS_REQUIRE(vocab >= 1, "bench: the model reports a vocabulary of " << vocab << " tokens");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(plan.sequences));
  for (auto& prompt : prompts) {
    prompt.resize(static_cast<size_t>(plan.prompt_len));
    for (auto& t : prompt) t = token(rng);
  }
  return prompts;
}

void check_step(const StepOutcome& step, const CasePlan& plan, int64_t vocab, const char* what) {
  SS_REQUIRE(static_cast<int64_t>(step.tokens.size()) == plan.sequences,
             "bench: the " << what << " step returned " << step.tokens.size()
                           << " tokens for a batch of " << plan.sequences << " sequences");
  for (int32_t t : step.tokens)
    SS_REQUIRE(t >= 0 && t < vocab, "bench: the " << what << " step sampled token " << t
                                                  << ", outside the vocabulary [0, " << vocab
                                                  << ")");
}

// Ends the batch it guards unless told it already ended; a failure to end it is reported, never
// thrown (it runs while another error propagates).
class BatchGuard {
 public:
  BatchGuard(ThroughputModel& model, std::ostream& out) : model_(model), out_(out) {}
  ~BatchGuard() {
    if (!open_) return;
    try {
      model_.end_batch();
    } catch (const std::exception& e) {
      out_ << "  (end_batch after the error failed too: " << e.what() << ")\n";
    }
  }
  BatchGuard(const BatchGuard&) = delete;
  BatchGuard& operator=(const BatchGuard&) = delete;
  void opened() { open_ = true; }
  void close() {
    open_ = false;
    model_.end_batch();
  }

 private:
  ThroughputModel& model_;
  std::ostream& out_;
  bool open_ = false;
};

// One repetition: start_batch, prefill, `decode_steps` decode steps, end_batch.
RepetitionSample run_repetition(ThroughputModel& model, const CasePlan& plan,
                                std::span<const std::vector<int32_t>> prompts,
                                std::span<const int64_t> max_tokens, int64_t decode_steps,
                                int64_t vocab, std::ostream& out) {
  RepetitionSample sample;
  sample.decode_gpu_ms.reserve(static_cast<size_t>(decode_steps));
  BatchGuard batch(model, out);
  const auto start = Clock::now();
  model.start_batch(max_tokens);
  batch.opened();
  const StepOutcome first = model.prefill(prompts);
  check_step(first, plan, vocab, "prefill");
  sample.prefill_gpu_ms = first.gpu_ms;
  for (int64_t s = 0; s < decode_steps; ++s) {
    const StepOutcome step = model.decode();
    check_step(step, plan, vocab, "decode");
    sample.decode_gpu_ms.push_back(step.gpu_ms);
  }
  sample.elapsed_s = seconds_since(start);
  batch.close();
  return sample;
}

// Stops the energy window of a case that throws, so the sampler does not outlive it.
class EnergyWindow {
 public:
  explicit EnergyWindow(EnergyMeter* meter) : meter_(meter) {
    if (meter_ != nullptr) meter_->start();
  }
  ~EnergyWindow() {
    if (meter_ != nullptr && !stopped_) meter_->stop(0);
  }
  EnergyWindow(const EnergyWindow&) = delete;
  EnergyWindow& operator=(const EnergyWindow&) = delete;
  EnergyReading stop(double window_s, const std::string& absent_note) {
    stopped_ = true;
    if (meter_ == nullptr) {
      EnergyReading none;
      none.note = absent_note;
      return none;
    }
    return meter_->stop(window_s);
  }

 private:
  EnergyMeter* meter_;
  bool stopped_ = false;
};

ThroughputMetrics measure_case(ThroughputModel& model, const ThroughputOptions& options,
                               const CasePlan& plan, ThroughputEnvironment& env,
                               std::ostream& out) {
  const int64_t vocab = model.vocab_size();
  const auto prompts = make_prompts(plan, vocab, options.prompt_seed);
  const std::vector<int64_t> max_tokens(static_cast<size_t>(plan.sequences),
                                        plan.kv_tokens_per_sequence());
  const int64_t warmup_steps = std::min<int64_t>(kDecodeWarmupSteps, plan.decode_steps());
  for (int w = 0; w < options.warmup; ++w)
    run_repetition(model, plan, prompts, max_tokens, warmup_steps, vocab, out);

  std::vector<RepetitionSample> samples;
  EnergyWindow window(env.energy);
  const auto timed_start = Clock::now();
  while (static_cast<int>(samples.size()) < options.repeats ||
         (seconds_since(timed_start) < options.min_timed_s &&
          static_cast<int>(samples.size()) < kMaxRepeats)) {
    samples.push_back(
        run_repetition(model, plan, prompts, max_tokens, plan.decode_steps(), vocab, out));
  }
  const double timed_s = seconds_since(timed_start);
  const EnergyReading energy = window.stop(timed_s, env.energy_absent_note);
  return compute_metrics(plan, samples, timed_s, energy, options.warmup);
}

std::string describe_metrics_line(const ThroughputMetrics& m) {
  std::ostringstream os;
  os << "tokens/s " << std::setw(11) << fixed(m.tokens_per_s, 1) << "  output tokens/s "
     << std::setw(10) << fixed(m.output_tokens_per_s, 1) << "  step " << fixed(m.step_ms_median, 3)
     << " ms  J/token ";
  if (m.joules_per_token)
    os << std::setprecision(4) << *m.joules_per_token;
  else
    os << "-";
  os << "  (" << m.repeats << " timed, " << m.warmup << " warm-up)";
  return os.str();
}

class CaseMarker {
 public:
  explicit CaseMarker(std::optional<fs::path> path) : path_(std::move(path)) {}
  void set(const std::string& case_file) const {
    if (path_) write_file_atomic(*path_, case_file + "\n");
  }
  void clear() const {
    if (!path_) return;
    std::error_code ignored;
    fs::remove(*path_, ignored);
  }

 private:
  std::optional<fs::path> path_;
};

}  // namespace

ThroughputOptions validate_throughput_args(ThroughputPhase phase, const ThroughputArgs& args) {
  const std::string where = "bench " + std::string(phase_name(phase)) + ": ";
  ThroughputOptions o;
  o.phase = phase;
  auto fail = [&](const std::string& option, const std::string& why) {
    throw Error(where + option + ": " + why);
  };

  if (args.model.empty())
    fail("--model", "a model name (models/<NAME>.json) or config.json path is required");
  try {
    o.model_name = resolve_model(args.model).name;
  } catch (const Error& e) {
    fail("--model", e.what());
  }
  o.model = args.model;

  try {
    o.dtype = parse_dtype(args.dtype);
  } catch (const Error& e) {
    fail("--dtype", e.what());
  }
  if (o.dtype != DType::kI8 && o.dtype != DType::kFP8E4M3 && o.dtype != DType::kBF16)
    fail("--dtype", "'" + args.dtype + "' is not a compute dtype; accepted: int8, fp8, bf16");

  try {
    o.backend = parse_bench_backend(args.backend);
  } catch (const Error& e) {
    fail("--backend", e.what());
  }
  if (!args.sparsity.empty()) {
    try {
      o.sparsity = Sparsity::parse(args.sparsity);
    } catch (const Error& e) {
      fail("--sparsity", e.what());
    }
  }
  if (o.backend.backend == GemmBackend::kCusparseLt && !o.sparsity)
    fail("--sparsity", "backend cusparselt needs a Z:L pattern (2:4, 2:6, 2:8, 2:10, ...)");
  if (o.backend.backend == GemmBackend::kCublasLt && o.sparsity)
    fail("--sparsity",
         "backend " + o.backend.name +
             " is the dense baseline and takes no pattern (use --backend cusparselt)");

  if (args.ms.empty()) fail("--M", "at least one M is required");
  std::set<int64_t> seen;
  for (int64_t m : args.ms) {
    if (m < 1) fail("--M", "M must be >= 1, got " + std::to_string(m));
    if (!seen.insert(m).second) fail("--M", "M = " + std::to_string(m) + " is listed twice");
  }
  o.ms = args.ms;

  const bool prefill = phase == ThroughputPhase::kPrefill;
  o.warmup = args.warmup.value_or(prefill ? kPrefillDefaultWarmup : kDecodeDefaultWarmup);
  o.repeats = args.repeats.value_or(prefill ? kPrefillDefaultRepeats : kDecodeDefaultRepeats);
  if (o.warmup < 0 || o.warmup > 1000)
    fail("--warmup", "takes 0 ... 1000, got " + std::to_string(o.warmup));
  if (o.repeats < 1 || o.repeats > kMaxRepeats)
    fail("--repeats",
         "takes 1 ... " + std::to_string(kMaxRepeats) + ", got " + std::to_string(o.repeats));
  o.min_timed_s = args.min_time_s.value_or(kDefaultMinTimedSeconds);
  if (!(o.min_timed_s >= 0 && o.min_timed_s <= 600))
    fail("--min-time", "takes 0 ... 600 seconds, got " + std::to_string(o.min_timed_s));

  try {
    o.epilogue = parse_epilogue(args.epilogue);
  } catch (const Error& e) {
    fail("--epilogue", e.what());
  }
  o.use_tuning = !args.no_tuning;

  o.stage = args.stage.empty() ? std::string(phase_name(phase)) : args.stage;
  if (o.stage != phase_name(phase) && o.stage != "simple")
    fail("--stage", "bench " + std::string(phase_name(phase)) + " records stage " +
                        std::string(phase_name(phase)) + " or simple, not '" + o.stage + "'");
  o.task = args.task.value_or(default_task(o.stage));
  if (o.task < 0) fail("--task", "must be >= 0, got " + std::to_string(o.task));
  if (!args.json_dir.empty()) o.json_dir = fs::path(args.json_dir);
  if (!args.case_marker.empty()) o.case_marker = fs::path(args.case_marker);
  return o;
}

fs::path default_json_dir(const ThroughputOptions& options, const HostRecord& host) {
  fs::path dir =
      fs::path("results") / options.stage /
      result_folder_name(host.gpu_short_name, host.cc, dtype_name(options.dtype), host.toolchain) /
      options.backend.name;
  if (options.sparsity) dir /= options.sparsity->dir_name();
  return dir / "json";
}

std::string case_file_name(const ThroughputOptions& options, int64_t m) {
  std::string name = options.model_name + "_";
  if (options.stage == "simple") name += std::string(phase_name(options.phase)) + "_";
  return name + "M" + std::to_string(m) + ".json";
}

std::string rerun_command(const ThroughputOptions& o, int64_t m) {
  const bool prefill = o.phase == ThroughputPhase::kPrefill;
  std::ostringstream os;
  os << "slidesparse bench " << phase_name(o.phase) << " --model " << shell_quote(o.model)
     << " --dtype " << dtype_name(o.dtype) << " --backend " << o.backend.name;
  if (o.sparsity) os << " --sparsity " << o.sparsity->name();
  os << " --M " << m;
  if (o.warmup != (prefill ? kPrefillDefaultWarmup : kDecodeDefaultWarmup))
    os << " --warmup " << o.warmup;
  if (o.repeats != (prefill ? kPrefillDefaultRepeats : kDecodeDefaultRepeats))
    os << " --repeats " << o.repeats;
  if (o.min_timed_s != kDefaultMinTimedSeconds) os << " --min-time " << o.min_timed_s;
  if (o.epilogue != Epilogue::kFused) os << " --epilogue " << epilogue_name(o.epilogue);
  if (!o.use_tuning) os << " --no-tuning";
  if (o.stage != phase_name(o.phase)) os << " --stage " << o.stage;
  if (o.task != default_task(o.stage)) os << " --task " << o.task;
  if (o.json_dir) os << " --json-dir " << shell_quote(o.json_dir->string());
  return os.str();
}

ThroughputMetrics compute_metrics(const CasePlan& plan,
                                  const std::vector<RepetitionSample>& samples, double timed_s,
                                  const EnergyReading& energy, int warmup) {
  SS_REQUIRE(!samples.empty(), "bench: no timed repetition to compute metrics from");
  ThroughputMetrics m;
  m.prompt_len = plan.prompt_len;
  m.batch = plan.sequences;
  m.output_len = plan.output_len;
  m.warmup = warmup;
  m.repeats = static_cast<int>(samples.size());
  std::vector<double> elapsed, steps;
  for (const RepetitionSample& s : samples) {
    elapsed.push_back(s.elapsed_s);
    if (plan.phase == ThroughputPhase::kPrefill)
      steps.push_back(s.prefill_gpu_ms);
    else
      steps.insert(steps.end(), s.decode_gpu_ms.begin(), s.decode_gpu_ms.end());
  }
  m.elapsed_s = median(elapsed);
  SS_REQUIRE(m.elapsed_s > 0, "bench: a repetition took no measurable time");
  m.tokens_per_s = static_cast<double>(plan.total_tokens()) / m.elapsed_s;
  m.output_tokens_per_s = static_cast<double>(plan.output_tokens()) / m.elapsed_s;
  m.requests_per_s = static_cast<double>(plan.sequences) / m.elapsed_s;
  m.step_ms_median = steps.empty() ? 0 : median(steps);
  m.timed_s = timed_s;
  m.avg_power_w = energy.avg_power_w;
  m.power_samples = energy.power_samples;
  m.energy_source = energy.source;
  m.energy_note = energy.note;
  if (energy.energy_j) {
    m.energy_j = *energy.energy_j / static_cast<double>(samples.size());
    m.joules_per_token = *m.energy_j / static_cast<double>(plan.total_tokens());
  }
  return m;
}

ClassifiedError classify_case_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const NotSupportedError& e) {
    return {CaseErrorKind::kNotSupported, "NotSupportedError", e.what()};
  } catch (const OutOfMemoryError& e) {
    return {CaseErrorKind::kOutOfMemory, "OutOfMemoryError", e.what()};
  } catch (const CudaError& e) {
    return {CaseErrorKind::kCuda, "CudaError", e.what()};
  } catch (const Error& e) {
    return {CaseErrorKind::kOther, "Error", e.what()};
  } catch (const std::bad_alloc& e) {
    return {CaseErrorKind::kOther, "Error", std::string("host memory exhausted: ") + e.what()};
  } catch (const std::exception& e) {
    return {CaseErrorKind::kOther, "Error", e.what()};
  } catch (...) {
    return {CaseErrorKind::kOther, "Error", "an exception that is not a std::exception"};
  }
}

json case_json(const ThroughputOptions& options, const HostRecord& host, const CaseRecord& r) {
  auto text_or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json j;
  j["schema"] = "slidesparse.case/1";
  j["M"] = r.plan.m;
  j["backend"] = options.backend.name;
  j["command"] = rerun_command(options, r.plan.m);
  j["dtype"] = std::string(dtype_name(options.dtype));
  j["model"] = options.model_name;
  j["phase"] = std::string(phase_name(options.phase));
  j["stage"] = options.stage;
  j["task"] = options.task;
  j["sparsity"] = options.sparsity ? json(options.sparsity->name()) : json(nullptr);
  j["status"] = r.status;
  j["skip_reason"] = text_or_null(r.skip_reason);
  j["error"] =
      r.error ? json{{"type", r.error->type}, {"message", r.error->message}} : json(nullptr);
  j["gpu"] = {{"name", host.gpu_name},
              {"cc", std::to_string(host.cc / 10) + "." + std::to_string(host.cc % 10)},
              {"driver", host.driver ? json(*host.driver) : json(nullptr)}};
  j["hardware_key"] = host.hardware_key;
  j["build"] = build_info().id();  // the code that measured it (slidesparse/build_info.h)
  j["started_at"] = r.started_at;
  j["wall_s"] = r.wall_s;
  j["engine"] = r.engine_description.empty()
                    ? json(nullptr)
                    : json{{"description", r.engine_description}, {"load_s", r.engine_load_s}};
  if (r.metrics) {
    const ThroughputMetrics& m = *r.metrics;
    auto optional_number = [](const std::optional<double>& v) {
      return v ? json(*v) : json(nullptr);
    };
    j["metrics"] = {{"prompt_len", m.prompt_len},
                    {"batch", m.batch},
                    {"output_len", m.output_len},
                    {"warmup", m.warmup},
                    {"repeats", m.repeats},
                    {"elapsed_s", m.elapsed_s},
                    {"tokens_per_s", m.tokens_per_s},
                    {"output_tokens_per_s", m.output_tokens_per_s},
                    {"requests_per_s", m.requests_per_s},
                    {"step_ms_median", m.step_ms_median},
                    {"timed_s", m.timed_s},
                    {"avg_power_w", optional_number(m.avg_power_w)},
                    {"energy_j", optional_number(m.energy_j)},
                    {"joules_per_token", optional_number(m.joules_per_token)},
                    {"power_samples", m.power_samples},
                    {"energy_source", text_or_null(m.energy_source)},
                    {"energy_note", text_or_null(m.energy_note)}};
  } else {
    j["metrics"] = nullptr;
  }
  return j;
}

ThroughputRunResult run_throughput_bench(const ThroughputOptions& options,
                                         ThroughputEnvironment& env, std::ostream& out) {
  SS_REQUIRE(env.load_model, "bench: no model loader");
  SS_REQUIRE(!options.ms.empty(), "bench: no M to run");
  const std::string where = "bench " + std::string(phase_name(options.phase));
  const fs::path dir = options.json_dir ? *options.json_dir : default_json_dir(options, env.host);
  fs::create_directories(dir);
  const CaseMarker marker(options.case_marker);
  ThroughputRunResult result;

  out << where << ": " << options.model_name << " " << dtype_name(options.dtype) << " "
      << options.backend.name << (options.sparsity ? " " + options.sparsity->name() : "") << " on "
      << env.host.gpu_name << ", M = ";
  for (size_t i = 0; i < options.ms.size(); ++i) out << (i ? "," : "") << options.ms[i];
  out << "\n  repetitions: " << options.warmup << " warm-up"
      << (options.phase == ThroughputPhase::kDecode
              ? " (prefill + " + std::to_string(kDecodeWarmupSteps) + " decode steps each)"
              : std::string())
      << ", then at least " << options.repeats << " timed, more until they span "
      << options.min_timed_s << " s (at most " << kMaxRepeats << "); medians reported\n  energy: "
      << (env.energy != nullptr ? "NVML" : "none (" + env.energy_absent_note + ")")
      << "\n  results: " << dir.string() << "\n"
      << std::flush;

  auto write = [&](const CaseRecord& record) {
    const fs::path file = dir / case_file_name(options, record.plan.m);
    write_file_atomic(file, case_json(options, env.host, record).dump(1) + "\n");
    result.files.push_back(file);
    out << "  M=" << std::setw(6) << record.plan.m << "  ";
    if (record.status == "ok") {
      ++result.ok;
      out << describe_metrics_line(*record.metrics);
    } else if (record.status == "skipped") {
      ++result.skipped;
      out << "skipped: " << record.skip_reason;
    } else {
      ++result.failed;
      out << "FAILED " << record.error->type << ": " << record.error->message;
    }
    out << "\n" << std::flush;
  };
  auto unrun_record = [&](int64_t m, const ClassifiedError& error, double wall_s,
                          const std::string& started_at) {
    CaseRecord record;
    record.plan = plan_case(options.phase, m);
    record.started_at = started_at;
    record.wall_s = wall_s;
    if (error.kind == CaseErrorKind::kNotSupported) {
      record.status = "skipped";
      record.skip_reason = error.message;
    } else {
      record.status = "failed";
      record.error = error;
    }
    return record;
  };
  // After a CUDA error: when the context is gone, the recorded case is the last this process
  // runs.
  auto context_lost = [&](const ClassifiedError& error) {
    if (error.kind != CaseErrorKind::kCuda && error.kind != CaseErrorKind::kOutOfMemory)
      return false;
    if (!env.context_fault) return false;
    if (const auto fault = env.context_fault()) {
      out << where << ": the CUDA context is unusable after this error (" << *fault
          << "); stopping so the remaining Ms run in a fresh process (exit " << kExitContextLost
          << ")\n"
          << std::flush;
      return true;
    }
    return false;
  };
  auto finish_lost = [&]() {
    result.context_lost = true;
    result.exit_code = kExitContextLost;
    marker.clear();
    return result;
  };

  std::vector<int64_t> remaining = options.ms;
  while (!remaining.empty()) {
    const EngineSizes sizes = plan_engine_sizes(options.phase, remaining, options.page_size);
    EngineSpec spec;
    spec.model = options.model;
    spec.dtype = options.dtype;
    spec.backend = options.backend;
    spec.sparsity = options.sparsity;
    spec.epilogue = options.epilogue;
    spec.use_tuning = options.use_tuning;
    spec.max_batch = sizes.max_batch;
    spec.max_tokens_per_step = sizes.max_tokens_per_step;
    spec.kv_cache_tokens = sizes.kv_cache_tokens;
    spec.page_size = options.page_size;

    // The load is part of the first case's time, and of its marker.
    const std::string load_started_at = iso_time_utc();
    const auto load_start = Clock::now();
    marker.set(case_file_name(options, remaining.front()));
    std::unique_ptr<ThroughputModel> model;
    try {
      model = env.load_model(spec);
      SS_REQUIRE(model != nullptr, "bench: the engine loader returned nothing");
    } catch (...) {
      const ClassifiedError error = classify_case_error(std::current_exception());
      const double load_s = seconds_since(load_start);
      if (error.kind == CaseErrorKind::kOutOfMemory && remaining.size() > 1) {
        // Sized for the largest M, the engine may not fit where smaller ones do: that M fails,
        // the rest get an engine of their own size.
        const auto largest = std::max_element(remaining.begin(), remaining.end());
        ClassifiedError sized = error;
        sized.message = "loading the engine sized for M = " + std::to_string(*largest) + " (" +
                        std::to_string(sizes.max_tokens_per_step) + " tokens per step, " +
                        std::to_string(sizes.kv_cache_tokens) +
                        " KV tokens) ran out of memory: " + error.message;
        write(unrun_record(*largest, sized, load_s, load_started_at));
        remaining.erase(largest);
        if (context_lost(error)) return finish_lost();
        out << where << ": reloading the engine sized for the remaining Ms\n" << std::flush;
        continue;
      }
      ClassifiedError at_load = error;
      if (error.kind != CaseErrorKind::kNotSupported)
        at_load.message = "loading the engine: " + error.message;
      if (context_lost(error)) {
        write(unrun_record(remaining.front(), at_load, load_s, load_started_at));
        return finish_lost();
      }
      // Nothing of this invocation can run: every M gets the load's outcome.
      for (size_t i = 0; i < remaining.size(); ++i)
        write(unrun_record(remaining[i], at_load, i == 0 ? load_s : 0, load_started_at));
      remaining.clear();
      break;
    }
    const double load_s = seconds_since(load_start);
    const std::string description = model->describe();
    out << "  engine: " << description << " (loaded in " << fixed(load_s, 1) << " s)\n"
        << std::flush;

    for (size_t i = 0; i < remaining.size(); ++i) {
      const int64_t m = remaining[i];
      CaseRecord record;
      record.plan = plan_case(options.phase, m);
      record.engine_description = description;
      record.engine_load_s = load_s;
      record.started_at = i == 0 ? load_started_at : iso_time_utc();
      const auto case_start = i == 0 ? load_start : Clock::now();
      if (i > 0) marker.set(case_file_name(options, m));
      bool lost = false;
      try {
        record.metrics = measure_case(*model, options, record.plan, env, out);
        record.status = "ok";
      } catch (...) {
        const ClassifiedError error = classify_case_error(std::current_exception());
        if (error.kind == CaseErrorKind::kNotSupported) {
          record.status = "skipped";
          record.skip_reason = error.message;
        } else {
          record.status = "failed";
          record.error = error;
          lost = context_lost(error);
        }
      }
      record.wall_s = seconds_since(case_start);
      write(record);
      if (lost) {
        // Freeing device memory through a dead context can hang or abort: the engine is left
        // to the process exit, which follows.
        (void)model.release();
        return finish_lost();
      }
    }
    remaining.clear();
    model.reset();
  }
  marker.clear();
  result.exit_code = result.failed > 0 ? kExitSomeFailed : kExitAllOkOrSkipped;
  out << where << ": " << result.ok << " ok, " << result.failed << " failed, " << result.skipped
      << " skipped; " << result.files.size() << " case JSON(s) in " << dir.string() << "\n"
      << std::flush;
  return result;
}

HostRecord query_host_record(const std::optional<std::string>& driver_version) {
  const auto gpu = query_gpu();
  SS_REQUIRE_T(NotSupportedError, gpu.has_value(), "no CUDA GPU is available");
  const auto key = HardwareKey::current();
  SS_REQUIRE_T(NotSupportedError, key.has_value(), "no CUDA GPU is available");
  HostRecord host;
  host.gpu_name = gpu->name;
  host.gpu_short_name = gpu->short_name();
  host.cc = gpu->cc();
  host.driver = driver_version;
  host.hardware_key = key->dir_name();
  host.toolchain = query_library_versions().toolchain();
  return host;
}

std::optional<std::string> cuda_context_fault() {
  // A non-sticky error is returned once and cleared; a sticky one (the context is dead) keeps
  // coming back, from the next call and from a synchronisation.
  (void)cudaGetLastError();
  const cudaError_t sync = cudaDeviceSynchronize();
  const cudaError_t again = cudaGetLastError();
  const cudaError_t bad = sync != cudaSuccess ? sync : again;
  if (bad == cudaSuccess) return std::nullopt;
  return std::string(cudaGetErrorName(bad)) + ": " + cudaGetErrorString(bad);
}

}  // namespace slidesparse
