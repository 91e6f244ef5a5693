/* The Anthropic Messages adapter as pure transforms: a table of OpenAI-format
 * requests and the exact Messages bodies they become, a table of reply
 * bodies and the normalised results, error replies and their
 * classification, and bodies that are not the documented shape.
 *
 * The JSON in the tables uses single quotes to stay readable; q() turns
 * every ' into " (so no text in them contains an apostrophe). Bodies are
 * compared as JSON values (cJSON_Compare: key order ignored, array order
 * kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *q(const char *s) {
  char *d = strdup(s), *p;
  assert_non_null(d);
  for (p = d; *p; p++)
    if (*p == '\'')
      *p = '"';
  return d;
}

static llmr_provider *provider(const char *conf_json) {
  cJSON *conf = conf_json ? cJSON_Parse(conf_json) : NULL;
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new("anthropic", &llmr__anthropic_vt,
                                      llmr__builtin_find("anthropic"), conf, 0,
                                      NULL, &p, NULL, 0),
                   LLMR_OK);
  cJSON_Delete(conf);
  return p;
}

static void reply(llmr_http_response *h, int status, const char *headers,
                  const char *body) {
  const char *line = headers;
  memset(h, 0, sizeof(*h));
  h->status = status;
  while (line && *line) { /* "name: value\n..." */
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    assert_int_equal(llmr__http_response_add_header(h, line, n), LLMR_OK);
    line = nl ? nl + 1 : NULL;
  }
  assert_int_equal(llmr__buf_puts(&h->body, body), 0);
}

/* "a|b" of the response's warnings */
static char *warnings_of(const llmr_response *resp) {
  llmr__buf b = {0};
  size_t i;
  for (i = 0; i < llmr_response_warning_count(resp); i++)
    assert_int_equal(llmr__buf_printf(&b, "%s%s", i ? "|" : "",
                                      llmr_response_warning(resp, i)),
                     0);
  assert_int_equal(llmr__buf_puts(&b, ""), 0);
  return b.data;
}

/* ---- request translation ------------------------------------------------ */

typedef struct build_case {
  const char *name;
  const char *request; /* OpenAI request, single-quoted */
  int stream;
  llmr_status status;   /* LLMR_OK, or the error build_request returns */
  const char *expect;   /* the body, or a substring of the error message */
  const char *warnings; /* "anthropic: a|anthropic: b", "" for none */
} build_case;

#define WEATHER_TOOL                                                           \
  "{'type':'function','function':{'name':'get_weather','description':"        \
  "'Weather now','parameters':{'type':'object','properties':{'city':{'type':" \
  "'string'}},'required':['city']}}}"
#define WEATHER_TOOL_A                                                         \
  "{'name':'get_weather','description':'Weather now','input_schema':{'type':" \
  "'object','properties':{'city':{'type':'string'}},'required':['city']}}"
#define HI "{'role':'user','content':'hi'}"
#define HI_A "{'role':'user','content':[{'type':'text','text':'hi'}]}"
#define HEAD "{'model':'claude-x','max_tokens':4096,"

