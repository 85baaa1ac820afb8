/*
 * pridss_pixel_math.h - per-pixel math shared by the CUDA kernels and the
 * CPU implementation of pridss_ops.h.
 *
 * Every function is `__host__ __device__` inline under nvcc and plain
 * `inline` C++ otherwise, so both builds run literally the same arithmetic.
 * Both builds are compiled without floating-point contraction (nvcc
 * -fmad=false, g++ -ffp-contract=off) so that the CPU build is a faithful
 * reference of what the GPU computes.
 *
 * Coordinates follow OpenCV: the centre of pixel (x, y) is at (x, y).
 */
#ifndef PRIDSS_PIXEL_MATH_H
#define PRIDSS_PIXEL_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__)
#  define PRIDSS_HD __host__ __device__ __forceinline__
#else
#  define PRIDSS_HD inline
#endif

namespace pridss {

/* Normalization constants, indexed by crop (output) channel. */
struct Norm {
    float mean[3];
    float std[3];
    float inv_std[3];  /* 1 / std, precomputed on the host */
};

/* x' = a*x + b*y + c ;  y' = d*x + e*y + f  (row-major 2x3 matrix). */
struct Affine {
    float a, b, c;
    float d, e, f;
};

PRIDSS_HD bool is_finite(float v) { return fabsf(v) <= 3.402823466e+38f; }  /* false for inf/NaN */

PRIDSS_HD Affine load_affine(const float* m) {
    Affine r;
    r.a = m[0]; r.b = m[1]; r.c = m[2];
    r.d = m[3]; r.e = m[4]; r.f = m[5];
    return r;
}

PRIDSS_HD void apply_affine(const Affine& m, float x, float y, float* ox, float* oy) {
    *ox = m.a * x + m.b * y + m.c;
    *oy = m.d * x + m.e * y + m.f;
}

/* Inverse of an affine map, same formula as cv::invertAffineTransform.
 * Returns false (and leaves *inv untouched) when m is singular or the
 * result is not finite. */
PRIDSS_HD bool invert_affine(const Affine& m, Affine* inv) {
    const float det = m.a * m.e - m.b * m.d;
    if (!(det != 0.0f) || !is_finite(det)) return false;
    const float r = 1.0f / det;
    Affine i;
    i.a = m.e * r;
    i.b = -m.b * r;
    i.d = -m.d * r;
    i.e = m.a * r;
    i.c = -(i.a * m.c + i.b * m.f);
    i.f = -(i.d * m.c + i.e * m.f);
    if (!is_finite(i.a) || !is_finite(i.b) || !is_finite(i.c) ||
        !is_finite(i.d) || !is_finite(i.e) || !is_finite(i.f))
        return false;
    *inv = i;
    return true;
}

PRIDSS_HD float lerp(float v0, float v1, float w) { return (1.0f - w) * v0 + w * v1; }

/* Bilinear sample of a BGR uint8 frame at (sx, sy), pixels outside the frame
 * count as 0 (cv2.BORDER_CONSTANT with borderValue 0).  bgr[] in [0, 255]. */
PRIDSS_HD void sample_frame_bgr(const uint8_t* frame, int height, int width,
                                size_t row_pitch, float sx, float sy, float bgr[3]) {
    bgr[0] = bgr[1] = bgr[2] = 0.0f;
    /* Also rejects NaN and keeps the int conversions below in range. */
    if (!(sx > -1.0f && sx < (float)width && sy > -1.0f && sy < (float)height)) return;

    const float fx = floorf(sx), fy = floorf(sy);
    const int x0 = (int)fx, y0 = (int)fy;
    const int x1 = x0 + 1, y1 = y0 + 1;
    const float wx = sx - fx, wy = sy - fy;

    const bool vx0 = x0 >= 0, vx1 = x1 < width;
    const bool vy0 = y0 >= 0, vy1 = y1 < height;
    const uint8_t* r0 = frame + (ptrdiff_t)y0 * (ptrdiff_t)row_pitch;
    const uint8_t* r1 = r0 + row_pitch;

    for (int c = 0; c < 3; ++c) {
        const float p00 = (vy0 && vx0) ? (float)r0[3 * x0 + c] : 0.0f;
        const float p01 = (vy0 && vx1) ? (float)r0[3 * x1 + c] : 0.0f;
        const float p10 = (vy1 && vx0) ? (float)r1[3 * x0 + c] : 0.0f;
        const float p11 = (vy1 && vx1) ? (float)r1[3 * x1 + c] : 0.0f;
        bgr[c] = lerp(lerp(p00, p01, wx), lerp(p10, p11, wx), wy);
    }
}

/* One output pixel of warp_normalize: crop pixel (x, y) of the face whose
 * inverse matrix is inv (ok == false: non-invertible face, samples are 0).
 * out[c] is the normalized value of crop channel c. */
PRIDSS_HD void warp_normalize_pixel(const uint8_t* frame, int height, int width,
                                    size_t row_pitch, const Affine& inv, bool ok,
                                    int x, int y, const Norm& norm, bool rgb,
                                    float out[3]) {
    float bgr[3] = {0.0f, 0.0f, 0.0f};
    if (ok) {
        float sx, sy;
        apply_affine(inv, (float)x, (float)y, &sx, &sy);
        sample_frame_bgr(frame, height, width, row_pitch, sx, sy, bgr);
    }
    for (int c = 0; c < 3; ++c) {
        const float v = bgr[rgb ? 2 - c : c];
        out[c] = (v / 255.0f - norm.mean[c]) * norm.inv_std[c];
    }
}

/* Maps frame pixel (x, y) into the crop; true when q lies inside the crop,
 * i.e. 0 <= q <= S-1 on both axes (false for NaN). */
PRIDSS_HD bool crop_point(const Affine& m, int x, int y, int crop_size,
                          float* qx, float* qy) {
    apply_affine(m, (float)x, (float)y, qx, qy);
    const float hi = (float)(crop_size - 1);
    return *qx >= 0.0f && *qx <= hi && *qy >= 0.0f && *qy <= hi;
}

/* Bilinear cell of a coordinate q in [0, S-1]: index i0 in [0, S-2] and
 * weight w in [0, 1] of sample i0 + 1. */
PRIDSS_HD void crop_cell(float q, int crop_size, int* i0, float* w) {
    int i = (int)floorf(q);
    if (i > crop_size - 2) i = crop_size - 2;
    *i0 = i;
    *w = q - (float)i;
}

PRIDSS_HD float sample_plane(const float* plane, int crop_size, int x0, int y0,
                             float wx, float wy) {
    const float* r0 = plane + (size_t)y0 * (size_t)crop_size + (size_t)x0;
    const float* r1 = r0 + crop_size;
    return lerp(lerp(r0[0], r0[1], wx), lerp(r1[0], r1[1], wx), wy);
}

PRIDSS_HD float clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }

