// Bad requests through the real daemon: each gets its 4xx with a JSON error body
// {"error": {"type": ..., "message": ...}} and leaves every function as it was.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "daemon_harness.hpp"
#include "funcd/common/base64.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;

const char* kGreetPy = R"(import os
def handler(event, context):
    return {"greeting": os.environ.get("GREETING"), "version": context.function_version, "event": event}
)";

// Checks the status, the error type and that the message mentions each of `needles`.
::testing::AssertionResult is_error(const HttpResult& r, int status, const std::string& type,
                                    std::initializer_list<std::string> needles = {}) {
    if (r.status != status)
        return ::testing::AssertionFailure() << "status " << r.status << ", expected " << status << ": " << r.body;
    if (r.header("content-type").find("application/json") == std::string::npos)
        return ::testing::AssertionFailure() << "Content-Type is '" << r.header("content-type") << "'";
    json doc = json::parse(r.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_object())
        return ::testing::AssertionFailure() << "no error object in: " << r.body;
    const json& e = doc["error"];
    if (!e.contains("type") || !e["type"].is_string() || !e.contains("message") || !e["message"].is_string())
        return ::testing::AssertionFailure() << "error needs string type and message: " << r.body;
    if (e["type"] != type) return ::testing::AssertionFailure() << "type " << e["type"] << ", expected " << type;
    const std::string message = e["message"];
    if (message.empty()) return ::testing::AssertionFailure() << "empty message";
    for (const auto& n : needles)
        if (message.find(n) == std::string::npos)
            return ::testing::AssertionFailure() << "message '" << message << "' does not mention '" << n << "'";
    return ::testing::AssertionSuccess();
}

std::string deploy_body(const json& settings, const std::string& zip) {
    json body = settings;
    body["code"] = {{"zip_base64", base64_encode(zip)}};
    return body.dump();
}

// A zip whose only entry is named `entry`; the zip tool will not write names like "../x".
std::string zip_with_entry_named(const std::string& entry) {
    auto path = std::filesystem::temp_directory_path() / ("funcd-odd-" + std::to_string(::getpid()) + ".zip");
    std::string cmd = "python3 -c \"import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: "
                      "z.writestr(sys.argv[2], 'x')\" '" +
                      path.string() + "' '" + entry + "'";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("python3 zipfile failed");
    std::string zip = read_file(path);
    std::filesystem::remove(path);
    return zip;
}

std::set<std::string> code_dirs(const Daemon& d) {
    std::set<std::string> out;
    // A tree and its kept zip (<sha256>.zip) are one piece of code.
    for (const auto& e : std::filesystem::directory_iterator(d.data_dir() / "code"))
        out.insert(e.path().extension() == ".zip" ? e.path().stem().string() : e.path().filename().string());
    return out;
}

std::set<std::string> live_code(Daemon& d) {
    std::set<std::string> out;
    const json list = d.api("GET", "/v1/functions").json();
    for (const auto& f : list["functions"])
        out.insert(f["code_sha256"].get<std::string>());
    return out;
}