static const build_case build_cases[] = {
    {"default max_tokens, one user message",
     "{'messages':[" HI "]}", 0, LLMR_OK, HEAD "'messages':[" HI_A "]}", ""},
    {"max_tokens and max_completion_tokens",
     "{'max_completion_tokens':100,'messages':[" HI "]}", 0, LLMR_OK,
     "{'model':'claude-x','max_tokens':100,'messages':[" HI_A "]}", ""},
    {"one system message",
     "{'messages':[{'role':'system','content':'Be terse.'}," HI "]}", 0,
     LLMR_OK, HEAD "'system':'Be terse.','messages':[" HI_A "]}", ""},
    {"several system messages, developer, empty system, hoisted in order",
     "{'messages':[{'role':'system','content':'A'}," HI
     ",{'role':'developer','content':'B'},{'role':'system','content':''},"
     "{'role':'user','content':'there'}]}",
     0, LLMR_OK,
     HEAD "'system':[{'type':'text','text':'A'},{'type':'text','text':'B'}],"
          "'messages':[{'role':'user','content':[{'type':'text','text':'hi'},"
          "{'type':'text','text':'there'}]}]}",
     ""},
    {"only an empty system message: no system field",
     "{'messages':[{'role':'system','content':''}," HI "]}", 0, LLMR_OK,
     HEAD "'messages':[" HI_A "]}", ""},
    {"developer message alone",
     "{'messages':[{'role':'developer','content':'Dev rules'}," HI "]}", 0,
     LLMR_OK, HEAD "'system':'Dev rules','messages':[" HI_A "]}", ""},
    {"system message as text parts",
     "{'messages':[{'role':'system','content':[{'type':'text','text':'P1'},"
     "{'type':'text','text':''},{'type':'text','text':'P2'}]}," HI "]}",
     0, LLMR_OK,
     HEAD "'system':[{'type':'text','text':'P1'},{'type':'text','text':'P2'}],"
          "'messages':[" HI_A "]}",
     ""},
    {"whitespace-only texts dropped, a final assistant prefill trimmed",
     "{'messages':[{'role':'system','content':' \\n'},{'role':'user',"
     "'content':[{'type':'text','text':'hi'},{'type':'text','text':'  '}]},"
     "{'role':'assistant','content':'The answer is \\n'}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':'text',"
          "'text':'The answer is'}]}]}",
     ""},
    {"multi-turn with assistant turns",
     "{'messages':[" HI ",{'role':'assistant','content':'hello'},"
     "{'role':'user','content':'bye'}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':'text',"
          "'text':'hello'}]},{'role':'user','content':[{'type':'text','text':"
          "'bye'}]}]}",
     ""},
    {"consecutive same-role turns merged, empty user text dropped",
     "{'messages':[{'role':'user','content':'a'},{'role':'user','content':''},"
     "{'role':'user','content':'b'},{'role':'assistant','content':'c'},"
     "{'role':'assistant','content':'d'},{'role':'user','content':'e'}]}",
     0, LLMR_OK,
     HEAD "'messages':[{'role':'user','content':[{'type':'text','text':'a'},"
          "{'type':'text','text':'b'}]},{'role':'assistant','content':[{'type':"
          "'text','text':'c'},{'type':'text','text':'d'}]},{'role':'user',"
          "'content':[{'type':'text','text':'e'}]}]}",
     ""},
    {"assistant tool call and its result",
     "{'tools':[" WEATHER_TOOL "],'messages':[{'role':'user','content':"
     "'Weather in Paris?'},{'role':'assistant','content':null,'tool_calls':[{"
     "'id':'toolu_1','type':'function','function':{'name':'get_weather',"
     "'arguments':'{\\'city\\':\\'Paris\\'}'}}]},{'role':'tool',"
     "'tool_call_id':'toolu_1','content':'18C'}]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'messages':[{'role':'user','content':["
          "{'type':'text','text':'Weather in Paris?'}]},{'role':'assistant',"
          "'content':[{'type':'tool_use','id':'toolu_1','name':'get_weather',"
          "'input':{'city':'Paris'}}]},{'role':'user','content':[{'type':"
          "'tool_result','tool_use_id':'toolu_1','content':'18C'}]}]}",
     ""},
    {"parallel tool calls, several results in one user turn, then text",
     "{'messages':[" HI ",{'role':'assistant','content':'Checking.','tool_calls'"
     ":[{'id':'t1','type':'function','function':{'name':'a','arguments':"
     "'{}'}},{'id':'t2','type':'function','function':{'name':'b',"
     "'arguments':''}}]},{'role':'tool','tool_call_id':'t1','content':'one'},"
     "{'role':'tool','tool_call_id':'t2','content':'two'},{'role':'user',"
     "'content':'thanks'}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':'text',"
          "'text':'Checking.'},{'type':'tool_use','id':'t1','name':'a','input'"
          ":{}},{'type':'tool_use','id':'t2','name':'b','input':{}}]},{'role':"
          "'user','content':[{'type':'tool_result','tool_use_id':'t1',"
          "'content':'one'},{'type':'tool_result','tool_use_id':'t2','content'"
          ":'two'},{'type':'text','text':'thanks'}]}]}",
     ""},
    {"a user text before a tool result: tool_result first in the turn",
     "{'messages':[" HI ",{'role':'assistant','tool_calls':[{'id':'t1','type':"
     "'function','function':{'name':'a','arguments':'{}'}}]},{'role':'user',"
     "'content':'also'},{'role':'tool','tool_call_id':'t1','content':''}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':"
          "'tool_use','id':'t1','name':'a','input':{}}]},{'role':'user',"
          "'content':[{'type':'tool_result','tool_use_id':'t1'},{'type':'text',"
          "'text':'also'}]}]}",
     ""},
    {"tool result with content parts",
     "{'messages':[" HI ",{'role':'assistant','tool_calls':[{'id':'t1','type':"
     "'function','function':{'name':'a','arguments':'{}'}}]},{'role':'tool',"
     "'tool_call_id':'t1','content':[{'type':'text','text':'r1'},{'type':"
     "'text','text':'r2'}]}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':"
          "'tool_use','id':'t1','name':'a','input':{}}]},{'role':'user',"
          "'content':[{'type':'tool_result','tool_use_id':'t1','content':[{"
          "'type':'text','text':'r1'},{'type':'text','text':'r2'}]}]}]}",
     ""},
    {"images: data URL, https URL (detail dropped), PDF file",
     "{'messages':[{'role':'user','content':[{'type':'text','text':'Look'},"
     "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0K'}"
     "},{'type':'image_url','image_url':{'url':'https://example.com/cat.jpg',"
     "'detail':'high'}},{'type':'image_url','image_url':{'url':"
     "'https://example.com/dog.webp','detail':'low'}},{'type':'file','file':{"
     "'filename':'a.pdf',"
     "'file_data':'data:application/pdf;base64,JVBERi0'}}]}]}",
     0, LLMR_OK,
     HEAD "'messages':[{'role':'user','content':[{'type':'text','text':'Look'},"
          "{'type':'image','source':{'type':'base64','media_type':'image/png',"
          "'data':'iVBORw0K'}},{'type':'image','source':{'type':'url','url':"
          "'https://example.com/cat.jpg'}},{'type':'image','source':{'type':"
          "'url','url':'https://example.com/dog.webp'}},{'type':'document',"
          "'source':{'type'"
          ":'base64','media_type':'application/pdf','data':'JVBERi0'}}]}]}",
     "anthropic: image_url.detail"},
    {"tools with and without parameters, tool_choice unset",
     "{'tools':[" WEATHER_TOOL ",{'type':'function','function':{'name':'now'}},"
     "{'type':'function','function':{'name':'ping','parameters':{}}}],"
     "'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A ",{'name':'now','input_schema':{'type':"
          "'object','properties':{}}},{'name':'ping','input_schema':{'type':"
          "'object','properties':{}}}],'messages':[" HI_A "]}",
     ""},
    {"tool_choice auto",
     "{'tool_choice':'auto','tools':[" WEATHER_TOOL "],'messages':[" HI "]}", 0,
     LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'tool_choice':{'type':'auto'},"
          "'messages':[" HI_A "]}",
     ""},
    {"tool_choice none",
     "{'tool_choice':'none','tools':[" WEATHER_TOOL "],'messages':[" HI "]}", 0,
     LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'tool_choice':{'type':'none'},"
          "'messages':[" HI_A "]}",
     ""},
    {"tool_choice required",
     "{'tool_choice':'required','tools':[" WEATHER_TOOL "],'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'tool_choice':{'type':'any'},"
          "'messages':[" HI_A "]}",
     ""},
    {"tool_choice naming a function",
     "{'tool_choice':{'type':'function','function':{'name':'get_weather'}},"
     "'tools':[" WEATHER_TOOL "],'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'tool_choice':{'type':'tool','name':"
          "'get_weather'},'messages':[" HI_A "]}",
     ""},
    {"tool_choice auto without tools is left out",
     "{'tool_choice':'auto','messages':[" HI "]}", 0, LLMR_OK,
     HEAD "'messages':[" HI_A "]}", ""},
    {"unknown tool_choice dropped",
     "{'tool_choice':{'type':'allowed_tools'},'tools':[" WEATHER_TOOL "],"
     "'messages':[" HI "]}",
     0, LLMR_OK, HEAD "'tools':[" WEATHER_TOOL_A "],'messages':[" HI_A "]}",
     "anthropic: tool_choice"},
    {"parallel_tool_calls false",
     "{'parallel_tool_calls':false,'tools':[" WEATHER_TOOL "],'messages':[" HI
     "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'tool_choice':{'type':'auto',"
          "'disable_parallel_tool_use':true},'messages':[" HI_A "]}",
     ""},
    {"json_object: forced permissive JSON tool",
     "{'response_format':{'type':'json_object'},'messages':[" HI "]}", 0,
     LLMR_OK,
     HEAD "'tools':[{'name':'json_output','description':'Respond by calling "
          "this tool once, with your complete answer as its input.',"
          "'input_schema':{'type':'object'}}],'tool_choice':{'type':'tool',"
          "'name':'json_output'},'messages':[" HI_A "]}",
     ""},
    {"json_schema: the schema is the JSON tool's input_schema",
     "{'response_format':{'type':'json_schema','json_schema':{'name':'answer',"
     "'strict':true,'description':'The answer.','schema':{'type':'object',"
     "'properties':{'n':{'type':'integer'}},'required':['n']}}},'messages':["
     HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[{'name':'json_output','description':'The answer.',"
          "'input_schema':{'type':'object','properties':{'n':{'type':"
          "'integer'}},'required':['n']}}],'tool_choice':{'type':'tool',"
          "'name':'json_output'},'messages':[" HI_A "]}",
     "anthropic: json_schema.strict"},
    {"json mode with the caller's tools: any tool",
     "{'response_format':{'type':'json_schema','json_schema':{'name':'x',"
     "'schema':{'properties':{}}}},'tools':[" WEATHER_TOOL "],'messages':[" HI
     "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A ",{'name':'json_output','description':"
          "'Respond by calling this tool once, with your complete answer as "
          "its input.','input_schema':{'properties':{},'type':'object'}}],"
          "'tool_choice':{'type':'any'},'messages':[" HI_A "]}",
     ""},
    {"json mode with tool_choice none: only the JSON tool",
     "{'response_format':{'type':'json_object'},'tool_choice':'none','tools':["
     WEATHER_TOOL "],'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A ",{'name':'json_output','description':"
          "'Respond by calling this tool once, with your complete answer as "
          "its input.','input_schema':{'type':'object'}}],'tool_choice':{"
          "'type':'tool','name':'json_output'},'messages':[" HI_A "]}",
     ""},
    {"json mode with a forced caller tool: no JSON tool",
     "{'response_format':{'type':'json_object'},'tool_choice':'required',"
     "'tools':[" WEATHER_TOOL "],'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[" WEATHER_TOOL_A "],'tool_choice':{'type':'any'},"
          "'messages':[" HI_A "]}",
     ""},
    {"response_format text changes nothing",
     "{'response_format':{'type':'text'},'messages':[" HI "]}", 0, LLMR_OK,
     HEAD "'messages':[" HI_A "]}", ""},
    {"reasoning effort high, no max_tokens: budget plus default room",
     "{'reasoning_effort':'high','messages':[" HI "]}", 0, LLMR_OK,
     "{'model':'claude-x','max_tokens':20480,'thinking':{'type':'enabled',"
     "'budget_tokens':16384},'messages':[" HI_A "]}",
     ""},
    {"reasoning effort medium",
     "{'reasoning_effort':'medium','max_tokens':10000,'messages':[" HI "]}", 0,
     LLMR_OK,
     "{'model':'claude-x','max_tokens':10000,'thinking':{'type':'enabled',"
     "'budget_tokens':4096},'messages':[" HI_A "]}",
     ""},
    {"reasoning effort minimal: the documented minimum",
     "{'reasoning_effort':'minimal','messages':[" HI "]}", 0, LLMR_OK,
     "{'model':'claude-x','max_tokens':5120,'thinking':{'type':'enabled',"
     "'budget_tokens':1024},'messages':[" HI_A "]}",
     ""},
    {"reasoning budget below max_tokens",
     "{'reasoning':{'max_tokens':3000},'max_tokens':8000,'messages':[" HI "]}",
     0, LLMR_OK,
     "{'model':'claude-x','max_tokens':8000,'thinking':{'type':'enabled',"
     "'budget_tokens':3000},'messages':[" HI_A "]}",
     ""},
    {"reasoning budget above max_tokens: max_tokens is the answer's room",
     "{'reasoning':{'max_tokens':5000},'max_tokens':1000,'messages':[" HI "]}",
     0, LLMR_OK,
     "{'model':'claude-x','max_tokens':6000,'thinking':{'type':'enabled',"
     "'budget_tokens':5000},'messages':[" HI_A "]}",
     ""},
    {"reasoning budget below the minimum is raised",
     "{'reasoning':{'max_tokens':500},'messages':[" HI "]}", 0, LLMR_OK,
     "{'model':'claude-x','max_tokens':5120,'thinking':{'type':'enabled',"
     "'budget_tokens':1024},'messages':[" HI_A "]}",
     ""},
    {"thinking drops temperature, top_k and a low top_p",
     "{'reasoning_effort':'low','temperature':0.5,'top_p':0.9,'top_k':40,"
     "'messages':[" HI "]}",
     0, LLMR_OK,
     "{'model':'claude-x','max_tokens':5120,'thinking':{'type':'enabled',"
     "'budget_tokens':1024},'messages':[" HI_A "]}",
     "anthropic: temperature|anthropic: top_p|anthropic: top_k"},
    {"thinking keeps top_p from 0.95",
     "{'reasoning_effort':'low','top_p':0.97,'messages':[" HI "]}", 0, LLMR_OK,
     "{'model':'claude-x','max_tokens':5120,'top_p':0.97,'thinking':{'type':"
     "'enabled','budget_tokens':1024},'messages':[" HI_A "]}",
     ""},
    {"thinking with a forced tool: thinking dropped, sampling kept",
     "{'reasoning_effort':'high','temperature':0.3,'tool_choice':'required',"
     "'tools':[" WEATHER_TOOL "],'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'temperature':0.3,'tools':[" WEATHER_TOOL_A "],'tool_choice':{"
          "'type':'any'},'messages':[" HI_A "]}",
     "anthropic: reasoning"},
    {"thinking with JSON mode: thinking dropped",
     "{'reasoning_effort':'low','response_format':{'type':'json_object'},"
     "'messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'tools':[{'name':'json_output','description':'Respond by calling "
          "this tool once, with your complete answer as its input.',"
          "'input_schema':{'type':'object'}}],'tool_choice':{'type':'tool',"
          "'name':'json_output'},'messages':[" HI_A "]}",
     "anthropic: reasoning"},
    {"thinking with a prefill: thinking dropped",
     "{'reasoning_effort':'low','messages':[" HI ",{'role':'assistant',"
     "'content':'The answer is'}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':'text',"
          "'text':'The answer is'}]}]}",
     "anthropic: reasoning"},
    {"thinking in a running tool loop: thinking dropped",
     "{'reasoning_effort':'low','messages':[" HI ",{'role':'assistant',"
     "'tool_calls':[{'id':'t1','type':'function','function':{'name':'a',"
     "'arguments':'{}'}}]},{'role':'tool','tool_call_id':'t1','content':"
     "'r'}]}",
     0, LLMR_OK,
     HEAD "'messages':[" HI_A ",{'role':'assistant','content':[{'type':"
          "'tool_use','id':'t1','name':'a','input':{}}]},{'role':'user',"
          "'content':[{'type':'tool_result','tool_use_id':'t1','content':"
          "'r'}]}]}",
     "anthropic: reasoning"},
    {"thinking after a finished tool loop is fine",
     "{'reasoning_effort':'low','messages':[" HI ",{'role':'assistant',"
     "'tool_calls':[{'id':'t1','type':'function','function':{'name':'a',"
     "'arguments':'{}'}}]},{'role':'tool','tool_call_id':'t1','content':"
     "'r'},{'role':'assistant','content':'done'},{'role':'user','content':"
     "'next'}]}",
     0, LLMR_OK,
     "{'model':'claude-x','max_tokens':5120,'thinking':{'type':'enabled',"
     "'budget_tokens':1024},'messages':[" HI_A ",{'role':'assistant',"
     "'content':[{'type':'tool_use','id':'t1','name':'a','input':{}}]},{"
     "'role':'user','content':[{'type':'tool_result','tool_use_id':'t1',"
     "'content':'r'}]},{'role':'assistant','content':[{'type':'text','text':"
     "'done'}]},{'role':'user','content':[{'type':'text','text':'next'}]}]}",
     ""},
    {"thinking with tool_choice auto is fine",
     "{'reasoning_effort':'low','tool_choice':'auto','tools':[" WEATHER_TOOL
     "],'messages':[" HI "]}",
     0, LLMR_OK,
     "{'model':'claude-x','max_tokens':5120,'thinking':{'type':'enabled',"
     "'budget_tokens':1024},'tools':[" WEATHER_TOOL_A "],'tool_choice':{"
     "'type':'auto'},'messages':[" HI_A "]}",
     ""},
    {"sampling, stop sequences, top_k, user as metadata.user_id",
     "{'temperature':0.2,'top_p':0.5,'top_k':5,'stop':['END','STOP'],"
     "'user':'u-42','messages':[" HI "]}",
     0, LLMR_OK,
     HEAD "'temperature':0.2,'top_p':0.5,'top_k':5,'stop_sequences':['END',"
          "'STOP'],'metadata':{'user_id':'u-42'},'messages':[" HI_A "]}",
     ""},
    {"one stop string",
     "{'stop':'X','messages':[" HI "]}", 0, LLMR_OK,
     HEAD "'stop_sequences':['X'],'messages':[" HI_A "]}", ""},
    {"temperature above 1 is clamped",
     "{'temperature':1.5,'messages':[" HI "]}", 0, LLMR_OK,
     HEAD "'temperature':1,'messages':[" HI_A "]}", "anthropic: temperature"},
    {"unsupported parameters dropped with warnings, in order",
     "{'seed':7,'frequency_penalty':0.5,'presence_penalty':0.1,'logprobs':true,"
     "'logit_bias':{'1':2},'messages':[" HI "]}",
     0, LLMR_OK, HEAD "'messages':[" HI_A "]}",
     "anthropic: seed|anthropic: frequency_penalty|anthropic: "
     "presence_penalty|anthropic: logprobs|anthropic: logit_bias"},
    {"message names dropped once",
     "{'messages':[{'role':'user','name':'ann','content':'a'},{'role':'user',"
     "'name':'bob','content':'b'}]}",
     0, LLMR_OK,
     HEAD "'messages':[{'role':'user','content':[{'type':'text','text':'a'},"
          "{'type':'text','text':'b'}]}]}",
     "anthropic: name"},
    {"stream flag",
     "{'messages':[" HI "]}", 1, LLMR_OK,
     HEAD "'stream':true,'messages':[" HI_A "]}", ""},

    /* requests the adapter refuses */
    {"arguments that are not JSON",
     "{'messages':[" HI ",{'role':'assistant','tool_calls':[{'id':'t1','type':"
     "'function','function':{'name':'a','arguments':'{city: Paris'}}]},"
     "{'role':'tool','tool_call_id':'t1','content':'x'}]}",
     0, LLMR_E_INVAL,
     "anthropic: messages[1].tool_calls[0].function.arguments: not a JSON "
     "object",
     ""},
    {"arguments that are JSON but not an object",
     "{'messages':[" HI ",{'role':'assistant','tool_calls':[{'id':'t1','type':"
     "'function','function':{'name':'a','arguments':'[1,2]'}}]}]}",
     0, LLMR_E_INVAL, "tool_calls[0].function.arguments", ""},
    {"arguments with trailing garbage",
     "{'messages':[" HI ",{'role':'assistant','tool_calls':[{'id':'t1','type':"
     "'function','function':{'name':'a','arguments':'{} x'}}]}]}",
     0, LLMR_E_INVAL, "tool_calls[0].function.arguments", ""},
    {"a caller tool named like the JSON tool",
     "{'tools':[{'type':'function','function':{'name':'json_output'}}],"
     "'messages':[" HI "]}",
     0, LLMR_E_INVAL, "reserved", ""},
    {"audio input",
     "{'messages':[{'role':'user','content':[{'type':'input_audio',"
     "'input_audio':{'data':'AAAA','format':'wav'}}]}]}",
     0, LLMR_E_CAPABILITY, "messages[0].content[0]: content type input_audio",
     ""},
    {"image type the API does not take",
     "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':"
     "{'url':'data:image/svg+xml;base64,PHN2Zz4='}}]}]}",
     0, LLMR_E_CAPABILITY, "image type image/svg+xml", ""},
    {"data URL without base64",
     "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':"
     "{'url':'data:image/png,rawbytes'}}]}]}",
     0, LLMR_E_INVAL, "image data URL", ""},
    {"a non-PDF file",
     "{'messages':[{'role':'user','content':[{'type':'file','file':{"
     "'file_id':'file-1'}}]}]}",
     0, LLMR_E_CAPABILITY, "only PDF", ""},
    {"an image in a system message",
     "{'messages':[{'role':'system','content':[{'type':'image_url',"
     "'image_url':{'url':'https://example.com/a.png'}}]}," HI "]}",
     0, LLMR_E_CAPABILITY, "system and developer messages can only hold text",
     ""},
    {"no user or assistant content",
     "{'messages':[{'role':'system','content':'only rules'}]}", 0,
     LLMR_E_INVAL, "no user or assistant content", ""},
    {"json_schema whose root is not an object",
     "{'response_format':{'type':'json_schema','json_schema':{'name':'x',"
     "'schema':{'type':'array'}}},'messages':[" HI "]}",
     0, LLMR_E_INVAL, "object at the root", ""},
};

static void run_build_case(const build_case *bc) {
  llmr_provider *p = provider("{\"api_key\":\"sk-ant-test\"}");
  char *json = q(bc->request), *want, *warns;
  char err[LLMR_ERRBUF_SIZE];
  llmr_request *req = NULL;
  llmr_response *resp = llmr__response_new();
  llmr_http_request http;
  llmr_status st;

  memset(&http, 0, sizeof(http));
  if (llmr_request_from_json(json, 0, &req, err, sizeof(err)) != LLMR_OK)
    fail_msg("%s: request does not parse: %s", bc->name, err);
  st = p->vt->build_request(p, req, "claude-x", bc->stream, &http, resp);
  if (st != bc->status)
    fail_msg("%s: status %s, expected %s (%s)", bc->name, llmr_status_name(st),
             llmr_status_name(bc->status),
             llmr_response_error(resp) ? llmr_response_error(resp) : "");
  if (st == LLMR_OK) {
    cJSON *got = cJSON_Parse(http.body), *exp;
    want = q(bc->expect);
    exp = cJSON_Parse(want);
    if (!exp)
      fail_msg("%s: expected body does not parse: %s", bc->name, want);
    if (!got || !cJSON_Compare(got, exp, 1)) {
      char *ep = cJSON_PrintUnformatted(exp);
      print_message("%s\n  got:      %s\n  expected: %s\n", bc->name,
                    http.body, ep);
      fail_msg("%s: body differs", bc->name);
    }
    cJSON_Delete(got);
    cJSON_Delete(exp);
    free(want);
  } else {
    assert_int_equal(llmr_response_status(resp), bc->status);
    if (!strstr(llmr_response_error(resp), bc->expect))
      fail_msg("%s: error \"%s\" lacks \"%s\"", bc->name,
               llmr_response_error(resp), bc->expect);
  }
  warns = warnings_of(resp);
  if (strcmp(warns, bc->warnings) != 0)
    fail_msg("%s: warnings \"%s\", expected \"%s\"", bc->name, warns,
             bc->warnings);
  llmr__free(warns);
  free(json);
  llmr__http_request_clear(&http);
  llmr_request_free(req);
  llmr_response_free(resp);
  llmr__provider_free(p);
}

static void test_build_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++)
    run_build_case(&build_cases[i]);
}

static const char *header(const llmr_http_request *h, const char *name) {
  size_t i;
  for (i = 0; i < h->n_headers; i++)
    if (strcmp(h->headers[i].name, name) == 0)
      return h->headers[i].value;
  return NULL;
}

static void test_url_and_headers(void **state) {
  llmr_provider *p = provider("{\"api_key\":\"sk-ant-test\"}");
  llmr_provider *nokey = provider(
      "{\"base_url\":\"http://127.0.0.1:9/\",\"key_required\":false,"
      "\"options\":{\"anthropic_version\":\"2099-01-01\"}}");
  llmr_request *req;
  llmr_response *resp = llmr__response_new();
  llmr_http_request http;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hi"),
                   LLMR_OK);
  memset(&http, 0, sizeof(http));
  assert_int_equal(p->vt->build_request(p, req, "claude-x", 0, &http, resp),
                   LLMR_OK);
  assert_string_equal(http.url, "https://api.anthropic.com/v1/messages");
  assert_string_equal(header(&http, "x-api-key"), "sk-ant-test");
  assert_string_equal(header(&http, "anthropic-version"), "2023-06-01");
  assert_string_equal(header(&http, "content-type"), "application/json");
  assert_string_equal(header(&http, "accept"), "application/json");
  assert_null(header(&http, "Authorization"));
  assert_int_equal(http.body_len, strlen(http.body));
  llmr__http_request_clear(&http);

  assert_int_equal(p->vt->build_request(p, req, "claude-x", 1, &http, resp),
                   LLMR_OK);
  assert_string_equal(header(&http, "accept"), "text/event-stream");
  llmr__http_request_clear(&http);

  /* no key: no x-api-key; the version option; base URL without its '/' */
  assert_int_equal(
      nokey->vt->build_request(nokey, req, "claude-x", 0, &http, resp),
      LLMR_OK);
  assert_string_equal(http.url, "http://127.0.0.1:9/v1/messages");
  assert_null(header(&http, "x-api-key"));
  assert_string_equal(header(&http, "anthropic-version"), "2099-01-01");
  llmr__http_request_clear(&http);
  assert_int_equal(llmr_response_warning_count(resp), 0);

  /* the C API's requests translate the same way */
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_ASSISTANT, NULL),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_tool_call(req, "c1", "f", NULL), LLMR_OK);
  assert_int_equal(llmr_request_add_tool_result(req, "c1", "ok"), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "more"),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_image(req, "https://example.com/x.gif",
                                          NULL),
                   LLMR_OK);
  assert_int_equal(p->vt->build_request(p, req, "m", 0, &http, resp), LLMR_OK);
  {
    char *want = q(
        "{'model':'m','max_tokens':4096,'messages':[{'role':'user','content':"
        "[{'type':'text','text':'hi'}]},{'role':'assistant','content':[{"
        "'type':'tool_use','id':'c1','name':'f','input':{}}]},{'role':'user',"
        "'content':[{'type':'tool_result','tool_use_id':'c1','content':'ok'},"
        "{'type':'text','text':'more'},{'type':'image','source':{'type':'url',"
        "'url':'https://example.com/x.gif'}}]}]}");
    cJSON *got = cJSON_Parse(http.body), *exp = cJSON_Parse(want);
    if (!cJSON_Compare(got, exp, 1))
      fail_msg("C API request: got %s", http.body);
    cJSON_Delete(got);
    cJSON_Delete(exp);
    free(want);
  }
  llmr__http_request_clear(&http);
  llmr_request_free(req);
  llmr_response_free(resp);
  llmr__provider_free(p);
  llmr__provider_free(nokey);
}

