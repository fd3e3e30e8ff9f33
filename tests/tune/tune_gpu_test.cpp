// The tuner on the GPU, end to end: `run_tuning` on a small model writes a table; layers built
// afterwards report the tuned algorithm the table holds for their (shape, M) and still match the
// CPU reference under it; a second run skips everything (resume). And every candidate the search
// may pick (cuSPARSELt config ids x split-K / Segment-K, cuBLASLt heuristic results) gives correct
// results. Tolerances as tests/layer/linear_test.cpp: INT8 bit for bit; FP8 ||y-ref||/||ref|| <=
// 4e-3.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "common/gpu_skip.h"
#include "common/temp_dir.h"
#include "cuda/device_info.h"
#include "gemm/gemm_op.h"
#include "layer/layer_test_util.h"
#include "slidesparse/core/linear_ref.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/tuning/tuning_db.h"
#include "slidesparse/tuning/tuning_lookup.h"
#include "tune/gemm_search.h"
#include "tune/tune_driver.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;
using test::bf16_to_float;
using test::error_stats;
using test::poisoned;
using test::to_device;
using test::to_host;

using test::TempDir;

// A Qwen2-style model small enough to tune in seconds: qkv 512x256, o 256x256, gate_up 640x256,
// down 256x320 (K = 320 is not a multiple of 8 blocks of 32 after sliding: K' is padded).
fs::path write_small_model(const fs::path& dir) {
  const fs::path file = dir / "TinyQwen" / "config.json";
  fs::create_directories(file.parent_path());
  std::ofstream(file) << R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_size": 256, "intermediate_size": 320, "num_attention_heads": 4,
    "num_key_value_heads": 2, "num_hidden_layers": 1, "vocab_size": 1000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "torch_dtype": "bfloat16"})";
  return file;
}

struct RefCheck {
  std::vector<bf16_t> x;
  std::vector<float> w;
  LinearRefResult ref;
};

RefCheck make_case(int64_t m, int64_t n, int64_t k, DType compute, std::optional<Sparsity> sparsity,
                   unsigned seed) {
  std::mt19937 rng(seed);
  RefCheck c;
  c.x = to_bf16_vector(test::random_normal(static_cast<size_t>(m * k), rng));
  c.w = test::random_normal(static_cast<size_t>(n * k), rng, 0.05f);
  if (sparsity) prune_magnitude<float>(c.w, n, k, *sparsity);
  LinearRefProblem p{c.x, c.w, {}, m, n, k, compute};
  c.ref = sparsity ? linear_slide_ref(p, *sparsity) : linear_dense_ref(p);
  return c;
}

// Runs the layer on the case's x and checks y against the reference.
void expect_matches_reference(LinearLayer& layer, const RefCheck& c, int64_t m,
                              const std::string& what) {
  const DeviceBuffer dx = to_device(c.x);
  DeviceBuffer y = poisoned(static_cast<size_t>(m) * layer.n() * 2);
  layer.prepare(m);
  const DeviceBuffer scratch = test::scratch_for(layer, m);
  layer.forward(nullptr, dx.get(), m, LinearOutput{y.get()}, test::view(scratch));
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  const auto out = to_host<bf16_t>(y.get(), static_cast<size_t>(m) * layer.n());
  if (layer.compute() == DType::kI8 && layer.epilogue() == Epilogue::kKernel) {
    int64_t differ = 0;
    for (size_t i = 0; i < out.size(); ++i) differ += out[i].bits != c.ref.y_bf16[i].bits;
    EXPECT_EQ(differ, 0) << what << ": int8 y must equal the reference bit for bit";
    return;
  }
  const auto stats = error_stats(bf16_to_float(out), c.ref.y);
  EXPECT_EQ(stats.nan, 0) << what;
  EXPECT_LE(stats.rel, 4e-3) << what;
  EXPECT_LE(stats.max_abs, 1e-2 * stats.max_ref) << what;
}

