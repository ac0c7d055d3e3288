// The funcd client commands, run as the real binary against the real daemon.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "cli_process.hpp"
#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kAppPy = R"(import json
def handler(event, context):
    print("got " + json.dumps(event, sort_keys=True))
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("bad input " + str(event["fail"]))
    return {"event": event, "version": context.function_version}
)";

class Cli : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-cli-it-XXXXXX").string();
        ASSERT_TRUE(::mkdtemp(tmpl.data()));
        home_ = tmpl;
        fs::create_directories(home_ / "work");
    }
    void TearDown() override { fs::remove_all(home_); }

    std::map<std::string, std::string> env(const Daemon& d) const {
        return {{"FUNCD_ENDPOINT", "http://127.0.0.1:" + std::to_string(d.port())},
                {"FUNCD_API_TOKEN", Daemon::kToken},
                {"XDG_CONFIG_HOME", (home_ / "config").string()},
                {"HOME", home_.string()}};
    }
    CliResult run(const Daemon& d, const std::vector<std::string>& args, const std::string& input = {},
                  std::map<std::string, std::string> extra = {}) const {
        auto e = env(d);
        for (auto& [k, v] : extra) e[k] = v;
        CliProcess p(args, e, home_ / "work", input);
        return p.wait();
    }
    // A function's source directory: app.py and things .funcdignore leaves out.
    fs::path write_source() const {
        const fs::path dir = home_ / "work" / "src";
        fs::create_directories(dir / "node_modules");
        std::ofstream(dir / "app.py") << kAppPy;
        std::ofstream(dir / "notes.md") << "not code";
        std::ofstream(dir / "node_modules" / "big.js") << "x";
        std::ofstream(dir / ".funcdignore") << "*.md\nnode_modules/\n";
        return dir;
    }
    // The function the tests of other commands use, deployed over the API (the deploy
    // command has tests of its own) to keep them short.
    void deploy(Daemon& d) const {
        write_source();
        const auto r = d.deploy("echo", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kAppPy));
        ASSERT_EQ(r.status, 201) << r.body;
    }

    fs::path home_;
};

TEST_F(Cli, DeployADirectoryThenInvokeWithEachDataForm) {
    Daemon d;
    write_source();
    const auto dep = run(d, {"deploy", "echo", "src", "--runtime", "python3", "--handler", "app.handler", "--memory",
                             "256", "--env", "GREETING=hi"});
    ASSERT_EQ(dep.status, 0) << dep.err;
    EXPECT_NE(dep.out.find("echo version 1"), std::string::npos) << dep.out;
    EXPECT_NE(dep.out.find("http://127.0.0.1:" + std::to_string(d.port()) + "/v1/functions/echo/invoke"),
              std::string::npos)
        << dep.out;
    const json described = d.api("GET", "/v1/functions/echo").json();
    EXPECT_EQ(described["memory_mb"], 256);
    EXPECT_EQ(described["env"], json({{"GREETING", "hi"}}));

    // What went up is the directory less what .funcdignore leaves out: the daemon's copy of
    // the code has app.py and nothing else.
    const fs::path code = d.data_dir() / "code" / described["code_sha256"].get<std::string>();
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(code)) files.push_back(fs::relative(e.path(), code).string());
    EXPECT_EQ(files, std::vector<std::string>{"app.py"});

    // A redeploy of the same tree sends the same zip (the same code) and keeps the settings.
    const auto again = run(d, {"deploy", "echo", "src"});
    ASSERT_EQ(again.status, 0) << again.err;
    const json redeployed = d.api("GET", "/v1/functions/echo").json();
    EXPECT_EQ(redeployed["version"], 2);
    EXPECT_EQ(redeployed["code_sha256"], described["code_sha256"]);
    EXPECT_EQ(redeployed["memory_mb"], 256);
    EXPECT_EQ(redeployed["handler"], "app.handler");
    EXPECT_EQ(redeployed["env"], json({{"GREETING", "hi"}}));

    auto result = [](const CliResult& r) { return json::parse(r.out)["event"]; };
    auto literal = run(d, {"invoke", "echo", "--data", R"({"n": 1})"});
    ASSERT_EQ(literal.status, 0) << literal.err;
    EXPECT_EQ(result(literal), json({{"n", 1}}));
    EXPECT_NE(literal.err.find("REPORT RequestId: "), std::string::npos) << literal.err;
    EXPECT_EQ(literal.out.find("REPORT"), std::string::npos) << "stdout holds only the result";

    std::ofstream(home_ / "work" / "event.json") << R"({"n": 2})";
    auto file = run(d, {"invoke", "echo", "--data", "@event.json"});
    ASSERT_EQ(file.status, 0) << file.err;
    EXPECT_EQ(result(file), json({{"n", 2}}));

    auto piped = run(d, {"invoke", "echo", "--data", "-"}, R"([3, "x"])");
    ASSERT_EQ(piped.status, 0) << piped.err;
    EXPECT_EQ(result(piped), json({3, "x"}));

    auto none = run(d, {"invoke", "echo"});
    ASSERT_EQ(none.status, 0) << none.err;
    EXPECT_EQ(result(none), json::object());

    auto qualified = run(d, {"invoke", "echo", "--qualifier", "1"});
    ASSERT_EQ(qualified.status, 0) << qualified.err;
    EXPECT_EQ(json::parse(qualified.out)["version"], "1");

    auto bad = run(d, {"invoke", "echo", "--data", "{nope"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("is not JSON"), std::string::npos) << bad.err;
}

