// The run's plan and the result layout (see plan.h).
#include "pipeline/plan.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <string_view>

#include "io/model_config.h"
#include "slidesparse/engine/engine.h"
#include "slidesparse/error.h"
#include "slidesparse/layer/linear.h"

namespace slidesparse::pipeline {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDtypes = {"int8", "fp8", "bf16"};

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool has_task(const std::vector<int>& tasks, int task) {
  return std::find(tasks.begin(), tasks.end(), task) != tasks.end();
}

// Parameters of the model in billions, from its config (the four linears per layer plus the
// embedding): only to weigh cases against each other for the ETA.
double params_billions(const std::string& model) {
  const ModelConfig config = resolve_model(model);
  double per_layer = 0;
  for (const LinearShape& s : benchmark_linear_shapes(config))
    per_layer += static_cast<double>(s.n) * static_cast<double>(s.k);
  const double total = per_layer * static_cast<double>(config.num_hidden_layers) +
                       static_cast<double>(config.vocab_size) * config.hidden_size;
  return std::max(total / 1e9, 0.05);
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> ms) {
  std::sort(ms.begin(), ms.end());
  ms.erase(std::unique(ms.begin(), ms.end()), ms.end());
  return ms;
}

}  // namespace

std::string BackendChoice::variant() const { return sparsity ? sparsity->name() : backend; }

fs::path BackendChoice::folder() const {
  if (sparsity) return fs::path(backend) / sparsity->dir_name();
  return fs::path(backend);
}

std::vector<BackendChoice> parse_backends(const std::vector<std::string>& names) {
  std::vector<BackendChoice> out;
  auto add = [&](BackendChoice choice) {
    for (const BackendChoice& have : out)
      if (have.variant() == choice.variant()) return;
    out.push_back(std::move(choice));
  };
  for (const std::string& name : names) {
    if (name == "cublaslt" || name == "cublaslt-fa") {
      add({name, std::nullopt});
    } else if (name == "cusparselt") {
      for (int block : {4, 6, 8, 10}) add({"cusparselt", Sparsity::from_block(block)});
    } else {
      try {
        add({"cusparselt", Sparsity::parse(name)});
      } catch (const Error& e) {
        throw Error("--backends: unknown backend '" + name +
                    "': accepted are cublaslt, cublaslt-fa, a pattern such as 2:8, or cusparselt "
                    "(= 2:4, 2:6, 2:8, 2:10) (" +
                    e.what() + ")");
      }
    }
  }
  SS_REQUIRE(!out.empty(), "--backends: no backend given");
  return out;
}

void validate_options(const PipelineOptions& o) {
  SS_REQUIRE(!o.models.empty(), "--models: no model given");
  SS_REQUIRE(!o.dtypes.empty(), "--dtype: no precision given");
  SS_REQUIRE(!o.tasks.empty(), "--tasks: no task given");
  for (const std::string& model : o.models) {
    // The model's name is part of every case file name; config paths have no name of their own.
    const bool plain =
        !model.empty() && model.find('/') == std::string::npos && model != "." && model != "..";
    SS_REQUIRE(plain, "--models: '" << model
                                    << "' is not a model name (prepare-bench takes names of "
                                       "models/<name>.json, not paths)");
    resolve_model_path(model);  // throws, listing the known names
  }
  for (const std::string& dtype : o.dtypes)
    SS_REQUIRE(contains(kDtypes, dtype),
               "--dtype: unknown precision '" << dtype << "' (accepted: int8, fp8, bf16)");
  for (int task : o.tasks)
    SS_REQUIRE(task >= 3 && task <= 7,
               "--tasks: unknown task " << task
                                        << " (3 coarse tuning, 4 fine tuning, 5 simple benchmark, "
                                           "6 prefill, 7 decode)");
  for (int64_t m : o.prefill_m) SS_REQUIRE(m >= 1, "--prefill-M: M must be >= 1, got " << m);
  for (int64_t m : o.decode_m) SS_REQUIRE(m >= 1, "--decode-M: M must be >= 1, got " << m);
  SS_REQUIRE(!has_task(o.tasks, 6) || !o.prefill_m.empty(), "--prefill-M: no M given");
  SS_REQUIRE(!has_task(o.tasks, 7) || !o.decode_m.empty(), "--decode-M: no M given");
  SS_REQUIRE(o.case_timeout_s > 0, "--case-timeout must be > 0 seconds, got " << o.case_timeout_s);
  SS_REQUIRE(!o.time_budget_s || *o.time_budget_s > 0,
             "--time-budget must be > 0 seconds, got " << *o.time_budget_s);
  SS_REQUIRE(!o.results_dir.empty(), "--results: no folder given");
  parse_backends(o.backends);
}

