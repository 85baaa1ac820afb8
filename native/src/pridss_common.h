/*
 * pridss_common.h - host-side argument checks and helpers shared by the CPU
 * and CUDA builds, so both reject exactly the same inputs.
 */
#ifndef PRIDSS_COMMON_H
#define PRIDSS_COMMON_H

#include "pridss_ops.h"
#include "pridss_pixel_math.h"

namespace pridss {

/* Limits keep every CUDA grid dimension in range (grid y/z <= 65535 with
 * 8-row blocks) and all index arithmetic far from overflow. */
constexpr int kMaxFrameDim = 65536;
constexpr int kMaxCropSize = 8192;
constexpr int kMaxFaces = 65535;

inline int check_frame(const void* frame, int height, int width, size_t row_pitch) {
    if (frame == nullptr) return PRIDSS_ERR_NULL_POINTER;
    if (height < 1 || width < 1 || height > kMaxFrameDim || width > kMaxFrameDim)
        return PRIDSS_ERR_BAD_FRAME;
    if (row_pitch < (size_t)width * 3u) return PRIDSS_ERR_BAD_FRAME;
    return PRIDSS_OK;
}

inline int check_faces(int num_faces, int crop_size) {
    if (num_faces < 0 || num_faces > kMaxFaces) return PRIDSS_ERR_BAD_NUM_FACES;
    if (crop_size < 2 || crop_size > kMaxCropSize) return PRIDSS_ERR_BAD_CROP_SIZE;
    return PRIDSS_OK;
}

/* Fills *norm from host arrays mean[3], std[3]. */
inline int make_norm(const float* mean, const float* std, Norm* norm) {
    if (mean == nullptr || std == nullptr) return PRIDSS_ERR_NULL_POINTER;
    for (int c = 0; c < 3; ++c) {
        if (!is_finite(mean[c]) || !is_finite(std[c]) || std[c] == 0.0f)
            return PRIDSS_ERR_BAD_NORMALIZATION;
        norm->mean[c] = mean[c];
        norm->std[c] = std[c];
        norm->inv_std[c] = 1.0f / std[c];
        if (!is_finite(norm->inv_std[c])) return PRIDSS_ERR_BAD_NORMALIZATION;
    }
    return PRIDSS_OK;
}

inline int check_warp_normalize(const uint8_t* frame, int height, int width,
                                size_t row_pitch, const float* matrices,
                                int num_faces, int crop_size, const float* mean,
                                const float* std, const float* out, Norm* norm) {
    int st = check_frame(frame, height, width, row_pitch);
    if (st != PRIDSS_OK) return st;
    if ((st = check_faces(num_faces, crop_size)) != PRIDSS_OK) return st;
    if ((st = make_norm(mean, std, norm)) != PRIDSS_OK) return st;
    if (num_faces > 0 && (matrices == nullptr || out == nullptr))
        return PRIDSS_ERR_NULL_POINTER;
    return PRIDSS_OK;
}

inline int check_paste_back(const uint8_t* frame, int height, int width,
                            size_t row_pitch, const float* crops,
                            const float* matrices, int num_faces, int crop_size,
                            const float* mask, const float* mean, const float* std,
                            Norm* norm) {
    int st = check_frame(frame, height, width, row_pitch);
    if (st != PRIDSS_OK) return st;
    if ((st = check_faces(num_faces, crop_size)) != PRIDSS_OK) return st;
    if ((st = make_norm(mean, std, norm)) != PRIDSS_OK) return st;
    if (num_faces > 0 && (crops == nullptr || matrices == nullptr || mask == nullptr))
        return PRIDSS_ERR_NULL_POINTER;
    return PRIDSS_OK;
}

/* Message for PRIDSS_* codes; nullptr for anything else. */
inline const char* status_message(int status) {
    switch (status) {
        case PRIDSS_OK: return "success";
        case PRIDSS_ERR_NULL_POINTER: return "a required pointer argument is NULL";
        case PRIDSS_ERR_BAD_FRAME:
            return "invalid frame geometry (height/width out of [1, 65536] or row_pitch < 3*width)";
        case PRIDSS_ERR_BAD_CROP_SIZE: return "crop_size out of [2, 8192]";
        case PRIDSS_ERR_BAD_NUM_FACES: return "num_faces out of [0, 65535]";
        case PRIDSS_ERR_BAD_NORMALIZATION:
            return "mean/std not finite or a std value is zero";
        default: return nullptr;
    }
}

}  // namespace pridss

#endif /* PRIDSS_COMMON_H */
