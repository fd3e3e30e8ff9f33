// GPU quant / quant_slide / slide against the CPU reference (core/quant.h, core/lift.h), bit for
// bit, on fresh random data: every x dtype, int8 and fp8 codes, every L from 4 to 16, awkward
// shapes and strides, padding rows, tuned launch configs, unaligned pointers, bad arguments.
#include "kernels/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::GuardedBuffer;

enum class Op { kQuant, kQuantSlide, kSlide };

struct Case {
  Op op = Op::kQuant;
  DType x_dtype = DType::kBF16;
  DType out_dtype = DType::kI8;
  int64_t m = 1, k = 1, ld_x = 1, m_pad = 1, k_out = 1;  // k_out: plain quant only
  int block = 4;                                         // L when lifting
  KernelLaunchConfig config{};
  size_t x_offset_bytes = 0;    // misalign x by this many bytes
  size_t out_offset_bytes = 0;  // misalign out by this many bytes
};

std::string describe(const Case& c, uint64_t seed) {
  std::ostringstream os;
  os << (c.op == Op::kQuant        ? "quant"
         : c.op == Op::kQuantSlide ? "quant_slide"
                                   : "slide")
     << " x=" << dtype_name(c.x_dtype) << " out=" << dtype_name(c.out_dtype) << " m=" << c.m
     << " k=" << c.k << " ld_x=" << c.ld_x << " m_pad=" << c.m_pad << " k_out=" << c.k_out
     << " L=" << c.block << " config={" << c.config.block_threads << "," << c.config.rows_per_block
     << "} x_off=" << c.x_offset_bytes << " out_off=" << c.out_offset_bytes << " seed=" << seed;
  return os.str();
}

// The expected output rows (m_pad rows of row_elems elements) and scales ([m_pad]).
struct Expected {
  std::vector<uint8_t> out;
  std::vector<float> scales;
  int64_t row_elems = 0;
};

template <class Code>
void place_rows(const std::vector<Code>& rows, int64_t m, int64_t row_elems, Expected* e) {
  std::memcpy(e->out.data(), rows.data(), static_cast<size_t>(m * row_elems) * sizeof(Code));
}

Expected reference(const Case& c, const test::HostActivations& x) {
  Expected e;
  const Sparsity sparsity = Sparsity::from_block(c.block);
  if (c.op == Op::kSlide) {
    e.row_elems = sparsity.k_slide(c.k);
    e.out.assign(static_cast<size_t>(c.m_pad * e.row_elems) * 2, 0);
    place_rows(lift_activations<bf16_t>(x.bits16, c.m, c.k, sparsity), c.m, e.row_elems, &e);
    return e;
  }
  e.row_elems = c.op == Op::kQuant ? c.k_out : sparsity.k_slide(c.k);
  e.out.assign(static_cast<size_t>(c.m_pad * e.row_elems), 0);
  e.scales.assign(static_cast<size_t>(c.m_pad), 0.0f);
  auto finish = [&](const auto& q) {
    std::copy(q.scales.begin(), q.scales.end(), e.scales.begin());
    if (c.op == Op::kQuant) {
      for (int64_t r = 0; r < c.m; ++r)
        std::memcpy(e.out.data() + r * e.row_elems, q.codes.data() + r * c.k,
                    static_cast<size_t>(c.k));
    } else {
      using Code = typename std::decay_t<decltype(q.codes)>::value_type;
      place_rows(lift_activations<Code>(q.codes, c.m, c.k, sparsity), c.m, e.row_elems, &e);
    }
  };
  if (c.out_dtype == DType::kI8) {
    finish(quantize_rows_int8(x.values, c.m, c.k));
  } else {
    finish(quantize_rows_e4m3(x.values, c.m, c.k));
  }
  return e;
}

