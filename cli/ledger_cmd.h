/* llmroute ledger report|verify: see ledger_cmd.c. */
#ifndef LLMROUTE_CLI_LEDGER_CMD_H
#define LLMROUTE_CLI_LEDGER_CMD_H

/* argv[0] is "ledger". Returns the exit status. */
int llmroute_ledger_main(int argc, char **argv);

#endif