TEST_F(Cli, ALargeDeployShowsItsUploadProgress) {
    Daemon d;
    const fs::path dir = write_source();
    // Incompressible, so the upload is as large as the file: a few MiB, many progress steps.
    std::string blob(3 << 20, '\0');
    std::mt19937_64 rng(7);
    for (auto& c : blob) c = static_cast<char>(rng());
    std::ofstream(dir / "data.bin", std::ios::binary) << blob;

    const auto shown = run(d, {"deploy", "big", "src", "--runtime", "python3", "--handler", "app.handler", "--progress"});
    ASSERT_EQ(shown.status, 0) << shown.err;
    std::size_t steps = 0;
    for (auto at = shown.err.find("\ruploading "); at != std::string::npos; at = shown.err.find("\ruploading ", at + 1))
        ++steps;
    EXPECT_GE(steps, 5u) << shown.err;
    EXPECT_NE(shown.err.find(" of 4."), std::string::npos) << "base64 of 3 MiB is 4 MiB: " << shown.err;
    EXPECT_NE(shown.err.find("\r\x1b[2K"), std::string::npos) << "the line is cleared at the end";
    EXPECT_NE(shown.out.find("big version 1"), std::string::npos) << shown.out;

    // Not on a terminal (as here) without --progress, and never for a small package.
    const auto quiet = run(d, {"deploy", "big", "src"});
    ASSERT_EQ(quiet.status, 0) << quiet.err;
    EXPECT_EQ(quiet.err.find("uploading"), std::string::npos) << quiet.err;
    fs::remove(dir / "data.bin");
    const auto small = run(d, {"deploy", "big", "src", "--progress"});
    ASSERT_EQ(small.status, 0) << small.err;
    EXPECT_EQ(small.err.find("uploading"), std::string::npos) << small.err;
}

TEST_F(Cli, FunctionErrorExitsOneAndTailShowsTheLog) {
    Daemon d;
    deploy(d);
    const auto failed = run(d, {"invoke", "echo", "--data", R"({"fail": 7})"});
    EXPECT_EQ(failed.status, 1);
    EXPECT_EQ(failed.out, "");
    EXPECT_NE(failed.err.find("function 'echo' failed: ValueError: bad input 7"), std::string::npos) << failed.err;

    const auto tailed = run(d, {"invoke", "echo", "--tail", "--data", R"({"n": 5})"});
    ASSERT_EQ(tailed.status, 0) << tailed.err;
    EXPECT_NE(tailed.err.find("got {\"n\": 5}"), std::string::npos) << tailed.err;
    EXPECT_NE(tailed.err.find("START RequestId: "), std::string::npos) << tailed.err;
    EXPECT_NE(tailed.err.find("REPORT RequestId: "), std::string::npos) << tailed.err;
    EXPECT_NE(tailed.err.find("Max Memory Used"), std::string::npos) << "the log's own REPORT line: " << tailed.err;
    EXPECT_EQ(json::parse(tailed.out)["event"], json({{"n", 5}}));

    const auto as_json = run(d, {"invoke", "echo", "-o", "json", "--tail", "--data", R"({"fail": 1})"});
    EXPECT_EQ(as_json.status, 1);
    const json doc = json::parse(as_json.out);
    EXPECT_EQ(doc["status"], "function_error");
    EXPECT_EQ(doc["function_error"], "ValueError");
    EXPECT_EQ(doc["payload"]["errorMessage"], "bad input 1");
    EXPECT_EQ(doc["request_id"].get<std::string>().size(), 36u);
    ASSERT_TRUE(doc["logs"].is_array());
    EXPECT_FALSE(doc["logs"].empty());
    EXPECT_TRUE(doc["billed_ms"].is_number_integer());

    const auto queued = run(d, {"invoke", "echo", "--async", "-o", "json"});
    ASSERT_EQ(queued.status, 0) << queued.err;
    EXPECT_EQ(queued.json()["status"], "queued");

    // A disabled function is throttled: try again later.
    ASSERT_EQ(d.api("PUT", "/v1/functions/echo/concurrency", R"({"reserved_concurrency": 0})").status, 200);
    const auto throttled = run(d, {"invoke", "echo"});
    EXPECT_EQ(throttled.status, 7);
    EXPECT_NE(throttled.err.find("try again later"), std::string::npos) << throttled.err;
}