void run_case_on(const Case& c, const test::HostActivations& x, uint64_t seed) {
  SCOPED_TRACE(describe(c, seed));
  const Expected want = reference(c, x);

  std::vector<uint8_t> x_bytes(c.x_offset_bytes, 0);
  x_bytes.insert(x_bytes.end(), x.bytes.begin(), x.bytes.end());
  const DeviceBuffer d_x = test::upload(x_bytes);
  const void* x_ptr = static_cast<const uint8_t*>(d_x.get()) + c.x_offset_bytes;

  GuardedBuffer out(want.out.size() + c.out_offset_bytes);
  GuardedBuffer scales(static_cast<size_t>(c.m_pad) * sizeof(float));
  void* out_ptr = out.as<uint8_t>() + c.out_offset_bytes;
  CudaStream stream;
  const Sparsity sparsity = Sparsity::from_block(c.block);
  switch (c.op) {
    case Op::kQuant:
      launch_quant(x_ptr, c.x_dtype, c.m, c.k, c.ld_x, c.out_dtype, out_ptr, c.m_pad, c.k_out,
                   scales.as<float>(), stream.get(), c.config);
      break;
    case Op::kQuantSlide:
      launch_quant_slide(x_ptr, c.x_dtype, c.m, c.k, c.ld_x, sparsity, c.out_dtype, out_ptr,
                         c.m_pad, scales.as<float>(), stream.get(), c.config);
      break;
    case Op::kSlide:
      launch_slide(x_ptr, c.x_dtype, c.m, c.k, c.ld_x, sparsity, out_ptr, c.m_pad, stream.get(),
                   c.config);
      break;
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));

  std::vector<uint8_t> got = out.download();
  for (size_t i = 0; i < c.out_offset_bytes; ++i)
    EXPECT_EQ(got[i], test::kPoison) << "byte before the misaligned output was written";
  got.erase(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(c.out_offset_bytes));
  const int64_t row_bytes = want.row_elems * (c.op == Op::kSlide ? 2 : 1);
  test::expect_bytes_equal(got, want.out, row_bytes, "output");
  EXPECT_TRUE(out.sentinel_intact()) << "write past the end of the output";
  if (c.op != Op::kSlide) {
    test::expect_bytes_equal(scales.download(), test::as_bytes(want.scales), 4, "scale_per_token");
    EXPECT_TRUE(scales.sentinel_intact()) << "write past the end of scale_per_token";
  }
}

void run_case(const Case& c) {
  const uint64_t seed = test::fresh_seed();
  run_case_on(c, test::random_activations(c.x_dtype, c.m, c.k, c.ld_x, seed), seed);
}

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

struct MK {
  int64_t m, k;
};
// m = 1, 17, 1000; k = 1, 33, 1000, 4095 and a few layer-like sizes (not multiples of L or 32).
const std::vector<MK> kShapes = {{1, 1},     {17, 33},  {17, 1000}, {5, 4095},
                                 {1000, 96}, {3, 2048}, {2, 8200}};
const DType kXDtypes[] = {DType::kBF16, DType::kF16, DType::kF32};
const DType kOutDtypes[] = {DType::kI8, DType::kFP8E4M3};

TEST(QuantKernel, MatchesReferenceForAllDtypesAndShapes) {
  SS_SKIP_WITHOUT_GPU();
  for (DType x_dtype : kXDtypes)
    for (DType out_dtype : kOutDtypes)
      for (const MK& s : kShapes)
        for (int variant = 0; variant < 2; ++variant) {
          Case c;
          c.op = Op::kQuant;
          c.x_dtype = x_dtype;
          c.out_dtype = out_dtype;
          c.m = s.m;
          c.k = s.k;
          // variant 1: odd row stride (element loads), padding rows, padded output columns.
          c.ld_x = variant == 0 ? s.k : s.k + 3;
          c.m_pad = variant == 0 ? s.m : round_up(s.m, 16) + 16;
          c.k_out = variant == 0 ? s.k : round_up(s.k, 32) + 32;
          run_case(c);
        }
}

// Every finite bf16 value at many scales: row r holds all bit patterns whose magnitude is at
// most a random absmax A_r (larger ones replaced by 0) and A_r itself, so every rounding case
// of the kernel's division (reciprocal + FMA correction) and code conversion meets the CPU's
// IEEE division.
TEST(QuantKernel, EveryBf16ValueAtManyScales) {
  SS_SKIP_WITHOUT_GPU();
  const uint64_t seed = test::fresh_seed();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::uniform_int_distribution<int> mantissa(0, 127);
  constexpr int64_t kRows = 48, kCols = 65536 + 1;
  test::HostActivations x{DType::kBF16, kRows, kCols, kCols, {}, {}, {}};
  x.bytes.resize(static_cast<size_t>(kRows * kCols) * 2);
  x.values.resize(static_cast<size_t>(kRows * kCols));
  x.bits16.resize(static_cast<size_t>(kRows * kCols));
  for (int64_t r = 0; r < kRows; ++r) {
    const bf16_t absmax = bf16_from_float(std::ldexp(1.0f + mantissa(rng) / 128.0f, exponent(rng)));
    for (int64_t c = 0; c < kCols; ++c) {
      bf16_t v = c == 0 ? absmax : bf16_t{static_cast<uint16_t>(c - 1)};
      const float f = to_float(v);
      if (!std::isfinite(f) || std::fabs(f) > to_float(absmax)) v = bf16_t{0};
      const size_t i = static_cast<size_t>(r * kCols + c);
      x.bits16[i] = v;
      x.values[i] = to_float(v);
      std::memcpy(x.bytes.data() + i * 2, &v.bits, 2);
    }
  }
  for (DType out_dtype : kOutDtypes)
    for (Op op : {Op::kQuant, Op::kQuantSlide}) {
      Case c;
      c.op = op;
      c.out_dtype = out_dtype;
      c.block = 8;
      c.m = kRows;
      c.k = kCols;
      c.ld_x = kCols;
      c.m_pad = kRows;
      c.k_out = kCols;
      run_case_on(c, x, seed);
    }
}

