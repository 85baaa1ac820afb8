/*
 * pridss_ops.h - C API of the pridss-rt native operations.
 *
 * Two operations, each available in two builds that share the exact same
 * per-pixel math (native/include/pridss_pixel_math.h):
 *
 *   libpridss_ops_cuda : pridss_warp_normalize / pridss_paste_back
 *                        device pointers, asynchronous on a CUDA stream.
 *   libpridss_ops_cpu  : pridss_warp_normalize_cpu / pridss_paste_back_cpu
 *                        host pointers, synchronous.
 *
 * Conventions shared by all functions
 * -----------------------------------
 * frame      BGR uint8, interleaved, `height` rows of `width` pixels; row r
 *            starts at frame + r * row_pitch (row_pitch in bytes, >= 3*width).
 * matrices   num_faces 2x3 float32 affine matrices, row-major, 6 floats per
 *            face, mapping FRAME coordinates -> CROP coordinates.  This is
 *            exactly the matrix one would pass to cv2.warpAffine(frame, M,
 *            (S, S)); pixel (x, y) has its centre at integer coordinates
 *            (x, y), as in OpenCV.
 * crop_size  S, the side of the square crops, >= 2.
 * crops/out  float32 NCHW [num_faces, 3, S, S], contiguous.
 * mean, std  3 floats each, HOST memory (also for the CUDA functions; they
 *            are read during the call).  Indexed by OUTPUT channel, i.e. RGB
 *            order when rgb != 0, BGR order when rgb == 0.
 *            normalized = (pixel / 255 - mean[c]) / std[c].
 * rgb        non-zero: crop channel 0 is R (frame channels are swapped);
 *            zero: crop channels keep the frame's BGR order.
 *
 * warp_normalize: out[n, c, y, x] = normalize(bilinear(frame, Minv_n * (x, y, 1)))
 *   with Minv_n the inverse of matrices[n] (computed per face inside the op),
 *   bilinear weights in float, and every frame pixel outside the frame taken
 *   as 0 (cv2.BORDER_CONSTANT, borderValue 0) before normalization.  A face
 *   whose matrix is not invertible (or not finite) yields a crop filled with
 *   normalize(0).
 *
 * paste_back: in place on the frame.  For each face n in order (face n is
 *   pasted over face n-1, each result rounded to uint8 before the next face)
 *   and each frame pixel p = (x, y): q = matrices[n] * (x, y, 1).  If
 *   0 <= q.x <= S-1 and 0 <= q.y <= S-1, the crop and mask are sampled
 *   bilinearly at q, the crop value is mapped back to pixel units
 *   (v * std[c] + mean[c]) * 255, and
 *       frame = floor(clamp(m * crop + (1 - m) * frame, 0, 255) + 0.5)
 *   with m = clamp(mask(q), 0, 1).  Pixels whose q is outside the crop for
 *   every face are never written.  mask is float32 [S, S], contiguous, the
 *   same for every face.
 *
 * Return values (int)
 *   0                          PRIDSS_OK
 *   < 0                        a PRIDSS_ERR_* code: invalid argument, nothing
 *                              was launched / written.
 *   > 0  (CUDA functions only) a cudaError_t value, as returned by
 *                              cudaGetLastError() right after the launches.
 *                              Since the functions do not synchronize,
 *                              errors raised while the kernels run are
 *                              reported by later CUDA calls on the stream.
 *   pridss_status_string() / pridss_status_string_cpu() describe a code.
 *
 * The CUDA functions allocate nothing and never synchronize; every pointer
 * except mean/std must be device memory (or managed memory) valid until the
 * stream work completes.  num_faces == 0 is a valid no-op.
 */
#ifndef PRIDSS_OPS_H
#define PRIDSS_OPS_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(PRIDSS_OPS_BUILDING)
#    define PRIDSS_API __declspec(dllexport)
#  else
#    define PRIDSS_API __declspec(dllimport)
#  endif
#else
#  define PRIDSS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Same type as cudaStream_t (driver_types.h declares
 * `typedef struct CUstream_st *cudaStream_t;`), so callers pass a
 * cudaStream_t directly while this header needs no CUDA include.
 * NULL selects the legacy default stream. */
typedef struct CUstream_st* pridss_cuda_stream_t;

enum pridss_status {
    PRIDSS_OK = 0,
    PRIDSS_ERR_NULL_POINTER = -1,     /* a required pointer is NULL */
    PRIDSS_ERR_BAD_FRAME = -2,        /* height/width < 1 or row_pitch < 3*width */
    PRIDSS_ERR_BAD_CROP_SIZE = -3,    /* crop_size < 2 or too large */
    PRIDSS_ERR_BAD_NUM_FACES = -4,    /* num_faces < 0 or too large for a launch */
    PRIDSS_ERR_BAD_NORMALIZATION = -5 /* std[c] == 0 or a mean/std value not finite */
};

/* ---- CUDA build (libpridss_ops_cuda) ---------------------------------- */

PRIDSS_API int pridss_warp_normalize(const uint8_t* frame, int height, int width,
                                     size_t row_pitch, const float* matrices,
                                     int num_faces, int crop_size,
                                     const float* mean, const float* std, int rgb,
                                     float* out, pridss_cuda_stream_t stream);

PRIDSS_API int pridss_paste_back(uint8_t* frame, int height, int width,
                                 size_t row_pitch, const float* crops,
                                 const float* matrices, int num_faces,
                                 int crop_size, const float* mask,
                                 const float* mean, const float* std, int rgb,
                                 pridss_cuda_stream_t stream);

/* Describes PRIDSS_* codes and cudaError_t values. Never NULL. */
PRIDSS_API const char* pridss_status_string(int status);

/* ---- CPU build (libpridss_ops_cpu) ------------------------------------ */

PRIDSS_API int pridss_warp_normalize_cpu(const uint8_t* frame, int height, int width,
                                         size_t row_pitch, const float* matrices,
                                         int num_faces, int crop_size,
                                         const float* mean, const float* std,
                                         int rgb, float* out);

PRIDSS_API int pridss_paste_back_cpu(uint8_t* frame, int height, int width,
                                     size_t row_pitch, const float* crops,
                                     const float* matrices, int num_faces,
                                     int crop_size, const float* mask,
                                     const float* mean, const float* std, int rgb);

/* Describes PRIDSS_* codes. Never NULL. */
PRIDSS_API const char* pridss_status_string_cpu(int status);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PRIDSS_OPS_H */
