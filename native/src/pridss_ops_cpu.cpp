/*
 * pridss_ops_cpu.cpp - host implementation of pridss_ops.h (the *_cpu
 * functions).  It runs the per-pixel functions of pridss_pixel_math.h, the
 * same ones the CUDA kernels run, so it serves as the tested reference of
 * the GPU path on machines without a GPU.
 */
#include <algorithm>
#include <cmath>

#include "pridss_common.h"
#include "pridss_ops.h"
#include "pridss_pixel_math.h"

namespace {

using pridss::Affine;
using pridss::Norm;

/* Frame rectangle [x_begin, x_end) x [y_begin, y_end) that contains every
 * pixel whose mapped point can fall inside the crop.  Only an optimization:
 * each pixel in it is still tested with pridss::crop_point, exactly like the
 * CUDA kernel, which tests every frame pixel.  The 2-pixel margin (plus a
 * relative one) absorbs float rounding between the inverse and forward maps. */
struct Rect {
    int x_begin, x_end, y_begin, y_end;
};

Rect face_bounds(const Affine& m, int crop_size, int height, int width) {
    const Rect full = {0, width, 0, height};
    Affine inv;
    if (!pridss::invert_affine(m, &inv)) return full;

    const float hi = (float)(crop_size - 1);
    const float cx[4] = {0.0f, hi, 0.0f, hi};
    const float cy[4] = {0.0f, 0.0f, hi, hi};
    double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
    for (int k = 0; k < 4; ++k) {
        float px, py;
        pridss::apply_affine(inv, cx[k], cy[k], &px, &py);
        x_min = std::min(x_min, (double)px);
        x_max = std::max(x_max, (double)px);
        y_min = std::min(y_min, (double)py);
        y_max = std::max(y_max, (double)py);
    }
    if (!std::isfinite(x_min) || !std::isfinite(x_max) || !std::isfinite(y_min) ||
        !std::isfinite(y_max))
        return full;

    const double margin =
        2.0 + 1e-4 * std::max({std::fabs(x_min), std::fabs(x_max), std::fabs(y_min),
                               std::fabs(y_max)});
    auto clamp_to = [](double v, int limit) {
        return (int)std::min(std::max(v, 0.0), (double)limit);
    };
    Rect r;
    r.x_begin = clamp_to(std::floor(x_min - margin), width);
    r.x_end = clamp_to(std::ceil(x_max + margin) + 1.0, width);
    r.y_begin = clamp_to(std::floor(y_min - margin), height);
    r.y_end = clamp_to(std::ceil(y_max + margin) + 1.0, height);
    return r;
}

}  // namespace

extern "C" {

PRIDSS_API int pridss_warp_normalize_cpu(const uint8_t* frame, int height, int width,
                                         size_t row_pitch, const float* matrices,
                                         int num_faces, int crop_size,
                                         const float* mean, const float* std,
                                         int rgb, float* out) {
    Norm norm;
    const int st = pridss::check_warp_normalize(frame, height, width, row_pitch, matrices,
                                                num_faces, crop_size, mean, std, out, &norm);
    if (st != PRIDSS_OK) return st;

    const size_t plane = (size_t)crop_size * (size_t)crop_size;
    for (int n = 0; n < num_faces; ++n) {
        const Affine m = pridss::load_affine(matrices + 6 * (size_t)n);
        Affine inv = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        const bool ok = pridss::invert_affine(m, &inv);
        float* face_out = out + (size_t)n * 3u * plane;
        for (int y = 0; y < crop_size; ++y) {
            for (int x = 0; x < crop_size; ++x) {
                float v[3];
                pridss::warp_normalize_pixel(frame, height, width, row_pitch, inv, ok, x, y,
                                             norm, rgb != 0, v);
                const size_t idx = (size_t)y * (size_t)crop_size + (size_t)x;
                face_out[idx] = v[0];
                face_out[plane + idx] = v[1];
                face_out[2 * plane + idx] = v[2];
            }
        }
    }
    return PRIDSS_OK;
}

PRIDSS_API int pridss_paste_back_cpu(uint8_t* frame, int height, int width,
                                     size_t row_pitch, const float* crops,
                                     const float* matrices, int num_faces,
                                     int crop_size, const float* mask,
                                     const float* mean, const float* std, int rgb) {
    Norm norm;
    const int st = pridss::check_paste_back(frame, height, width, row_pitch, crops, matrices,
                                            num_faces, crop_size, mask, mean, std, &norm);
    if (st != PRIDSS_OK) return st;

    const size_t face_stride = 3u * (size_t)crop_size * (size_t)crop_size;
    /* Face by face: identical to the CUDA kernel, which applies the faces in
     * order per pixel, rounding to uint8 after each face. */
    for (int n = 0; n < num_faces; ++n) {
        const Affine m = pridss::load_affine(matrices + 6 * (size_t)n);
        const float* crop = crops + (size_t)n * face_stride;
        const Rect r = face_bounds(m, crop_size, height, width);
        for (int y = r.y_begin; y < r.y_end; ++y) {
            uint8_t* row = frame + (size_t)y * row_pitch;
            for (int x = r.x_begin; x < r.x_end; ++x) {
                float qx, qy;
                if (!pridss::crop_point(m, x, y, crop_size, &qx, &qy)) continue;
                pridss::paste_pixel(row + 3 * (size_t)x, crop, mask, crop_size, qx, qy, norm,
                                    rgb != 0);
            }
        }
    }
    return PRIDSS_OK;
}

PRIDSS_API const char* pridss_status_string_cpu(int status) {
    const char* msg = pridss::status_message(status);
    return msg != nullptr ? msg : "unknown pridss status code";
}

}  // extern "C"