TEST_F(Cli, ListGetAndRemoveWithJsonOutput) {
    Daemon d;
    deploy(d);
    const auto table = run(d, {"ls"});
    ASSERT_EQ(table.status, 0) << table.err;
    EXPECT_NE(table.out.find("NAME"), std::string::npos);
    EXPECT_NE(table.out.find("echo"), std::string::npos);
    EXPECT_EQ(table.out.find("\x1b["), std::string::npos) << "no colours when stdout is not a terminal";

    const auto names = run(d, {"ls", "-q"});
    EXPECT_EQ(names.out, "echo\n");

    const auto list = run(d, {"ls", "--output", "json"});
    ASSERT_EQ(list.status, 0) << list.err;
    EXPECT_EQ(list.json()["functions"][0]["name"], "echo");

    const auto got = run(d, {"get", "echo", "-o", "json"});
    ASSERT_EQ(got.status, 0) << got.err;
    EXPECT_EQ(got.json()["handler"], "app.handler");
    EXPECT_TRUE(got.json().contains("instances"));

    const auto human = run(d, {"get", "echo"});
    ASSERT_EQ(human.status, 0) << human.err;
    EXPECT_NE(human.out.find("app.handler"), std::string::npos);

    const auto removed = run(d, {"rm", "echo"});
    ASSERT_EQ(removed.status, 0) << removed.err;
    EXPECT_EQ(d.api("GET", "/v1/functions/echo").status, 404);
}

TEST_F(Cli, NotFoundSuggestsTheClosestName) {
    Daemon d;
    deploy(d);
    const auto typo = run(d, {"invoke", "ecoh"});
    EXPECT_EQ(typo.status, 5);
    EXPECT_NE(typo.err.find("function 'ecoh' not found"), std::string::npos) << typo.err;
    EXPECT_NE(typo.err.find("did you mean 'echo'?"), std::string::npos) << typo.err;
    const auto unlike = run(d, {"get", "nothing-like-it"});
    EXPECT_EQ(unlike.status, 5);
    EXPECT_NE(unlike.err.find("funcd ls lists the functions"), std::string::npos) << unlike.err;
    EXPECT_EQ(run(d, {"rm", "ecoh"}).status, 5);
}

TEST_F(Cli, BadTokenAndRefusedRequests) {
    Daemon d;
    const auto bad_token = run(d, {"ls"}, {}, {{"FUNCD_API_TOKEN", "wrong"}});
    EXPECT_EQ(bad_token.status, 4);
    EXPECT_NE(bad_token.err.find("token rejected"), std::string::npos) << bad_token.err;
    EXPECT_NE(bad_token.err.find("FUNCD_API_TOKEN"), std::string::npos) << "names where the token came from";
    EXPECT_EQ(run(d, {"ls", "--token", "wrong"}).status, 4);

    write_source();
    const auto no_runtime = run(d, {"deploy", "fresh", "src"});
    EXPECT_EQ(no_runtime.status, 2);
    EXPECT_NE(no_runtime.err.find("--runtime"), std::string::npos) << no_runtime.err;
    const auto refused = run(d, {"deploy", "other", "src", "--runtime", "python3", "--memory", "1"});
    EXPECT_EQ(refused.status, 6);
    EXPECT_NE(refused.err.find("memory_mb"), std::string::npos) << refused.err;
}

