/* A fallback chain with the attempt trace: which model was tried, what it
 * answered, how long it took. */
#include <llmroute.h>
#include <stdio.h>

int main(void) {
  const char *models[] = {"anthropic/claude-sonnet-4.5", "openai/gpt-4o",
                          "openrouter/meta-llama/llama-3.1-70b-instruct"};
  llmr_router *router;
  llmr_request *req;
  llmr_response *resp;
  size_t i;

  if (llmr_router_new(NULL, &router) != LLMR_OK)
    return 1;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_SYSTEM, "Answer in one line.");
  llmr_request_add_message(req, LLMR_ROLE_USER, "Why is the sky blue?");
  llmr_request_set_max_tokens(req, 60);
  llmr_complete(router, models, 3, req, &resp);
  for (i = 0; i < llmr_response_attempt_count(resp); i++)
    printf("try %zu: %-45s %-22s HTTP %3d %7.1f ms %s\n", i + 1,
           llmr_response_attempt_model(resp, i),
           llmr_status_name(llmr_response_attempt_status(resp, i)),
           llmr_response_attempt_http_status(resp, i),
           llmr_response_attempt_duration_ms(resp, i),
           llmr_response_attempt_error(resp, i)
               ? llmr_response_attempt_error(resp, i)
               : "");
  if (llmr_response_status(resp) == LLMR_OK)
    printf("\n%s\n", llmr_response_text(resp));
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(router);
  return 0;
}
