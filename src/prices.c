/*
 * Prices and cost arithmetic. Everything is integer: catalog prices become
 * micro-USD per million tokens (which is pico-USD per token), an attempt's
 * cost is summed exactly in pico-USD and rounded half up to nano-USD once,
 * so every sum over records is exact.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>

int64_t llmr__price_upm(double usd_per_million) {
  if (usd_per_million < 0)
    return -1;
  return (int64_t)llround(usd_per_million * 1e6);
}

int64_t llmr__price_pico(double usd) {
  if (usd < 0)
    return -1;
  return (int64_t)llround(usd * 1e12);
}

static int64_t nonneg(int64_t v) { return v > 0 ? v : 0; }

/* acc += n * upm; -1 on an unknown price (with n > 0) or overflow. */
static int add_term(int64_t *acc, int64_t n, int64_t upm) {
  int64_t term;
  if (n <= 0)
    return 0;
  if (upm < 0)
    return -1;
  if (__builtin_mul_overflow(n, upm, &term) ||
      __builtin_add_overflow(*acc, term, acc))
    return -1;
  return 0;
}

static int64_t or_else(int64_t price, int64_t fallback) {
  return price >= 0 ? price : fallback;
}

int64_t llmr__cost_nanousd(const llmr__model_info *m, const llmr__usage *u,
                           int answered) {
  int64_t prompt = nonneg(u->prompt), completion = nonneg(u->completion);
  int64_t cached = nonneg(u->cached), cache_write = nonneg(u->cache_write);
  int64_t reasoning = nonneg(u->reasoning);
  int64_t uncached, visible, pico = 0;

  /* the counts can disagree (a provider's rounding, an estimate): never
   * bill a part twice, never a negative part */
  if (cached > prompt)
    cached = prompt;
  if (cache_write > prompt - cached)
    cache_write = prompt - cached;
  uncached = prompt - cached - cache_write;
  if (reasoning > completion)
    reasoning = completion;
  visible = completion - reasoning;

  if (!m) /* no catalog entry: only nothing at all is known to cost 0 */
    return (prompt || completion || answered) ? -1 : 0;
  if (add_term(&pico, uncached, m->upm_input) ||
      add_term(&pico, cached, or_else(m->upm_cache_read, m->upm_input)) ||
      add_term(&pico, cache_write, or_else(m->upm_cache_write, m->upm_input)) ||
      add_term(&pico, visible, m->upm_output) ||
      add_term(&pico, reasoning, or_else(m->upm_reasoning, m->upm_output)))
    return -1;
  if (answered && m->fee_pico > 0 &&
      __builtin_add_overflow(pico, m->fee_pico, &pico))
    return -1;
  /* the one rounding: half up, pico to nano */
  return pico / 1000 + (pico % 1000 >= 500 ? 1 : 0);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int64_t llmr__worst_case_nanousd(const llmr__model_info *m,
                                 int64_t prompt_tokens, int64_t max_output) {
  int64_t in, out, pico = 0;
  if (!m || m->upm_input < 0 || m->upm_output < 0)
    return -1;
  in = max64(m->upm_input, m->upm_cache_write);
  out = max64(m->upm_output, m->upm_reasoning);
  if (add_term(&pico, prompt_tokens, in) ||
      add_term(&pico, max_output, out) ||
      (m->fee_pico > 0 && __builtin_add_overflow(pico, m->fee_pico, &pico)))
    return -1;
  return pico / 1000 + (pico % 1000 ? 1 : 0); /* up: a bound */
}

void llmr__usd_format(int64_t nano, char *out, size_t size) {
  uint64_t mag = nano < 0 ? (uint64_t)0 - (uint64_t)nano : (uint64_t)nano;
  snprintf(out, size, "%s%llu.%09llu", nano < 0 ? "-" : "",
           (unsigned long long)(mag / 1000000000u),
           (unsigned long long)(mag % 1000000000u));
}
