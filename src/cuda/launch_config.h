// Launch configuration of a memory-bound kernel (quant, quant_slide, dequant). Zero = default.
// Its own header so that kernel launchers take it without depending on the tuning table.
#pragma once

namespace slidesparse {

struct KernelLaunchConfig {
  int block_threads = 0;
  int rows_per_block = 0;
  bool operator==(const KernelLaunchConfig&) const = default;
};

}  // namespace slidesparse
