/* JSON in, JSON out: the shape an FFI binding uses. Reads an OpenAI chat
 * request (with "model" or "models") on stdin, prints the response JSON.
 *   echo '{"model":"openai/gpt-4o-mini","messages":[{"role":"user",
 *          "content":"hi"}]}' | ./json */
#include <llmroute.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  static char in[1 << 20];
  size_t n = fread(in, 1, sizeof(in) - 1, stdin);
  llmr_router *router;
  char *out = NULL;
  llmr_status st;

  in[n] = '\0';
  if (llmr_router_new(NULL, &router) != LLMR_OK)
    return 1;
  st = llmr_complete_json(router, in, &out); /* out is set either way */
  if (out)
    puts(out);
  llmr_free(out);
  llmr_router_free(router);
  return st == LLMR_OK ? 0 : 1;
}
