// `funcd completion bash`: a bash completion script made from the commands' own option
// lists, so it never falls behind them.
#include "funcd/cli/cli_command.hpp"

namespace funcd::cli {

namespace {

// Values some options take, offered after the option.
constexpr const char* kRuntimes =
    "python3 python3.9 python3.10 python3.11 python3.12 python3.13 python3.14 nodejs nodejs18.x nodejs20.x "
    "nodejs22.x nodejs24.x provided provided.al2 provided.al2023";

std::string bash_script() {
    std::string commands = "serve rotate-env-key version";
    std::string per_command;
    for (const auto& c : cli_commands()) {
        commands += " " + c.name;
        std::string options;
        for (const auto& o : c.options) options += " " + o.name;
        for (const auto& o : global_options()) options += " " + o.name;
        per_command += "        " + c.name + ") opts=\"" + options.substr(1) + "\" ;;\n";
    }
    std::string script = R"SH(# bash completion for funcd (funcd completion bash)
_funcd_functions() {
    funcd ls --quiet 2>/dev/null
}
_funcd() {
    local cur prev cmd opts i positionals=0
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "@COMMANDS@" -- "$cur"))
        return
    fi
    cmd="${COMP_WORDS[1]}"
    case "$prev" in
        --runtime) COMPREPLY=($(compgen -W "@RUNTIMES@" -- "$cur")); return ;;
        --output|-o) COMPREPLY=($(compgen -W "human json" -- "$cur")); return ;;
        --by) COMPREPLY=($(compgen -W "function day" -- "$cur")); return ;;
        --url-auth|--auth) COMPREPLY=($(compgen -W "token none" -- "$cur")); return ;;
        --network) COMPREPLY=($(compgen -W "none host" -- "$cur")); return ;;
        --level|-l) COMPREPLY=($(compgen -W "TRACE DEBUG INFO WARN ERROR FATAL" -- "$cur")); return ;;
        --function) COMPREPLY=($(compgen -W "$(_funcd_functions)" -- "$cur")); return ;;
        --data|-d|--endpoint|--token|--memory|--timeout|--env|-e|--layer|--description|--qualifier|-q|--since|-s|--until|--limit|-n|--request-id|-r|--interval|--iterations)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case "$cmd" in
@PER_COMMAND@        *) return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    for ((i = 2; i < COMP_CWORD; i++)); do
        [[ "${COMP_WORDS[i]}" != -* ]] && positionals=$((positionals + 1))
    done
    case "$cmd" in
        deploy)
            if [[ $positionals -eq 0 ]]; then COMPREPLY=($(compgen -W "$(_funcd_functions)" -- "$cur"))
            else COMPREPLY=($(compgen -f -- "$cur")); fi ;;
        invoke|logs|get|rm|url|dlq)
            if [[ $positionals -eq 0 || "$cmd" == rm ]]; then COMPREPLY=($(compgen -W "$(_funcd_functions)" -- "$cur"))
            elif [[ "$cmd" == dlq && $positionals -eq 1 ]]; then COMPREPLY=($(compgen -W "redrive rm" -- "$cur")); fi ;;
    esac
}
complete -o filenames -F _funcd funcd
)SH";
    auto put = [&script](const std::string& placeholder, const std::string& text) {
        script.replace(script.find(placeholder), placeholder.size(), text);
    };
    put("@COMMANDS@", commands);
    put("@RUNTIMES@", kRuntimes);
    put("@PER_COMMAND@", per_command);
    return script;
}

int run_completion(CliContext& ctx) {
    const std::string shell = ctx.optional_positional(0).value_or("bash");
    if (shell != "bash") throw ctx.usage_error("only bash completion is made (got '" + shell + "')");
    ctx.out().line(bash_script());
    return 0;
}

}  // namespace

CliCommand completion_command() {
    return {
        "completion",
        "print a bash completion script",
        "[bash]",
        "Load it in the current shell with: source <(funcd completion bash)\n"
        "or install it: funcd completion bash > /etc/bash_completion.d/funcd\n"
        "Function names are completed from funcd ls --quiet.",
        {},
        run_completion,
    };
}

}  // namespace funcd::cli