/* ---- responses ---------------------------------------------------------- */

typedef struct parse_case {
  const char *name;
  const char *body; /* single-quoted */
  const char *text, *reasoning, *finish, *id;
  const char *calls; /* "id name args\n" per tool call */
  /* prompt, completion, total, cached, reasoning, cache_write; -1 unknown */
  int64_t tokens[6];
} parse_case;

#define USAGE_10_5 "'usage':{'input_tokens':10,'output_tokens':5}"
#define T_10_5                                                                 \
  { 10, 5, 15, 0, 0, 0 }

static const parse_case parse_cases[] = {
    {"text, end_turn",
     "{'id':'msg_1','type':'message','role':'assistant','model':'claude-x',"
     "'content':[{'type':'text','text':'Hello'}],'stop_reason':'end_turn',"
     "'stop_sequence':null," USAGE_10_5 "}",
     "Hello", "", "stop", "msg_1", "", T_10_5},
    {"text blocks concatenated, thinking to reasoning, redacted ignored",
     "{'id':'msg_2','content':[{'type':'thinking','thinking':'Let me see. ',"
     "'signature':'sig'},{'type':'redacted_thinking','data':'xxx'},{'type':"
     "'thinking','thinking':'Yes.','signature':'s2'},{'type':'text','text':"
     "'4'},{'type':'text','text':'2'}],'stop_reason':'end_turn','usage':{"
     "'input_tokens':10,'output_tokens':50,'output_tokens_details':{"
     "'thinking_tokens':30}}}",
     "42", "Let me see. Yes.", "stop", "msg_2", "", {10, 50, 60, 0, 30, 0}},
    {"tool_use",
     "{'id':'msg_3','content':[{'type':'text','text':'Checking.'},{'type':"
     "'tool_use','id':'toolu_1','name':'get_weather','input':{'city':"
     "'Paris'}}],'stop_reason':'tool_use'," USAGE_10_5 "}",
     "Checking.", "", "tool_calls", "msg_3",
     "toolu_1 get_weather {\"city\":\"Paris\"}\n", T_10_5},
    {"parallel tool_use, one without input",
     "{'id':'msg_4','content':[{'type':'tool_use','id':'t1','name':'a',"
     "'input':{'x':[1,2]}},{'type':'tool_use','id':'t2','name':'b'}],"
     "'stop_reason':'tool_use'," USAGE_10_5 "}",
     "", "", "tool_calls", "msg_4", "t1 a {\"x\":[1,2]}\nt2 b {}\n", T_10_5},
    {"cache reads and writes count in the prompt",
     "{'id':'m','content':[{'type':'text','text':'ok'}],'stop_reason':"
     "'end_turn','usage':{'input_tokens':100,'cache_read_input_tokens':1000,"
     "'cache_creation_input_tokens':50,'output_tokens':20,"
     "'output_tokens_details':{'thinking_tokens':7},'service_tier':"
     "'standard'}}",
     "ok", "", "stop", "m", "", {1150, 20, 1170, 1000, 7, 50}},
    {"null cache fields and details",
     "{'id':'m','content':[],'stop_reason':'end_turn','usage':{'input_tokens'"
     ":3,'cache_read_input_tokens':null,'cache_creation_input_tokens':null,"
     "'output_tokens':1,'output_tokens_details':null}}",
     "", "", "stop", "m", "", {3, 1, 4, 0, 0, 0}},
    {"no usage: counts unknown",
     "{'content':[{'type':'text','text':'x'}],'stop_reason':'end_turn'}", "x",
     "", "stop", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"max_tokens", "{'content':[],'stop_reason':'max_tokens'}", "", "",
     "length", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"model_context_window_exceeded",
     "{'content':[],'stop_reason':'model_context_window_exceeded'}", "", "",
     "length", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"stop_sequence",
     "{'content':[{'type':'text','text':'a'}],'stop_reason':'stop_sequence',"
     "'stop_sequence':'END'}",
     "a", "", "stop", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"pause_turn", "{'content':[],'stop_reason':'pause_turn'}", "", "", "stop",
     NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"refusal", "{'content':[],'stop_reason':'refusal'}", "", "",
     "content_filter", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"a stop reason added later", "{'content':[],'stop_reason':'new_reason'}",
     "", "", "stop", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"null stop_reason: no finish reason",
     "{'content':[],'stop_reason':null}", "", "", NULL, NULL, "",
     {-1, -1, -1, -1, -1, -1}},
    {"unknown block types ignored",
     "{'content':[{'type':'server_tool_use','id':'s','name':'web_search',"
     "'input':{}},{'type':'web_search_tool_result','tool_use_id':'s',"
     "'content':[]},{'type':'text','text':'found'}],'stop_reason':'end_turn'}",
     "found", "", "stop", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"JSON mode: the JSON tool's input is the text",
     "{'id':'m','content':[{'type':'tool_use','id':'toolu_9','name':"
     "'json_output','input':{'n':4,'s':'four'}}],'stop_reason':'tool_use',"
     USAGE_10_5 "}",
     "{\"n\":4,\"s\":\"four\"}", "", "stop", "m", "", T_10_5},
    {"JSON mode: text around the JSON tool is dropped",
     "{'content':[{'type':'text','text':'Here you go:'},{'type':'tool_use',"
     "'id':'t','name':'json_output','input':{'ok':true}},{'type':'tool_use',"
     "'id':'t2','name':'json_output','input':{'ok':false}}],'stop_reason':"
     "'tool_use'}",
     "{\"ok\":true}", "", "stop", NULL, "", {-1, -1, -1, -1, -1, -1}},
    {"JSON mode with a real tool call too",
     "{'content':[{'type':'tool_use','id':'t1','name':'get_weather','input':{"
     "'city':'Oslo'}},{'type':'tool_use','id':'t2','name':'json_output',"
     "'input':{}}],'stop_reason':'tool_use'}",
     "{}", "", "tool_calls", NULL, "t1 get_weather {\"city\":\"Oslo\"}\n",
     {-1, -1, -1, -1, -1, -1}},
    {"JSON mode cut by max_tokens",
     "{'content':[{'type':'tool_use','id':'t','name':'json_output','input':{"
     "'a':1}}],'stop_reason':'max_tokens'}",
     "{\"a\":1}", "", "length", NULL, "", {-1, -1, -1, -1, -1, -1}},
};

