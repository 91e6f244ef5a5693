/* Stream an answer: print the text as the model writes it, say when the
 * router falls back, and stop early if the answer runs long.
 *   cc stream.c $(pkg-config --cflags --libs llmroute) -o stream */
#include <llmroute.h>
#include <stdio.h>

static int on_event(const llmr_event *ev, void *user) {
  size_t *printed = user;
  switch (ev->type) {
  case LLMR_EVENT_TEXT:
    fwrite(ev->text, 1, ev->len, stdout);
    fflush(stdout);
    *printed += ev->len;
    return *printed > 4000; /* non-zero cancels the call */
  case LLMR_EVENT_FALLBACK:
    fprintf(stderr, "[%s failed (%s); next model]\n", ev->model, ev->error);
    break;
  case LLMR_EVENT_DONE:
    printf("\n[%s; %lld tokens%s]\n",
           ev->finish_reason ? ev->finish_reason : "done",
           (long long)llmr_response_tokens(ev->response, LLMR_TOKENS_TOTAL),
           llmr_response_usage_estimated(ev->response) ? ", estimated" : "");
    break;
  case LLMR_EVENT_ERROR:
    fprintf(stderr, "\n[%s: %s]\n", llmr_status_name(ev->status), ev->error);
    break;
  default:
    break;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *models[] = {"openai/gpt-4o-mini", "openrouter/openai/gpt-4o-mini"};
  llmr_router *router;
  llmr_request *req;
  llmr_response *resp;
  llmr_status st;
  size_t printed = 0;

  if (llmr_router_new(NULL, &router) != LLMR_OK) /* keys from the env */
    return 1;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER,
                           argc > 1 ? argv[1] : "Tell me a very short story.");
  st = llmr_stream(router, models, 2, req, on_event, &printed, &resp);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(router);
  return st == LLMR_OK || st == LLMR_E_ABORTED ? 0 : 1;
}
