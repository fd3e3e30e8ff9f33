// GPU tests of the attention step: BatchAttention (FlashInfer's paged batch prefill) against
// core/attention_ref.h per sequence, and launch_rope_kv_write against core/rope_ref.h bit for
// bit. Inputs are fresh random bf16 (seed printed); outputs are poisoned before each run;
// cache slots that no sequence owns hold a huge finite bf16 (0x7F00, ~1.7e38), so a kernel that
// let one of them into a softmax or a weighted sum would blow the result up.
//
// Tolerance (BatchAttention vs the double reference): |got - ref| <= 2e-2 + 2e-2 * |ref| per
// element. bf16 inputs are exact in both; the error is FlashInfer's bf16 rounding of the softmax
// probabilities before the P.V product and of the output (2^-9 relative each), values ~N(0, 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/attention/batch_attention.h"
#include "kernels/attention/kv_cache.h"
#include "kernels/attention/rope_kv_write.h"
#include "kernels/kernel_test_util.h"
#include "slidesparse/core/attention_ref.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/rope_ref.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::fresh_seed;
using test::GuardedBuffer;

constexpr uint16_t kUnusedSlot = 0x7F00;  // bf16 ~1.7e38: stale cache content
constexpr float kAtol = 2e-2f;
constexpr float kRtol = 2e-2f;

std::vector<bf16_t> random_bf16(size_t n, std::mt19937_64& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<bf16_t> out(n);
  for (auto& v : out) v = bf16_from_float(normal(rng));
  return out;
}

