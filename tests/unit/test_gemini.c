/* The Gemini adapter as pure transforms: OpenAI-shaped requests to
 * generateContent URLs and bodies, response bodies to normalised results,
 * error replies to status classes. Every table row is checked exactly.
 *
 * JSON in the tables is written with ' for " (none of it needs a literal
 * apostrophe); q() turns it back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE "https://generativelanguage.googleapis.com/v1beta/models/"

static char *q(const char *s) {
  char *d = strdup(s), *p;
  assert_non_null(d);
  for (p = d; *p; p++)
    if (*p == '\'')
      *p = '"';
  return d;
}

static llmr_provider *provider(const char *conf_json) {
  char *c = q(conf_json ? conf_json : "{'api_key':'test-gemini-key'}");
  cJSON *conf = cJSON_Parse(c);
  llmr_provider *p = NULL;
  char err[256] = "";
  assert_non_null(conf);
  if (llmr__provider_new("google", &llmr__gemini_vt,
                         llmr__builtin_find("google"), conf, 0, NULL, &p, err,
                         sizeof(err)) != LLMR_OK)
    fail_msg("provider: %s", err);
  cJSON_Delete(conf);
  free(c);
  return p;
}

/* "a|b|c" of the response's warnings */
static void warnings_of(const llmr_response *r, char *out, size_t n) {
  size_t i;
  out[0] = '\0';
  for (i = 0; i < llmr_response_warning_count(r); i++) {
    if (i)
      strncat(out, "|", n - strlen(out) - 1);
    strncat(out, llmr_response_warning(r, i), n - strlen(out) - 1);
  }
}

static void check_str(const char *c, const char *what, const char *got,
                      const char *want) {
  if (!want && !got)
    return;
  if (!want || !got || strcmp(got, want) != 0)
    fail_msg("case '%s', %s:\n   got: %s\n  want: %s", c, what,
             got ? got : "(null)", want ? want : "(null)");
}

static void check_int(const char *c, const char *what, long long got,
                      long long want) {
  if (got != want)
    fail_msg("case '%s', %s: got %lld, want %lld", c, what, got, want);
}

/* ---- requests ----------------------------------------------------------- */

typedef struct build_case {
  const char *name;
  const char *model;    /* native model id */
  int stream;
  const char *conf;     /* provider config; NULL: a key only */
  const char *request;  /* OpenAI request JSON */
  llmr_status status;
  const char *url;      /* exact, when status is LLMR_OK */
  const char *body;     /* exact (compared after normalising whitespace) */
  const char *warnings; /* "google: a|google: b", or "" */
  const char *error;    /* the message when status is not LLMR_OK */
} build_case;

/* a small tool used by the tool_choice rows */
#define TOOL1                                                                  \
  "'tools':[{'type':'function','function':{'name':'f','parameters':{'type':"  \
  "'object','properties':{'a':{'type':'string'}}}}}]"
#define TOOL1_OUT                                                              \
  "'tools':[{'functionDeclarations':[{'name':'f','parameters':{'type':"       \
  "'OBJECT','properties':{'a':{'type':'STRING'}}}}]}]"
#define HI "'messages':[{'role':'user','content':'hi'}]"
#define HI_OUT "'contents':[{'role':'user','parts':[{'text':'hi'}]}]"

/* the weather conversation: parallel calls, results, a follow-up */
#define WEATHER_MSGS                                                           \
  "'messages':[{'role':'user','content':'Paris weather and time?'},"           \
  "{'role':'assistant','content':null,'tool_calls':["                         \
  "{'id':'call_1','type':'function','function':{'name':'get_weather',"        \
  "'arguments':'{\\'city\\':\\'Paris\\'}'}},"                                  \
  "{'id':'call_2','type':'function','function':{'name':'get_time',"           \
  "'arguments':'{\\'tz\\':\\'CET\\'}'}}]},"                                    \
  "{'role':'tool','tool_call_id':'call_1','content':'{\\'temp\\':21}'},"       \
  "{'role':'tool','tool_call_id':'call_2','content':'12:00'},"                 \
  "{'role':'user','content':'thanks'}]"

