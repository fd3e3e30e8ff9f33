// The `slidesparse tune` driver (see tune_driver.h): job list, resume, searches, saving.
#include "tune/tune_driver.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cuda/check.h"
#include "cuda/resources.h"
#include "io/model_config.h"
#include "io/progress.h"
#include "slidesparse/tuning/tuning_db.h"
#include "tune/kernel_search.h"

namespace slidesparse {

TuneStage parse_tune_stage(std::string_view text) {
  if (text == "coarse") return TuneStage::kCoarse;
  if (text == "fine") return TuneStage::kFine;
  if (text == "all") return TuneStage::kAll;
  throw Error("unknown tuning stage '" + std::string(text) + "': accepted are coarse, fine, all");
}

std::vector<int64_t> default_coarse_m_list() { return {64, 256, 1024, 4096, 16384, 65536}; }

std::vector<int64_t> default_fine_m_list() {
  std::vector<int64_t> ms;
  for (int64_t m = 64; m <= 65536; m *= 2) ms.push_back(m);
  return ms;
}

namespace {

using Clock = std::chrono::steady_clock;

// Ends the run: a job's fault killed the CUDA context, so every later job would fail too.
class CudaContextLost : public CudaError {
 public:
  using CudaError::CudaError;
};

struct Job {
  TuneStage stage = TuneStage::kCoarse;
  bool is_gemm = true;
  LayerGemmSpec gemm;
  KernelJobSpec kernel;
  std::string linear;  // qkv, o, gate_up, down (for labels)
  int64_t m = 0;
  std::string group;  // jobs of one group share their operands
  std::string label;
  double weight = 1;
  bool skip = false;      // done before
  bool finished = false;  // done in this run
};

const char* stage_name(TuneStage stage) {
  return stage == TuneStage::kCoarse ? "coarse" : stage == TuneStage::kFine ? "fine" : "all";
}

std::string key_text(const GemmProblemKey& k) {
  std::ostringstream os;
  os << backend_name(k.backend) << "/" << dtype_name(k.dtype) << "/" << dtype_name(k.out_dtype)
     << "/" << k.n << "/" << k.k << "/" << k.m << (k.fast_accum ? "/fast_accum" : "");
  return os.str();
}

std::string key_text(const KernelProblemKey& k) {
  std::ostringstream os;
  os << k.kernel << "/" << dtype_name(k.dtype) << "/" << k.block << "/" << k.cols << "/" << k.m;
  return os.str();
}

// Expected cost in seconds, for the ETA: candidates x (run time at ~400 TFLOP/s + set-up).
double gemm_weight(const GemmProblem& p) {
  const double flops =
      2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
  const double candidates = p.backend == GemmBackend::kCusparseLt ? 60.0 : 25.0;
  return candidates * (8.0 * flops / 4e14 + 2e-3);
}

double kernel_weight(const KernelJobSpec& spec, int64_t m) {
  const double bytes = 4.0 * static_cast<double>(m) * static_cast<double>(spec.cols);
  return 30.0 * (40.0 * bytes / 2e12 + 1e-4);
}

std::string gemm_label(const Job& job, const GemmProblem& p) {
  std::ostringstream os;
  os << stage_name(job.stage) << " " << dtype_name(job.gemm.compute) << " "
     << (job.gemm.sparsity ? job.gemm.sparsity->name() : std::string("dense")) << " " << job.linear
     << " " << job.gemm.n << "x" << job.gemm.k;
  if (job.gemm.sparsity) os << " (K'=" << p.k << ")";
  if (p.fast_accum) os << " fast-accum";
  os << " M=" << job.m;
  return os.str();
}

std::string kernel_label(const Job& job) {
  std::ostringstream os;
  os << stage_name(job.stage) << " " << dtype_name(job.kernel.compute) << " " << job.kernel.kernel;
  if (job.kernel.sparsity) os << " " << job.kernel.sparsity->name();
  os << " cols=" << job.kernel.cols << " M=" << job.m;
  return os.str();
}

class JobList {
 public:
  void add_gemm(TuneStage stage, const LayerGemmSpec& spec, const std::string& linear, int64_t m,
                Epilogue epilogue) {
    Job job;
    job.stage = stage;
    job.gemm = spec;
    job.gemm.epilogue = epilogue;
    job.linear = linear;
    job.m = m;
    const GemmProblem p = layer_gemm_problem(job.gemm, m);
    if (!seen_.insert(key_text(gemm_problem_key(p))).second) return;
    std::ostringstream group;
    group << "gemm/" << backend_name(p.backend) << "/" << dtype_name(p.dtype) << "/"
          << dtype_name(p.out_dtype) << "/" << p.n << "/" << p.k;
    job.group = group.str();
    job.label = gemm_label(job, p);
    job.weight = gemm_weight(p);
    jobs_.push_back(job);
  }
  void add_kernel(TuneStage stage, const KernelJobSpec& spec, int64_t m) {
    Job job;
    job.stage = stage;
    job.is_gemm = false;
    job.kernel = spec;
    job.m = m;
    if (!seen_.insert(key_text(kernel_problem_key(spec, m))).second) return;
    const KernelProblemKey key = kernel_problem_key(spec, 1);
    job.group = "kernel/" + key_text(key);
    job.label = kernel_label(job);
    job.weight = kernel_weight(spec, m);
    jobs_.push_back(job);
  }
  std::vector<Job>& jobs() { return jobs_; }