std::vector<float> to_floats(const std::vector<bf16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

template <class T>
void upload(void* dst, const std::vector<T>& src) {
  SS_CUDA_CHECK(cudaMemcpy(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice));
}

template <class T>
std::vector<T> download(const void* src, size_t count) {
  std::vector<T> out(count);
  SS_CUDA_CHECK(cudaMemcpy(out.data(), src, count * sizeof(T), cudaMemcpyDeviceToHost));
  return out;
}

// A batch of sequences in a paged cache: sequence b has kv_lens[b] tokens (random k/v) in pages
// drawn at random from the cache, its last q_lens[b] tokens are the queries.
struct PagedBatch {
  int hq = 0;
  KvCacheShape shape;
  std::vector<int> q_lens, kv_lens;
  std::vector<int32_t> qo_indptr, kv_indptr, kv_indices, kv_last_page_len;
  std::vector<std::vector<bf16_t>> k, v;  // per sequence [kv_len, hkv, d]
  std::vector<bf16_t> q;                  // [T, ld_q], the q columns first
  int64_t ld_q = 0;
  int64_t total_q() const { return qo_indptr.back(); }
};

// Pages are assigned from `free_pages` (consumed from the back).
PagedBatch make_batch(int hq, const KvCacheShape& shape, const std::vector<int>& q_lens,
                      const std::vector<int>& kv_lens, std::vector<int32_t>& free_pages,
                      std::mt19937_64& rng) {
  PagedBatch batch;
  batch.hq = hq;
  batch.shape = shape;
  batch.q_lens = q_lens;
  batch.kv_lens = kv_lens;
  const int hkv = shape.num_kv_heads, d = shape.head_dim, page = shape.page_size;
  batch.qo_indptr = {0};
  batch.kv_indptr = {0};
  for (size_t b = 0; b < q_lens.size(); ++b) {
    const int pages = (kv_lens[b] + page - 1) / page;
    for (int p = 0; p < pages; ++p) {
      batch.kv_indices.push_back(free_pages.back());
      free_pages.pop_back();
    }
    batch.qo_indptr.push_back(batch.qo_indptr.back() + q_lens[b]);
    batch.kv_indptr.push_back(batch.kv_indptr.back() + pages);
    batch.kv_last_page_len.push_back(pages == 0 ? 0 : kv_lens[b] - (pages - 1) * page);
    batch.k.push_back(random_bf16(size_t(kv_lens[b]) * hkv * d, rng));
    batch.v.push_back(random_bf16(size_t(kv_lens[b]) * hkv * d, rng));
  }
  // q inside qkv-like rows: q columns, then columns the kernel must not read (huge values).
  batch.ld_q = int64_t(hq + 2 * hkv) * d;
  batch.q = random_bf16(size_t(batch.total_q()) * batch.ld_q, rng);
  for (int64_t t = 0; t < batch.total_q(); ++t)
    for (int64_t c = int64_t(hq) * d; c < batch.ld_q; ++c)
      batch.q[t * batch.ld_q + c].bits = kUnusedSlot;
  return batch;
}

// Host images of the cache arrays [num_pages, page, hkv, d] with the batch's tokens in place.
void write_to_cache(const PagedBatch& batch, std::vector<bf16_t>& k_cache,
                    std::vector<bf16_t>& v_cache) {
  const int64_t row = batch.shape.row_elems(), page = batch.shape.page_size;
  for (size_t b = 0; b < batch.q_lens.size(); ++b)
    for (int64_t tok = 0; tok < batch.kv_lens[b]; ++tok) {
      const int64_t slot =
          int64_t(batch.kv_indices[batch.kv_indptr[b] + tok / page]) * page + tok % page;
      std::copy_n(batch.k[b].begin() + tok * row, row, k_cache.begin() + slot * row);
      std::copy_n(batch.v[b].begin() + tok * row, row, v_cache.begin() + slot * row);
    }
}

// out [T, hq*d] (bf16 bits) against attention_ref per sequence; returns the largest error.
float expect_matches_reference(const PagedBatch& batch, const std::vector<bf16_t>& out,
                               const std::string& what) {
  const int64_t hq = batch.hq, hkv = batch.shape.num_kv_heads, d = batch.shape.head_dim;
  const float sm_scale = 1.0f / std::sqrt(float(d));
  float max_err = 0.0f;
  int64_t failures = 0;
  for (size_t b = 0; b < batch.q_lens.size(); ++b) {
    const int64_t t = batch.q_lens[b], s = batch.kv_lens[b];
    if (t == 0) continue;
    std::vector<float> q(size_t(t * hq * d));
    for (int64_t i = 0; i < t; ++i)
      for (int64_t c = 0; c < hq * d; ++c)
        q[i * hq * d + c] = to_float(batch.q[(batch.qo_indptr[b] + i) * batch.ld_q + c]);
    const std::vector<float> ref = attention_ref(q, to_floats(batch.k[b]), to_floats(batch.v[b]), t,
                                                 s, hq, hkv, d, sm_scale, /*causal=*/true);
    for (int64_t i = 0; i < t * hq * d; ++i) {
      const float got = to_float(out[size_t(batch.qo_indptr[b] * hq * d + i)]);
      const float err = std::fabs(got - ref[i]);
      if (!(err <= kAtol + kRtol * std::fabs(ref[i]))) {
        if (++failures <= 5)
          ADD_FAILURE() << what << ": sequence " << b << " (q " << t << ", kv " << s << ") query "
                        << i / (hq * d) << " head " << (i / d) % hq << " dim " << i % d << ": got "
                        << got << ", want " << ref[i];
      }
      if (!(err <= max_err)) max_err = std::isnan(err) ? INFINITY : std::max(max_err, err);
    }
  }
  if (failures > 5) ADD_FAILURE() << what << ": " << failures << " elements out of tolerance";
  return max_err;
}

// Device side of a test: the cache arrays and the q / out buffers.
struct DeviceBatch {
  GuardedBuffer k, v, q, out;
  DeviceBatch(const PagedBatch& batch, const std::vector<bf16_t>& k_cache,
              const std::vector<bf16_t>& v_cache)
      : k(k_cache.size() * 2),
        v(v_cache.size() * 2),
        q(batch.q.size() * 2),
        out(size_t(batch.total_q()) * batch.hq * batch.shape.head_dim * 2) {
    upload(k.get(), k_cache);
    upload(v.get(), v_cache);
    upload(q.get(), batch.q);
  }
  KvCacheLayer cache() const { return {k.get(), v.get()}; }
};

struct AttentionCase {
  int hq, hkv, d, page_size;
  std::vector<int> q_lens, kv_lens;
};

void run_case(const AttentionCase& c, bool for_cuda_graph, uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  int pages_needed = 0;
  for (int len : c.kv_lens) pages_needed += (len + c.page_size - 1) / c.page_size;
  KvCacheShape shape{pages_needed + 7, c.page_size, c.hkv, c.d};
  std::vector<int32_t> free_pages(size_t(shape.num_pages));
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::shuffle(free_pages.begin(), free_pages.end(), rng);
  const PagedBatch batch = make_batch(c.hq, shape, c.q_lens, c.kv_lens, free_pages, rng);
  const size_t cache_elems = size_t(shape.num_slots() * shape.row_elems());
  std::vector<bf16_t> k_cache(cache_elems, bf16_t{kUnusedSlot}), v_cache = k_cache;
  write_to_cache(batch, k_cache, v_cache);
  DeviceBatch dev(batch, k_cache, v_cache);

  const int max_batch = int(c.q_lens.size()) + 3;
  BatchAttention attention(c.hq, shape, max_batch, batch.total_q() + 5, for_cuda_graph);
  CudaStream stream;
  attention.plan(batch.qo_indptr, batch.kv_indptr, batch.kv_indices, batch.kv_last_page_len,
                 stream.get());
  attention.run(dev.q.get(), batch.ld_q, dev.cache(), dev.out.get(), stream.get());
  SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  std::ostringstream what;
  what << "hq " << c.hq << " hkv " << c.hkv << " d " << c.d << (for_cuda_graph ? " graph" : "");
  const float err = expect_matches_reference(
      batch, download<bf16_t>(dev.out.get(), dev.out.bytes() / 2), what.str());
  EXPECT_TRUE(dev.out.sentinel_intact()) << what.str() << ": wrote past the output";
  ::testing::Test::RecordProperty("max_abs_err_" + std::to_string(c.hq) + "_" + std::to_string(c.d),
                                  std::to_string(err));
}

// ---- ragged prefill -------------------------------------------------------------------------

TEST(BatchAttentionTest, RaggedPrefillWithPrefixesMatchesReference) {
  SS_SKIP_WITHOUT_GPU();
  // q lengths 1, 17, 100, 300; sequences 1 and 3 continue from an existing KV prefix.
  const std::vector<int> q_lens = {1, 17, 100, 300}, kv_lens = {1, 57, 100, 333};
  for (auto [hq, hkv, d] : {std::tuple{28, 4, 128}, std::tuple{10, 2, 64}, std::tuple{4, 4, 128},
                            std::tuple{40, 8, 128}}) {
    run_case({hq, hkv, d, 16, q_lens, kv_lens}, /*for_cuda_graph=*/false, fresh_seed());
  }
}

TEST(BatchAttentionTest, RaggedPrefillOtherPageSizes) {
  SS_SKIP_WITHOUT_GPU();
  run_case({14, 2, 64, 1, {33, 1, 5}, {33, 40, 5}}, false, fresh_seed());
  run_case({14, 2, 128, 32, {33, 1, 5}, {70, 40, 5}}, false, fresh_seed());
}

TEST(BatchAttentionTest, EmptyQueriesInBatch) {
  SS_SKIP_WITHOUT_GPU();
  // A sequence with no queries this step (its KV still listed) must not disturb the others.
  run_case({10, 2, 128, 16, {3, 0, 17}, {20, 9, 17}}, false, fresh_seed());
}

// ---- decode: one query per sequence, every GQA group size ---------------------------------

class BatchAttentionDecodeTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(BatchAttentionDecodeTest, MatchesReference) {
  SS_SKIP_WITHOUT_GPU();
  const auto [group, d] = GetParam();
  // KV lengths around page boundaries (page 16) and one long sequence.
  const std::vector<int> kv_lens = {1, 15, 16, 17, 32, 33, 1025};
  const std::vector<int> q_lens(kv_lens.size(), 1);
  for (bool graph : {false, true})
    run_case({2 * group, 2, d, 16, q_lens, kv_lens}, graph, fresh_seed());
}

INSTANTIATE_TEST_SUITE_P(GroupsAndHeadDims, BatchAttentionDecodeTest,
                         ::testing::Combine(::testing::Values(1, 5, 7), ::testing::Values(64, 128)),
                         [](const auto& info) {
                           return "group" + std::to_string(std::get<0>(info.param)) + "_d" +
                                  std::to_string(std::get<1>(info.param));
                         });

// ---- CUDA graphs: capture once, re-plan with new lengths, replay ------------------------------

struct GraphExec {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphExec() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

// Plans `first`, captures run(), then for each later batch (same size) plans and replays; every
// replay must equal an eager run() of the same plan bit for bit, and the reference.
void graph_replay_case(int hq, int hkv, int d, const std::vector<std::vector<int>>& q_lens,
                       const std::vector<std::vector<int>>& kv_lens, int64_t max_tokens,
                       uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  int pages_needed = 0;
  for (const auto& lens : kv_lens)
    for (int len : lens) pages_needed += (len + 15) / 16;
  const KvCacheShape shape{pages_needed + 3, 16, hkv, d};
  std::vector<int32_t> free_pages(size_t(shape.num_pages));
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::shuffle(free_pages.begin(), free_pages.end(), rng);
  std::vector<PagedBatch> batches;
  const size_t cache_elems = size_t(shape.num_slots() * shape.row_elems());
  std::vector<bf16_t> k_cache(cache_elems, bf16_t{kUnusedSlot}), v_cache = k_cache;
  for (size_t i = 0; i < q_lens.size(); ++i) {
    batches.push_back(make_batch(hq, shape, q_lens[i], kv_lens[i], free_pages, rng));
    write_to_cache(batches.back(), k_cache, v_cache);
  }
  GuardedBuffer k(cache_elems * 2), v(cache_elems * 2);
  upload(k.get(), k_cache);
  upload(v.get(), v_cache);
  const int64_t ld_q = batches[0].ld_q;
  GuardedBuffer q(size_t(max_tokens * ld_q) * 2), out(size_t(max_tokens) * hq * d * 2),
      eager(size_t(max_tokens) * hq * d * 2);

  BatchAttention attention(hq, shape, int(q_lens[0].size()), max_tokens, /*for_cuda_graph=*/true);
  CudaStream stream;
  GraphExec graph;
  for (size_t i = 0; i < batches.size(); ++i) {
    const PagedBatch& batch = batches[i];
    upload(q.get(), batch.q);
    attention.plan(batch.qo_indptr, batch.kv_indptr, batch.kv_indices, batch.kv_last_page_len,
                   stream.get());
    if (i == 0) {
      SS_CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
      attention.run(q.get(), ld_q, {k.get(), v.get()}, out.get(), stream.get());
      SS_CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph.graph));
      SS_CUDA_CHECK(cudaGraphInstantiate(&graph.exec, graph.graph, 0));
    }
    out.poison();
    eager.poison();
    SS_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream.get()));
    attention.run(q.get(), ld_q, {k.get(), v.get()}, eager.get(), stream.get());
    SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    const size_t n = size_t(batch.total_q()) * hq * d;
    const auto replayed = download<bf16_t>(out.get(), n);
    const auto eager_out = download<bf16_t>(eager.get(), n);
    const std::string what = "graph replay " + std::to_string(i);
    EXPECT_EQ(0, test::expect_bytes_equal(test::as_bytes(replayed), test::as_bytes(eager_out),
                                          int64_t(hq) * d * 2, what + " vs eager"));
    expect_matches_reference(batch, replayed, what);
    EXPECT_TRUE(out.sentinel_intact()) << what;
  }
}

