// The bash completion script, run in a real bash.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "funcd/cli/cli_command.hpp"

namespace funcd::cli {
namespace {

// COMPREPLY of the script for the words typed, `cursor` the index of the word completed.
std::string complete(const std::string& script_path, const std::string& words, int cursor) {
    const std::string cmd = "bash -c 'funcd() { if [ \"$1\" = ls ]; then printf \"echo\\nresize\\n\"; fi; }; source " +
                            script_path + "; COMP_WORDS=(" + words + "); COMP_CWORD=" + std::to_string(cursor) +
                            "; _funcd; echo \"${COMPREPLY[*]}\"'";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

TEST(Completion, BashCompletesCommandsOptionsValuesAndFunctionNames) {
    const CliCommand* c = find_cli_command("completion");
    ASSERT_TRUE(c);
    const std::string path = (std::filesystem::temp_directory_path() / "funcd-completion-test.bash").string();
    {
        // The script as the command prints it.
        FILE* f = std::fopen(path.c_str(), "w");
        ASSERT_TRUE(f);
        ParsedArgs args;
        CliContext ctx(*c, args, Output(OutputFormat::human, false, f, stderr), {});
        EXPECT_EQ(c->run(ctx), 0);
        std::fclose(f);
    }
    EXPECT_EQ(complete(path, "funcd dep", 1), "deploy");
    EXPECT_EQ(complete(path, "funcd deploy x --mem", 3), "--memory");
    EXPECT_EQ(complete(path, "funcd deploy x --runtime provided.al", 4), "provided.al2 provided.al2023");
    EXPECT_EQ(complete(path, "funcd invoke re", 2), "resize");
    EXPECT_EQ(complete(path, "funcd logs echo --fol", 3), "--follow");
    EXPECT_EQ(complete(path, "funcd usage --by d", 3), "day");
    EXPECT_EQ(complete(path, "funcd dlq echo re", 3), "redrive");
    EXPECT_EQ(complete(path, "funcd ls -o j", 3), "json");
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace funcd::cli