TEST(ApiErrors, AuthRoutesAndMethods) {
    Daemon d;
    ASSERT_EQ(d.deploy("greet", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kGreetPy)).status,
              201);
    const auto port = d.port();
    const std::string bearer = "Bearer " + Daemon::kToken;

    // Health needs no token.
    auto health = http_request(port, "GET", "/healthz");
    ASSERT_EQ(health.status, 200) << health.body;
    EXPECT_EQ(health.json(), (json{{"status", "ok"}}));

    // Missing, wrong and non-bearer credentials, on every kind of endpoint.
    const std::vector<std::vector<std::pair<std::string, std::string>>> bad_auth = {
        {},
        {{"Authorization", "Bearer wrong-token"}},
        {{"Authorization", "Bearer " + Daemon::kToken + "x"}},
        {{"Authorization", "Bearer "}},
        {{"Authorization", "Basic " + base64_encode("admin:" + Daemon::kToken)}},
        {{"Authorization", Daemon::kToken}},
    };
    const std::vector<std::pair<std::string, std::string>> endpoints = {
        {"GET", "/v1/functions"},
        {"GET", "/v1/functions/greet"},
        {"GET", "/v1/usage"},
        {"GET", "/v1/usage/records"},
        {"POST", "/v1/functions/greet/invoke"},
        {"DELETE", "/v1/functions/greet"},
        {"GET", "/v1/nope"},
    };
    for (const auto& headers : bad_auth) {
        for (const auto& [method, target] : endpoints) {
            auto r = http_request(port, method, target, method == "POST" ? "{}" : "", headers);
            EXPECT_TRUE(is_error(r, 401, "UnauthorizedException", {"Authorization: Bearer"}))
                << method << " " << target << " with " << (headers.empty() ? "no header" : headers[0].second);
        }
    }
    // An unauthenticated deploy creates nothing and replaces nothing.
    auto put = http_request(port, "PUT", "/v1/functions/sneaky",
                            deploy_body({{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kGreetPy)),
                            {{"Content-Type", "application/json"}});
    EXPECT_TRUE(is_error(put, 401, "UnauthorizedException"));
    auto over = http_request(port, "PUT", "/v1/functions/greet",
                             deploy_body({{"runtime", "python3"}, {"handler", "app.handler"}, {"memory_mb", 512}},
                                         python_zip(kGreetPy)),
                             {{"Content-Type", "application/json"}, {"Authorization", "Bearer nope"}});
    EXPECT_TRUE(is_error(over, 401, "UnauthorizedException"));
    // A Lambda API request whose Authorization header holds bytes that are not UTF-8 is refused
    // like any other malformed signature, 403 with a JSON body quoting them as U+FFFD (building
    // that body threw out of the event loop and stopped the daemon, for anyone reaching the port).
    auto garbled = http_request(port, "GET", "/2015-03-31/functions/", "",
                                {{"Authorization", "AWS4-HMAC-SHA256 Credential=\xff, SignedHeaders=host, Signature=x"}});
    EXPECT_EQ(garbled.status, 403) << garbled.body;
    EXPECT_EQ(garbled.header("x-amzn-errortype"), "IncompleteSignatureException") << garbled.body;
    EXPECT_TRUE(json::parse(garbled.body, nullptr, false).is_object()) << garbled.body;
    auto list = d.api("GET", "/v1/functions");
    ASSERT_EQ(list.status, 200);
    ASSERT_EQ(list.json()["functions"].size(), 1u) << list.body;
    EXPECT_EQ(list.json()["functions"][0]["name"], "greet");
    EXPECT_EQ(list.json()["functions"][0]["version"], 1);
    EXPECT_EQ(list.json()["functions"][0]["memory_mb"], 128);
    // The function exists and was never run by the refused invocations.
    auto records = d.api("GET", "/v1/usage/records?function=greet");
    ASSERT_EQ(records.status, 200);
    EXPECT_TRUE(records.json()["records"].empty()) << records.body;
    // The Bearer scheme name is case-insensitive (RFC 7235); the token is not.
    EXPECT_EQ(http_request(port, "GET", "/v1/functions", "", {{"Authorization", "bearer " + Daemon::kToken}}).status,
              200);

    // Unknown routes, outside and inside /v1.
    for (const std::string target : {"/nope", "/", "/v2/functions", "/healthz/x"})
        EXPECT_TRUE(is_error(http_request(port, "GET", target), 404, "NotFoundException", {target})) << target;
    for (const std::string target :
         {"/v1/nope", "/v1", "/v1/functions/greet/nope", "/v1/functions/greet/invoke/x", "/v1/usage/nope"})
        EXPECT_TRUE(is_error(d.api("GET", target), 404, "NotFoundException", {target})) << target;

    // Known routes with the wrong method: 405 and an Allow header.
    struct WrongMethod {
        std::string method, target, allow;
        bool authed;
    };
    const std::vector<WrongMethod> wrong = {
        {"POST", "/v1/functions/x", "GET, PUT, DELETE", true},
        {"PATCH", "/v1/functions/greet", "GET, PUT, DELETE", true},
        {"GET", "/v1/functions/x/invoke", "POST", true},
        {"PUT", "/v1/functions/greet/invoke", "POST", true},
        {"POST", "/v1/functions", "GET", true},
        {"DELETE", "/v1/usage", "GET", true},
        {"POST", "/v1/usage/records", "GET", true},
        {"DELETE", "/healthz", "GET", false},
        {"POST", "/healthz", "GET", false},
    };
    for (const auto& w : wrong) {
        auto r = w.authed ? d.api(w.method, w.target) : http_request(port, w.method, w.target);
        EXPECT_TRUE(is_error(r, 405, "MethodNotAllowedException", {w.method})) << w.method << " " << w.target;
        EXPECT_EQ(r.header("allow"), w.allow) << w.method << " " << w.target;
    }
    // PATCH did not touch the function; the refused POST did not create x.
    EXPECT_EQ(d.api("GET", "/v1/functions/greet").json()["version"], 1);
    EXPECT_EQ(d.api("GET", "/v1/functions/x").status, 404);
    auto ok = d.invoke("greet", R"({"k": 1})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.json()["event"]["k"], 1);
}

TEST(ApiErrors, BadDeploysChangeNothing) {
    Daemon d;
    const json base_settings = {{"runtime", "python3"}, {"handler", "app.handler"}, {"env", {{"GREETING", "hello"}}}};
    const std::string base_zip = python_zip(kGreetPy);
    auto created = d.deploy("base", base_settings, base_zip);
    ASSERT_EQ(created.status, 201) << created.body;
    const std::string name64(64, 'n');
    ASSERT_EQ(d.deploy(name64, {{"runtime", "provided"}}, bootstrap_zip("#!/bin/sh\nexit 0\n")).status, 201)
        << "64 characters is the longest name allowed";
    auto warm = d.invoke("base");
    ASSERT_EQ(warm.status, 200) << warm.body;
    EXPECT_EQ(warm.json()["greeting"], "hello");

    const json before = d.api("GET", "/v1/functions").json();
    ASSERT_EQ(before["functions"].size(), 2u);
    // After each refused request the list (names, versions, settings, code) is exactly as before.
    auto unchanged = [&](const std::string& what) {
        auto now = d.api("GET", "/v1/functions");
        ASSERT_EQ(now.status, 200) << what;
        EXPECT_EQ(now.json(), before) << "after " << what;
    };
    auto put_json = [&](const std::string& name, const json& body) {
        return d.api("PUT", "/v1/functions/" + name, body.dump());
    };
    auto with = [&](const json& patch) {  // base settings and code, with `patch` merged in
        json s = base_settings;
        if (patch.is_object()) s.merge_patch(patch);
        s["code"] = {{"zip_base64", base64_encode(base_zip)}};
        return s;
    };
    const char* kBadParam = "InvalidParameterValueException";
    const char* kBadContent = "InvalidRequestContentException";

    // Names: checked before anything else, for new and existing functions alike.
    for (const auto& [target, shown] : std::vector<std::pair<std::string, std::string>>{
             {std::string(65, 'n'), std::string(65, 'n')}, {"a.b", "a.b"}, {"a%20b", "a b"}, {"base!", "base!"}}) {
        auto r = put_json(target, with({}));
        EXPECT_TRUE(is_error(r, 400, kBadParam, {"function name '" + shown + "'", "1 to 64"})) << target;
        unchanged("name " + target);
    }

    // Settings, each on an update of `base` (version 1) and on a new function.
    struct BadSettings {
        json patch;
        std::vector<std::string> needles;
    };
    const std::vector<BadSettings> bad_settings = {
        {{{"runtime", "ruby"}}, {"runtime", "ruby", "python3"}},
        {{{"runtime", 3}}, {"runtime"}},
        {{{"memory_mb", 64}}, {"memory_mb", "128 to 10240", "64"}},
        {{{"memory_mb", 10241}}, {"memory_mb", "10241"}},
        {{{"memory_mb", "big"}}, {"memory_mb", "string"}},
        {{{"memory_mb", 12.5}}, {"memory_mb", "fractional"}},
        {{{"memory_mb", -1}}, {"memory_mb"}},
        {{{"timeout_s", 0}}, {"timeout_s", "1 to 900"}},
        {{{"timeout_s", 901}}, {"timeout_s", "901"}},
        {{{"keep_alive_s", 0}}, {"keep_alive_s", "1 to 86400"}},
        {{{"keep_alive_s", 86401}}, {"keep_alive_s", "86401"}},
        {{{"env", "GREETING=hi"}}, {"env", "object"}},
        {{{"env", json::array({"GREETING"})}}, {"env", "object"}},
        {{{"env", {{"GREETING", 5}}}}, {"env.GREETING", "string"}},
        {{{"env", {{"AWS_REGION", "eu-west-1"}}}}, {"AWS_REGION", "reserved"}},
        {{{"env", {{"1BAD", "x"}}}}, {"1BAD"}},
        {{{"env", {{"BIG", std::string(4 * 1024, 'x')}}}}, {"env", "4096"}},
        {{{"handler", "app"}}, {"handler"}},
        {{{"handler", ""}}, {"handler"}},
        {{{"description", std::string(257, 'd')}}, {"description", "256"}},
        {{{"colour", "blue"}}, {"unknown field 'colour'"}},
    };
    for (const auto& b : bad_settings) {
        for (const std::string name : {"base", "fresh"}) {
            auto r = put_json(name, with(b.patch));
            EXPECT_TRUE(is_error(r, 400, kBadParam, {})) << name << " " << b.patch.dump();
            for (const auto& n : b.needles)
                EXPECT_NE(r.body.find(n), std::string::npos) << name << " " << b.patch.dump() << ": " << r.body;
            unchanged(b.patch.dump());
        }
    }
    {
        json no_runtime = with({});
        no_runtime.erase("runtime");
        EXPECT_TRUE(is_error(put_json("base", no_runtime), 400, kBadParam, {"runtime is required"}));
        EXPECT_TRUE(is_error(put_json("fresh", no_runtime), 400, kBadParam, {"runtime is required"}));
        unchanged("missing runtime");
    }

    // Bodies that are not a JSON object.
    for (const std::string name : {"base", "fresh"}) {
        EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/" + name, "{\"runtime\": "), 400, kBadContent, {"JSON"}));
        EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/" + name, "[]"), 400, kBadContent, {"JSON object"}));
        EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/" + name, "\"base\""), 400, kBadContent, {"JSON object"}));
        EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/" + name, ""), 400, kBadContent, {"JSON"}));
        unchanged("non-object body");
    }

    // Code that is not usable.
    {
        json s = with({});
        s["code"] = {{"zip_base64", "@@not base64@@"}};
        EXPECT_TRUE(is_error(put_json("base", s), 400, kBadParam, {"zip_base64", "base64"}));
        s["code"] = {{"zip_base64", 42}};
        EXPECT_TRUE(is_error(put_json("base", s), 400, kBadParam, {"zip_base64"}));
        s["code"] = {{"zip", base64_encode(base_zip)}};
        EXPECT_TRUE(is_error(put_json("base", s), 400, kBadParam, {"zip_base64"}));
        s["code"] = base64_encode(base_zip);
        EXPECT_TRUE(is_error(put_json("base", s), 400, kBadParam, {"zip_base64"}));
        unchanged("bad code field");
    }
    for (const std::string name : {"base", "fresh"}) {
        auto not_zip = d.deploy(name, base_settings, "this is not a zip file");
        EXPECT_TRUE(is_error(not_zip, 400, kBadParam, {"not a valid zip"})) << name;
        auto slip = d.deploy(name, base_settings, zip_with_entry_named("../evil"));
        EXPECT_TRUE(is_error(slip, 400, kBadParam, {"../evil", ".."})) << name;
        EXPECT_FALSE(std::filesystem::exists(d.data_dir() / "evil"));
        EXPECT_FALSE(std::filesystem::exists(d.data_dir() / "code" / "evil"));
        auto no_module = d.deploy(name, base_settings, make_zip({{"other.py", {"x = 1\n", 0644}}}));
        EXPECT_TRUE(is_error(no_module, 400, kBadParam, {"app.py", "not found"})) << name;
        unchanged("unusable code for " + name);
    }
    for (const std::string name : {"base", "fresh"}) {
        // `base` is python3: switching it to provided with unusable code must not stick either.
        auto no_bootstrap = d.deploy(name, {{"runtime", "provided"}}, make_zip({{"run.sh", {"#!/bin/sh\n", 0755}}}));
        EXPECT_TRUE(is_error(no_bootstrap, 400, kBadParam, {"bootstrap"})) << name;
        auto not_exec = d.deploy(name, {{"runtime", "provided"}}, make_zip({{"bootstrap", {"#!/bin/sh\n", 0644}}}));
        EXPECT_TRUE(is_error(not_exec, 400, kBadParam, {"executable", "bootstrap"})) << name;
        unchanged("provided without a usable bootstrap for " + name);
    }
    {
        json no_code = base_settings;
        auto r = put_json("fresh", no_code);
        EXPECT_TRUE(is_error(r, 400, kBadParam, {"code is required", "fresh"}));
        unchanged("create without code");
    }

    // Content types and the raw-zip form.
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base", with({}).dump(), "text/plain"), 415,
                         "UnsupportedMediaTypeException", {"text/plain", "application/json", "application/zip"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/fresh?runtime=python3&handler=app.handler", base_zip,
                               "application/octet-stream"),
                         415, "UnsupportedMediaTypeException", {"application/octet-stream"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?runtime=python3&handler=app.handler&colour=red", base_zip,
                               "application/zip"),
                         400, kBadParam, {"unknown parameter 'colour'"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?runtime=python3&handler=app.handler&memory_mb=big",
                               base_zip, "application/zip"),
                         400, kBadParam, {"memory_mb"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?runtime=python3&runtime=provided&handler=app.handler",
                               base_zip, "application/zip"),
                         400, kBadParam, {"runtime", "more than once"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?handler=app.handler", base_zip, "application/zip"), 400,
                         kBadParam, {"runtime is required"}));
    for (const std::string name : {"base", "fresh"})
        EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/" + name + "?runtime=python3&handler=app.handler", "",
                                   "application/zip"),
                             400, kBadParam, {"zip"}))
            << name;
    // Query names and values are bytes once decoded: settings must be UTF-8 text, and a message
    // quoting bytes that are not still travels as JSON (U+FFFD in their place). Answering these
    // threw on a pool thread and stopped the daemon, or stored settings it could not describe.
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?runtime=python3&handler=app.handler&colour%FF=red",
                               base_zip, "application/zip"),
                         400, kBadParam, {"unknown parameter 'colour\xEF\xBF\xBD'"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?runtime=python3&handler=app.handler&description=caf%E9",
                               base_zip, "application/zip"),
                         400, kBadParam, {"description must be UTF-8"}));
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/fresh?runtime=python3&handler=app.handler&env.GREETING=%FF",
                               base_zip, "application/zip"),
                         400, kBadParam, {"env.GREETING must be UTF-8"}));
    // A zip header libarchive refuses without an error string (reading that string crashed).
    const std::string no_reason("PK\x03\x04\x14\x00\xff\xff\x08\x00\x00\x00\x21\x00\x00\x00"
                                "\x00\x00\x00\x50\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                                30);
    EXPECT_TRUE(is_error(d.api("PUT", "/v1/functions/base?runtime=python3&handler=app.handler", no_reason,
                               "application/zip"),
                         400, kBadParam, {"not a valid zip"}));
    unchanged("content types and the raw-zip form");

    // Nor did any of them leave unpacked code behind: the store holds the live functions' code only.
    EXPECT_EQ(code_dirs(d), live_code(d)) << "a refused deploy left its unpacked code in DATA_DIR/code";
    // The function that was there all along still runs its first version.
    auto still = d.invoke("base", R"({"after": true})");
    ASSERT_EQ(still.status, 200) << still.body;
    EXPECT_EQ(still.json()["greeting"], "hello");
    EXPECT_EQ(still.json()["version"], "1");
    EXPECT_EQ(still.header("x-funcd-executed-version"), "1");
    EXPECT_EQ(d.api("GET", "/v1/functions/fresh").status, 404);

    // A settings-only update (no `code`) makes a new version on the same code.
    const json v1 = d.api("GET", "/v1/functions/base").json();
    auto update = put_json("base", {{"runtime", "python3"},
                                    {"handler", "app.handler"},
                                    {"memory_mb", 256},
                                    {"env", {{"GREETING", "bonjour"}}}});
    ASSERT_EQ(update.status, 200) << update.body;
    json v2 = update.json();
    EXPECT_EQ(v2["version"], 2);
    EXPECT_EQ(v2["code_sha256"], v1["code_sha256"]);
    EXPECT_EQ(v2["code_size"], v1["code_size"]);
    EXPECT_EQ(v2["memory_mb"], 256);
    EXPECT_EQ(v2["env"], (json{{"GREETING", "bonjour"}}));
    auto fetched = d.api("GET", "/v1/functions/base").json();
    EXPECT_EQ(fetched["version"], 2);
    EXPECT_EQ(fetched["code_sha256"], v1["code_sha256"]);
    auto after = d.invoke("base");
    ASSERT_EQ(after.status, 200) << after.body;
    EXPECT_EQ(after.json()["greeting"], "bonjour");
    EXPECT_EQ(after.json()["version"], "2");
    EXPECT_EQ(after.header("x-funcd-executed-version"), "2");

    // A bad settings-only update leaves version 2 in place.
    auto bad_update = put_json("base", {{"runtime", "python3"}, {"handler", "app.handler"}, {"timeout_s", 0}});
    EXPECT_TRUE(is_error(bad_update, 400, kBadParam, {"timeout_s"}));
    auto bad_module = put_json("base", {{"runtime", "python3"}, {"handler", "missing.handler"}});
    EXPECT_TRUE(is_error(bad_module, 400, kBadParam, {"missing.py"}));
    fetched = d.api("GET", "/v1/functions/base").json();
    EXPECT_EQ(fetched["version"], 2);
    EXPECT_EQ(fetched["handler"], "app.handler");
    EXPECT_EQ(fetched["env"], (json{{"GREETING", "bonjour"}}));
    EXPECT_EQ(d.invoke("base").json()["greeting"], "bonjour");

    // The next successful deploy collects whatever code no version uses.
    EXPECT_TRUE(eventually([&] { return code_dirs(d) == live_code(d); }));

    auto names = d.api("GET", "/v1/functions").json()["functions"];
    ASSERT_EQ(names.size(), 2u) << names.dump();
    std::set<std::string> listed;
    for (const auto& f : names) listed.insert(f["name"].get<std::string>());
    EXPECT_EQ(listed, (std::set<std::string>{"base", name64}));
}

