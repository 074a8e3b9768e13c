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
int cmd_init(int argc, char **argv);
int cmd_cluster_status(int argc, char **argv);
int cmd_index_trees(int argc, char **argv);

#include <stddef.h>
#include <sys/types.h>
/* A config_load_keys_optional warning callback that says nothing: key
 * files are not needed to look at Redis. */
void cmd_no_warning(const char *msg);
/* Writes len bytes to path, created with mode (never replacing a file). */
int cmd_write_new_file(const char *path, const void *data, size_t len, mode_t mode);
/* An Ed25519 key pair as PREFIX.key (0600) and PREFIX.pub; its id. */
int cmd_write_keypair(const char *prefix, char key_id[17]);

extern const char cmd_run_help[];
extern const char cmd_convert_help[];
extern const char cmd_send_help[];
extern const char cmd_policy_help[];
extern const char cmd_keygen_help[];
extern const char cmd_verify_help[];
extern const char cmd_import_help[];
extern const char cmd_passwd_help[];
extern const char cmd_init_help[];
extern const char cmd_cluster_status_help[];
extern const char cmd_index_trees_help[];

#endif