class TuneGpu : public ::testing::Test {
 protected:
  void TearDown() override {
    reset_active_tuning();
    clear_gemm_plan_cache();
  }
};

TEST_F(TuneGpu, TunedTableIsAppliedByLayersAndStaysCorrect) {
  SS_SKIP_WITHOUT_GPU();
  TempDir dir;
  const fs::path model = write_small_model(dir.path());
  const fs::path tuning = dir.path() / "tuning";
  TuneOptions o;
  o.models = {model.string()};
  o.dtypes = {DType::kI8};
  if (test::fp8_available()) o.dtypes.push_back(DType::kFP8E4M3);
  o.sparsities = {Sparsity::from_block(4), Sparsity::from_block(8)};
  o.m_list = {64, 300};
  o.tuning_dir = tuning;
  std::ostringstream log;
  const TuneSummary first = run_tuning(o, log);
  EXPECT_TRUE(first.failures.empty()) << log.str();
  EXPECT_GT(first.jobs_run, 0);
  EXPECT_EQ(first.jobs_skipped, 0);
  ASSERT_FALSE(first.files.empty()) << log.str();
  for (const auto& f : first.files) EXPECT_TRUE(fs::is_regular_file(f)) << f;

  // Resume: everything is done before.
  std::ostringstream log2;
  const TuneSummary second = run_tuning(o, log2);
  EXPECT_EQ(second.jobs_run, 0) << log2.str();
  EXPECT_EQ(second.jobs_skipped, first.jobs_total);
  EXPECT_NE(log2.str().find("coarse: skipped, done before"), std::string::npos) << log2.str();
  EXPECT_NE(log2.str().find("fine: skipped, done before"), std::string::npos) << log2.str();

  // Layers pick the table up on their own.
  set_tuning_dir(tuning);
  const auto table = active_tuning_table();
  ASSERT_NE(table, nullptr) << describe_active_tuning();
  const struct { int64_t n, k; } shapes[] = {{512, 256}, {256, 256}, {640, 256}, {256, 320}};
  int tuned_seen = 0;
  unsigned seed = 1;
  for (DType dtype : o.dtypes) {
    std::vector<std::optional<Sparsity>> variants{std::nullopt};
    for (const auto& s : o.sparsities) variants.emplace_back(s);
    for (const auto& variant : variants) {
      for (const auto& shape : shapes) {
        for (int64_t m : {64, 300, 200}) {  // 200: between tuned Ms, takes the M=300 entry
          const std::string what =
              std::string(dtype_name(dtype)) + " " + (variant ? variant->name() : "dense") + " " +
              std::to_string(shape.n) + "x" + std::to_string(shape.k) + " M=" + std::to_string(m);
          SCOPED_TRACE(what);
          const RefCheck c = make_case(m, shape.n, shape.k, dtype, variant, ++seed);
          const HostWeight hw{DType::kF32, c.w.data(), shape.n, shape.k};
          LinearOptions lo{dtype, Epilogue::kKernel, /*use_tuning=*/true, std::nullopt};
          std::unique_ptr<LinearLayer> layer;
          if (variant) {
            layer = std::make_unique<SlideSparseLinear>(hw, *variant, std::span<const float>{}, lo);
          } else {
            layer = std::make_unique<Linear>(hw, std::span<const float>{}, lo);
          }
          const GemmProblem p =
              layer_gemm_problem({dtype, variant, shape.n, shape.k, Epilogue::kKernel}, m);
          const GemmTuningEntry* entry = table->find_gemm(gemm_problem_key(p));
          ASSERT_NE(entry, nullptr) << "no table entry for " << p.describe();
          EXPECT_EQ(
              entry->key.m,
              m == 64
                  ? layer_gemm_problem({dtype, variant, shape.n, shape.k, Epilogue::kKernel}, 64).m
                  : layer_gemm_problem({dtype, variant, shape.n, shape.k, Epilogue::kKernel}, 300)
                        .m);
          layer->prepare(m);
          const GemmChoice choice = layer->gemm_choice(m);
          EXPECT_EQ(choice.tuned, !entry->algorithm.is_default) << choice.describe();
          if (choice.tuned) {
            ++tuned_seen;
            EXPECT_EQ(choice.algorithm, entry->algorithm)
                << choice.describe() << " vs table " << entry->algorithm.describe();
          }
          expect_matches_reference(*layer, c, m, what);
        }
      }
    }
  }
  // Not a requirement of the hardware, but with ~30 cuSPARSELt candidates per problem the
  // default almost never wins everywhere; report it so a run shows whether tuning applied.
  std::cout << "[info] " << tuned_seen << " layer/M combinations ran a tuned (non-default) GEMM\n";
}

