/* Declarations of the subcommands listed in commands.def. */
#ifndef MLXC_TOOLS_COMMANDS_H
#define MLXC_TOOLS_COMMANDS_H

#define COMMAND(name, fn, help) int fn(int argc, char** argv);
#include "commands.def"
#undef COMMAND

#endif