static void run_parse_case(const parse_case *pc) {
  llmr_provider *p = provider(NULL);
  llmr_http_response h;
  llmr_response *resp = llmr__response_new();
  char *body = q(pc->body);
  llmr__buf calls = {0};
  llmr_status st;
  size_t i;

  reply(&h, 200, NULL, body);
  st = p->vt->parse_response(p, &h, resp);
  if (st != LLMR_OK)
    fail_msg("%s: status %s (%s)", pc->name, llmr_status_name(st),
             llmr_response_error(resp));
  if (strcmp(llmr_response_text(resp), pc->text) != 0)
    fail_msg("%s: text \"%s\", expected \"%s\"", pc->name,
             llmr_response_text(resp), pc->text);
  if (strcmp(llmr_response_reasoning(resp), pc->reasoning) != 0)
    fail_msg("%s: reasoning \"%s\"", pc->name, llmr_response_reasoning(resp));
  if (pc->finish)
    assert_string_equal(llmr_response_finish_reason(resp), pc->finish);
  else
    assert_null(llmr_response_finish_reason(resp));
  if (pc->id)
    assert_string_equal(llmr_response_id(resp), pc->id);
  else
    assert_null(llmr_response_id(resp));
  for (i = 0; i < llmr_response_tool_call_count(resp); i++)
    assert_int_equal(llmr__buf_printf(&calls, "%s %s %s\n",
                                      llmr_response_tool_call_id(resp, i),
                                      llmr_response_tool_call_name(resp, i),
                                      llmr_response_tool_call_arguments(resp, i)),
                     0);
  if (strcmp(llmr__buf_str(&calls), pc->calls) != 0)
    fail_msg("%s: tool calls \"%s\", expected \"%s\"", pc->name,
             llmr__buf_str(&calls), pc->calls);
  for (i = 0; i < 6; i++)
    if (llmr_response_tokens(resp, (llmr_tokens)i) != pc->tokens[i])
      fail_msg("%s: tokens[%zu] = %lld, expected %lld", pc->name, i,
               (long long)llmr_response_tokens(resp, (llmr_tokens)i),
               (long long)pc->tokens[i]);
  llmr__buf_free(&calls);
  free(body);
  llmr__http_response_clear(&h);
  llmr_response_free(resp);
  llmr__provider_free(p);
}

