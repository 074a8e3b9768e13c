/* cmd.h - the subcommands of the pdns-relay binary (git style). Each takes
 * argc/argv after the command name and returns the process exit status. */
#ifndef PDNS_CMD_H
#define PDNS_CMD_H

int cmd_run(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_passwd(int argc, char **argv);

extern const char cmd_run_help[];
extern const char cmd_convert_help[];
extern const char cmd_send_help[];
extern const char cmd_policy_help[];
extern const char cmd_keygen_help[];
extern const char cmd_verify_help[];
extern const char cmd_import_help[];
extern const char cmd_passwd_help[];

#endif