// Every candidate the search can choose computes the same function.
TEST_F(TuneGpu, EveryCandidateAlgorithmIsCorrect) {
  SS_SKIP_WITHOUT_GPU();
  std::vector<DType> dtypes{DType::kI8};
  if (test::fp8_available()) dtypes.push_back(DType::kFP8E4M3);
  const int64_t m = 96, n = 256, k = 512;
  const GemmSearchOptions search;
  for (DType dtype : dtypes) {
    for (std::optional<Sparsity> variant :
         {std::optional<Sparsity>{}, std::optional<Sparsity>{Sparsity::from_block(6)}}) {
      const GemmProblem p = layer_gemm_problem({dtype, variant, n, k, Epilogue::kKernel}, m);
      std::vector<GemmAlgorithm> candidates = first_pass_candidates(p, search);
      if (variant) {
        for (int split : search.split_k) {
          GemmAlgorithm a;
          a.is_default = false;
          a.alg_config_id = 0;
          a.split_k = split;
          candidates.push_back(a);
        }
      }
      ASSERT_FALSE(candidates.empty());
      const RefCheck c = make_case(m, n, k, dtype, variant, 77);
      const HostWeight hw{DType::kF32, c.w.data(), n, k};
      int ran = 0, refused = 0;
      for (const GemmAlgorithm& a : candidates) {
        const std::string what = std::string(dtype_name(dtype)) + " " +
                                 (variant ? variant->name() : "dense") + " " + a.describe();
        SCOPED_TRACE(what);
        LinearOptions lo{dtype, Epilogue::kKernel, /*use_tuning=*/false, a};
        std::unique_ptr<LinearLayer> layer;
        if (variant) {
          layer = std::make_unique<SlideSparseLinear>(hw, *variant, std::span<const float>{}, lo);
        } else {
          layer = std::make_unique<Linear>(hw, std::span<const float>{}, lo);
        }
        try {
          layer->prepare(m);
          const GemmChoice choice = layer->gemm_choice(m);
          EXPECT_TRUE(choice.forced);
          EXPECT_EQ(choice.algorithm, a);
        } catch (const NotSupportedError&) {
          ++refused;  // the library refuses this one here: the search skips it too
          cudaGetLastError();
          continue;
        }
        expect_matches_reference(*layer, c, m, what);
        ++ran;
      }
      std::cout << "[info] " << dtype_name(dtype) << " " << (variant ? variant->name() : "dense")
                << ": " << ran << " candidates correct, " << refused << " refused\n";
      EXPECT_GT(ran, 0);
      clear_gemm_plan_cache();
    }
  }
}

}  // namespace
}  // namespace slidesparse