static void test_parse_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
    run_parse_case(&parse_cases[i]);
}

static void test_parse_synthesises_missing_ids(void **state) {
  llmr_provider *p = provider(NULL);
  llmr_http_response h;
  llmr_response *resp = llmr__response_new();
  (void)state;
  reply(&h, 200, NULL,
        "{\"content\":[{\"type\":\"tool_use\",\"name\":\"a\",\"input\":{}},"
        "{\"type\":\"tool_use\",\"id\":\"\",\"name\":\"b\",\"input\":{}}],"
        "\"stop_reason\":\"tool_use\"}");
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_OK);
  assert_int_equal(llmr_response_tool_call_count(resp), 2);
  assert_int_equal(strncmp(llmr_response_tool_call_id(resp, 0), "call_llmr_",
                           10),
                   0);
  assert_string_not_equal(llmr_response_tool_call_id(resp, 0),
                          llmr_response_tool_call_id(resp, 1));
  llmr__http_response_clear(&h);
  llmr_response_free(resp);
  llmr__provider_free(p);
}

/* Bodies that are not the documented shape: LLMR_E_PROTOCOL, never a
 * crash (run under ASan). */
static const char *const garbage[] = {
    "",
    "not json",
    "{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}",
    "[]",
    "42",
    "null",
    "\"message\"",
    "{}",
    "{\"type\":\"message\",\"content\":null}",
    "{\"content\":\"text\"}",
    "{\"content\":{}}",
    "{\"content\":[1]}",
    "{\"content\":[null]}",
    "{\"content\":[{}]}",
    "{\"content\":[{\"type\":1}]}",
    "{\"content\":[{\"type\":\"text\"}]}",
    "{\"content\":[{\"type\":\"text\",\"text\":5}]}",
    "{\"content\":[{\"type\":\"thinking\",\"thinking\":[]}]}",
    "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"input\":{}}]}",
    "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":7}]}",
    "{\"content\":[],\"stop_reason\":5}",
    "{\"content\":[],\"stop_reason\":{}}",
    "{\"content\":[],\"id\":7}",
    "{\"content\":[],\"usage\":\"lots\"}",
    "{\"content\":[],\"usage\":[]}",
    "{\"content\":[],\"usage\":{\"input_tokens\":\"ten\"}}",
    "{\"content\":[],\"usage\":{\"input_tokens\":-3}}",
    "{\"content\":[],\"usage\":{\"output_tokens\":true}}",
    "{\"content\":[],\"usage\":{\"cache_read_input_tokens\":\"1\"}}",
    "{\"content\":[],\"usage\":{\"output_tokens_details\":3}}",
    "{\"content\":[],\"usage\":{\"output_tokens_details\":{"
    "\"thinking_tokens\":\"x\"}}}",
    "{\"content\":[],\"usage\":{\"input_tokens\":1e300}}",
};