 private:
  std::vector<Job> jobs_;
  std::set<std::string> seen_;
};

std::vector<Job> build_jobs(const TuneOptions& o) {
  const std::vector<int64_t> coarse_ms = o.m_list.empty() ? default_coarse_m_list() : o.m_list;
  const std::vector<int64_t> fine_ms = o.m_list.empty() ? default_fine_m_list() : o.m_list;
  std::vector<Sparsity> sparsities = o.sparsities;
  if (sparsities.empty()) {
    for (int block : {4, 6, 8, 10}) sparsities.push_back(Sparsity::from_block(block));
  }
  std::vector<std::pair<std::string, std::vector<LinearShape>>> models;
  for (const auto& name : o.models) {
    const ModelConfig config = resolve_model(name);
    models.emplace_back(config.name, benchmark_linear_shapes(config));
  }
  const bool coarse = o.stage != TuneStage::kFine;
  const bool fine = o.stage != TuneStage::kCoarse;
  JobList dense, sparse, kernels;
  for (const auto& [model, shapes] : models) {
    for (DType dtype : o.dtypes) {
      const bool quantized = dtype != DType::kBF16;
      for (const auto& shape : shapes) {
        // Dense FP8 also with fast accumulation when asked (tuned under its own key).
        for (bool fast_accum : {false, true}) {
          if (fast_accum && !(o.fast_accum && dtype == DType::kFP8E4M3)) continue;
          const LayerGemmSpec spec{dtype, std::nullopt, shape.n, shape.k, o.epilogue, fast_accum};
          if (coarse) {
            for (int64_t m : coarse_ms)
              dense.add_gemm(TuneStage::kCoarse, spec, shape.name, m, o.epilogue);
          }
          if (fine) {
            // The dense GEMM at every fine M too: the sparse entries record whether they beat it.
            for (int64_t m : fine_ms)
              dense.add_gemm(TuneStage::kFine, spec, shape.name, m, o.epilogue);
          }
        }
      }
      if (fine) {
        for (const Sparsity& sparsity : sparsities) {
          for (const auto& shape : shapes) {
            const LayerGemmSpec spec{dtype, sparsity, shape.n, shape.k, o.epilogue};
            for (int64_t m : fine_ms)
              sparse.add_gemm(TuneStage::kFine, spec, shape.name, m, o.epilogue);
          }
        }
      }
      if (!o.kernels) continue;
      for (const auto& shape : shapes) {
        if (coarse && quantized) {
          for (int64_t m : coarse_ms) {
            kernels.add_kernel(TuneStage::kCoarse, {"quant", dtype, std::nullopt, shape.k}, m);
          }
        }
        if (!fine) continue;
        for (const Sparsity& sparsity : sparsities) {
          for (int64_t m : fine_ms) {
            kernels.add_kernel(TuneStage::kFine,
                               {quantized ? "quant_slide" : "slide", dtype, sparsity, shape.k}, m);
          }
        }
        // BF16 runs a dequant kernel (bias) only in the kernel epilogue.
        if (quantized || o.epilogue == Epilogue::kKernel) {
          for (int64_t m : fine_ms) {
            kernels.add_kernel(TuneStage::kFine, {"dequant", dtype, std::nullopt, shape.n}, m);
          }
        }
      }
    }
  }
  // Coarse before fine; dense GEMMs before sparse ones (their times are the comparison).
  std::vector<Job> all;
  for (TuneStage stage : {TuneStage::kCoarse, TuneStage::kFine}) {
    for (JobList* list : {&dense, &sparse, &kernels}) {
      for (const Job& job : list->jobs()) {
        if (job.stage == stage) all.push_back(job);
      }
    }
  }
  // Group jobs that share operands (stable: M order within a group is kept).
  std::stable_sort(all.begin(), all.end(), [](const Job& a, const Job& b) {
    if (a.stage != b.stage) return a.stage < b.stage;
    if (a.is_gemm != b.is_gemm) return a.is_gemm;
    if (a.is_gemm && a.gemm.sparsity.has_value() != b.gemm.sparsity.has_value()) {
      return !a.gemm.sparsity.has_value();
    }
    return false;
  });
  return all;
}

bool already_done(const TuningTable& table, const Job& job) {
  if (job.is_gemm) {
    return table.find_gemm_exact(gemm_problem_key(layer_gemm_problem(job.gemm, job.m))) != nullptr;
  }
  return table.find_kernel_exact(kernel_problem_key(job.kernel, job.m)) != nullptr;
}

std::string us_text(double us) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(us < 100 ? 2 : 1) << us << " us";
  return os.str();
}

}  // namespace

