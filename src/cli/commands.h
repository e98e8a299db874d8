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

int unet_cmd_sample_data(int argc, char **argv);
int unet_cmd_dataset(int argc, char **argv);
int unet_cmd_tiles(int argc, char **argv);

#endif