/* Blends one face into one frame pixel (3 BGR bytes, updated in place).
 * crop: the face's 3 planes (normalized space), mask: [S, S] in [0, 1],
 * (qx, qy): the pixel's point in the crop, already known to be inside. */
PRIDSS_HD void paste_pixel(uint8_t bgr[3], const float* crop, const float* mask,
                           int crop_size, float qx, float qy, const Norm& norm,
                           bool rgb) {
    int x0, y0;
    float wx, wy;
    crop_cell(qx, crop_size, &x0, &wx);
    crop_cell(qy, crop_size, &y0, &wy);

    const size_t plane = (size_t)crop_size * (size_t)crop_size;
    const float m = clampf(sample_plane(mask, crop_size, x0, y0, wx, wy), 0.0f, 1.0f);
    for (int fc = 0; fc < 3; ++fc) {
        const int cc = rgb ? 2 - fc : fc;
        const float v = sample_plane(crop + (size_t)cc * plane, crop_size, x0, y0, wx, wy);
        const float gen = (v * norm.std[cc] + norm.mean[cc]) * 255.0f;
        const float blended = clampf(m * gen + (1.0f - m) * (float)bgr[fc], 0.0f, 255.0f);
        bgr[fc] = (uint8_t)(int)floorf(blended + 0.5f);
    }
}

}  // namespace pridss

#endif /* PRIDSS_PIXEL_MATH_H */
