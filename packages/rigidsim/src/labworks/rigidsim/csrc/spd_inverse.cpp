// labworks_rigidsim::spd_inverse — inverses of a batch of small SPD matrices on CPU (the joint-space mass
// matrices, n = 14 for the Ant). LAPACK's batched Cholesky and cholesky_inverse loop over the batch one
// small matrix at a time; here SIMD lanes hold W environments, so every scalar step of a dense Cholesky
// and of the inverse runs on W matrices at once. A matrix that is not positive definite gives NaN.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <limits>
#include <vector>

namespace {

template <typename T>
void invert_group(const T* __restrict__ a, int64_t sb, int64_t si, int64_t sj, T* __restrict__ out, int64_t b0,
                  int64_t nb, int64_t n, T* __restrict__ L, T* __restrict__ X) {
  typedef T vec __attribute__((vector_size(32)));
  constexpr int W = 32 / sizeof(T);
  auto at = [&](T* m, int64_t i, int64_t j) -> vec& { return *reinterpret_cast<vec*>(m + (i * n + j) * W); };
  const int64_t nn = n * n;
  // gather: L[i][j][lane] = a[b0 + lane][i][j] (lower triangle, any strides); lanes past the batch get
  // the identity
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      vec v;
      for (int l = 0; l < W; ++l) v[l] = l < nb ? a[(b0 + l) * sb + i * si + j * sj] : T(i == j);
      at(L, i, j) = v;
    }
  // Cholesky A = L L^T, in place
  vec bad = vec{};
  for (int64_t j = 0; j < n; ++j) {
    vec d = at(L, j, j);
    for (int64_t k = 0; k < j; ++k) d -= at(L, j, k) * at(L, j, k);
    vec s;
    for (int l = 0; l < W; ++l) {
      const bool pd = d[l] > T(0);
      bad[l] = pd ? bad[l] : T(1);
      s[l] = std::sqrt(pd ? d[l] : T(1));
    }
    at(L, j, j) = s;
    const vec r = T(1) / s;
    for (int64_t i = j + 1; i < n; ++i) {
      vec v = at(L, i, j);
      for (int64_t k = 0; k < j; ++k) v -= at(L, i, k) * at(L, j, k);
      at(L, i, j) = v * r;
    }
  }
  // X = L^-1 (lower triangular)
  for (int64_t j = 0; j < n; ++j) {
    at(X, j, j) = T(1) / at(L, j, j);
    for (int64_t i = j + 1; i < n; ++i) {
      vec v = vec{};
      for (int64_t k = j; k < i; ++k) v += at(L, i, k) * at(X, k, j);
      at(X, i, j) = -v / at(L, i, i);
    }
  }
  // A^-1 = X^T X, symmetric: (i, j) = sum over k >= max(i, j) of X[k][i] X[k][j]
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      vec v = vec{};
      for (int64_t k = i; k < n; ++k) v += at(X, k, i) * at(X, k, j);
      for (int l = 0; l < nb; ++l) {
        const T x = bad[l] != T(0) ? nan : v[l];
        out[(b0 + l) * nn + i * n + j] = x;
        out[(b0 + l) * nn + j * n + i] = x;
      }
    }
}

at::Tensor spd_inverse(const at::Tensor& a) {
  TORCH_CHECK(a.dim() == 3 && a.size(1) == a.size(2), "spd_inverse: a must be (B, n, n)");
  TORCH_CHECK(a.device().is_cpu(), "spd_inverse: CPU tensors");
  const int64_t B = a.size(0), n = a.size(1);
  // read through a's strides: under torch.compile the mass matrix often arrives batch-last, and a
  // contiguous() copy of that layout cost twice the inverse itself
  auto out = at::empty({B, n, n}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "spd_inverse", [&] {
    using T = scalar_t;
    constexpr int64_t W = 32 / sizeof(T);
    const T* ap = a.const_data_ptr<T>();
    const int64_t sb = a.stride(0), si = a.stride(1), sj = a.stride(2);
    T* op = out.mutable_data_ptr<T>();
    const int64_t groups = (B + W - 1) / W;
    at::parallel_for(0, groups, 4, [&](int64_t g0, int64_t g1) {
      std::vector<T> scratch(2 * n * n * W + 2 * W);
      // 32-byte aligned views into the scratch buffer
      T* base = scratch.data();
      base += (32 - reinterpret_cast<uintptr_t>(base) % 32) % 32 / sizeof(T);
      T* L = base;
      T* X = base + n * n * W;
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t b0 = g * W;
        invert_group<T>(ap, sb, si, sj, op, b0, std::min<int64_t>(W, B - b0), n, L, X);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(labworks_rigidsim, m) { m.def("spd_inverse(Tensor a) -> Tensor"); }

TORCH_LIBRARY_IMPL(labworks_rigidsim, CPU, m) { m.impl("spd_inverse", &spd_inverse); }
