// Must NOT build: the search drivers (src/tune) sit above kernels.
#include "tune/gemm_search.h"