TEST(QuantKernel, AlignedRowStrideWithOddPaddingWidth) {
  SS_SKIP_WITHOUT_GPU();
  for (DType x_dtype : kXDtypes) {
    Case c;
    c.x_dtype = x_dtype;
    c.m = 33;
    c.k = 1000;
    c.ld_x = 1024;  // 16-byte aligned rows, stride padding that must not be read
    c.m_pad = 48;
    c.k_out = 1003;  // odd output width: byte stores
    run_case(c);
  }
}

TEST(QuantSlideKernel, MatchesReferenceForEveryBlockLength) {
  SS_SKIP_WITHOUT_GPU();
  for (int block = 4; block <= kMaxSlideBlock; block += 2)
    for (DType x_dtype : kXDtypes)
      for (DType out_dtype : kOutDtypes)
        for (const MK& s : kShapes) {
          Case c;
          c.op = Op::kQuantSlide;
          c.block = block;
          c.x_dtype = x_dtype;
          c.out_dtype = out_dtype;
          c.m = s.m;
          c.k = s.k;
          c.ld_x = s.k % 2 == 0 ? s.k + 8 : s.k;
          c.m_pad = s.m % 2 == 1 ? round_up(s.m, 16) : s.m;
          run_case(c);
        }
}

TEST(QuantSlideKernel, LargeRowsAllPatterns) {
  SS_SKIP_WITHOUT_GPU();
  for (int block : {4, 6, 8, 10})
    for (DType out_dtype : kOutDtypes) {
      Case c;
      c.op = Op::kQuantSlide;
      c.block = block;
      c.out_dtype = out_dtype;
      c.m = 1000;
      c.k = 4095;
      c.ld_x = 4095;
      c.m_pad = 1008;
      run_case(c);
    }
}

TEST(SlideKernel, MatchesReferenceForEveryBlockLength) {
  SS_SKIP_WITHOUT_GPU();
  for (int block = 4; block <= kMaxSlideBlock; block += 2)
    for (DType x_dtype : {DType::kBF16, DType::kF16})
      for (const MK& s : kShapes) {
        Case c;
        c.op = Op::kSlide;
        c.block = block;
        c.x_dtype = x_dtype;
        c.out_dtype = x_dtype;
        c.m = s.m;
        c.k = s.k;
        c.ld_x = s.k % 2 == 0 ? s.k : s.k + 1;
        c.m_pad = round_up(s.m, 16);
        run_case(c);
      }
}

// Every launch configuration the tuner may pick gives the same bits, including ones that split
// a row into several register chunks (threads_per_row 32 at K = 4095).
TEST(QuantKernels, LaunchConfigsGiveIdenticalResults) {
  SS_SKIP_WITHOUT_GPU();
  const KernelLaunchConfig configs[] = {{0, 0},   {32, 1},  {64, 2}, {128, 4},
                                        {512, 1}, {256, 8}, {0, 2},  {512, 0}};
  for (const KernelLaunchConfig& config : configs)
    for (Op op : {Op::kQuant, Op::kQuantSlide, Op::kSlide})
      for (DType x_dtype : {DType::kBF16, DType::kF32}) {
        if (op == Op::kSlide && x_dtype == DType::kF32) continue;
        Case c;
        c.op = op;
        c.x_dtype = x_dtype;
        c.out_dtype = op == Op::kSlide ? x_dtype : DType::kI8;
        c.block = 8;
        c.m = 37;
        c.k = 4095;
        c.ld_x = 4096;
        c.m_pad = 48;
        c.k_out = 4096;
        c.config = config;
        run_case(c);
      }
}

