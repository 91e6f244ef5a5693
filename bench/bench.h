/*
 * Small helpers shared by the benchmark programs (bench/README.md): a
 * monotonic clock, sorting and order statistics. Header-only.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMR_BENCH_H
#define LLMR_BENCH_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

/* Microseconds from CLOCK_MONOTONIC. */
static inline double bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Sorts v in place; the q-quantile (0..1) by the nearest-rank method. */
static inline double bench_quantile(double *v, size_t n, double q) {
  size_t k;
  if (n == 0)
    return 0;
  qsort(v, n, sizeof(*v), bench_cmp_double);
  if (q <= 0)
    return v[0];
  k = (size_t)(q * (double)n + 0.999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return v[k - 1];
}

/* Median: the mean of the two middle values for an even count. */
static inline double bench_median(double *v, size_t n) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof(*v), bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