TEST(BatchAttentionGraphTest, DecodeReplayAfterReplanWithNewLengths) {
  SS_SKIP_WITHOUT_GPU();
  // Qwen2.5-7B-like heads (group 7), 5 sequences; the KV lengths grow and shrink across plans.
  graph_replay_case(28, 4, 128, {{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}},
                    {{1, 16, 17, 100, 7}, {300, 2, 18, 1, 1025}, {33, 33, 33, 33, 33}},
                    /*max_tokens=*/8, fresh_seed());
  graph_replay_case(10, 2, 64, {{1, 1, 1}, {1, 1, 1}}, {{5, 64, 1}, {1000, 3, 16}}, 3,
                    fresh_seed());
}

TEST(BatchAttentionGraphTest, RaggedReplayAfterReplan) {
  SS_SKIP_WITHOUT_GPU();
  graph_replay_case(14, 2, 128, {{3, 1, 7}, {2, 5, 1}, {0, 16, 0}},
                    {{20, 5, 40}, {33, 18, 1}, {4, 16, 9}},
                    /*max_tokens=*/16, fresh_seed());
}

// ---- argument checks --------------------------------------------------------------------------

TEST(BatchAttentionTest, RejectsBadArguments) {
  SS_SKIP_WITHOUT_GPU();
  const KvCacheShape shape{8, 16, 2, 128};
  EXPECT_THROW(BatchAttention(7, shape, 4, 64, false), Error);           // 7 % 2 != 0
  EXPECT_THROW(BatchAttention(4, {8, 16, 2, 96}, 4, 64, false), Error);  // head_dim 96
  EXPECT_THROW(BatchAttention(4, shape, 8, 4, true), Error);             // graph: tokens < batch
  BatchAttention attention(4, shape, 2, 32, false);
  const std::vector<int32_t> qo = {0, 3}, kv = {0, 1}, pages = {5}, last = {3};
  GuardedBuffer q(32 * 4 * 128 * 2), out(32 * 4 * 128 * 2);
  EXPECT_THROW(attention.run(q.get(), 512, {q.get(), q.get()}, out.get(), nullptr),
               Error);  // no plan
  EXPECT_THROW(
      attention.plan(std::vector<int32_t>{0, 3, 4, 5}, std::vector<int32_t>{0, 1, 2, 3},
                     std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{3, 3, 3}, nullptr),
      Error);  // batch 3 > 2
  EXPECT_THROW(attention.plan(qo, kv, std::vector<int32_t>{8}, last, nullptr), Error);  // page 8
  EXPECT_THROW(attention.plan(qo, kv, pages, std::vector<int32_t>{2}, nullptr),
               Error);  // kv 2 < q 3
  EXPECT_THROW(attention.plan(qo, kv, pages, std::vector<int32_t>{17}, nullptr), Error);  // > page
  EXPECT_THROW(attention.plan(std::vector<int32_t>{0, 33}, std::vector<int32_t>{0, 3},
                              std::vector<int32_t>{0, 1, 2}, std::vector<int32_t>{1}, nullptr),
               Error);  // 33 > max_tokens
  attention.plan(qo, kv, pages, last, nullptr);
  EXPECT_THROW(attention.run(q.get(), 500, {q.get(), q.get()}, out.get(), nullptr),
               Error);  // ld_q < Hq*D
  SS_CUDA_CHECK(cudaDeviceSynchronize());
}

