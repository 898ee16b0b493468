// Rotary embeddings, "rotate_half" pairing (i, i+Dh/2) as attention.RoPE. The host builds the
// cos/sin table (L, Dh/2) in float64 (large positions keep their accuracy) and uploads it;
// sign = −1 gives the inverse rotation (the backward pass). out may alias x: each thread reads its
// pair before writing it.
#include "common.cuh"

KERNEL rope_f32(float *out, const float *x, const float *cosT, const float *sinT, int b, int l, int h, int dh, float sign) {
  int half = dh / 2;
  i64 total = (i64)b * l * h * half;
  for (i64 i = gtid(); i < total; i += gstride()) {
    int k = (int)(i % half);
    i64 bth = i / half;  // (b·L + t)·H + head
    int t = (int)((bth / h) % l);
    i64 off = bth * dh;
    float c = cosT[t * half + k], s = sign * sinT[t * half + k];
    float a = x[off + k], bb = x[off + half + k];
    out[off + k] = a * c - bb * s;
    out[off + half + k] = bb * c + a * s;
  }
}