static void test_parse_garbage(void **state) {
  llmr_provider *p = provider(NULL);
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
    llmr_http_response h;
    llmr_response *resp = llmr__response_new();
    llmr_status st;
    reply(&h, 200, NULL, garbage[i]);
    st = p->vt->parse_response(p, &h, resp);
    if (st != LLMR_E_PROTOCOL)
      fail_msg("garbage[%zu] %s: %s", i, garbage[i], llmr_status_name(st));
    assert_int_equal(llmr_response_status(resp), LLMR_E_PROTOCOL);
    assert_non_null(llmr_response_error(resp));
    assert_true(strlen(llmr_response_error(resp)) > 0);
    llmr__http_response_clear(&h);
    llmr_response_free(resp);
  }
  llmr__provider_free(p);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct error_case {
  const char *name;
  int http;
  const char *headers; /* "name: value\n..." or NULL */
  const char *body;    /* single-quoted */
  llmr_status status;
  const char *type; /* NULL: none */
  int retryable;
  double retry_after;
  const char *message;
} error_case;

#define ERR(type, msg)                                                         \
  "{'type':'error','error':{'type':'" type "','message':'" msg "'},"          \
  "'request_id':'req_011'}"

static const error_case error_cases[] = {
    {"invalid request", 400, NULL,
     ERR("invalid_request_error", "max_tokens: Field required"),
     LLMR_E_BAD_REQUEST, "invalid_request_error", 0, -1,
     "max_tokens: Field required"},
    {"prompt too long", 400, NULL,
     ERR("invalid_request_error",
         "prompt is too long: 208656 tokens > 200000 maximum"),
     LLMR_E_CONTEXT_LENGTH, "invalid_request_error", 0, -1,
     "prompt is too long: 208656 tokens > 200000 maximum"},
    {"input plus max_tokens over the context", 400, NULL,
     ERR("invalid_request_error",
         "input length and `max_tokens` exceed context limit: 199759 + 8192 > "
         "200000, decrease input length or `max_tokens` and try again"),
     LLMR_E_CONTEXT_LENGTH, "invalid_request_error", 0, -1, NULL},
    {"authentication", 401, NULL,
     ERR("authentication_error", "invalid x-api-key"), LLMR_E_AUTH,
     "authentication_error", 0, -1, "invalid x-api-key"},
    {"permission", 403, NULL, ERR("permission_error", "no access"),
     LLMR_E_AUTH, "permission_error", 0, -1, "no access"},
    {"billing", 402, NULL, ERR("billing_error", "credit balance too low"),
     LLMR_E_PAYMENT, "billing_error", 0, -1, NULL},
    {"not found", 404, NULL, ERR("not_found_error", "model: claude-nope"),
     LLMR_E_NOT_FOUND, "not_found_error", 0, -1, "model: claude-nope"},
    {"request too large", 413, NULL,
     ERR("request_too_large", "Request exceeds the maximum allowed number of "
                              "bytes."),
     LLMR_E_CONTEXT_LENGTH, "request_too_large", 0, -1, NULL},
    {"rate limit with retry-after", 429, "retry-after: 12\nrequest-id: r1",
     ERR("rate_limit_error", "Number of request tokens has exceeded your "
                             "per-minute rate limit"),
     LLMR_E_RATE_LIMITED, "rate_limit_error", 1, 12, NULL},
    {"rate limit with retry-after-ms", 429, "Retry-After-Ms: 1500",
     ERR("rate_limit_error", "slow down"), LLMR_E_RATE_LIMITED,
     "rate_limit_error", 1, 1.5, "slow down"},
    {"api error", 500, NULL, ERR("api_error", "Internal server error"),
     LLMR_E_SERVER, "api_error", 1, -1, "Internal server error"},
    {"timeout", 504, NULL, ERR("timeout_error", "Request timed out"),
     LLMR_E_TIMEOUT, "timeout_error", 1, -1, NULL},
    {"overloaded", 529, "retry-after: 3", ERR("overloaded_error", "Overloaded"),
     LLMR_E_OVERLOADED, "overloaded_error", 1, 3, "Overloaded"},
    {"overloaded, but the server says do not retry", 529,
     "x-should-retry: false", ERR("overloaded_error", "Overloaded"),
     LLMR_E_OVERLOADED, "overloaded_error", 0, -1, NULL},
    {"a 400 the server says to retry", 400, "x-should-retry: true",
     ERR("invalid_request_error", "try again"), LLMR_E_BAD_REQUEST,
     "invalid_request_error", 1, -1, NULL},
    {"conflict", 409, NULL, ERR("invalid_request_error", "conflict"),
     LLMR_E_BAD_REQUEST, "invalid_request_error", 1, -1, NULL},
    {"an error type added later keeps the status class", 418, NULL,
     ERR("teapot_error", "short and stout"), LLMR_E_BAD_REQUEST,
     "teapot_error", 0, -1, "short and stout"},
    {"HTML from a proxy", 502, NULL, "<html>Bad Gateway</html>",
     LLMR_E_SERVER, NULL, 1, -1, "HTTP 502: <html>Bad Gateway</html>"},
    {"529 with an empty body", 529, NULL, "", LLMR_E_OVERLOADED, NULL, 1, -1,
     "HTTP 529: "},
    {"413 from the edge, not JSON", 413, NULL, "Request Entity Too Large",
     LLMR_E_CONTEXT_LENGTH, NULL, 0, -1,
     "HTTP 413: Request Entity Too Large"},
    {"JSON without an error object", 500, NULL, "{'oops':1}", LLMR_E_SERVER,
     NULL, 1, -1, "HTTP 500: {\"oops\":1}"},
};