namespace slidesparse {
namespace {

// A table entry the library refuses (a cuBLASLt algorithm of garbage words, a cuSPARSELt config
// id past the last one) must not stop the layer: it falls back to the default, says it did not
// run the tuned choice, and stays correct.
TEST_F(TuneGpu, RefusedTunedAlgorithmFallsBackToTheDefault) {
  SS_SKIP_WITHOUT_GPU();
  const auto hardware = HardwareKey::current();
  ASSERT_TRUE(hardware.has_value());
  const int64_t n = 256, k = 320, m = 64;
  const Sparsity sparsity = Sparsity::from_block(8);
  auto table = std::make_shared<TuningTable>(*hardware);
  for (const std::optional<Sparsity>& variant :
       {std::optional<Sparsity>{}, std::optional(sparsity)}) {
    const GemmProblem p = layer_gemm_problem({DType::kI8, variant, n, k, Epilogue::kKernel}, m);
    GemmTuningEntry e;
    e.key = gemm_problem_key(p);
    e.algorithm.is_default = false;
    e.algorithm.cublaslt_algo.fill(0xFFFFFFFFull);
    e.algorithm.alg_config_id = 100000;
    e.time_us = 1;
    if (variant) e.sparsity = variant->name();
    table->put(e);
  }
  set_active_tuning_table(table, "test: refused entries");
  for (const std::optional<Sparsity>& variant :
       {std::optional<Sparsity>{}, std::optional(sparsity)}) {
    SCOPED_TRACE(variant ? variant->name() : "dense");
    const RefCheck c = make_case(m, n, k, DType::kI8, variant, 99);
    const HostWeight hw{DType::kF32, c.w.data(), n, k};
    LinearOptions lo{DType::kI8, Epilogue::kKernel, /*use_tuning=*/true, std::nullopt};
    std::unique_ptr<LinearLayer> layer;
    if (variant) {
      layer = std::make_unique<SlideSparseLinear>(hw, *variant, std::span<const float>{}, lo);
    } else {
      layer = std::make_unique<Linear>(hw, std::span<const float>{}, lo);
    }
    layer->prepare(m);
    const GemmChoice choice = layer->gemm_choice(m);
    EXPECT_FALSE(choice.tuned) << choice.describe();
    EXPECT_TRUE(choice.algorithm.is_default) << choice.describe();
    expect_matches_reference(*layer, c, m, "refused tuned entry");
  }
}

}  // namespace
}  // namespace slidesparse

#ifdef SLIDESPARSE_HAVE_CUSPARSELT
#include "gemm/cusparselt_gemm.h"

namespace slidesparse {
namespace {

// The search's two additions: rotated operand slots stay inside the buffers (the last slot ends
// exactly at m_max), and cusparseLtMatmulSearch's pick, run as a forced layer algorithm, computes
// the same function as the CPU reference.
TEST_F(TuneGpu, LibrarySearchPickIsCorrectOnRotatedOperands) {
  SS_SKIP_WITHOUT_GPU();
  const int64_t m = 64, n = 256, k = 512;
  const Sparsity sparsity = Sparsity::from_block(6);
  const GemmProblem p = layer_gemm_problem({DType::kI8, sparsity, n, k, Epilogue::kKernel}, m);
  CudaStream stream;
  GemmOperands operands(p, 4 * p.m, 91, stream.get());
  ASSERT_EQ(operands.rotation_slots(p), 4);
  EXPECT_THROW(operands.args(p, operands.d(), 4), Error);
  operands.workspace().reserve(size_t{64} << 20);
  const GemmAlgorithm pick =
      cusparselt_library_search(p, operands.args(p, operands.d(), 3), 2, stream.get());
  EXPECT_FALSE(pick.is_default);
  const RefCheck c = make_case(m, n, k, DType::kI8, sparsity, 92);
  const HostWeight hw{DType::kF32, c.w.data(), n, k};
  LinearOptions lo{DType::kI8, Epilogue::kKernel, /*use_tuning=*/false, pick};
  SlideSparseLinear layer(hw, sparsity, std::span<const float>{}, lo);
  layer.prepare(m);
  EXPECT_EQ(layer.gemm_choice(m).algorithm, pick);
  expect_matches_reference(layer, c, m, "library search pick " + pick.describe());
  std::cout << "[info] cusparseLtMatmulSearch picked " << pick.describe() << "\n";
}

}  // namespace
}  // namespace slidesparse
#endif
