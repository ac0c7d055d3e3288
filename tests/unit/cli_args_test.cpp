// The CLI's argument parsing.
#include <gtest/gtest.h>

#include "funcd/cli/cli_args.hpp"
#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/cli_error.hpp"
#include "funcd/cli/time_range.hpp"

namespace funcd::cli {
namespace {

const std::vector<OptionSpec> kDeployLike = {
    {"--runtime", 0, true, false, "R", ""},
    {"--memory", 0, true, false, "MB", ""},
    {"--env", 'e', true, true, "K=V", ""},
    {"--follow", 'f', false, false, "", ""},
};

ExitCode code_of(const std::vector<std::string>& args) {
    try {
        parse_args(args, kDeployLike);
    } catch (const CliError& e) {
        return e.code();
    }
    return ExitCode::ok;
}

TEST(CliArgs, LongShortRepeatedAndPositionals) {
    const ParsedArgs a = parse_args({"hello", "--runtime", "python3", "--memory=256", "-e", "A=1", "--env", "B=2=3",
                                     "-eC=4", "dir", "-f", "-o", "json", "--endpoint=http://h:1"},
                                    kDeployLike);
    EXPECT_EQ(a.positionals(), (std::vector<std::string>{"hello", "dir"}));
    EXPECT_EQ(a.value("--runtime"), "python3");
    EXPECT_EQ(a.value("--memory"), "256");
    EXPECT_EQ(a.values("--env"), (std::vector<std::string>{"A=1", "B=2=3", "C=4"}));
    EXPECT_TRUE(a.has("--follow"));
    EXPECT_EQ(a.value("--output"), "json") << "global options are known to every command";
    EXPECT_EQ(a.value("--endpoint"), "http://h:1");
    EXPECT_FALSE(a.has("--no-color"));
    EXPECT_FALSE(a.value("--token"));
}

TEST(CliArgs, DashIsStdinAndDoubleDashEndsOptions) {
    const ParsedArgs a = parse_args({"-", "--", "--runtime", "-f"}, kDeployLike);
    EXPECT_EQ(a.positionals(), (std::vector<std::string>{"-", "--runtime", "-f"}));
    EXPECT_FALSE(a.has("--runtime"));
}

TEST(CliArgs, MistakesAreUsageErrors) {
    EXPECT_EQ(code_of({"--runtme", "python3"}), ExitCode::usage);
    EXPECT_EQ(code_of({"--runtime"}), ExitCode::usage) << "a missing value";
    EXPECT_EQ(code_of({"--runtime", "a", "--runtime", "b"}), ExitCode::usage) << "given twice";
    EXPECT_EQ(code_of({"--follow=yes"}), ExitCode::usage) << "a flag takes no value";
    EXPECT_EQ(code_of({"-x"}), ExitCode::usage);
    try {
        parse_args({"--runtme"}, kDeployLike);
    } catch (const CliError& e) {
        EXPECT_STREQ(e.what(), "unknown option '--runtme'; did you mean '--runtime'?");
    }
}

TEST(CliArgs, ClosestMatchOnlyForTypos) {
    EXPECT_EQ(closest_match("hello-wrld", {"hello-world", "goodbye"}), "hello-world");
    EXPECT_EQ(closest_match("dpeloy", {"deploy", "invoke", "logs"}), "deploy");
    EXPECT_EQ(closest_match("ecoh", {"echo", "resize"}), "echo") << "a swap of neighbours is one edit";
    EXPECT_FALSE(closest_match("zzz", {"deploy", "invoke"}));
    EXPECT_FALSE(closest_match("same", {"same"})) << "the word itself is no suggestion";
}

TEST(CliArgs, Durations) {
    EXPECT_EQ(parse_duration_seconds("90"), 90);
    EXPECT_EQ(parse_duration_seconds("45s"), 45);
    EXPECT_EQ(parse_duration_seconds("10m"), 600);
    EXPECT_EQ(parse_duration_seconds("24h"), 86400);
    EXPECT_EQ(parse_duration_seconds("7d"), 7 * 86400);
    EXPECT_FALSE(parse_duration_seconds(""));
    EXPECT_FALSE(parse_duration_seconds("m"));
    EXPECT_FALSE(parse_duration_seconds("-5m"));
    EXPECT_FALSE(parse_duration_seconds("5y"));
    EXPECT_FALSE(parse_duration_seconds("1.5h"));
    EXPECT_FALSE(parse_duration_seconds("99999999999999h"));
}

TEST(CliArgs, EveryCommandHasHelpAndNamesItsOptions) {
    for (const auto& c : cli_commands()) {
        const std::string help = command_help(c);
        EXPECT_NE(help.find("usage: funcd " + c.name), std::string::npos) << c.name;
        for (const auto& o : c.options) EXPECT_NE(help.find(o.name), std::string::npos) << c.name << " " << o.name;
        EXPECT_NE(help.find("--endpoint"), std::string::npos);
    }
    EXPECT_TRUE(find_cli_command("deploy"));
    EXPECT_FALSE(find_cli_command("serve")) << "the daemon's commands are not the client's";
}

}  // namespace
}  // namespace funcd::cli

namespace funcd::cli {
namespace {

TEST(CliArgs, TimeArguments) {
    const SystemTime now = *parse_rfc3339("2026-11-26T12:00:00Z");
    EXPECT_EQ(format_rfc3339(*parse_time_arg("10m", now)), "2026-11-26T11:50:00.000Z");
    EXPECT_EQ(format_rfc3339(*parse_time_arg("2d", now)), "2026-11-24T12:00:00.000Z");
    EXPECT_EQ(format_rfc3339(*parse_time_arg("2026-11-01T00:00:00+01:00", now)), "2026-10-31T23:00:00.000Z");
    EXPECT_EQ(format_rfc3339(*parse_time_arg("1795736418123", now)), "2026-11-26T23:40:18.123Z")
        << "13 digits are epoch milliseconds";
    EXPECT_EQ(format_rfc3339(*parse_time_arg("3600", now)), "2026-11-26T11:00:00.000Z") << "fewer are seconds back";
    EXPECT_FALSE(parse_time_arg("yesterday", now));
    EXPECT_FALSE(parse_time_arg("2026-11-26", now));
}

}  // namespace
}  // namespace funcd::cli
