// labworks_rigidsim::jacobi — the projected Jacobi iterations of rigidsim's constraint solve on CPU.
//
// The plain-PyTorch loop (labworks.rigidsim.jacobi.jacobi_reference) is the specification: each of its
// iterations streams every environment's Delassus matrix through memory. Here each environment runs all
// iterations while its matrix (R x R, 4 KiB for the Ant) sits in L1, the iterate in SIMD registers.
// Environments are split over torch's intra-op threads. Built on first use by
// torch.utils.cpp_extension (see cpu_ops.py); NaN propagates as in the reference.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

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

// One environment, R rows zero-padded to RP (a multiple of 8 known at compile time). Rows: contact
// normals [0, C), first tangents [C, 2C), second tangents [2C, 3C), joint limits [3C, R).
template <typename T, int RP>
void solve_env(const T* __restrict__ d, const T* __restrict__ f, const T* __restrict__ tg,
               const T* __restrict__ rg, const T* __restrict__ iv, const T* __restrict__ mu,
               T* __restrict__ out, int64_t R, int64_t C, int64_t iters, T relax) {
  typedef T vec __attribute__((vector_size(32)));
  constexpr int W = 32 / sizeof(T), NV = RP / W;
  alignas(64) T D[RP * RP] = {};
  alignas(64) T vf[RP] = {}, target[RP] = {}, reg[RP] = {}, inv[RP] = {}, lam[RP] = {}, v[RP];
  for (int64_t j = 0; j < R; ++j)
    for (int64_t i = 0; i < R; ++i) D[j * RP + i] = d[j * R + i];
  for (int64_t i = 0; i < R; ++i) vf[i] = f[i], target[i] = tg[i], reg[i] = rg[i], inv[i] = iv[i];
  for (int64_t it = 0; it < iters; ++it) {
    // v = vf + D^T lam as rows of D scaled by lam (the eager reference's lam^T D); two accumulator sets
    // hide the FMA latency
    vec a[NV], b[NV];
#pragma GCC unroll 16
    for (int k = 0; k < NV; ++k) a[k] = *reinterpret_cast<const vec*>(vf + k * W), b[k] = vec{};
    for (int j = 0; j < RP; j += 2) {
      const T l0 = lam[j], l1 = lam[j + 1];
      const vec* r0 = reinterpret_cast<const vec*>(D + j * RP);
      const vec* r1 = reinterpret_cast<const vec*>(D + (j + 1) * RP);
#pragma GCC unroll 16
      for (int k = 0; k < NV; ++k) a[k] += r0[k] * l0, b[k] += r1[k] * l1;
    }
#pragma GCC unroll 16
    for (int k = 0; k < NV; ++k) *reinterpret_cast<vec*>(v + k * W) = a[k] + b[k];
    for (int i = 0; i < RP; ++i) v[i] = lam[i] + relax * (target[i] - v[i] - reg[i] * lam[i]) * inv[i];
    cone(v, v + C, v + 2 * C, mu, C);
    for (int i = 0; i < RP; ++i) lam[i] = (i >= 3 * C && v[i] < T(0)) ? T(0) : v[i];
  }
  for (int64_t i = 0; i < R; ++i) out[i] = lam[i];
}

template <typename T, int RP>
void solve(const T* D, const T* vf, const T* target, const T* reg, const T* inv, const T* mu, T* out,
           int64_t B, int64_t R, int64_t C, int64_t iters, T relax) {
  at::parallel_for(0, B, 8, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      solve_env<T, RP>(D + b * R * R, vf + b * R, target + b * R, reg + b * R, inv + b * R, mu + b * C,
                       out + b * R, R, C, iters, relax);
  });
}

at::Tensor jacobi(const at::Tensor& delassus, const at::Tensor& vf, const at::Tensor& target,
                  const at::Tensor& reg, const at::Tensor& inv, const at::Tensor& friction, int64_t iterations,
                  double relaxation) {
  TORCH_CHECK(vf.dim() == 2, "jacobi: vf must be (B, R)");
  const int64_t B = vf.size(0), R = vf.size(1);
  TORCH_CHECK(friction.dim() == 2 && friction.size(0) == B, "jacobi: friction must be (B, C)");
  const int64_t C = friction.size(1);
  TORCH_CHECK(delassus.dim() == 3 && delassus.size(0) == B && delassus.size(1) == R && delassus.size(2) == R,
              "jacobi: delassus must be (B, R, R)");
  for (const at::Tensor* t : {&target, &reg, &inv})
    TORCH_CHECK(t->sizes() == vf.sizes(), "jacobi: target, reg and inv must be (B, R)");
  TORCH_CHECK(3 * C <= R && R <= kMaxRows, "jacobi: needs 3 * contacts <= rows <= ", kMaxRows);
  for (const at::Tensor* t : {&delassus, &target, &reg, &inv, &friction})
    TORCH_CHECK(t->scalar_type() == vf.scalar_type() && t->device().is_cpu(), "jacobi: CPU tensors of one dtype");
  const auto d = delassus.contiguous(), f = vf.contiguous(), t = target.contiguous();
  const auto r = reg.contiguous(), i = inv.contiguous(), mu = friction.contiguous();
  auto out = at::empty({B, R}, vf.options());
  AT_DISPATCH_FLOATING_TYPES(vf.scalar_type(), "jacobi", [&] {
    auto run = [&](auto rp) {
      solve<scalar_t, decltype(rp)::value>(
          d.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(), t.const_data_ptr<scalar_t>(),
          r.const_data_ptr<scalar_t>(), i.const_data_ptr<scalar_t>(), mu.const_data_ptr<scalar_t>(),
          out.mutable_data_ptr<scalar_t>(), B, R, C, iterations, static_cast<scalar_t>(relaxation));
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
  m.def("jacobi(Tensor delassus, Tensor vf, Tensor target, Tensor reg, Tensor inv, Tensor friction, "
        "int iterations, float relaxation) -> Tensor");
}

TORCH_LIBRARY_IMPL(labworks_rigidsim, CPU, m) { m.impl("jacobi", &jacobi); }
