/* commands.h - the `unet` subcommands. Each takes the arguments after its own
 * name (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 failure (message already printed), 2 bad usage. */
#ifndef UNET_CLI_COMMANDS_H
#define UNET_CLI_COMMANDS_H

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
