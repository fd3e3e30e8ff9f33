// Tuned vs untuned, dense vs SlideSparse GEMM comparison (see tune_compare.h). Every variant's
// operands are made once per dtype at the largest M; outputs go to one shared scratch buffer.
#include "tune/tune_compare.h"

#include <algorithm>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "cuda/timing.h"
#include "io/atomic_file.h"
#include "io/model_config.h"
#include "slidesparse/tuning/tuning_db.h"
#include "slidesparse/tuning/tuning_lookup.h"
#include "tune/gemm_search.h"

namespace slidesparse {

namespace {

struct Variant {
  std::string name;  // "dense" or "2:8"
  std::optional<Sparsity> sparsity;
  std::vector<std::unique_ptr<GemmOperands>> operands;  // per linear
};

std::string ratio_cell(const std::vector<double>& ratios) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  for (size_t i = 0; i < ratios.size(); ++i) os << (i ? " / " : "") << ratios[i];
  return os.str();
}

}  // namespace

std::vector<CompareBlock> run_tune_compare(const CompareOptions& options, std::ostream& out,
                                           std::vector<std::filesystem::path>* files_written) {
  SS_REQUIRE(!options.m_list.empty(), "tune compare: empty M list");
  for (int64_t m : options.m_list) SS_REQUIRE(m >= 1, "tune compare: M must be >= 1, got " << m);
  SS_REQUIRE(options.repeats >= 1 && options.warmup >= 0,
             "tune compare: --repeats must be >= 1 and --warmup >= 0");
  const ModelConfig config = resolve_model(options.model);
  const auto hardware = HardwareKey::current();
  if (!hardware)
    throw NotSupportedError("tune compare: no CUDA GPU is available; the comparison needs one");
  const std::vector<LinearShape> shapes = benchmark_linear_shapes(config);
  std::vector<Sparsity> sparsities = options.sparsities;
  if (sparsities.empty()) {
    for (int block : {4, 6, 8, 10}) sparsities.push_back(Sparsity::from_block(block));
  }
  const int64_t m_max = *std::max_element(options.m_list.begin(), options.m_list.end());
  CudaStream stream;
  std::vector<CompareBlock> blocks;
  const std::string table_line = describe_active_tuning();
  out << table_line << "\n";

  for (DType dtype : options.dtypes) {
    try {
      require_dtype_supported(dtype);
    } catch (const NotSupportedError& e) {
      for (int64_t m : options.m_list) blocks.push_back({dtype, m, {}, e.what()});
      continue;
    }
    // Operands for every variant and linear, at the largest M.
    std::vector<Variant> variants;
    variants.push_back({"dense", std::nullopt, {}});
    for (const Sparsity& s : sparsities) variants.push_back({s.name(), s, {}});
    size_t d_bytes = 0;
    uint64_t seed = 0xc0ffee;
    for (Variant& v : variants) {
      for (const LinearShape& shape : shapes) {
        const LayerGemmSpec spec{dtype, v.sparsity, shape.n, shape.k, options.epilogue};
        const GemmProblem p = layer_gemm_problem(spec, m_max);
        v.operands.push_back(
            std::make_unique<GemmOperands>(p, p.m, ++seed, stream.get(), /*with_outputs=*/false));
        d_bytes = std::max(d_bytes, static_cast<size_t>(p.m) * static_cast<size_t>(p.n) *
                                        static_cast<size_t>(dtype_size(p.out_dtype)));
      }
    }
    DeviceBuffer d(d_bytes);
    DeviceBuffer workspace;

    for (int64_t m : options.m_list) {
      CompareBlock block;
      block.dtype = dtype;
      block.m = m;
      try {
        // Plans and closures: per variant, tuned then default, four linears each.
        struct Run {
          size_t cell;
          std::shared_ptr<const GemmPlan> plan;
          GemmArgs args;
        };
        std::vector<Run> runs;
        for (Variant& v : variants) {
          for (bool tuned : {true, false}) {
            CompareCell cell;
            cell.variant = v.name;
            cell.tuned = tuned;
            for (size_t l = 0; l < shapes.size(); ++l) {
              const LayerGemmSpec spec{dtype, v.sparsity, shapes[l].n, shapes[l].k,
                                       options.epilogue};
              const GemmProblem p = layer_gemm_problem(spec, m);
              cell.out_dtype = p.out_dtype;
              std::optional<GemmAlgorithm> algorithm;
              if (tuned) algorithm = lookup_tuned_gemm(gemm_problem_key(p));
              std::shared_ptr<const GemmPlan> plan;
              try {
                plan = get_gemm_plan(p, algorithm);
              } catch (const NotSupportedError&) {
                if (!algorithm) throw;
                // The tuned algorithm is refused at this M (cuBLASLt algo words are checked per
                // shape): the layer would need the default too.
                plan = get_gemm_plan(p, std::nullopt);
                algorithm.reset();
              }
              workspace.reserve(plan->workspace_size());
              std::string what = shapes[l].name + ": " + plan->algorithm().describe();
              if (tuned && !algorithm) what += " (no tuned entry)";
              cell.algorithms.push_back(what);
              runs.push_back({block.cells.size(), std::move(plan), GemmArgs{}});
            }
            block.cells.push_back(cell);
          }
        }
        // Args after every workspace reservation (the buffer may have moved).
        {
          size_t r = 0;
          for (Variant& v : variants) {
            for (int t = 0; t < 2; ++t) {
              for (size_t l = 0; l < shapes.size(); ++l, ++r) {
                GemmArgs a = v.operands[l]->args(runs[r].plan->problem(), d.get());
                a.workspace = workspace.get();
                a.workspace_bytes = workspace.bytes();
                runs[r].args = a;
              }
            }
          }
        }
        std::vector<TimedFn> fns;
        for (const Run& run : runs) {
          fns.push_back([&run, &stream](int) { run.plan->run(run.args, stream.get()); });
        }
        const TimingOptions timing{options.warmup, options.repeats};
        // Back to back: each GEMM alone, its runs consecutive.
        for (size_t r = 0; r < runs.size(); ++r) {
          block.cells[runs[r].cell].back_to_back_us +=
              1000.0 * time_one(stream.get(), fns[r], timing).median_ms;
        }
        // Interleaved: one run of every GEMM per round.
        const auto inter = time_interleaved(stream.get(), fns, timing);
        for (size_t r = 0; r < runs.size(); ++r) {
          block.cells[runs[r].cell].interleaved_us += 1000.0 * inter[r].median_ms;
        }
      } catch (const NotSupportedError& e) {
        // A variant this library / GPU refuses (e.g. cuSPARSELt FP8 alpha-vector scaling):
        // the whole (dtype, M) block is reported as skipped with the reason.
        block.cells.clear();
        block.skipped = e.what();
      }
      clear_gemm_plan_cache();
      blocks.push_back(std::move(block));
      out << "compared " << dtype_name(dtype) << " M=" << m << "\n";
      out.flush();
    }
  }

  // ---- report ----
  std::ostringstream md;
  md << "# Tuned vs untuned GEMM, dense vs SlideSparse: " << config.name << "\n\n"
     << "GPU and libraries: " << hardware->describe() << "  \n"
     << table_line << "  \n"
     << "Sum of the four linears (qkv " << shapes[0].n << "x" << shapes[0].k << ", o "
     << shapes[1].n << "x" << shapes[1].k << ", gate_up " << shapes[2].n << "x" << shapes[2].k
     << ", down " << shapes[3].n << "x" << shapes[3].k << "), GEMM only, median of "
     << options.repeats << " runs after " << options.warmup << " warm-up runs each; epilogue "
     << epilogue_name(options.epilogue) << ".\n"
     << "Speed-up = dense time / sparse time. Back to back: each GEMM timed alone; interleaved: "
        "all variants round-robin in one loop.\n\n";
  for (DType dtype : options.dtypes) {
    std::vector<const CompareBlock*> rows;
    for (const auto& b : blocks) {
      if (b.dtype == dtype) rows.push_back(&b);
    }
    md << "## " << dtype_name(dtype) << "\n\n";
    if (!rows.empty() && !rows.front()->skipped.empty()) {
      md << "skipped: " << rows.front()->skipped << "\n\n";
      continue;
    }
    std::erase_if(rows, [&](const CompareBlock* b) {
      if (b->skipped.empty()) return false;
      md << "M=" << b->m << " skipped: " << b->skipped << "\n\n";
      return true;
    });
    if (!rows.empty() && !rows.front()->cells.empty()) {
      const auto& cells = rows.front()->cells;
      md << "GEMM outputs: dense " << dtype_name(dtype) << "->" << dtype_name(cells[0].out_dtype)
         << " (cuBLASLt), sparse " << dtype_name(dtype) << "->"
         << dtype_name(cells.back().out_dtype) << " (cuSPARSELt).\n\n";
    }
    std::string header =
        "| M | tuned, back to back | tuned, interleaved | untuned, back to back | "
        "untuned, interleaved |\n|---|---|---|---|---|\n";
    md << "Speed-ups " <<
        [&] {
          std::string s;
          for (size_t i = 0; i < sparsities.size(); ++i)
            s += (i ? " / " : "") + sparsities[i].name();
          return s;
        }()
       << ":\n\n"
       << header;
    for (const CompareBlock* b : rows) {
      auto find = [&](const std::string& variant, bool tuned) -> const CompareCell& {
        for (const auto& c : b->cells) {
          if (c.variant == variant && c.tuned == tuned) return c;
        }
        throw Error("compare: missing cell " + variant);
      };
      md << "| " << b->m;
      for (bool tuned : {true, false}) {
        for (bool inter : {false, true}) {
          const CompareCell& dense = find("dense", tuned);
          std::vector<double> ratios;
          for (const Sparsity& s : sparsities) {
            const CompareCell& sp = find(s.name(), tuned);
            ratios.push_back(inter ? dense.interleaved_us / sp.interleaved_us
                                   : dense.back_to_back_us / sp.back_to_back_us);
          }
          md << " | " << ratio_cell(ratios);
        }
      }
      md << " |\n";
    }
    md << "\nSums in microseconds (back to back / interleaved):\n\n| M | variant | tuned | untuned "
          "|\n"
          "|---|---|---|---|\n";
    md << std::fixed << std::setprecision(1);
    for (const CompareBlock* b : rows) {
      for (size_t c = 0; c + 1 < b->cells.size(); c += 2) {
        const auto& t = b->cells[c];
        const auto& u = b->cells[c + 1];
        md << "| " << b->m << " | " << t.variant << " | " << t.back_to_back_us << " / "
           << t.interleaved_us << " | " << u.back_to_back_us << " / " << u.interleaved_us << " |\n";
      }
    }
    md << "\nAlgorithms (tuned; untuned = the library default):\n\n";
    for (const CompareBlock* b : rows) {
      for (const auto& c : b->cells) {
        if (!c.tuned) continue;
        md << "- M=" << b->m << " " << c.variant << ":";
        for (const auto& a : c.algorithms) md << " " << a << ";";
        md << "\n";
      }
    }
    md << "\n";
  }
  out << "\n" << md.str();

  if (!options.out_dir.empty()) {
    nlohmann::json j;
    j["model"] = config.name;
    j["hardware"] = *hardware;
    j["tuning"] = table_line;
    j["epilogue"] = std::string(epilogue_name(options.epilogue));
    j["warmup"] = options.warmup;
    j["repeats"] = options.repeats;
    for (const auto& b : blocks) {
      nlohmann::json jb{{"dtype", std::string(dtype_name(b.dtype))}, {"m", b.m}};
      if (!b.skipped.empty()) jb["skipped"] = b.skipped;
      for (const auto& c : b.cells) {
        jb["cells"].push_back({{"variant", c.variant},
                               {"tuned", c.tuned},
                               {"out_dtype", std::string(dtype_name(c.out_dtype))},
                               {"back_to_back_us", c.back_to_back_us},
                               {"interleaved_us", c.interleaved_us},
                               {"algorithms", c.algorithms}});
      }
      j["blocks"].push_back(jb);
    }
    const std::string stem = config.name + "_" + hardware->dir_name() + "_" +
                             std::string(epilogue_name(options.epilogue));
    const auto md_file = options.out_dir / (stem + ".md");
    const auto json_file = options.out_dir / (stem + ".json");
    write_file_atomic(md_file, md.str());
    write_file_atomic(json_file, j.dump(1) + "\n");
    if (files_written != nullptr) {
      files_written->push_back(md_file);
      files_written->push_back(json_file);
    }
  }
  return blocks;
}

}  // namespace slidesparse
