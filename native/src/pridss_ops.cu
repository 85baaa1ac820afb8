/*
 * pridss_ops.cu - CUDA implementation of pridss_ops.h.
 *
 * Both entry points validate their arguments on the host, enqueue kernels on
 * the caller's stream and return cudaGetLastError().  They allocate nothing
 * and never synchronize.  The per-pixel math is pridss_pixel_math.h, shared
 * with the CPU build.
 */
#include <cuda_runtime.h>

#include <type_traits>

#include "pridss_common.h"
#include "pridss_ops.h"
#include "pridss_pixel_math.h"

static_assert(std::is_same<pridss_cuda_stream_t, cudaStream_t>::value,
              "pridss_cuda_stream_t must be cudaStream_t");

namespace {

using pridss::Affine;
using pridss::Norm;

constexpr int kBlockX = 32;
constexpr int kBlockY = 8;

/* Grid: (ceil(S/32), ceil(S/8), num_faces); one thread per crop pixel,
 * writing its 3 channel planes (coalesced along x). */
__global__ void warp_normalize_kernel(const uint8_t* __restrict__ frame, int height,
                                      int width, size_t row_pitch,
                                      const float* __restrict__ matrices, int crop_size,
                                      Norm norm, int rgb, float* __restrict__ out) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int n = blockIdx.z;
    if (x >= crop_size || y >= crop_size) return;

    const Affine m = pridss::load_affine(matrices + 6 * (size_t)n);
    Affine inv = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const bool ok = pridss::invert_affine(m, &inv);

    float v[3];
    pridss::warp_normalize_pixel(frame, height, width, row_pitch, inv, ok, x, y, norm,
                                 rgb != 0, v);

    const size_t plane = (size_t)crop_size * (size_t)crop_size;
    float* o = out + (size_t)n * 3u * plane + (size_t)y * (size_t)crop_size + (size_t)x;
    o[0] = v[0];
    o[plane] = v[1];
    o[2 * plane] = v[2];
}

/* Grid: (ceil(W/32), ceil(H/8)); one thread per frame pixel.  The thread
 * applies the faces in order, rounding after each face (same result as the
 * CPU build's face-by-face loop), and writes the pixel only if at least one
 * face covers it, so uncovered pixels are never touched. */
__global__ void paste_back_kernel(uint8_t* __restrict__ frame, int height, int width,
                                  size_t row_pitch, const float* __restrict__ crops,
                                  const float* __restrict__ matrices, int num_faces,
                                  int crop_size, const float* __restrict__ mask, Norm norm,
                                  int rgb) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;

    uint8_t* p = frame + (size_t)y * row_pitch + 3 * (size_t)x;
    const size_t face_stride = 3u * (size_t)crop_size * (size_t)crop_size;
    uint8_t bgr[3];
    bool touched = false;
    for (int n = 0; n < num_faces; ++n) {
        const Affine m = pridss::load_affine(matrices + 6 * (size_t)n);
        float qx, qy;
        if (!pridss::crop_point(m, x, y, crop_size, &qx, &qy)) continue;
        if (!touched) {
            bgr[0] = p[0];
            bgr[1] = p[1];
            bgr[2] = p[2];
            touched = true;
        }
        pridss::paste_pixel(bgr, crops + (size_t)n * face_stride, mask, crop_size, qx, qy,
                            norm, rgb != 0);
    }
    if (touched) {
        p[0] = bgr[0];
        p[1] = bgr[1];
        p[2] = bgr[2];
    }
}

unsigned int blocks_for(int n, int block) { return (unsigned int)((n + block - 1) / block); }

}  // namespace

extern "C" {

PRIDSS_API int pridss_warp_normalize(const uint8_t* frame, int height, int width,
                                     size_t row_pitch, const float* matrices,
                                     int num_faces, int crop_size,
                                     const float* mean, const float* std, int rgb,
                                     float* out, pridss_cuda_stream_t stream) {
    Norm norm;
    const int st = pridss::check_warp_normalize(frame, height, width, row_pitch, matrices,
                                                num_faces, crop_size, mean, std, out, &norm);
    if (st != PRIDSS_OK) return st;
    if (num_faces == 0) return PRIDSS_OK;

    const dim3 block(kBlockX, kBlockY, 1);
    const dim3 grid(blocks_for(crop_size, kBlockX), blocks_for(crop_size, kBlockY),
                    (unsigned int)num_faces);
    warp_normalize_kernel<<<grid, block, 0, stream>>>(frame, height, width, row_pitch,
                                                      matrices, crop_size, norm, rgb, out);
    return (int)cudaGetLastError();
}

PRIDSS_API int pridss_paste_back(uint8_t* frame, int height, int width,
                                 size_t row_pitch, const float* crops,
                                 const float* matrices, int num_faces,
                                 int crop_size, const float* mask,
                                 const float* mean, const float* std, int rgb,
                                 pridss_cuda_stream_t stream) {
    Norm norm;
    const int st = pridss::check_paste_back(frame, height, width, row_pitch, crops, matrices,
                                            num_faces, crop_size, mask, mean, std, &norm);
    if (st != PRIDSS_OK) return st;
    if (num_faces == 0) return PRIDSS_OK;

    const dim3 block(kBlockX, kBlockY, 1);
    const dim3 grid(blocks_for(width, kBlockX), blocks_for(height, kBlockY), 1);
    paste_back_kernel<<<grid, block, 0, stream>>>(frame, height, width, row_pitch, crops,
                                                  matrices, num_faces, crop_size, mask, norm,
                                                  rgb);
    return (int)cudaGetLastError();
}

PRIDSS_API const char* pridss_status_string(int status) {
    const char* msg = pridss::status_message(status);
    if (msg != nullptr) return msg;
    if (status > 0) return cudaGetErrorString((cudaError_t)status);
    return "unknown pridss status code";
}

}  // extern "C"
