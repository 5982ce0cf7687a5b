// labworks_rigidsim::jacobi — the projected Jacobi iterations of rigidsim's constraint solve on CPU.
//
// The plain-PyTorch loop (labworks.rigidsim.jacobi.jacobi_reference) is the specification: it forms every
// environment's Delassus matrix D = J M^-1 J^T with a batched GEMM, then each of its iterations streams
// all those matrices through memory. Here each environment forms its D (R x R, 4 KiB for the Ant) from
// J and M^-1 J^T in L1 and runs all iterations there, the iterate in SIMD registers; no D is ever written
// to memory. Environments are split over torch's intra-op threads. Built on first use by
// torch.utils.cpp_extension (see cpu_ops.py); NaN propagates as in the reference.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kMaxRows = 64;

// Friction cone on contacts k < C: normal force >= 0, tangential force within friction * normal.
template <typename T>
inline void cone(T* __restrict__ vn, T* __restrict__ v1, T* __restrict__ v2, const T* __restrict__ mu,
                 int64_t C) {
  for (int64_t k = 0; k < C; ++k) {
    const T ln = vn[k] < T(0) ? T(0) : vn[k];
    const T t1 = v1[k], t2 = v2[k];
    const T norm = std::sqrt(t1 * t1 + t2 * t2);  // <= 1e-15 where the reference's safe norm is 0
    const T den = norm < T(1e-12) ? T(1e-12) : norm;
    const T q = mu[k] * ln / den;
    const T s = q > T(1) ? T(1) : q;
    vn[k] = ln;
    v1[k] = t1 * s;
    v2[k] = t2 * s;
  }
}

// Strided view of one (B, rows, cols) tensor.
template <typename T>
struct Mat {
  const T* p;
  int64_t sb, sr, sc;
  const T& operator()(int64_t b, int64_t r, int64_t c) const { return p[b * sb + r * sr + c * sc]; }
};

// One environment b, R rows zero-padded to RP (a multiple of 8 known at compile time), V dofs. Rows:
// contact normals [0, C), first tangents [C, 2C), second tangents [2C, 3C), joint limits [3C, R).
// J: (B, R, V) and MJt = M^-1 J^T: (B, V, R), read through their strides. Wp (V x RP, MJt padded) and
// D (RP x RP) are the thread's 32-byte aligned scratch; their padding stays zero.
template <typename T, int RP>
void solve_env(Mat<T> J, Mat<T> MJt, int64_t b, const T* __restrict__ f, const T* __restrict__ tg,
               const T* __restrict__ rg, const T* __restrict__ iv, const T* __restrict__ mu,
               T* __restrict__ out, int64_t R, int64_t V, int64_t C, int64_t iters, T relax,
               T* __restrict__ Wp, T* __restrict__ D) {
  typedef T vec __attribute__((vector_size(32)));
  constexpr int W = 32 / sizeof(T), NV = RP / W;
  alignas(64) T vf[RP] = {}, target[RP] = {}, reg[RP] = {}, inv[RP] = {}, lam[RP] = {}, v[RP];
  for (int64_t i = 0; i < R; ++i) vf[i] = f[i], target[i] = tg[i], reg[i] = rg[i], inv[i] = iv[i];
  for (int64_t k = 0; k < V; ++k)
    for (int64_t i = 0; i < R; ++i) Wp[k * RP + i] = MJt(b, k, i);
  // D = J (M^-1 J^T), two rows at a time (row j: sum over dofs k of J[j][k] times row k of M^-1 J^T)
  for (int64_t j = 0; j < R; j += 2) {
    const bool two = j + 1 < R;
    vec a[NV], c[NV];
#pragma GCC unroll 16
    for (int q = 0; q < NV; ++q) a[q] = vec{}, c[q] = vec{};
    for (int64_t k = 0; k < V; ++k) {
      const T x0 = J(b, j, k), x1 = two ? J(b, j + 1, k) : T(0);
      const vec* w = reinterpret_cast<const vec*>(Wp + k * RP);
#pragma GCC unroll 16
      for (int q = 0; q < NV; ++q) a[q] += w[q] * x0, c[q] += w[q] * x1;
    }
    vec* d0 = reinterpret_cast<vec*>(D + j * RP);
    vec* d1 = reinterpret_cast<vec*>(D + (j + 1) * RP);
#pragma GCC unroll 16
    for (int q = 0; q < NV; ++q) {
      d0[q] = a[q];
      if (two) d1[q] = c[q];
    }
  }
  for (int64_t it = 0; it < iters; ++it) {
    // v = vf + D^T lam as rows of D scaled by lam (the eager reference's lam^T D); two accumulator sets
    // hide the FMA latency
    vec a[NV], c[NV];
#pragma GCC unroll 16
    for (int k = 0; k < NV; ++k) a[k] = *reinterpret_cast<const vec*>(vf + k * W), c[k] = vec{};
    for (int j = 0; j < RP; j += 2) {
      const T l0 = lam[j], l1 = lam[j + 1];
      const vec* r0 = reinterpret_cast<const vec*>(D + j * RP);
      const vec* r1 = reinterpret_cast<const vec*>(D + (j + 1) * RP);
#pragma GCC unroll 16
      for (int k = 0; k < NV; ++k) a[k] += r0[k] * l0, c[k] += r1[k] * l1;
    }
#pragma GCC unroll 16
    for (int k = 0; k < NV; ++k) *reinterpret_cast<vec*>(v + k * W) = a[k] + c[k];
    for (int i = 0; i < RP; ++i) v[i] = lam[i] + relax * (target[i] - v[i] - reg[i] * lam[i]) * inv[i];
    cone(v, v + C, v + 2 * C, mu, C);
    for (int i = 0; i < RP; ++i) lam[i] = (i >= 3 * C && v[i] < T(0)) ? T(0) : v[i];
  }
  for (int64_t i = 0; i < R; ++i) out[i] = lam[i];
}