static const build_case build_cases[] = {
    {"system + user, like the SDK recording", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'system','content':'You are a terse assistant.'},"
     "{'role':'user','content':'hello'}],'temperature':0.2,'max_tokens':256}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{'contents':[{'role':'user','parts':[{'text':'hello'}]}],"
     "'systemInstruction':{'parts':[{'text':'You are a terse assistant.'}]},"
     "'generationConfig':{'temperature':0.2,'maxOutputTokens':256}}",
     "", NULL},

    {"stream URL", "gemini-2.5-flash", 1, NULL, "{" HI "}", LLMR_OK,
     BASE "gemini-2.5-flash:streamGenerateContent?alt=sse", "{" HI_OUT "}", "",
     NULL},

    {"systems and developer in order, empty skipped, late system",
     "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'system','content':'A'},"
     "{'role':'developer','content':'B'},{'role':'system','content':''},"
     "{'role':'user','content':'hi'},"
     "{'role':'system','content':[{'type':'text','text':'C'},"
     "{'type':'text','text':''}]}]}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'systemInstruction':{'parts':[{'text':'A'},{'text':'B'},"
     "{'text':'C'}]}}",
     "", NULL},

    {"only an empty system: no systemInstruction", "gemini-2.5-flash", 0,
     NULL, "{'messages':[{'role':'system','content':''}," "{'role':'user',"
     "'content':'hi'}]}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent", "{" HI_OUT "}", "",
     NULL},

    {"multi-turn: same-role turns merged, empty text dropped",
     "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':'a'},{'role':'user','content':'b'},"
     "{'role':'assistant','content':'c'},{'role':'assistant','content':'d'},"
     "{'role':'user','content':''},{'role':'user','content':'e'},"
     "{'role':'assistant','content':'f'}]}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{'contents':[{'role':'user','parts':[{'text':'a'},{'text':'b'}]},"
     "{'role':'model','parts':[{'text':'c'},{'text':'d'}]},"
     "{'role':'user','parts':[{'text':'e'}]},"
     "{'role':'model','parts':[{'text':'f'}]}]}",
     "", NULL},

    {"parallel tool calls and results, names resolved (2.5: no signature)",
     "gemini-2.5-flash", 0, NULL, "{" WEATHER_MSGS "}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{'contents':[{'role':'user','parts':["
     "{'text':'Paris weather and time?'}]},"
     "{'role':'model','parts':["
     "{'functionCall':{'id':'call_1','name':'get_weather','args':{'city':"
     "'Paris'}}},"
     "{'functionCall':{'id':'call_2','name':'get_time','args':{'tz':'CET'}}}]},"
     "{'role':'user','parts':["
     "{'functionResponse':{'id':'call_1','name':'get_weather','response':{"
     "'temp':21}}},"
     "{'functionResponse':{'id':'call_2','name':'get_time','response':{"
     "'output':'12:00'}}},"
     "{'text':'thanks'}]}]}",
     "", NULL},

    {"Gemini 3: dummy thought signature on each step's first call",
     "gemini-3-pro-preview", 0, NULL,
     "{'messages':[{'role':'user','content':'go'},"
     "{'role':'assistant','content':'Looking.','tool_calls':["
     "{'id':'a','type':'function','function':{'name':'f','arguments':'{}'}},"
     "{'id':'b','type':'function','function':{'name':'g','arguments':''}}]},"
     "{'role':'tool','tool_call_id':'a','content':'1'},"
     "{'role':'tool','tool_call_id':'b','content':'[1,2]'},"
     "{'role':'assistant','content':null,'tool_calls':["
     "{'id':'c','type':'function','function':{'name':'f','arguments':"
     "'{\\'x\\':null}'}}]},"
     "{'role':'tool','tool_call_id':'c','content':'not json {'}]}",
     LLMR_OK, BASE "gemini-3-pro-preview:generateContent",
     "{'contents':[{'role':'user','parts':[{'text':'go'}]},"
     "{'role':'model','parts':[{'text':'Looking.'},"
     "{'functionCall':{'id':'a','name':'f','args':{}},'thoughtSignature':"
     "'skip_thought_signature_validator'},"
     "{'functionCall':{'id':'b','name':'g','args':{}}}]},"
     "{'role':'user','parts':["
     "{'functionResponse':{'id':'a','name':'f','response':{'output':1}}},"
     "{'functionResponse':{'id':'b','name':'g','response':{'output':[1,2]}}}]},"
     "{'role':'model','parts':["
     "{'functionCall':{'id':'c','name':'f','args':{'x':null}},"
     "'thoughtSignature':'skip_thought_signature_validator'}]},"
     "{'role':'user','parts':[{'functionResponse':{'id':'c','name':'f',"
     "'response':{'output':'not json {'}}}]}]}",
     "", NULL},

    {"unversioned gemini alias also gets the signature", "gemini-flash-latest",
     0, NULL,
     "{'messages':[{'role':'user','content':'go'},"
     "{'role':'assistant','tool_calls':[{'id':'a','type':'function',"
     "'function':{'name':'f','arguments':'{}'}}]}]}",
     LLMR_OK, BASE "gemini-flash-latest:generateContent",
     "{'contents':[{'role':'user','parts':[{'text':'go'}]},"
     "{'role':'model','parts':[{'functionCall':{'id':'a','name':'f','args':{}},"
     "'thoughtSignature':'skip_thought_signature_validator'}]}]}",
     "", NULL},

    {"tool result: name from the message when the id is unknown",
     "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':'q'},"
     "{'role':'tool','tool_call_id':'zzz','name':'lookup','content':'x'}]}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{'contents':[{'role':'user','parts':[{'text':'q'},{'functionResponse':{"
     "'id':'zzz','name':'lookup','response':{'output':'x'}}}]}]}",
     "", NULL},

    {"tool result without a matching call", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':'q'},"
     "{'role':'tool','tool_call_id':'nope','content':'x'}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: messages[1].tool_call_id: 'nope' matches no earlier assistant "
     "tool call (Gemini needs the function name)"},

    {"invalid JSON arguments", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':'q'},"
     "{'role':'assistant','tool_calls':[{'id':'a','type':'function',"
     "'function':{'name':'f','arguments':'{\\'city\\': Par'}}]}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: messages[1].tool_calls[0].function.arguments: not a JSON object "
     "(Gemini takes arguments as an object)"},

    {"arguments that are JSON but not an object", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':'q'},"
     "{'role':'assistant','tool_calls':[{'id':'a','type':'function',"
     "'function':{'name':'f','arguments':'[1]'}}]}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: messages[1].tool_calls[0].function.arguments: not a JSON object "
     "(Gemini takes arguments as an object)"},

    {"images: data URL inline, https as fileData, audio inline",
     "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':["
     "{'type':'text','text':'What is this?'},{'type':'text','text':''},"
     "{'type':'image_url','image_url':{"
     "'url':'data:image/png;base64,iVBORw0K',"
     "'detail':'high'}},"
     "{'type':'image_url','image_url':{"
     "'url':'https://example.com/a/cat.JPG?s=1'}},"
     "{'type':'image_url','image_url':{'url':'https://example.com/render'}},"
     "{'type':'input_audio','input_audio':{'data':'UklGRg==','format':'wav'}},"
     "{'type':'file','file':{"
     "'file_data':'data:application/pdf;base64,JVBERi0=',"
     "'filename':'a.pdf'}}]}]}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{'contents':[{'role':'user','parts':[{'text':'What is this?'},"
     "{'inlineData':{'mimeType':'image/png','data':'iVBORw0K'}},"
     "{'fileData':{'mimeType':'image/jpeg','fileUri':"
     "'https://example.com/a/cat.JPG?s=1'}},"
     "{'fileData':{'fileUri':'https://example.com/render'}},"
     "{'inlineData':{'mimeType':'audio/wav','data':'UklGRg=='}},"
     "{'inlineData':{'mimeType':'application/pdf','data':'JVBERi0='}}]}]}",
     "", NULL},

    {"data URL that is not base64", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':[{'type':'image_url','image_url':"
     "{'url':'data:image/svg+xml,%3Csvg%3E'}}]}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: messages[0].content[0].image_url.url: only base64 data URLs "
     "with a MIME type can be sent"},

    {"an OpenAI file id cannot be sent", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'user','content':[{'type':'file','file':{"
     "'file_id':'file-abc'}}]}]}",
     LLMR_E_CAPABILITY, NULL, NULL, "",
     "google: messages[0].content[0]: only inline file_data (a base64 data "
     "URL) can be sent to Gemini"},

    {"tools: JSON Schema rewritten to the Gemini Schema subset",
     "gemini-2.5-flash", 0, NULL,
     "{" HI ",'tools':[{'type':'function','function':{'name':'get_weather',"
     "'description':'Weather for a city','strict':true,'parameters':{"
     "'$schema':'http://json-schema.org/draft-07/schema#','type':'object',"
     "'additionalProperties':false,'properties':{"
     "'city':{'type':'string','description':'City','minLength':1,"
     "'examples':['Paris']},"
     "'unit':{'type':['string','null'],'enum':['c','f',null],'default':'c'},"
     "'days':{'type':'integer','minimum':1,'maximum':14,'exclusiveMaximum':15,"
     "'format':'int32'},"
     "'when':{'type':'string','format':'date-time'},"
     "'email':{'type':'string','format':'email'},"
     "'tags':{'type':'array','items':{'type':'string','pattern':'^[a-z]+$'},"
     "'uniqueItems':true,'maxItems':5},"
     "'loc':{'$ref':'#/$defs/Loc','description':'Where'},"
     "'opt':{'anyOf':[{'type':'number'},{'type':'null'}],'title':'Opt'},"
     "'either':{'oneOf':[{'type':'string'},{'type':'integer'}]},"
     "'multi':{'type':['string','integer','null']},"
     "'fixed':{'const':'yes'},"
     "'level':{'type':'integer','enum':[1,2,3]},"
     "'meta':{'type':'object','properties':{},'additionalProperties':{"
     "'type':'string'}},"
     "'bad':{'type':'string','properties':{'x':{'type':'string'}},"
     "'required':['x']},"
     "'old':{'allOf':[{'$ref':'#/definitions/Old'}],'description':'legacy'}},"
     "'required':['city','ghost'],"
     "'$defs':{'Loc':{'type':'object','properties':{'lat':{'type':'number',"
     "'format':'double'},'lng':{'type':'number'}},'required':['lat','lng'],"
     "'additionalProperties':false}},"
     "'definitions':{'Old':{'type':'boolean'}}}}},"
     "{'type':'function','function':{'name':'ping','description':'No args',"
     "'parameters':{'type':'object','properties':{}}}},"
     "{'type':'function','function':{'name':'bare'}}]}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'tools':[{'functionDeclarations':["
     "{'name':'get_weather','description':'Weather for a city','parameters':{"
     "'type':'OBJECT','properties':{"
     "'city':{'type':'STRING','description':'City','minLength':1},"
     "'unit':{'type':'STRING','enum':['c','f'],'default':'c','nullable':true},"
     "'days':{'type':'INTEGER','minimum':1,'maximum':14,'format':'int32'},"
     "'when':{'type':'STRING','format':'date-time'},"
     "'email':{'type':'STRING'},"
     "'tags':{'type':'ARRAY','items':{'type':'STRING','pattern':'^[a-z]+$'},"
     "'maxItems':5},"
     "'loc':{'type':'OBJECT','properties':{'lat':{'type':'NUMBER','format':"
     "'double'},'lng':{'type':'NUMBER'}},'required':['lat','lng'],"
     "'description':'Where'},"
     "'opt':{'type':'NUMBER','title':'Opt','nullable':true},"
     "'either':{'anyOf':[{'type':'STRING'},{'type':'INTEGER'}]},"
     "'multi':{'anyOf':[{'type':'STRING'},{'type':'INTEGER'}],'nullable':"
     "true},"
     "'fixed':{'enum':['yes'],'type':'STRING'},"
     "'level':{'type':'INTEGER'},"
     "'meta':{'type':'OBJECT'},"
     "'bad':{'type':'STRING'},"
     "'old':{'type':'BOOLEAN','description':'legacy'}},"
     "'required':['city']}},"
     "{'name':'ping','description':'No args'},"
     "{'name':'bare'}]}]}",
     "", NULL},

    {"a $ref cycle is refused", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'tools':[{'type':'function','function':{'name':'tree',"
     "'parameters':{'type':'object','properties':{'child':{'$ref':'#'}}}}}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: tools[0].function.parameters: schema nests too deeply (is there "
     "a $ref cycle?)"},

    {"an unresolvable $ref is refused", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'tools':[{'type':'function','function':{'name':'a'}},"
     "{'type':'function','function':{'name':'b','parameters':{'type':'object',"
     "'properties':{'x':{'$ref':'#/$defs/Nope'}}}}}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: tools[1].function.parameters: cannot resolve $ref "
     "'#/$defs/Nope'"},

    {"an anchor-style $ref is not a pointer", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'tools':[{'type':'function','function':{'name':'a',"
     "'parameters':{'type':'object','properties':{'x':{'$ref':'#Loc'}},"
     "'$defs':{'Loc':{'$anchor':'Loc','type':'string'}}}}}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: tools[0].function.parameters: cannot resolve $ref '#Loc'"},

    {"tool_choice auto", "gemini-2.5-flash", 0, NULL,
     "{" HI "," TOOL1 ",'tool_choice':'auto'}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT "," TOOL1_OUT
     ",'toolConfig':{'functionCallingConfig':{'mode':'AUTO'}}}",
     "", NULL},

    {"tool_choice none", "gemini-2.5-flash", 0, NULL,
     "{" HI "," TOOL1 ",'tool_choice':'none'}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT "," TOOL1_OUT
     ",'toolConfig':{'functionCallingConfig':{'mode':'NONE'}}}",
     "", NULL},

    {"tool_choice required", "gemini-2.5-flash", 0, NULL,
     "{" HI "," TOOL1 ",'tool_choice':'required'}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT "," TOOL1_OUT
     ",'toolConfig':{'functionCallingConfig':{'mode':'ANY'}}}",
     "", NULL},

    {"tool_choice naming a function", "gemini-2.5-flash", 0, NULL,
     "{" HI "," TOOL1
     ",'tool_choice':{'type':'function','function':{'name':'f'}}}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT "," TOOL1_OUT
     ",'toolConfig':{'functionCallingConfig':{'mode':'ANY',"
     "'allowedFunctionNames':['f']}}}",
     "", NULL},

    {"tool_choice without tools is dropped", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'tool_choice':'required'}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent", "{" HI_OUT "}",
     "google: tool_choice", NULL},

    {"response_format json_object", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'response_format':{'type':'json_object'}}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'responseMimeType':'application/json'}}",
     "", NULL},

    {"response_format json_schema", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'response_format':{'type':'json_schema','json_schema':{"
     "'name':'person','strict':true,'schema':{'type':'object',"
     "'properties':{'name':{'type':'string'},'age':{'type':['integer',"
     "'null']}},'required':['name','age'],'additionalProperties':false}}}}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'responseMimeType':'application/json',"
     "'responseSchema':{'type':'OBJECT','properties':{'name':{'type':"
     "'STRING'},'age':{'type':'INTEGER','nullable':true}},'required':['name',"
     "'age']}}}",
     "", NULL},

    {"response_format text sends nothing", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'response_format':{'type':'text'}}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent", "{" HI_OUT "}", "", NULL},

    {"reasoning effort on 2.5: a budget", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'reasoning_effort':'low'}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingBudget':1024,"
     "'includeThoughts':true}}}",
     "", NULL},

    {"reasoning effort high on 2.5", "gemini-2.5-pro", 0, NULL,
     "{" HI ",'reasoning_effort':'high'}", LLMR_OK,
     BASE "gemini-2.5-pro:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingBudget':"
     "24576,'includeThoughts':true}}}",
     "", NULL},

    {"reasoning effort medium on 2.5", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'reasoning_effort':'medium'}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingBudget':4096,"
     "'includeThoughts':true}}}",
     "", NULL},

    {"reasoning effort minimal on 2.5", "gemini-2.5-flash-lite", 0, NULL,
     "{" HI ",'reasoning_effort':'minimal'}", LLMR_OK,
     BASE "gemini-2.5-flash-lite:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingBudget':512,"
     "'includeThoughts':true}}}",
     "", NULL},

    {"reasoning effort low on Gemini 3", "gemini-3-pro-preview", 0, NULL,
     "{" HI ",'reasoning_effort':'low'}", LLMR_OK,
     BASE "gemini-3-pro-preview:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingLevel':"
     "'LOW','includeThoughts':true}}}",
     "", NULL},

    {"reasoning effort on Gemini 3: a level", "gemini-3-pro-preview", 0, NULL,
     "{" HI ",'reasoning_effort':'medium'}", LLMR_OK,
     BASE "gemini-3-pro-preview:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingLevel':"
     "'HIGH','includeThoughts':true}}}",
     "", NULL},

    {"reasoning effort minimal on Gemini 3.1", "gemini-3.1-flash-lite", 0,
     NULL, "{" HI ",'reasoning_effort':'minimal'}", LLMR_OK,
     BASE "gemini-3.1-flash-lite:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingLevel':"
     "'LOW','includeThoughts':true}}}",
     "", NULL},

    {"reasoning budget wins over effort, any model", "gemini-3-flash", 0,
     NULL, "{" HI ",'reasoning':{'effort':'high','max_tokens':3000}}",
     LLMR_OK, BASE "gemini-3-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'thinkingConfig':{'thinkingBudget':3000,"
     "'includeThoughts':true}}}",
     "", NULL},

    {"sampling, limits, stop, seed", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'stop':['END','\\n\\n'],'temperature':0.5,'top_p':0.9,"
     "'seed':42,'max_completion_tokens':100}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'temperature':0.5,'topP':0.9,"
     "'maxOutputTokens':100,'stopSequences':['END','\\n\\n'],'seed':42}}",
     "", NULL},

    {"more than 5 stops, a seed beyond int32", "gemini-2.5-flash", 0, NULL,
     "{" HI ",'stop':['1','2','3','4','5','6'],'seed':5000000000}", LLMR_OK,
     BASE "gemini-2.5-flash:generateContent",
     "{" HI_OUT ",'generationConfig':{'stopSequences':['1','2','3','4','5']}}",
     "google: stop (only the first 5 sequences are sent)|google: seed", NULL},

    {"unsupported parameters dropped with warnings", "gemini-2.5-flash", 0,
     NULL,
     "{'messages':[{'role':'user','name':'ann','content':'hi'}],'user':'u1',"
     "'frequency_penalty':0.5,'presence_penalty':0.1,'logit_bias':{'1':2},"
     "'parallel_tool_calls':false,'app':'cli'}",
     LLMR_OK, BASE "gemini-2.5-flash:generateContent", "{" HI_OUT "}",
     "google: name|google: user|google: frequency_penalty|google: "
     "presence_penalty|google: logit_bias|google: parallel_tool_calls",
     NULL},

    {"models/ prefix accepted", "models/gemini-2.0-flash", 0, NULL,
     "{" HI "}", LLMR_OK, BASE "gemini-2.0-flash:generateContent",
     "{" HI_OUT "}", "", NULL},

    {"tuned model", "tunedModels/my-tune-7", 0, NULL, "{" HI "}", LLMR_OK,
     "https://generativelanguage.googleapis.com/v1beta/tunedModels/"
     "my-tune-7:generateContent",
     "{" HI_OUT "}", "", NULL},

    {"model id escaped", "a b/c:d?e#f", 0, NULL, "{" HI "}", LLMR_OK,
     BASE "a%20b%2Fc%3Ad%3Fe%23f:generateContent", "{" HI_OUT "}", "", NULL},

    {"api_version option and base_url", "gemini-2.5-flash", 0,
     "{'api_key':'k','base_url':'http://127.0.0.1:9/','options':{"
     "'api_version':'v1'}}",
     "{" HI "}", LLMR_OK,
     "http://127.0.0.1:9/v1/models/gemini-2.5-flash:generateContent",
     "{" HI_OUT "}", "", NULL},

    {"no message with content", "gemini-2.5-flash", 0, NULL,
     "{'messages':[{'role':'system','content':'only rules'},"
     "{'role':'user','content':''}]}",
     LLMR_E_INVAL, NULL, NULL, "",
     "google: the request needs at least one non-empty user or assistant "
     "message"},
};

static void run_build_case(const build_case *c) {
  llmr_provider *p = provider(c->conf);
  llmr_response *resp = llmr__response_new();
  llmr_request *req = NULL;
  llmr_http_request http;
  char *json = q(c->request), err[256] = "", warns[1024];
  llmr_status st;

  memset(&http, 0, sizeof(http));
  if (llmr_request_from_json(json, 0, &req, err, sizeof(err)) != LLMR_OK)
    fail_msg("case '%s': request does not parse: %s", c->name, err);
  st = p->vt->build_request(p, req, c->model, c->stream, &http, resp);
  check_str(c->name, "status", llmr_status_name(st),
            llmr_status_name(c->status));
  warnings_of(resp, warns, sizeof(warns));
  check_str(c->name, "warnings", warns, c->warnings);
  if (c->status == LLMR_OK) {
    char *want = q(c->body);
    cJSON *w = cJSON_Parse(want);
    char *norm;
    if (!w)
      fail_msg("case '%s': expected body is not JSON", c->name);
    norm = cJSON_PrintUnformatted(w);
    check_str(c->name, "url", http.url, c->url);
    check_str(c->name, "body", http.body, norm);
    cJSON_free(norm);
    cJSON_Delete(w);
    free(want);
  } else {
    check_str(c->name, "error", llmr_response_error(resp), c->error);
    check_int(c->name, "error retryable", llmr_response_retryable(resp), 0);
  }
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
    if (llmr__strcaseeq(h->headers[i].name, name))
      return h->headers[i].value;
  return NULL;
}

/* The key travels in x-goog-api-key only, never in the URL. */
static void test_build_headers(void **state) {
  llmr_provider *p = provider(NULL);
  llmr_provider *nokey = provider("{'key_required':false}");
  llmr_response *resp = llmr__response_new();
  llmr_request *req;
  llmr_http_request http;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hi"),
                   LLMR_OK);
  memset(&http, 0, sizeof(http));
  assert_int_equal(p->vt->build_request(p, req, "gemini-2.5-flash", 1, &http,
                                        resp),
                   LLMR_OK);
  assert_string_equal(header(&http, "x-goog-api-key"), "test-gemini-key");
  assert_string_equal(header(&http, "content-type"), "application/json");
  assert_null(header(&http, "authorization"));
  assert_null(strstr(http.url, "key="));
  assert_null(strstr(http.url, "test-gemini-key"));
  assert_null(strstr(http.body, "test-gemini-key"));
  llmr__http_request_clear(&http);
  memset(&http, 0, sizeof(http));
  assert_int_equal(nokey->vt->build_request(nokey, req, "gemini-2.5-flash", 0,
                                            &http, resp),
                   LLMR_OK);
  assert_null(header(&http, "x-goog-api-key"));
  llmr__http_request_clear(&http);
  /* the built-in registry entry */
  assert_non_null(llmr__builtin_find("google"));
  assert_ptr_equal(llmr__builtin_find("google")->vt, &llmr__gemini_vt);
  assert_string_equal(llmr__builtin_find("google")->base_url,
                      "https://generativelanguage.googleapis.com");
  assert_string_equal(llmr__builtin_find("google")->key_env, "GEMINI_API_KEY");
  assert_string_equal(llmr__builtin_find("google")->key_env2,
                      "GOOGLE_API_KEY");
  assert_string_equal(llmr__provider_alias("gemini", 6), "google");
  assert_string_equal(llmr__gemini_vt.name, "gemini");
  llmr_request_free(req);
  llmr_response_free(resp);
  llmr__provider_free(p);
  llmr__provider_free(nokey);
}

/* ---- responses ---------------------------------------------------------- */

#define SYNTH "*" /* a synthesised call id is expected */

typedef struct parse_case {
  const char *name;
  const char *body;
  llmr_status status;
  const char *text, *reasoning, *finish, *id;
  /* "id name args;..." (id SYNTH: synthesised) */
  const char *calls;
  long long prompt, completion, total, cached, reasoning_tokens;
  const char *error; /* when status is not LLMR_OK */
} parse_case;

#define NO_USAGE -1, -1, -1, -1, -1
#define CAND(parts, fr)                                                        \
  "{'candidates':[{'content':{'role':'model','parts':" parts "},"             \
  "'finishReason':'" fr "','index':0}]}"

static const parse_case parse_cases[] = {
    {"text, usage, responseId",
     "{'candidates':[{'content':{'role':'model','parts':[{'text':'Hello'},"
     "{'text':' world'}]},'finishReason':'STOP','index':0}],"
     "'usageMetadata':{'promptTokenCount':10,'candidatesTokenCount':5,"
     "'totalTokenCount':15},'modelVersion':'gemini-2.5-flash',"
     "'responseId':'resp-1'}",
     LLMR_OK, "Hello world", "", "stop", "resp-1", "", 10, 5, 15, 0, 0, NULL},

    {"thought summaries are reasoning; thoughts count as completion",
     "{'candidates':[{'content':{'parts':["
     "{'text':'Let me add.','thought':true},"
     "{'text':'42','thoughtSignature':'c2ln'}]},'finishReason':'STOP'}],"
     "'usageMetadata':{'promptTokenCount':20,'cachedContentTokenCount':8,"
     "'candidatesTokenCount':3,'thoughtsTokenCount':100,"
     "'totalTokenCount':123}}",
     LLMR_OK, "42", "Let me add.", "stop", NULL, "", 20, 103, 123, 8, 100,
     NULL},

    {"function calls without ids: STOP becomes tool_calls",
     CAND("[{'functionCall':{'name':'get_weather','args':{'city':'Paris'}}},"
          "{'functionCall':{'name':'ping'}}]",
          "STOP"),
     LLMR_OK, "", "", "tool_calls", NULL,
     SYNTH " get_weather {\"city\":\"Paris\"};" SYNTH " ping {}", NO_USAGE,
     NULL},

    {"function call with an id (Gemini 3) and text",
     CAND("[{'text':'Calling.'},{'functionCall':{'id':'fc-1','name':'f',"
          "'args':{'a':[1,2],'b':{'c':null}}},'thoughtSignature':'c2ln'}]",
          "STOP"),
     LLMR_OK, "Calling.", "", "tool_calls", NULL,
     "fc-1 f {\"a\":[1,2],\"b\":{\"c\":null}}", NO_USAGE, NULL},

    {"MAX_TOKENS", CAND("[{'text':'Once upon'}]", "MAX_TOKENS"), LLMR_OK,
     "Once upon", "", "length", NULL, "", NO_USAGE, NULL},

    {"SAFETY", "{'candidates':[{'finishReason':'SAFETY','safetyRatings':[]}]}",
     LLMR_OK, "", "", "content_filter", NULL, "", NO_USAGE, NULL},
    {"RECITATION", CAND("[{'text':'partial'}]", "RECITATION"), LLMR_OK,
     "partial", "", "content_filter", NULL, "", NO_USAGE, NULL},
    {"BLOCKLIST", "{'candidates':[{'finishReason':'BLOCKLIST'}]}", LLMR_OK, "",
     "", "content_filter", NULL, "", NO_USAGE, NULL},
    {"PROHIBITED_CONTENT",
     "{'candidates':[{'finishReason':'PROHIBITED_CONTENT'}]}", LLMR_OK, "", "",
     "content_filter", NULL, "", NO_USAGE, NULL},
    {"SPII", "{'candidates':[{'finishReason':'SPII'}]}", LLMR_OK, "", "",
     "content_filter", NULL, "", NO_USAGE, NULL},
    {"IMAGE_SAFETY", "{'candidates':[{'finishReason':'IMAGE_SAFETY'}]}",
     LLMR_OK, "", "", "content_filter", NULL, "", NO_USAGE, NULL},
    {"MALFORMED_FUNCTION_CALL",
     "{'candidates':[{'finishReason':'MALFORMED_FUNCTION_CALL'}]}", LLMR_OK,
     "", "", "error", NULL, "", NO_USAGE, NULL},
    {"OTHER", CAND("[{'text':'x'}]", "OTHER"), LLMR_OK, "x", "", "stop", NULL,
     "", NO_USAGE, NULL},

    {"prompt blocked: no candidates, blockReason",
     "{'promptFeedback':{'blockReason':'PROHIBITED_CONTENT'},"
     "'usageMetadata':{'promptTokenCount':7,'totalTokenCount':7},"
     "'responseId':'r-b'}",
     LLMR_OK, "", "", "content_filter", "r-b", "", 7, 0, 7, 0, 0, NULL},

    {"whitespace around the body is fine", "\n  " CAND("[{'text':'ok'}]",
                                                       "STOP") "\r\n",
     LLMR_OK, "ok", "", "stop", NULL, "", NO_USAGE, NULL},

    {"not JSON", "Service Unavailable", LLMR_E_PROTOCOL, "", "", NULL, NULL,
     "", NO_USAGE, "response body is not a JSON object"},
    {"empty body", "", LLMR_E_PROTOCOL, "", "", NULL, NULL, "", NO_USAGE,
     "response body is not a JSON object"},
    {"truncated", "{'candidates':[{'content':", LLMR_E_PROTOCOL, "", "", NULL,
     NULL, "", NO_USAGE, "response body is not a JSON object"},
    {"trailing garbage", "{'candidates':[]} {}", LLMR_E_PROTOCOL, "", "", NULL,
     NULL, "", NO_USAGE, "response body is not a JSON object"},
    {"an array", "[{'candidates':[]}]", LLMR_E_PROTOCOL, "", "", NULL, NULL,
     "", NO_USAGE, "response body is not a JSON object"},
    {"no candidates, no block reason", "{'usageMetadata':{}}",
     LLMR_E_PROTOCOL, "", "", NULL, NULL, "", NO_USAGE,
     "response has no candidates"},
    {"candidates not an array", "{'candidates':{'0':{}}}", LLMR_E_PROTOCOL, "",
     "", NULL, NULL, "", NO_USAGE, "candidates is not an array"},
    {"candidate not an object", "{'candidates':['x']}", LLMR_E_PROTOCOL, "",
     "", NULL, NULL, "", NO_USAGE, "candidates[0] is not an object"},
    {"parts not an array", "{'candidates':[{'content':{'parts':{}}}]}",
     LLMR_E_PROTOCOL, "", "", NULL, NULL, "", NO_USAGE,
     "candidates[0].content is not a Content"},
    {"part not an object", CAND("[7]", "STOP"), LLMR_E_PROTOCOL, "", "", NULL,
     NULL, "", NO_USAGE, "candidates[0].content.parts[] is not an object"},
    {"text not a string", CAND("[{'text':7}]", "STOP"), LLMR_E_PROTOCOL, "",
     "", NULL, NULL, "", NO_USAGE, "a part's text is not a string"},
    {"functionCall without a name", CAND("[{'functionCall':{'args':{}}}]",
                                         "STOP"),
     LLMR_E_PROTOCOL, "", "", NULL, NULL, "", NO_USAGE,
     "functionCall without a name"},
    {"args not an object",
     CAND("[{'functionCall':{'name':'f','args':'{}'}}]", "STOP"),
     LLMR_E_PROTOCOL, "", "", NULL, NULL, "", NO_USAGE,
     "functionCall.args is not an object"},
    {"an error object in a 200",
     "{'error':{'code':500,'message':'boom','status':'INTERNAL'}}",
     LLMR_E_SERVER, "", "", NULL, NULL, "", NO_USAGE, "boom"},
};

static void check_calls(const char *c, const llmr_response *r,
                        const char *want) {
  char got[1024] = "";
  size_t i;
  for (i = 0; i < llmr_response_tool_call_count(r); i++) {
    const char *id = llmr_response_tool_call_id(r, i);
    char one[512];
    /* synthesised ids are unique: check the form, print "*" */
    if (strncmp(id, "call_llmr_", 10) == 0) {
      if (i > 0 && strcmp(id, llmr_response_tool_call_id(r, i - 1)) == 0)
        fail_msg("case '%s': synthesised ids repeat", c);
      id = SYNTH;
    }
    snprintf(one, sizeof(one), "%s%s %s %s", i ? ";" : "", id,
             llmr_response_tool_call_name(r, i),
             llmr_response_tool_call_arguments(r, i));
    strncat(got, one, sizeof(got) - strlen(got) - 1);
  }
  check_str(c, "tool calls", got, want);
}

static void run_parse_case(const parse_case *c) {
  llmr_provider *p = provider(NULL);
  llmr_response *resp = llmr__response_new();
  llmr_http_response h;
  char *body = q(c->body);
  llmr_status st;

  memset(&h, 0, sizeof(h));
  h.status = 200;
  assert_int_equal(llmr__buf_puts(&h.body, body), 0);
  st = p->vt->parse_response(p, &h, resp);
  check_str(c->name, "status", llmr_status_name(st),
            llmr_status_name(c->status));
  if (c->status == LLMR_OK) {
    check_str(c->name, "text", llmr_response_text(resp), c->text);
    check_str(c->name, "reasoning", llmr_response_reasoning(resp),
              c->reasoning);
    check_str(c->name, "finish", llmr_response_finish_reason(resp),
              c->finish);
    check_str(c->name, "id", llmr_response_id(resp), c->id);
    check_calls(c->name, resp, c->calls);
    check_int(c->name, "prompt",
              llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), c->prompt);
    check_int(c->name, "completion",
              llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION),
              c->completion);
    check_int(c->name, "total", llmr_response_tokens(resp, LLMR_TOKENS_TOTAL),
              c->total);
    check_int(c->name, "cached",
              llmr_response_tokens(resp, LLMR_TOKENS_CACHED), c->cached);
    check_int(c->name, "reasoning tokens",
              llmr_response_tokens(resp, LLMR_TOKENS_REASONING),
              c->reasoning_tokens);
  } else {
    check_str(c->name, "error", llmr_response_error(resp), c->error);
  }
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

/* The parser never reads past the body: every prefix of a rich body is
 * either parsed or refused, never a crash (run this under ASan). */
static void test_parse_prefixes(void **state) {
  llmr_provider *p = provider(NULL);
  char *full = q("{'candidates':[{'content':{'parts':[{'text':'a','thought':"
                 "true},{'text':'b'},{'functionCall':{'id':'x','name':'f',"
                 "'args':{'k':[1,{'z':null}]}}}]},'finishReason':'STOP'}],"
                 "'usageMetadata':{'promptTokenCount':1,"
                 "'candidatesTokenCount':2,'thoughtsTokenCount':3,"
                 "'totalTokenCount':6},'responseId':'r'}");
  size_t n, len = strlen(full);
  (void)state;
  for (n = 0; n <= len; n++) {
    llmr_response *resp = llmr__response_new();
    llmr_http_response h;
    llmr_status st;
    memset(&h, 0, sizeof(h));
    h.status = 200;
    assert_int_equal(llmr__buf_append(&h.body, full, n), 0);
    st = p->vt->parse_response(p, &h, resp);
    if (n == len) {
      assert_int_equal(st, LLMR_OK);
      assert_string_equal(llmr_response_finish_reason(resp), "tool_calls");
    } else {
      assert_int_equal(st, LLMR_E_PROTOCOL);
    }
    llmr__http_response_clear(&h);
    llmr_response_free(resp);
  }
  free(full);
  llmr__provider_free(p);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct error_case {
  const char *name;
  int http;
  const char *body;
  const char *header; /* an extra reply header line, or NULL */
  llmr_status status;
  const char *type;
  int retryable;
  double retry_after;
  const char *message;
} error_case;

#define GERR(code, status, msg, details)                                       \
  "{'error':{'code':" #code ",'message':'" msg "','status':'" status "'"      \
  details "}}"
#define RETRY(delay)                                                           \
  ",'details':[{'@type':'type.googleapis.com/google.rpc.QuotaFailure',"       \
  "'violations':[{'quotaMetric':'generativelanguage.googleapis.com/"          \
  "generate_content_free_tier_requests','quotaId':"                           \
  "'GenerateRequestsPerMinutePerProjectPerModel-FreeTier'}]},"               \
  "{'@type':'type.googleapis.com/google.rpc.Help','links':[]},"               \
  "{'@type':'type.googleapis.com/google.rpc.RetryInfo','retryDelay':'" delay \
  "'}]"

static const error_case error_cases[] = {
    {"invalid key is a 400 with API_KEY_INVALID", 400,
     GERR(400, "INVALID_ARGUMENT",
          "API key not valid. Please pass a valid API key.",
          ",'details':[{'@type':'type.googleapis.com/google.rpc.ErrorInfo',"
          "'reason':'API_KEY_INVALID','domain':'googleapis.com','metadata':{"
          "'service':'generativelanguage.googleapis.com'}},{'@type':"
          "'type.googleapis.com/google.rpc.LocalizedMessage','locale':'en-US',"
          "'message':'API key not valid. Please pass a valid API key.'}]"),
     NULL, LLMR_E_AUTH, "INVALID_ARGUMENT", 0, -1,
     "API key not valid. Please pass a valid API key."},
    {"plain bad request", 400,
     GERR(400, "INVALID_ARGUMENT",
          "Invalid JSON payload received. Unknown name \\'foo\\'", ""),
     NULL, LLMR_E_BAD_REQUEST, "INVALID_ARGUMENT", 0, -1,
     "Invalid JSON payload received. Unknown name \"foo\""},
    {"input too long", 400,
     GERR(400, "INVALID_ARGUMENT",
          "The input token count (1200293) exceeds the maximum number of "
          "tokens allowed (1048576).",
          ""),
     NULL, LLMR_E_CONTEXT_LENGTH, "INVALID_ARGUMENT", 0, -1,
     "The input token count (1200293) exceeds the maximum number of tokens "
     "allowed (1048576)."},
    {"billing required", 400,
     GERR(400, "FAILED_PRECONDITION",
          "User location is not supported for the API use without a billing "
          "account linked.",
          ""),
     NULL, LLMR_E_PAYMENT, "FAILED_PRECONDITION", 0, -1,
     "User location is not supported for the API use without a billing "
     "account linked."},
    {"unauthenticated", 401,
     GERR(401, "UNAUTHENTICATED", "Request had invalid authentication.", ""),
     NULL, LLMR_E_AUTH, "UNAUTHENTICATED", 0, -1,
     "Request had invalid authentication."},
    {"permission denied", 403,
     GERR(403, "PERMISSION_DENIED",
          "Method doesn\\u2019t allow unregistered callers.", ""),
     NULL, LLMR_E_AUTH, "PERMISSION_DENIED", 0, -1,
     "Method doesn\xe2\x80\x99t allow unregistered callers."},
    {"model not found", 404,
     GERR(404, "NOT_FOUND",
          "models/gemini-9 is not found for API version v1beta.", ""),
     NULL, LLMR_E_NOT_FOUND, "NOT_FOUND", 0, -1,
     "models/gemini-9 is not found for API version v1beta."},
    {"rate limited with RetryInfo", 429,
     GERR(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.",
          RETRY("37s")),
     NULL, LLMR_E_RATE_LIMITED, "RESOURCE_EXHAUSTED", 1, 37,
     "You exceeded your current quota."},
    {"fractional retryDelay", 429,
     GERR(429, "RESOURCE_EXHAUSTED", "slow down", RETRY("1.500s")), NULL,
     LLMR_E_RATE_LIMITED, "RESOURCE_EXHAUSTED", 1, 1.5, "slow down"},
    {"RetryInfo wins over a header", 429,
     GERR(429, "RESOURCE_EXHAUSTED", "slow down", RETRY("2s")),
     "Retry-After: 30", LLMR_E_RATE_LIMITED, "RESOURCE_EXHAUSTED", 1, 2,
     "slow down"},
    {"no RetryInfo: the header", 429,
     GERR(429, "RESOURCE_EXHAUSTED", "slow down", ""), "Retry-After: 12",
     LLMR_E_RATE_LIMITED, "RESOURCE_EXHAUSTED", 1, 12, "slow down"},
    {"retryDelay without the seconds unit", 429,
     GERR(429, "RESOURCE_EXHAUSTED", "slow down", RETRY("5m")), NULL,
     LLMR_E_RATE_LIMITED, "RESOURCE_EXHAUSTED", 1, -1, "slow down"},
    {"malformed retryDelay", 429,
     GERR(429, "RESOURCE_EXHAUSTED", "slow down", RETRY("soon")), NULL,
     LLMR_E_RATE_LIMITED, "RESOURCE_EXHAUSTED", 1, -1, "slow down"},
    {"internal", 500,
     GERR(500, "INTERNAL",
          "An internal error has occurred. Please retry or report in "
          "https://developers.generativeai.google/guide/troubleshooting",
          ""),
     NULL, LLMR_E_SERVER, "INTERNAL", 1, -1,
     "An internal error has occurred. Please retry or report in "
     "https://developers.generativeai.google/guide/troubleshooting"},
    {"unavailable", 503,
     GERR(503, "UNAVAILABLE",
          "The model is overloaded. Please try again later.", ""),
     NULL, LLMR_E_OVERLOADED, "UNAVAILABLE", 1, -1,
     "The model is overloaded. Please try again later."},
    {"deadline exceeded", 504,
     GERR(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could "
                                    "complete.",
          ""),
     NULL, LLMR_E_TIMEOUT, "DEADLINE_EXCEEDED", 1, -1,
     "Deadline expired before operation could complete."},
    {"HTML from a front end", 502,
     "<html><body>\x01" "Bad Gateway</body></html>", NULL, LLMR_E_SERVER, NULL,
     1, -1, "HTTP 502: <html><body>?Bad Gateway</body></html>"},
    {"empty body", 500, "", NULL, LLMR_E_SERVER, NULL, 1, -1, "HTTP 500: "},
    {"JSON without the error shape", 400, "{'oops':true}", NULL,
     LLMR_E_BAD_REQUEST, NULL, 0, -1, "HTTP 400: {\"oops\":true}"},
};

static void run_error_case(const error_case *c) {
  llmr_provider *p = provider(NULL);
  llmr_response *resp = llmr__response_new();
  llmr_http_response h;
  char *body = q(c->body);
  llmr_status st;
  char got[32], want[32];

  memset(&h, 0, sizeof(h));
  h.status = c->http;
  assert_int_equal(llmr__buf_puts(&h.body, body), 0);
  if (c->header)
    assert_int_equal(
        llmr__http_response_add_header(&h, c->header, strlen(c->header)),
        LLMR_OK);
  st = p->vt->classify_error(p, &h, resp);
  check_str(c->name, "status", llmr_status_name(st),
            llmr_status_name(c->status));
  check_str(c->name, "response status",
            llmr_status_name(llmr_response_status(resp)),
            llmr_status_name(c->status));
  check_str(c->name, "type", llmr_response_error_type(resp), c->type);
  check_int(c->name, "retryable", llmr_response_retryable(resp), c->retryable);
  snprintf(got, sizeof(got), "%.3f", llmr_response_retry_after(resp));
  snprintf(want, sizeof(want), "%.3f", c->retry_after);
  check_str(c->name, "retry_after", got, want);
  check_str(c->name, "message", llmr_response_error(resp), c->message);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_table),
      cmocka_unit_test(test_build_headers),
      cmocka_unit_test(test_parse_table),
      cmocka_unit_test(test_parse_prefixes),
      cmocka_unit_test(test_error_table),
  };
  return cmocka_run_group_tests_name("unit/gemini", tests, NULL, NULL);
}