// ---- RoPE + KV-cache write ---------------------------------------------------------------------

void rope_kv_write_case(int hq, int hkv, int d, int64_t tokens, uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", hq " + std::to_string(hq) + " hkv " +
               std::to_string(hkv) + " d " + std::to_string(d));
  std::mt19937_64 rng(seed);
  const int64_t max_positions = 70001;  // positions past 2^16
  RopeParams rope{1000000.0, int64_t(d), std::nullopt, ""};
  const std::vector<float> table = rope_cos_sin_table(rope, max_positions);
  const KvCacheShape shape{5, 16, hkv, d};
  const int64_t width = int64_t(hq + 2 * hkv) * d, ld = width + 8;

  std::vector<bf16_t> qkv = random_bf16(size_t(tokens * ld), rng, 3.0f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = width; c < ld; ++c) qkv[t * ld + c].bits = kUnusedSlot;
  std::vector<int32_t> positions(static_cast<size_t>(tokens));
  std::uniform_int_distribution<int32_t> position(0, int32_t(max_positions - 1));
  for (auto& p : positions) p = position(rng);
  positions[0] = int32_t(max_positions - 1);
  if (tokens > 1) positions[1] = 65537;
  std::vector<int64_t> all_slots(size_t(shape.num_slots()));
  std::iota(all_slots.begin(), all_slots.end(), 0);
  std::shuffle(all_slots.begin(), all_slots.end(), rng);
  std::vector<int64_t> slots(all_slots.begin(), all_slots.begin() + tokens);
  if (tokens > 2) slots[2] = -1;  // a padding row: rotated, not written

  // Reference: rotate q and k heads in place, then scatter k and v rows into a poisoned cache.
  std::vector<bf16_t> want = qkv;
  rope_apply_ref(want, tokens, hq, d, ld, positions, table);
  rope_apply_ref(std::span<bf16_t>(want).subspan(size_t(hq) * d), tokens, hkv, d, ld, positions,
                 table);
  const size_t cache_bytes = size_t(shape.bytes_per_array());
  std::vector<uint8_t> want_k(cache_bytes, test::kPoison), want_v = want_k;
  const int64_t row = shape.row_elems();
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[size_t(t)] < 0) continue;
    std::memcpy(want_k.data() + slots[size_t(t)] * row * 2, &want[size_t(t * ld + hq * d)],
                size_t(row) * 2);
    std::memcpy(want_v.data() + slots[size_t(t)] * row * 2, &want[size_t(t * ld + (hq + hkv) * d)],
                size_t(row) * 2);
  }

  GuardedBuffer dev_qkv(qkv.size() * 2), dev_k(cache_bytes), dev_v(cache_bytes),
      dev_positions(positions.size() * 4), dev_slots(slots.size() * 8), dev_table(table.size() * 4);
  upload(dev_qkv.get(), qkv);
  upload(dev_positions.get(), positions);
  upload(dev_slots.get(), slots);
  upload(dev_table.get(), table);
  launch_rope_kv_write(dev_qkv.get(), tokens, ld, hq, shape, dev_positions.as<int32_t>(),
                       dev_table.as<float>(), max_positions, dev_slots.as<int64_t>(),
                       {dev_k.get(), dev_v.get()}, nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(0, test::expect_bytes_equal(dev_qkv.download(), test::as_bytes(want), ld * 2, "qkv"));
  EXPECT_EQ(0, test::expect_bytes_equal(dev_k.download(), want_k, row * 2, "k cache"));
  EXPECT_EQ(0, test::expect_bytes_equal(dev_v.download(), want_v, row * 2, "v cache"));
  for (const GuardedBuffer* b : {&dev_qkv, &dev_k, &dev_v}) EXPECT_TRUE(b->sentinel_intact());
}