std::string task_name(int task) {
  switch (task) {
    case 3:
      return "coarse tuning";
    case 4:
      return "fine tuning";
    case 5:
      return "simple benchmark";
    case 6:
      return "prefill";
    case 7:
      return "decode";
    default:
      return "task " + std::to_string(task);
  }
}

std::string BenchGroup::case_file(int64_t m) const {
  if (stage == "simple") return model + "_" + phase + "_M" + std::to_string(m) + ".json";
  return model + "_M" + std::to_string(m) + ".json";
}

std::string BenchGroup::label() const {
  std::string text = stage == "simple" ? "simple " + phase : stage;
  return text + " " + model + " " + dtype + " " + backend.variant();
}

double BenchGroup::case_weight(int64_t m) const {
  // Prefill grows with the tokens per step; decode runs 256 steps whose cost grows with the batch.
  const double work =
      phase == "prefill" ? static_cast<double>(m) / 8192.0 : 1.0 + static_cast<double>(m) / 256.0;
  return 1.0 + model_params_b * work;
}

std::vector<std::string> TuneTask::output_files() const {
  if (stage == "coarse") return {"gemm_cublaslt.json", "kernels.json"};
  return {"gemm_cusparselt.json", "kernels.json"};
}

std::vector<PlannedBench> planned_benchmarks(const PipelineOptions& o) {
  std::vector<int> tasks = o.tasks;
  std::sort(tasks.begin(), tasks.end());
  tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
  const std::vector<BackendChoice> backends = parse_backends(o.backends);
  std::vector<PlannedBench> out;
  auto add = [&](int task, const std::string& stage, const std::string& phase,
                 const std::string& model, const std::string& dtype, const BackendChoice& backend,
                 const std::vector<int64_t>& ms) {
    out.push_back({task, stage, phase, model, dtype, backend, sorted_unique(ms)});
  };
  for (int task : tasks) {
    if (task < 5) continue;
    for (const std::string& dtype : o.dtypes) {
      if (task == 5) {
        for (const BackendChoice& b : backends) {
          add(5, "simple", "prefill", kSimpleModel, dtype, b, {kSimplePrefillM});
          add(5, "simple", "decode", kSimpleModel, dtype, b, {kSimpleDecodeM});
        }
        continue;
      }
      const std::string stage = task == 6 ? "prefill" : "decode";
      for (const std::string& model : o.models)
        for (const BackendChoice& b : backends)
          add(task, stage, stage, model, dtype, b, task == 6 ? o.prefill_m : o.decode_m);
    }
  }
  return out;
}