template <typename T, int RP>
void solve(Mat<T> J, Mat<T> MJt, const T* vf, const T* target, const T* reg, const T* inv, const T* mu,
           T* out, int64_t B, int64_t R, int64_t V, int64_t C, int64_t iters, T relax) {
  at::parallel_for(0, B, 8, [&](int64_t b0, int64_t b1) {
    std::vector<T> scratch((V + RP) * RP + 64 / sizeof(T), T(0));
    T* Wp = scratch.data();
    Wp += (64 - reinterpret_cast<uintptr_t>(Wp) % 64) % 64 / sizeof(T);
    T* D = Wp + V * RP;  // RP is a multiple of 8: D stays 32-byte aligned
    for (int64_t b = b0; b < b1; ++b)
      solve_env<T, RP>(J, MJt, b, vf + b * R, target + b * R, reg + b * R, inv + b * R, mu + b * C, out + b * R,
                       R, V, C, iters, relax, Wp, D);
  });
}

at::Tensor jacobi(const at::Tensor& jac, const at::Tensor& minv_jt, const at::Tensor& vf, const at::Tensor& target,
                  const at::Tensor& reg, const at::Tensor& inv, const at::Tensor& friction, int64_t iterations,
                  double relaxation) {
  TORCH_CHECK(vf.dim() == 2, "jacobi: vf must be (B, R)");
  const int64_t B = vf.size(0), R = vf.size(1);
  TORCH_CHECK(friction.dim() == 2 && friction.size(0) == B, "jacobi: friction must be (B, C)");
  const int64_t C = friction.size(1);
  TORCH_CHECK(jac.dim() == 3 && jac.size(0) == B && jac.size(1) == R, "jacobi: jac must be (B, R, V)");
  const int64_t V = jac.size(2);
  TORCH_CHECK(minv_jt.dim() == 3 && minv_jt.size(0) == B && minv_jt.size(1) == V && minv_jt.size(2) == R,
              "jacobi: minv_jt must be (B, V, R)");
  for (const at::Tensor* t : {&target, &reg, &inv})
    TORCH_CHECK(t->sizes() == vf.sizes(), "jacobi: target, reg and inv must be (B, R)");
  TORCH_CHECK(3 * C <= R && R <= kMaxRows, "jacobi: needs 3 * contacts <= rows <= ", kMaxRows);
  for (const at::Tensor* t : {&jac, &minv_jt, &target, &reg, &inv, &friction})
    TORCH_CHECK(t->scalar_type() == vf.scalar_type() && t->device().is_cpu(), "jacobi: CPU tensors of one dtype");
  // jac and minv_jt are read through their strides (no copy); the (B, R) vectors are small
  const auto f = vf.contiguous(), t = target.contiguous();
  const auto r = reg.contiguous(), i = inv.contiguous(), mu = friction.contiguous();
  auto out = at::empty({B, R}, vf.options());
  AT_DISPATCH_FLOATING_TYPES(vf.scalar_type(), "jacobi", [&] {
    using T = scalar_t;
    const Mat<T> J{jac.const_data_ptr<T>(), jac.stride(0), jac.stride(1), jac.stride(2)};
    const Mat<T> MJt{minv_jt.const_data_ptr<T>(), minv_jt.stride(0), minv_jt.stride(1), minv_jt.stride(2)};
    auto run = [&](auto rp) {
      solve<T, decltype(rp)::value>(J, MJt, f.const_data_ptr<T>(), t.const_data_ptr<T>(), r.const_data_ptr<T>(),
                                    i.const_data_ptr<T>(), mu.const_data_ptr<T>(), out.mutable_data_ptr<T>(), B,
                                    R, V, C, iterations, static_cast<T>(relaxation));
    };
    if (R <= 8) run(std::integral_constant<int, 8>{});
    else if (R <= 16) run(std::integral_constant<int, 16>{});
    else if (R <= 24) run(std::integral_constant<int, 24>{});
    else if (R <= 32) run(std::integral_constant<int, 32>{});
    else if (R <= 48) run(std::integral_constant<int, 48>{});
    else run(std::integral_constant<int, 64>{});
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(labworks_rigidsim, m) {
  m.def("jacobi(Tensor jac, Tensor minv_jt, Tensor vf, Tensor target, Tensor reg, Tensor inv, "
        "Tensor friction, int iterations, float relaxation) -> Tensor");
}

TORCH_LIBRARY_IMPL(labworks_rigidsim, CPU, m) { m.impl("jacobi", &jacobi); }