TEST(RopeKvWriteTest, BitExactAgainstReference) {
  SS_SKIP_WITHOUT_GPU();
  rope_kv_write_case(14, 2, 128, 17, fresh_seed());  // Qwen2.5-7B-like heads (group 7)
  rope_kv_write_case(5, 1, 64, 33, fresh_seed());    // group 5
  rope_kv_write_case(4, 4, 128, 1, fresh_seed());
}

TEST(RopeKvWriteTest, RejectsBadArguments) {
  SS_SKIP_WITHOUT_GPU();
  const KvCacheShape shape{4, 16, 2, 128};
  GuardedBuffer buf(1 << 20);
  auto call = [&](int64_t ld, int hq, KvCacheShape s) {
    launch_rope_kv_write(buf.get(), 2, ld, hq, s, buf.as<int32_t>(), buf.as<float>(), 16,
                         buf.as<int64_t>(), {buf.get(), buf.get()}, nullptr);
  };
  EXPECT_THROW(call(6 * 128 - 2, 2, shape), Error);        // ld_qkv too small
  EXPECT_THROW(call(6 * 128 + 1, 2, shape), Error);        // odd ld_qkv
  EXPECT_THROW(call(8 * 130, 2, {4, 16, 2, 130}), Error);  // head_dim not a multiple of 4
}

