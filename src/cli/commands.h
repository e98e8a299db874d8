/* commands.h - the `unet` subcommands. Each takes the arguments after its own
 * name (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 failure (message already printed), 2 bad usage. */
#ifndef UNET_CLI_COMMANDS_H
#define UNET_CLI_COMMANDS_H

#include <stdio.h>

/* The getopt_long errors every subcommand answers alike: c == ':' (an option
 * given without its value) or an unknown option. Prints "unet CMD: ..."
 * (and the usage after an unknown option) and returns 2. */
int unet_cli_getopt_error(const char *cmd, int c, char *const *argv, void (*usage)(FILE *));
/* "unet CMD: 'VALUE' is not a valid value for OPTION" for the option
 * getopt_long has just returned; returns 2. */
int unet_cli_bad_value(const char *cmd, char *const *argv);

typedef struct UnetCommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} UnetCommand;

int unet_cmd_devices(int argc, char **argv);
int unet_cmd_info(int argc, char **argv);
int unet_cmd_init(int argc, char **argv);

struct UnetModelConfig;
/* The report of `unet info` for a config from any source (model options, a
 * config file, a checkpoint); source names it or is NULL; checkpoint, when not
 * NULL, adds that file's metadata to the report. */
int unet_cli_info_report(const struct UnetModelConfig *cfg, const char *source,
                         const char *checkpoint, int size, int batch, int json);
int unet_cmd_sample_data(int argc, char **argv);
int unet_cmd_dataset(int argc, char **argv);
int unet_cmd_tiles(int argc, char **argv);
int unet_cmd_predict(int argc, char **argv);
int unet_cmd_evaluate(int argc, char **argv);
int unet_cmd_bench(int argc, char **argv);
int unet_cmd_weightmap(int argc, char **argv);
int unet_cmd_augment(int argc, char **argv);
int unet_cmd_train(int argc, char **argv);
int unet_cmd_lr_test(int argc, char **argv);

#endif