static void run_error_case(const error_case *ec) {
  llmr_provider *p = provider(NULL);
  llmr_http_response h;
  llmr_response *resp = llmr__response_new();
  char *body = q(ec->body);
  llmr_status st;

  reply(&h, ec->http, ec->headers, body);
  st = p->vt->classify_error(p, &h, resp);
  if (st != ec->status)
    fail_msg("%s: status %s, expected %s", ec->name, llmr_status_name(st),
             llmr_status_name(ec->status));
  assert_int_equal(llmr_response_status(resp), ec->status);
  if (ec->type)
    assert_string_equal(llmr_response_error_type(resp), ec->type);
  else
    assert_null(llmr_response_error_type(resp));
  if (llmr_response_retryable(resp) != ec->retryable)
    fail_msg("%s: retryable %d", ec->name, llmr_response_retryable(resp));
  if (llmr_response_retry_after(resp) != ec->retry_after)
    fail_msg("%s: retry_after %g, expected %g", ec->name,
             llmr_response_retry_after(resp), ec->retry_after);
  assert_non_null(llmr_response_error(resp));
  if (ec->message)
    assert_string_equal(llmr_response_error(resp), ec->message);
  free(body);
  llmr__http_response_clear(&h);
  llmr_response_free(resp);
  llmr__provider_free(p);
}

