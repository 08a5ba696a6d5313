/* sizeup: entry point. Dispatches to one command per verb; each command owns its options and
 * its --help. Whether stdout received everything is checked once, here, after the command
 * returns (a full disk must not end in exit 0 with half the output). */
#include <stdio.h>
#include <string.h>

#include "app/app.h"

typedef struct app_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} app_command;

static const app_command commands[] = {
    { "chat", app_cmd_chat, "chat with 1-4 models side by side (the TUI; no COMMAND opens it)" },
    { "run", app_cmd_run, "generate text or chat with a model (stats on stderr)" },
    { "logits", app_cmd_logits, "print the logits of a token sequence as JSON" },
    { "bench", app_cmd_bench, "measure prompt and generation speed (pp/tg), llama-bench style" },
    { "perplexity", app_cmd_perplexity, "perplexity, bits per byte and KL divergence on a text" },
    { "compare", app_cmd_compare, "run models side by side on the same prompts, fair or concurrent" },
    { "quantize", app_cmd_quantize, "write a copy of a GGUF model with its matrices in another type" },
    { "gen-model", app_cmd_gen_model, "write a random-weight model with a real model's shapes" },
    { "inspect", app_cmd_inspect, "print a model card for a GGUF file or a remote model (--json)" },
    { "pull", app_cmd_pull, "download models into the store (resumable, verified)" },
    { "list", app_cmd_list, "list the models in the store" },
    { "rm", app_cmd_rm, "delete models from the store" },
    { "catalog", app_cmd_catalog, "list the models sizeup knows by name, and whether they fit" },
    { "devices", app_cmd_devices, "list Vulkan devices and the one sizeup would use" },
    { "tokenize", app_cmd_tokenize, "turn text into token ids with a model's tokenizer" },
};

static void usage(FILE *to)
{
    fprintf(to, "sizeup - chat with local LLMs and compare model sizes side by side\n\n"
                "usage: sizeup [COMMAND] [OPTIONS]   (no COMMAND: sizeup chat)\n\n"
                "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\n'sizeup COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    app_fatal_install();
    if (argc < 2) {  /* no arguments: the TUI with the models sizeup picks */
        char *chat_argv[] = { "chat", NULL };
        return app_cmd_chat(1, chat_argv);
    }
    /* options but no command (`sizeup --plain`, `sizeup -n 64`): chat's, as with no arguments */
    if (argv[1][0] == '-' && argv[1][1] && strcmp(argv[1], "--help") && strcmp(argv[1], "-h") &&
        strcmp(argv[1], "--version")) {
        argv[0] = "chat";
        int rc = app_cmd_chat(argc, argv);
        int out = app_stdout_close("chat");
        return rc ? rc : out;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return app_stdout_close("--help");
    }
    if (!strcmp(argv[1], "--version")) {
        printf("sizeup 0.1.0\n");
        return app_stdout_close("--version");
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            int out = app_stdout_close(commands[i].name);
            return rc ? rc : out;
        }
    fprintf(stderr, "sizeup: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