TEST(QuantKernels, UnalignedPointers) {
  SS_SKIP_WITHOUT_GPU();
  for (Op op : {Op::kQuant, Op::kQuantSlide, Op::kSlide}) {
    Case c;
    c.op = op;
    c.out_dtype = op == Op::kSlide ? DType::kBF16 : DType::kFP8E4M3;
    c.block = 6;
    c.m = 19;
    c.k = 520;
    c.ld_x = 528;
    c.m_pad = 32;
    c.k_out = 528;
    c.x_offset_bytes = 2;
    c.out_offset_bytes = op == Op::kSlide ? 2 : 1;
    run_case(c);
  }
}

TEST(QuantKernels, RejectsBadArguments) {
  SS_SKIP_WITHOUT_GPU();
  DeviceBuffer x(1 << 16), out(1 << 16), scales(1 << 12);
  const Sparsity s28 = Sparsity::parse("2:8");
  auto quant = [&](const void* xp, DType xd, int64_t m, int64_t k, int64_t ld, DType od, void* op,
                   int64_t m_pad, int64_t k_out, float* sc, KernelLaunchConfig cfg = {}) {
    launch_quant(xp, xd, m, k, ld, od, op, m_pad, k_out, sc, nullptr, cfg);
  };
  float* sc = scales.as<float>();
  const DType bf = DType::kBF16, i8 = DType::kI8;
  EXPECT_THROW(quant(nullptr, bf, 4, 64, 64, i8, out.get(), 4, 64, sc), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, nullptr, 4, 64, sc), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 64, nullptr), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 0, 64, i8, out.get(), 4, 64, sc), Error);
  EXPECT_THROW(quant(x.get(), bf, -1, 64, 64, i8, out.get(), 4, 64, sc), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 32, i8, out.get(), 4, 64, sc), Error);  // ld_x < k
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 3, 64, sc), Error);  // m_pad < m
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 63, sc), Error);  // k_out < k
  EXPECT_THROW(quant(x.get(), DType::kI32, 4, 64, 64, i8, out.get(), 4, 64, sc), NotSupportedError);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, DType::kBF16, out.get(), 4, 64, sc),
               NotSupportedError);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 64, sc, {48, 1}), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 64, sc, {1024, 1}), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 64, sc, {256, 3}), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 64, sc, {64, 4}), Error);
  EXPECT_THROW(quant(x.get(), bf, 4, 64, 64, i8, out.get(), 4, 64, sc, {-32, 1}), Error);
  EXPECT_NO_THROW(quant(nullptr, bf, 0, 64, 64, i8, nullptr, 0, 64, nullptr));  // m == 0: no-op

  EXPECT_THROW(launch_quant_slide(x.get(), bf, 4, 64, 64, Sparsity::from_block(18), i8, out.get(),
                                  4, sc, nullptr),
               NotSupportedError);
  EXPECT_THROW(launch_quant_slide(x.get(), bf, 4, 64, 64, s28, i8, out.get(), 4, nullptr, nullptr),
               Error);
  EXPECT_THROW(
      launch_quant_slide(x.get(), bf, 4, 64, 64, s28, DType::kF32, out.get(), 4, sc, nullptr),
      NotSupportedError);
  EXPECT_THROW(launch_slide(x.get(), DType::kF32, 4, 64, 64, s28, out.get(), 4, nullptr),
               NotSupportedError);
  EXPECT_THROW(
      launch_slide(x.get(), bf, 4, 64, 64, Sparsity::from_block(20), out.get(), 4, nullptr),
      NotSupportedError);
  EXPECT_THROW(launch_slide(x.get(), bf, 4, 64, 64, s28, out.get(), 2, nullptr), Error);
  // Nothing above may have left a sticky CUDA error behind.
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(QuantKernels, ResolvedConfigIsValid) {
  SS_SKIP_WITHOUT_GPU();
  for (int64_t k : {1, 33, 2048, 3584, 8192, 18944, 100000}) {
    const KernelLaunchConfig r = resolve_quant_config(DType::kBF16, k, {});
    EXPECT_GT(r.block_threads, 0);
    EXPECT_EQ(r.block_threads % r.rows_per_block, 0);
    EXPECT_EQ((r.block_threads / r.rows_per_block) % 32, 0) << "k " << k;
  }
}

}  // namespace
}  // namespace slidesparse