static void test_error_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
    run_error_case(&error_cases[i]);
}

static void test_classify_non_printable(void **state) {
  llmr_provider *p = provider(NULL);
  llmr_http_response h;
  llmr_response *resp = llmr__response_new();
  (void)state;
  reply(&h, 500, NULL, "\xff\xfe<html>\x01oops");
  assert_int_equal(p->vt->classify_error(p, &h, resp), LLMR_E_SERVER);
  assert_string_equal(llmr_response_error(resp), "HTTP 500: ?" "?<html>?oops");
  llmr__http_response_clear(&h);
  llmr_response_free(resp);
  llmr__provider_free(p);
}

/* A 200 whose body is an error object goes through classify_error. */
static void test_error_inside_200(void **state) {
  llmr_provider *p = provider(NULL);
  llmr_http_response h;
  llmr_response *resp = llmr__response_new();
  (void)state;
  reply(&h, 200, NULL,
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}");
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_E_OVERLOADED);
  assert_string_equal(llmr_response_error_type(resp), "overloaded_error");
  assert_true(llmr_response_retryable(resp));
  llmr__http_response_clear(&h);
  llmr_response_free(resp);

  resp = llmr__response_new();
  reply(&h, 200, NULL,
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
        "\"message\":\"bad\"}}");
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_E_PROVIDER);
  assert_false(llmr_response_retryable(resp));
  llmr__http_response_clear(&h);
  llmr_response_free(resp);
  llmr__provider_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_table),
      cmocka_unit_test(test_url_and_headers),
      cmocka_unit_test(test_parse_table),
      cmocka_unit_test(test_parse_synthesises_missing_ids),
      cmocka_unit_test(test_parse_garbage),
      cmocka_unit_test(test_error_table),
      cmocka_unit_test(test_classify_non_printable),
      cmocka_unit_test(test_error_inside_200),
  };
  return cmocka_run_group_tests_name("unit/anthropic", tests, NULL, NULL);
}