Plan build_plan(const PipelineOptions& o, const std::optional<RunHardware>& hardware) {
  Plan plan;
  plan.tasks = o.tasks;
  std::sort(plan.tasks.begin(), plan.tasks.end());
  plan.tasks.erase(std::unique(plan.tasks.begin(), plan.tasks.end()), plan.tasks.end());
  const std::vector<BackendChoice> backends = parse_backends(o.backends);
  const bool fp8_ok = !hardware || hardware->supports_fp8();

  std::vector<std::string> sparsities;
  bool has_fast_accum = false;
  for (const BackendChoice& b : backends) {
    if (b.sparsity) sparsities.push_back(b.sparsity->name());
    if (b.backend == "cublaslt-fa") has_fast_accum = true;
  }
  std::vector<std::string> tune_dtypes;
  for (const std::string& d : o.dtypes)
    if (d != "fp8" || fp8_ok) tune_dtypes.push_back(d);
  for (int task : {3, 4}) {
    if (!has_task(plan.tasks, task)) continue;
    TuneTask t;
    t.task = task;
    t.stage = task == 3 ? "coarse" : "fine";
    t.models = o.models;
    t.dtypes = tune_dtypes;
    if (task == 4) t.sparsities = sparsities;
    t.fast_accum = has_fast_accum && contains(tune_dtypes, "fp8");
    if (tune_dtypes.empty())
      t.skip_reason = "no precision of the run can run on this GPU (" + hardware->fp8_note() + ")";
    else if (task == 4 && sparsities.empty())
      t.skip_reason = "no cuSPARSELt pattern among the run's backends";
    plan.tune_tasks.push_back(std::move(t));
  }

  std::map<std::string, double> params;
  auto params_of = [&](const std::string& model) {
    auto it = params.find(model);
    if (it == params.end()) it = params.emplace(model, params_billions(model)).first;
    return it->second;
  };
  auto folder_of = [&](const std::string& stage, const std::string& dtype) {
    std::string upper = dtype;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::string hw = hardware
                               ? hardware->result_folder(dtype)
                               : "GPU_ccXX_" + upper + "_" + query_library_versions().toolchain();
    return o.results_dir / stage / hw;
  };
  auto add_group = [&](int task, const std::string& stage, const std::string& phase,
                       const std::string& model, const std::string& dtype,
                       const BackendChoice& backend, std::vector<int64_t> ms) {
    BenchGroup g;
    g.task = task;
    g.stage = stage;
    g.phase = phase;
    g.model = model;
    g.dtype = dtype;
    g.backend = backend;
    g.ms = std::move(ms);  // planned_benchmarks sorted them
    g.folder = folder_of(stage, dtype) / backend.folder();
    g.model_params_b = params_of(model);
    if (backend.backend == "cublaslt-fa" && dtype != "fp8")
      g.skip_reason =
          "cublaslt-fa: fast accumulation applies to FP8 GEMMs only (" + dtype + " runs cublaslt)";
    plan.groups.push_back(std::move(g));
  };
  for (PlannedBench& p : planned_benchmarks(o))
    add_group(p.task, p.stage, p.phase, p.model, p.dtype, p.backend, std::move(p.ms));
  return plan;
}

std::vector<std::string> bench_argv(const fs::path& runner, const BenchGroup& g,
                                    const std::vector<int64_t>& ms, const fs::path& json_dir,
                                    const fs::path& marker) {
  std::vector<std::string> argv = {runner.string(), "bench", g.phase,     "--model",        g.model,
                                   "--dtype",       g.dtype, "--backend", g.backend.backend};
  if (g.backend.sparsity) {
    argv.push_back("--sparsity");
    argv.push_back(g.backend.sparsity->name());
  }
  std::string m_list;
  for (int64_t m : ms) {
    if (!m_list.empty()) m_list += ',';
    m_list += std::to_string(m);
  }
  argv.insert(argv.end(), {"--M", m_list, "--stage", g.stage, "--task", std::to_string(g.task),
                           "--json-dir", json_dir.string(), "--case-marker", marker.string()});
  return argv;
}

std::vector<std::string> tune_argv(const fs::path& runner, const TuneTask& t,
                                   const fs::path& tuning_dir) {
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
      if (!out.empty()) out += ',';
      out += item;
    }
    return out;
  };
  // Tune the problems the benchmarks run: the engine's default epilogue decides each GEMM's
  // output type (fused: cuSPARSELt writes bf16; kernel: fp32 / int32), which is part of the key.
  const std::string epilogue(epilogue_name(EngineOptions{}.epilogue));
  std::vector<std::string> argv = {runner.string(), "tune",         "--stage", t.stage,
                                   "--models",      join(t.models), "--dtype", join(t.dtypes),
                                   "--epilogue",    epilogue};
  if (!t.sparsities.empty()) argv.insert(argv.end(), {"--sparsity", join(t.sparsities)});
  if (!tuning_dir.empty()) argv.insert(argv.end(), {"--tuning-dir", tuning_dir.string()});
  if (t.fast_accum) argv.push_back("--fast-accum");
  return argv;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& word : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("-_./:,=+@%").find(c) != std::string_view::npos;
    });
    if (plain) {
      out += word;
      continue;
    }
    out += '\'';
    for (char c : word) {
      if (c == '\'')
        out += "'\\''";
      else
        out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace slidesparse::pipeline
