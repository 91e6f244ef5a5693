/* PLACEHOLDER being replaced by the anthropic adapter (issue 3). */
#include "../internal.h"

static llmr_status ph_build(const llmr_provider *p, const llmr_request *req,
                            const char *native_model, int stream,
                            llmr_http_request *http, llmr_response *resp) {
  (void)p; (void)req; (void)native_model; (void)stream; (void)http;
  (void)resp;
  return LLMR_E_PROVIDER;
}

static llmr_status ph_parse(const llmr_provider *p,
                            const llmr_http_response *http,
                            llmr_response *resp) {
  (void)p; (void)http; (void)resp;
  return LLMR_E_PROVIDER;
}

const llmr_provider_vt llmr__anthropic_vt = {
    "anthropic", LLMR_PROVIDER_ABI_VERSION, 0, ph_build, ph_parse, NULL, NULL,
};