TEST_F(Cli, UsageErrorsAndHelp) {
    const std::map<std::string, std::string> nowhere = {{"XDG_CONFIG_HOME", (home_ / "config").string()}};
    auto run_here = [&](const std::vector<std::string>& args) { return CliProcess(args, nowhere, home_ / "work").wait(); };
    const auto missing = run_here({"deploy"});
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.err.find("missing NAME"), std::string::npos) << missing.err;
    EXPECT_NE(missing.err.find("usage: funcd deploy"), std::string::npos) << missing.err;
    const auto bogus = run_here({"invoke", "echo", "--dta", "{}"});
    EXPECT_EQ(bogus.status, 2);
    EXPECT_NE(bogus.err.find("did you mean '--data'?"), std::string::npos) << bogus.err;
    const auto typo_command = run_here({"dpeloy"});
    EXPECT_EQ(typo_command.status, 2);
    EXPECT_NE(typo_command.err.find("did you mean 'deploy'?"), std::string::npos) << typo_command.err;
    const auto help = run_here({"invoke", "--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("--data"), std::string::npos);
    EXPECT_NE(help.out.find("exit codes"), std::string::npos);
}

TEST_F(Cli, NoDaemonAtTheEndpoint) {
    // A port nothing listens on: bound, then closed.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    const std::string endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    const auto down = CliProcess({"ls"}, {{"FUNCD_ENDPOINT", endpoint}, {"FUNCD_API_TOKEN", "t"}}, home_ / "work").wait();
    EXPECT_EQ(down.status, 3);
    EXPECT_NE(down.err.find("no funcd at " + endpoint + ": is it running? (funcd serve)"), std::string::npos) << down.err;
    EXPECT_NE(down.err.find("FUNCD_ENDPOINT"), std::string::npos) << "names where the endpoint came from";
}

TEST_F(Cli, FindsTheTokenInTheDataDirectoryWhenNoneIsGiven) {
    Daemon d;
    fs::create_directories(home_ / "work" / "data");
    std::ofstream(home_ / "work" / "data" / "api-token") << Daemon::kToken << "\n";
    auto e = env(d);
    e.erase("FUNCD_API_TOKEN");
    CliProcess p({"ls", "-o", "json"}, e, home_ / "work");
    const auto r = p.wait();
    EXPECT_EQ(r.status, 0) << r.err;

    e["FUNCD_API_TOKEN"] = "";  // empty counts as unset
    fs::remove(home_ / "work" / "data" / "api-token");
    CliProcess none({"ls"}, e, home_ / "work");
    const auto missing = none.wait();
    EXPECT_EQ(missing.status, 4);
    EXPECT_NE(missing.err.find("no API token"), std::string::npos) << missing.err;
}

TEST_F(Cli, LogsQueryAndFollow) {
    Daemon d;
    deploy(d);
    const auto first = d.invoke("echo", R"({"n": 1})");
    ASSERT_EQ(first.status, 200) << first.body;
    const std::string first_id = first.header("x-funcd-request-id");
    log_after(d, "echo", first_id);
    const auto second = d.invoke("echo", R"({"n": 2})");
    log_after(d, "echo", second.header("x-funcd-request-id"));

    const auto all = run(d, {"logs", "echo"});
    ASSERT_EQ(all.status, 0) << all.err;
    EXPECT_NE(all.out.find("got {\"n\": 1}"), std::string::npos) << all.out;
    EXPECT_NE(all.out.find("got {\"n\": 2}"), std::string::npos) << all.out;
    EXPECT_NE(all.out.find(first_id.substr(0, 8)), std::string::npos) << all.out;

    const auto one = run(d, {"logs", "echo", "--request-id", first_id, "-o", "json", "--since", "10m"});
    ASSERT_EQ(one.status, 0) << one.err;
    std::size_t lines = 0;
    for (std::size_t at = 0; at < one.out.size(); at = one.out.find('\n', at) + 1) {
        const json record = json::parse(one.out.substr(at, one.out.find('\n', at) - at));
        EXPECT_EQ(record["request_id"], first_id);
        ++lines;
    }
    EXPECT_GE(lines, 4u) << "START, the output, END, REPORT: " << one.out;
    EXPECT_EQ(one.out.find("got {\"n\": 2}"), std::string::npos);

    EXPECT_EQ(run(d, {"logs", "echo", "--since", "yesterday"}).status, 2);
    EXPECT_EQ(run(d, {"logs", "ecoh"}).status, 5);

    // Follow: the recent records, then what is written while it runs, each once; the
    // function's deletion ends it.
    CliProcess follow({"logs", "echo", "-f"}, env(d), home_ / "work");
    ASSERT_TRUE(follow.read_until([](const std::string& out, const std::string&) {
        return out.find("got {\"n\": 2}") != std::string::npos;
    }, std::chrono::milliseconds(10'000))) << follow.so_far().out << follow.so_far().err;
    ASSERT_EQ(d.invoke("echo", R"({"n": 3})").status, 200);
    EXPECT_TRUE(follow.read_until([](const std::string& out, const std::string&) {
        return out.find("got {\"n\": 3}") != std::string::npos;
    }, std::chrono::milliseconds(10'000))) << follow.so_far().out << follow.so_far().err;
    ASSERT_EQ(d.api("DELETE", "/v1/functions/echo").status, 204);
    const auto ended = follow.wait(std::chrono::milliseconds(10'000));
    EXPECT_EQ(ended.status, 0) << ended.err;
    EXPECT_NE(ended.err.find("was deleted"), std::string::npos) << ended.err;
    auto count = [&](const std::string& needle) {
        std::size_t n = 0;
        for (auto at = ended.out.find(needle); at != std::string::npos; at = ended.out.find(needle, at + 1)) ++n;
        return n;
    };
    EXPECT_EQ(count("got {\"n\": 2}"), 1u) << ended.out;
    EXPECT_EQ(count("got {\"n\": 3}"), 1u) << ended.out;
}

TEST_F(Cli, UsagePerFunctionAndPerDay) {
    Daemon d;
    deploy(d);
    for (int i = 0; i < 2; ++i) ASSERT_EQ(d.invoke("echo").status, 200);
    ASSERT_EQ(d.invoke("echo", R"({"fail": 1})").status, 200);

    const auto doc = run(d, {"usage", "-o", "json"});
    ASSERT_EQ(doc.status, 0) << doc.err;
    EXPECT_EQ(doc.json()["total"]["invocations"], 3);
    EXPECT_EQ(doc.json()["functions"][0]["name"], "echo");
    EXPECT_EQ(doc.json()["functions"][0]["errors"], 1);

    const auto days = run(d, {"usage", "--by", "day", "--since", "24h", "-o", "json"});
    ASSERT_EQ(days.status, 0) << days.err;
    const json per_day = days.json()["days"];
    int sum = 0;
    for (const auto& day : per_day) sum += day["invocations"].get<int>();
    EXPECT_EQ(sum, 3);
    EXPECT_GE(per_day.size(), 1u);
    EXPECT_LE(per_day.size(), 2u) << "24 hours touch one or two UTC days";

    const auto table = run(d, {"usage", "--since", "1h"});
    ASSERT_EQ(table.status, 0) << table.err;
    EXPECT_NE(table.out.find("echo"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("total"), std::string::npos) << table.out;
    const auto none = run(d, {"usage", "--until", "2000-01-01T00:00:00Z", "-o", "json"});
    ASSERT_EQ(none.status, 0) << none.err;
    EXPECT_EQ(none.json()["total"]["invocations"], 0);
    EXPECT_EQ(run(d, {"usage", "--by", "week"}).status, 2);
}

TEST_F(Cli, UrlShowsAndOpensTheFunctionUrl) {
    Daemon d;
    deploy(d);
    const std::string url = "http://127.0.0.1:" + std::to_string(d.port()) + "/fn/echo";
    const auto shown = run(d, {"url", "echo", "--quiet"});
    ASSERT_EQ(shown.status, 0) << shown.err;
    EXPECT_EQ(shown.out, url + "\n");
    EXPECT_EQ(http_request(d.port(), "GET", "/fn/echo").status, 401);

    const auto opened = run(d, {"url", "echo", "--auth", "none", "-o", "json"});
    ASSERT_EQ(opened.status, 0) << opened.err;
    EXPECT_EQ(opened.json()["auth"], "none");
    EXPECT_EQ(opened.json()["url"], url);
    EXPECT_EQ(http_request(d.port(), "GET", "/fn/echo").status, 200);
    const json described = d.api("GET", "/v1/functions/echo").json();
    EXPECT_EQ(described["handler"], "app.handler") << "the other settings stay";
}

TEST_F(Cli, DeadLettersListRedriveAndRemove) {
    Daemon d;
    deploy(d);
    ASSERT_EQ(d.api("PUT", "/v1/functions/echo/event-config", R"({"maximum_retry_attempts": 0})").status, 200);
    for (int i = 0; i < 2; ++i)
        ASSERT_EQ(http_request(d.port(), "POST", "/v1/functions/echo/invoke", R"({"fail": 9})",
                               {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Event"}})
                      .status,
                  202);
    json letters;
    ASSERT_TRUE(eventually([&] {
        letters = d.api("GET", "/v1/dead-letters?function=echo").json()["dead_letters"];
        return letters.size() == 2;
    }, std::chrono::milliseconds(10'000))) << letters;

    const auto listed = run(d, {"dlq", "echo"});
    ASSERT_EQ(listed.status, 0) << listed.err;
    EXPECT_NE(listed.out.find("RetriesExhausted"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("ValueError: bad input 9"), std::string::npos) << listed.out;
    const auto as_json = run(d, {"dlq", "echo", "-o", "json"});
    ASSERT_EQ(as_json.status, 0) << as_json.err;
    EXPECT_EQ(as_json.json()["dead_letters"].size(), 2u);

    const std::string first = letters[0]["id"], second = letters[1]["id"];
    const auto removed = run(d, {"dlq", "echo", "rm", first});
    ASSERT_EQ(removed.status, 0) << removed.err;
    const auto redriven = run(d, {"dlq", "echo", "redrive", second});
    ASSERT_EQ(redriven.status, 0) << redriven.err;
    EXPECT_NE(redriven.out.find("redriven " + second), std::string::npos) << redriven.out;
    EXPECT_EQ(run(d, {"dlq", "echo", "redrive"}).status, 2);
    EXPECT_EQ(run(d, {"dlq", "echo", "rm", first}).status, 5) << "already gone";
}

TEST_F(Cli, LoginKeepsTheEndpointAndToken) {
    Daemon d;
    const std::string endpoint = "http://127.0.0.1:" + std::to_string(d.port());
    const std::map<std::string, std::string> bare = {{"XDG_CONFIG_HOME", (home_ / "config").string()}};
    const fs::path config = home_ / "config" / "funcd" / "config";

    const auto refused = CliProcess({"login", endpoint, "--token", "wrong"}, bare, home_ / "work").wait();
    EXPECT_EQ(refused.status, 4);
    EXPECT_FALSE(fs::exists(config)) << "a rejected token is not kept";

    const auto piped = CliProcess({"login", endpoint}, bare, home_ / "work", Daemon::kToken + "\n").wait();
    ASSERT_EQ(piped.status, 0) << piped.err;
    EXPECT_EQ(fs::status(config).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

    const auto listed = CliProcess({"ls", "-o", "json"}, bare, home_ / "work").wait();
    EXPECT_EQ(listed.status, 0) << listed.err;
    EXPECT_TRUE(listed.json()["functions"].is_array());
}

TEST_F(Cli, TopShowsTrafficBetweenFrames) {
    Daemon d;
    deploy(d);
    ASSERT_EQ(d.invoke("echo").status, 200);  // a warm worker, and a p99 in the stats
    CliProcess top({"top", "--interval", "1.5", "--iterations", "1", "-o", "json"}, env(d), home_ / "work");
    // Traffic all along, so whenever its two samples are taken there is some between them.
    std::atomic<bool> done{false};
    std::thread traffic([&] {
        while (!done) {
            d.invoke("echo");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    const auto r = top.wait();
    done = true;
    traffic.join();
    ASSERT_EQ(r.status, 0) << r.err;
    const json frame = r.json();
    ASSERT_EQ(frame["functions"].size(), 1u) << frame;
    const json& f = frame["functions"][0];
    EXPECT_EQ(f["function"], "echo");
    EXPECT_GT(f["invocations_per_s"].get<double>(), 0) << frame;
    EXPECT_TRUE(f["p50_duration_ms_5m"].is_number()) << frame;
    EXPECT_TRUE(f["p99_duration_ms_5m"].is_number()) << frame;
    EXPECT_LE(f["p50_duration_ms_5m"].get<double>(), f["p99_duration_ms_5m"].get<double>()) << frame;
    EXPECT_EQ(f["workers"]["idle"].get<double>() + f["workers"]["busy"].get<double>(), 1) << frame;
    EXPECT_GT(frame["memory_limit_bytes"].get<double>(), 0);
}

}  // namespace
}  // namespace funcd::testing
