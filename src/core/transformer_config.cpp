// TransformerConfig checks (transformer_config.h).
#include "slidesparse/core/transformer_config.h"

#include <cmath>
#include <limits>

#include "slidesparse/error.h"

namespace slidesparse {

std::string_view family_name(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kQwen2:
      return "qwen2";
  }
  return "unknown";
}

void TransformerConfig::validate() const {
  const auto positive = [](const char* field, int64_t v) {
    SS_REQUIRE(v >= 1, "TransformerConfig: " << field << " must be >= 1 (got " << v << ")");
  };
  positive("hidden", hidden);
  positive("intermediate", intermediate);
  positive("num_q_heads", num_q_heads);
  positive("num_kv_heads", num_kv_heads);
  positive("head_dim", head_dim);
  positive("layers", layers);
  positive("vocab", vocab);
  positive("max_positions", max_positions);
  SS_REQUIRE(num_q_heads % num_kv_heads == 0,
             "TransformerConfig: num_q_heads "
                 << num_q_heads << " is not a multiple of num_kv_heads " << num_kv_heads);
  SS_REQUIRE(head_dim % 2 == 0,
             "TransformerConfig: head_dim must be even (got " << head_dim << ")");
  SS_REQUIRE(rope.head_dim == head_dim,
             "TransformerConfig: rope.head_dim " << rope.head_dim << " != head_dim " << head_dim);
  SS_REQUIRE(vocab <= std::numeric_limits<int32_t>::max(),
             "TransformerConfig: vocab " << vocab << " does not fit int32 token ids");
  SS_REQUIRE(max_positions <= std::numeric_limits<int32_t>::max(),
             "TransformerConfig: max_positions " << max_positions << " does not fit int32");
  SS_REQUIRE(std::isfinite(rms_eps) && rms_eps >= 0,
             "TransformerConfig: rms_eps must be finite and >= 0 (got " << rms_eps << ")");
  (void)rope_inv_freq(rope);  // rope type and parameters
}

}  // namespace slidesparse
