/* mlxc: the command-line front end. Dispatches to one function per subcommand (commands.def). */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* help;
} command;

static const command commands[] = {
#define COMMAND(name, fn, help) {name, fn, help},
#include "commands.def"
#undef COMMAND
};

static void usage(FILE* out) {
  fprintf(out, "usage: mlxc <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char** argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "mlxc: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
