/* The smallest useful program: ask one question, fall back to a second
 * model if the first is down, print the answer and who gave it.
 *   cc sync.c $(pkg-config --cflags --libs llmroute) -o sync */
#include <llmroute.h>
#include <stdio.h>

int main(int argc, char **argv) {
  const char *models[] = {"openai/gpt-4o-mini", "openrouter/openai/gpt-4o-mini"};
  llmr_router *router;
  llmr_request *req;
  llmr_response *resp;
  llmr_status st;

  if (llmr_router_new(NULL, &router) != LLMR_OK) /* keys from the env */
    return 1;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER,
                           argc > 1 ? argv[1] : "Say hello in French.");
  st = llmr_complete(router, models, 2, req, &resp);
  if (st == LLMR_OK)
    printf("%s\n(answered by %s)\n", llmr_response_text(resp),
           llmr_response_model(resp));
  else
    fprintf(stderr, "%s: %s\n", llmr_status_name(st),
            llmr_response_error(resp));
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(router);
  return st == LLMR_OK ? 0 : 1;
}