TEST(ApiErrors, InvokeUsageAndLookups) {
    Daemon d;
    ASSERT_EQ(d.deploy("greet", {{"runtime", "python3"}, {"handler", "app.handler"}, {"env", {{"GREETING", "hi"}}}},
                       python_zip(kGreetPy))
                  .status,
              201);
    int successes = 0;
    auto still_invokes = [&](const std::string& what) {
        auto r = d.invoke("greet", R"({"n": 1})");
        ASSERT_EQ(r.status, 200) << "after " << what << ": " << r.body;
        EXPECT_EQ(r.json()["event"]["n"], 1);
        EXPECT_EQ(r.json()["greeting"], "hi");
        ++successes;
    };
    still_invokes("deploy");

    // Invoke errors.
    EXPECT_TRUE(is_error(d.invoke("missing"), 404, "ResourceNotFoundException", {"missing"}));
    EXPECT_TRUE(is_error(d.invoke("bad.name"), 400, "InvalidParameterValueException", {"bad.name"}));
    still_invokes("unknown function");
    for (const std::string body : {"{not json", "{\"a\": 1", "hello", "{} {}"}) {
        EXPECT_TRUE(is_error(d.invoke("greet", body), 400, "InvalidRequestContentException", {"JSON"})) << body;
        still_invokes("body " + body);
    }
    {
        std::string big = "\"" + std::string(6 * 1024 * 1024 - 1, 'x') + "\"";
        ASSERT_EQ(big.size(), 6u * 1024 * 1024 + 1);
        EXPECT_TRUE(is_error(d.invoke("greet", big), 413, "RequestTooLargeException", {"6291456"}));
        still_invokes("an oversized body");
    }
    // Only the successful invocations were metered.
    auto records = d.api("GET", "/v1/usage/records?function=greet&limit=1000");
    ASSERT_EQ(records.status, 200) << records.body;
    EXPECT_EQ(records.json()["records"].size(), static_cast<std::size_t>(successes));
    const json metered = records.json();
    for (const auto& rec : metered["records"]) EXPECT_EQ(rec["outcome"], "success") << rec.dump();
    EXPECT_TRUE(d.api("GET", "/v1/usage/records?function=missing").json()["records"].empty());

    // Usage query errors.
    const char* kBadParam = "InvalidParameterValueException";
    EXPECT_TRUE(
        is_error(d.api("GET", "/v1/usage?since=yesterday"), 400, kBadParam, {"since", "RFC 3339", "yesterday"}));
    EXPECT_TRUE(is_error(d.api("GET", "/v1/usage?until=2026-13-40T99:00:00Z"), 400, kBadParam, {"until"}));
    EXPECT_TRUE(is_error(d.api("GET", "/v1/usage?since="), 400, kBadParam, {"since"}));
    EXPECT_TRUE(is_error(d.api("GET", "/v1/usage?function=greet&colour=red"), 400, kBadParam,
                         {"unknown query parameter 'colour'"}));
    EXPECT_TRUE(is_error(d.api("GET", "/v1/usage/records?since=2020-01-01T00:00:00Z"), 400, kBadParam,
                         {"unknown query parameter 'since'"}));
    for (const std::string limit : {"0", "1001", "abc", "-1", "10x", ""})
        EXPECT_TRUE(is_error(d.api("GET", "/v1/usage/records?limit=" + limit), 400, kBadParam, {"limit", "1 to 1000"}))
            << limit;
    EXPECT_EQ(d.api("GET", "/v1/usage/records?limit=1").json()["records"].size(), 1u);
    EXPECT_EQ(d.api("GET", "/v1/usage/records?limit=1000").status, 200);

    // A window entirely in the future holds nothing; one from the past holds everything.
    // Years past 2262 do not fit a nanosecond system_clock; such a `since` must not wrap into the past.
    for (const std::string since : {"2100-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
        auto future = d.api("GET", "/v1/usage?function=greet&since=" + since);
        ASSERT_EQ(future.status, 200) << future.body;
        EXPECT_EQ(future.json()["total"]["invocations"], 0) << "since " << since << ": " << future.body;
        const json report = future.json();
        for (const auto& f : report["functions"]) EXPECT_EQ(f["invocations"], 0) << since;
    }
    auto past = d.api("GET", "/v1/usage?function=greet&since=2000-01-01T00:00:00Z");
    ASSERT_EQ(past.status, 200) << past.body;
    EXPECT_EQ(past.json()["total"]["invocations"], successes) << past.body;

    // Lookups of functions that do not exist.
    EXPECT_TRUE(is_error(d.api("GET", "/v1/functions/nobody"), 404, "ResourceNotFoundException", {"nobody"}));
    EXPECT_TRUE(is_error(d.api("DELETE", "/v1/functions/nobody"), 404, "ResourceNotFoundException", {"nobody"}));
    EXPECT_TRUE(is_error(d.api("DELETE", "/v1/functions/bad.name"), 400, kBadParam, {"bad.name"}));
    auto list = d.api("GET", "/v1/functions").json()["functions"];
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["name"], "greet");
    EXPECT_EQ(list[0]["version"], 1);
    still_invokes("lookups");
}

}  // namespace
}  // namespace funcd::testing