// ---- 64-bit offsets: a cache of more than 2^31 elements per array --------------------------

TEST(AttentionLargeCacheTest, SlotsAndPagesPast2To31Elements) {
  SS_SKIP_WITHOUT_GPU();
  // One kv head of 64: a page is 1024 elements, so page 2^21 starts at element 2^31. The arrays
  // are really allocated (2 x 4 GiB), and only the rows touched are checked.
  const KvCacheShape shape{(int64_t(1) << 21) + 8, 16, 1, 64};
  const size_t array_bytes = size_t(shape.bytes_per_array());
  size_t free_bytes = 0, total_bytes = 0;
  SS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  ASSERT_GE(free_bytes, 2 * array_bytes + (size_t(1) << 30))
      << "needs " << (2 * array_bytes >> 20) << " MiB + 1 GiB of free GPU memory";
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  DeviceBuffer k(array_bytes), v(array_bytes);
  SS_CUDA_CHECK(cudaMemset(k.get(), test::kPoison, array_bytes));
  SS_CUDA_CHECK(cudaMemset(v.get(), test::kPoison, array_bytes));
  const int64_t row = shape.row_elems();

  // RoPE + write: slot 2^25 + 100 is element 2^31 + 6400; positions past 2^16.
  const int hq = 2, d = 64;
  const int64_t tokens = 3, ld = int64_t(hq + 2) * d, max_positions = 100001;
  const std::vector<float> table =
      rope_cos_sin_table({10000.0, int64_t(d), std::nullopt, ""}, max_positions);
  std::vector<bf16_t> qkv = random_bf16(size_t(tokens * ld), rng);
  const std::vector<int32_t> positions = {65536 + 7, 3, 100000};
  const std::vector<int64_t> slots = {(int64_t(1) << 25) + 100, 5, shape.num_slots() - 1};
  std::vector<bf16_t> want = qkv;
  rope_apply_ref(want, tokens, hq, d, ld, positions, table);
  rope_apply_ref(std::span<bf16_t>(want).subspan(size_t(hq) * d), tokens, 1, d, ld, positions,
                 table);
  GuardedBuffer dev_qkv(qkv.size() * 2), dev_positions(12), dev_slots(24),
      dev_table(table.size() * 4);
  upload(dev_qkv.get(), qkv);
  upload(dev_positions.get(), positions);
  upload(dev_slots.get(), slots);
  upload(dev_table.get(), table);
  launch_rope_kv_write(dev_qkv.get(), tokens, ld, hq, shape, dev_positions.as<int32_t>(),
                       dev_table.as<float>(), max_positions, dev_slots.as<int64_t>(),
                       {k.get(), v.get()}, nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(0, test::expect_bytes_equal(dev_qkv.download(), test::as_bytes(want), ld * 2, "qkv"));
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slots[size_t(t)];
    const auto got_k = download<bf16_t>(k.as<bf16_t>() + slot * row, size_t(row));
    const auto got_v = download<bf16_t>(v.as<bf16_t>() + slot * row, size_t(row));
    EXPECT_TRUE(std::equal(got_k.begin(), got_k.end(), want.begin() + t * ld + hq * d))
        << "k slot " << slot;
    EXPECT_TRUE(std::equal(got_v.begin(), got_v.end(), want.begin() + t * ld + (hq + 1) * d))
        << "v slot " << slot;
    // The neighbouring slots stay poisoned (a 32-bit offset would land elsewhere).
    for (int64_t n : {slot - 1, slot + 1}) {
      if (n < 0 || n >= shape.num_slots() || n == 5 || n == slots[0]) continue;
      const auto around = download<uint8_t>(k.as<bf16_t>() + n * row, size_t(row) * 2);
      EXPECT_TRUE(
          std::all_of(around.begin(), around.end(), [](uint8_t b) { return b == test::kPoison; }))
          << "slot " << n << " next to " << slot << " was written";
    }
  }

  // Attention over pages on both sides of element 2^31: sequence 0 lives in the top pages,
  // sequence 1 in low ones.
  PagedBatch batch;
  std::vector<int32_t> free_pages = {1, 0, int32_t(shape.num_pages - 9),
                                     int32_t(shape.num_pages - 1), int32_t(shape.num_pages - 4)};
  batch = make_batch(4, shape, {5, 20}, {40, 20}, free_pages, rng);
  for (size_t b = 0; b < 2; ++b)
    for (int64_t tok = 0; tok < batch.kv_lens[b]; ++tok) {
      const int64_t slot = int64_t(batch.kv_indices[batch.kv_indptr[b] + tok / 16]) * 16 + tok % 16;
      SS_CUDA_CHECK(cudaMemcpy(k.as<bf16_t>() + slot * row, batch.k[b].data() + tok * row,
                               size_t(row) * 2, cudaMemcpyHostToDevice));
      SS_CUDA_CHECK(cudaMemcpy(v.as<bf16_t>() + slot * row, batch.v[b].data() + tok * row,
                               size_t(row) * 2, cudaMemcpyHostToDevice));
    }
  // Pages 0/1 and the top ones hold only these tokens; the slots past kv_len keep the 0x5A5A
  // poison (bf16 ~1.5e16), large enough to show if they were used.
  GuardedBuffer q(batch.q.size() * 2), out(size_t(batch.total_q()) * 4 * 64 * 2);
  upload(q.get(), batch.q);
  BatchAttention attention(4, shape, 2, batch.total_q(), false);
  attention.plan(batch.qo_indptr, batch.kv_indptr, batch.kv_indices, batch.kv_last_page_len,
                 nullptr);
  attention.run(q.get(), batch.ld_q, {k.get(), v.get()}, out.get(), nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  expect_matches_reference(batch, download<bf16_t>(out.get(), out.bytes() / 2), "pages past 2^31");
  EXPECT_TRUE(out.sentinel_intact());
}

}  // namespace
}  // namespace slidesparse
