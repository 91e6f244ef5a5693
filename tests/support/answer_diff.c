/* See answer_diff.h. */
#include "answer_diff.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Everything parse_response can set, as text: byte-exact strings (length
 * and hex of anything outside printable ASCII). */
static void put_str(llmr__buf *b, const char *name, const char *s,
                    size_t n) {
  size_t i;
  llmr__buf_printf(b, "%s=", name);
  if (!s) {
    llmr__buf_puts(b, "NULL\n");
    return;
  }
  llmr__buf_printf(b, "(%zu)", n);
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '%')
      llmr__buf_append(b, s + i, 1);
    else
      llmr__buf_printf(b, "%%%02x", ch);
  }
  llmr__buf_puts(b, "\n");
}

static void describe(llmr__buf *b, llmr_status st, const llmr_response *r) {
  size_t i, n;
  int k;
  llmr__buf_printf(b, "status=%s resp_status=%s\n", llmr_status_name(st),
                   llmr_status_name(llmr_response_status(r)));
  put_str(b, "text", r->text.data, r->text.len);
  put_str(b, "reasoning", r->reasoning.data, r->reasoning.len);
  put_str(b, "finish", llmr_response_finish_reason(r),
          llmr_response_finish_reason(r)
              ? strlen(llmr_response_finish_reason(r))
              : 0);
  put_str(b, "id", llmr_response_id(r),
          llmr_response_id(r) ? strlen(llmr_response_id(r)) : 0);
  llmr__buf_printf(b, "created=%lld\n", (long long)r->created);
  for (k = LLMR_TOKENS_PROMPT; k <= LLMR_TOKENS_REASONING; k++)
    llmr__buf_printf(b, "tokens[%d]=%lld\n", k,
                     (long long)llmr_response_tokens(r, (llmr_tokens)k));
  n = llmr_response_tool_call_count(r);
  llmr__buf_printf(b, "tool_calls=%zu\n", n);
  for (i = 0; i < n; i++) {
    const char *s = llmr_response_tool_call_name(r, i);
    put_str(b, "tool_call.name", s, s ? strlen(s) : 0);
  }
  put_str(b, "error", llmr_response_error(r),
          llmr_response_error(r) ? strlen(llmr_response_error(r)) : 0);
  llmr__buf_printf(b, "warnings=%zu\n", llmr_response_warning_count(r));
}

int answer_diff(const char *body, size_t len, char *why, size_t why_size) {
  llmr_provider *p = NULL;
  llmr_http_response h;
  llmr_response *fast = llmr__response_new(), *tree = llmr__response_new(),
                *fresh = llmr__response_new();
  llmr__buf a = {0}, t = {0};
  llmr_status st_fast = LLMR_OK, st_tree;
  int took, rc;

  memset(&h, 0, sizeof(h));
  h.status = 200;
  llmr__buf_append(&h.body, body, len);
  if (!fast || !tree || !fresh ||
      llmr__provider_new("openai", &llmr__openai_vt,
                         llmr__builtin_find("openai"), NULL, 0, NULL, &p,
                         NULL, 0) != LLMR_OK) {
    snprintf(why, why_size, "setup failed");
    rc = ADIFF_DIFFERENT;
    goto out;
  }
  took = llmr__openai_parse_fast(&h, fast, &st_fast);
  if (!took) {
    /* declined: the response must be as it was */
    describe(&a, LLMR_OK, fast);
    describe(&t, LLMR_OK, fresh);
    rc = strcmp(llmr__buf_str(&a), llmr__buf_str(&t)) == 0
             ? ADIFF_DECLINED
             : ADIFF_DIFFERENT;
    if (rc == ADIFF_DIFFERENT && why)
      snprintf(why, why_size, "declined but touched the response:\n%s",
               llmr__buf_str(&a));
    goto out;
  }
  st_tree = llmr__openai_parse_tree(p, &h, tree);
  describe(&a, st_fast, fast);
  describe(&t, st_tree, tree);
  rc = strcmp(llmr__buf_str(&a), llmr__buf_str(&t)) == 0 ? ADIFF_SAME
                                                          : ADIFF_DIFFERENT;
  if (rc == ADIFF_DIFFERENT && why)
    snprintf(why, why_size, "fast path:\n%s\ncJSON path:\n%s",
             llmr__buf_str(&a), llmr__buf_str(&t));
out:
  llmr__buf_free(&a);
  llmr__buf_free(&t);
  llmr__http_response_clear(&h);
  llmr_response_free(fast);
  llmr_response_free(tree);
  llmr_response_free(fresh);
  llmr__provider_free(p);
  return rc;
}
