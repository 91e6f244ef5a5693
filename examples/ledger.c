/* A local token ledger: record what calls cost, cap a day's spend, and ask
 * what was spent by model. The file is spend.jsonl in the current
 * directory; `llmroute ledger report spend.jsonl` shows it too. */
#include <llmroute.h>
#include <stdio.h>

int main(int argc, char **argv) {
  const char *models[] = {"openai/gpt-4o", "openai/gpt-4o-mini"};
  char err[LLMR_ERRBUF_SIZE], *report = NULL;
  llmr_ledger *ledger;
  llmr_router *router;
  llmr_request *req;
  llmr_response *resp;
  int64_t nano;

  /* $1 a day for this app; a call that would not fit moves on to the
   * cheaper model, or is refused before anything is sent */
  if (llmr_ledger_open_ex("spend.jsonl",
                          "{\"budgets\": [{\"app\": \"example\", "
                          "\"window\": \"day\", \"usd\": 1.0}]}",
                          &ledger, err, sizeof(err)) != LLMR_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (llmr_router_new(NULL, &router) != LLMR_OK)
    return 1;
  llmr_router_set_ledger(router, ledger);

  llmr_request_new(&req);
  llmr_request_set_app(req, "example");
  llmr_request_set_max_tokens(req, 200);
  llmr_request_add_message(req, LLMR_ROLE_USER,
                           argc > 1 ? argv[1] : "Name three prime numbers.");
  llmr_complete(router, models, 2, req, &resp);
  if (llmr_response_status(resp) == LLMR_OK)
    printf("%s\n", llmr_response_text(resp));
  else
    fprintf(stderr, "%s\n", llmr_response_error(resp));
  nano = llmr_response_cost_nanousd(resp);
  if (nano >= 0)
    printf("[call %s cost $%lld.%09lld]\n", llmr_response_request_id(resp),
           (long long)(nano / 1000000000), (long long)(nano % 1000000000));

  /* today's spend of this app, by model */
  if (llmr_ledger_query(ledger,
                        "{\"by\": \"model\", \"app\": \"example\", "
                        "\"since\": \"-1d\"}",
                        &report) == LLMR_OK)
    printf("%s\n", report);
  llmr_free(report);

  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(router);
  llmr_ledger_close(ledger); /* after the router that borrowed it */
  return 0;
}