TuneSummary run_tuning(const TuneOptions& options, std::ostream& out) {
  const auto started = Clock::now();
  SS_REQUIRE(!options.models.empty(), "tune: no model given (--models)");
  SS_REQUIRE(!options.dtypes.empty(), "tune: no dtype given (--dtype)");
  for (int64_t m : options.m_list) SS_REQUIRE(m >= 1, "tune: M must be >= 1, got " << m);
  for (DType dtype : options.dtypes) {
    SS_REQUIRE(dtype == DType::kI8 || dtype == DType::kFP8E4M3 || dtype == DType::kBF16,
               "tune: dtype " << dtype_name(dtype) << " is not supported (int8, fp8, bf16)");
  }
  for (const auto& model : options.models) resolve_model(model);  // before looking for a GPU
  const auto hardware = HardwareKey::current();
  if (!hardware) throw NotSupportedError("tune: no CUDA GPU is available; tuning needs one");

  TuningTable table(*hardware);
  try {
    table = load_tuning_table(options.tuning_dir, *hardware);
  } catch (const Error& e) {
    if (!options.force) {
      throw Error(std::string("tune: the existing table cannot be used: ") + e.what() +
                  " (move it away, or pass --force to start it afresh)");
    }
    std::cerr << "slidesparse: warning: " << e.what() << "; --force: starting a fresh table\n";
  }
  out << "tuning table: " << tuning_table_dir(options.tuning_dir, *hardware).string() << "\n"
      << "hardware key: " << hardware->describe() << "\n";

  std::vector<Job> jobs = build_jobs(options);
  TuneSummary summary;
  summary.jobs_total = static_cast<int>(jobs.size());
  std::map<TuneStage, std::pair<int, int>> per_stage;  // stage -> (to run, done before)
  double total_weight = 0;
  for (Job& job : jobs) {
    job.skip = !options.force && already_done(table, job);
    auto& counts = per_stage[job.stage];
    if (job.skip) {
      ++counts.second;
      ++summary.jobs_skipped;
    } else {
      ++counts.first;
      total_weight += job.weight;
    }
  }
  for (const auto& [stage, counts] : per_stage) {
    if (counts.first == 0) {
      out << stage_name(stage) << ": skipped, done before (" << counts.second << " entries)\n";
    } else {
      out << stage_name(stage) << ": " << counts.first << " jobs to run";
      if (counts.second > 0) out << ", " << counts.second << " done before (skipped)";
      out << "\n";
    }
  }
  out.flush();

  CudaStream stream;
  ProgressBar progress(summary.jobs_total - summary.jobs_skipped, total_weight);
  auto last_save = Clock::now();
  std::set<std::filesystem::path> files;
  auto save = [&]() {
    for (const auto& f : save_tuning_table(table, options.tuning_dir)) files.insert(f);
    last_save = Clock::now();
  };
  auto report = [&](const std::string& line) {
    progress.clear();
    out << line << "\n";
    out.flush();
  };
  // After a caught error: carry on unless the fault was sticky (the CUDA context is dead). Then
  // the table is saved (JSON, no GPU needed) with what finished before, and the run ends naming
  // the case; a rerun resumes from the saved entries.
  auto stop_if_context_dead = [&](const std::string& label, const Error& e) {
    const cudaError_t sticky = sticky_cuda_error();
    if (sticky == cudaSuccess) return;
    progress.clear();
    if (summary.jobs_run > 0) save();
    throw CudaContextLost(
        "tune: " + label + " left the CUDA context unusable (" + cudaGetErrorName(sticky) + ": " +
        cudaGetErrorString(sticky) + "); its error was: " + e.what() +
        ". The run stops here; the table keeps " +
        std::to_string(table.gemm_entries().size() + table.kernel_entries().size()) +
        " entries, and rerunning the same command resumes after them");
  };

  uint64_t seed = 0x5eed;
  size_t i = 0;
  while (i < jobs.size()) {
    // One group at a time: the jobs still to run that share operands.
    size_t end = i;
    std::vector<size_t> todo;
    while (end < jobs.size() && jobs[end].group == jobs[i].group) {
      if (!jobs[end].skip) todo.push_back(end);
      ++end;
    }
    if (todo.empty()) {
      i = end;
      continue;
    }
    ++seed;
    try {
      if (jobs[i].is_gemm) {
        int64_t m_max = 0;
        for (size_t j : todo)
          m_max = std::max(m_max, layer_gemm_problem(jobs[j].gemm, jobs[j].m).m);
        const GemmProblem shape = layer_gemm_problem(jobs[todo.front()].gemm, m_max);
        progress.begin(jobs[todo.front()].label + " (operands)");
        GemmOperands operands(shape, m_max, seed, stream.get());
        for (size_t j : todo) {
          Job& job = jobs[j];
          progress.begin(job.label);
          const GemmProblem problem = layer_gemm_problem(job.gemm, job.m);
          try {
            const GemmSearchResult r = search_gemm(problem, operands, options.gemm, stream.get());
            GemmTuningEntry entry;
            entry.key = gemm_problem_key(problem);
            entry.algorithm = r.best;
            entry.time_us = r.best_us;
            entry.default_time_us = r.default_us;
            entry.candidates_tried = r.tried;
            std::ostringstream line;
            line << job.label << ": " << r.best.describe() << " " << us_text(r.best_us)
                 << " (default " << us_text(r.default_us) << ", x" << std::fixed
                 << std::setprecision(2) << r.default_us / r.best_us << "; " << r.tried << " tried";
            if (r.refused > 0) line << ", " << r.refused << " refused";
            if (r.mismatched > 0) line << ", " << r.mismatched << " dropped: output differs";
            if (r.library_pick) line << "; library search: " << r.library_pick->describe();
            line << ")";
            if (job.gemm.sparsity) {
              entry.sparsity = job.gemm.sparsity->name();
              LayerGemmSpec dense_spec = job.gemm;
              dense_spec.sparsity.reset();
              const auto* dense =
                  table.find_gemm_exact(gemm_problem_key(layer_gemm_problem(dense_spec, job.m)));
              if (dense != nullptr) {
                entry.dense_time_us = dense->time_us;
                entry.sparse_beats_dense = r.best_us < dense->time_us;
                line << " | vs tuned dense " << us_text(dense->time_us) << ": x"
                     << std::setprecision(2) << dense->time_us / r.best_us;
              }
            }
            table.put(entry);
            report(line.str());
          } catch (const OutOfMemoryError&) {
            throw;
          } catch (const Error& e) {
            stop_if_context_dead(job.label, e);
            summary.failures.push_back(job.label + ": " + e.what());
            report(job.label + ": FAILED: " + e.what());
          }
          clear_gemm_plan_cache();
          job.finished = true;
          ++summary.jobs_run;
          progress.finish(job.weight);
          if (Clock::now() - last_save > std::chrono::seconds(30)) save();
        }
      } else {
        int64_t m_max = 0;
        for (size_t j : todo) m_max = std::max(m_max, jobs[j].m);
        KernelOperands operands(jobs[todo.front()].kernel, m_max, seed, stream.get());
        for (size_t j : todo) {
          Job& job = jobs[j];
          progress.begin(job.label);
          try {
            const KernelSearchResult r = search_kernel(operands, job.m, stream.get());
            KernelTuningEntry entry;
            entry.key = kernel_problem_key(job.kernel, job.m);
            entry.config = r.best;
            entry.time_us = r.best_us;
            entry.default_time_us = r.default_us;
            table.put(entry);
            std::ostringstream line;
            line << job.label << ": ";
            if (r.best == KernelLaunchConfig{}) {
              line << "default";
            } else {
              line << r.best.block_threads << " threads, " << r.best.rows_per_block
                   << " rows/block";
            }
            line << " " << us_text(r.best_us) << " (default " << us_text(r.default_us) << "; "
                 << r.tried << " tried";
            if (r.mismatched > 0) line << ", " << r.mismatched << " dropped: output differs";
            line << ")";
            report(line.str());
          } catch (const Error& e) {
            stop_if_context_dead(job.label, e);
            summary.failures.push_back(job.label + ": " + e.what());
            report(job.label + ": FAILED: " + e.what());
          }
          job.finished = true;
          ++summary.jobs_run;
          progress.finish(job.weight);
          if (Clock::now() - last_save > std::chrono::seconds(30)) save();
        }
      }
    } catch (const CudaContextLost&) {
      throw;
    } catch (const Error& e) {
      // The group's operands could not be made (out of memory, not supported here): every job
      // of the group fails with the same reason.
      stop_if_context_dead(jobs[i].label + " (operands of its group)", e);
      clear_gemm_plan_cache();
      for (size_t j : todo) {
        if (jobs[j].finished) continue;
        summary.failures.push_back(jobs[j].label + ": " + e.what());
        progress.finish(jobs[j].weight);
      }
      report(jobs[i].label + " (and the rest of its group): FAILED: " + e.what());
    }
    i = end;
  }
  progress.done();
  if (summary.jobs_run > 0) save();
  summary.files.assign(files.begin(), files.end());
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return summary;
}

}  // namespace slidesparse
