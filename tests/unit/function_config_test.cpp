#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/base64.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/registry/function_config.hpp"

using namespace funcd;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Runs `f`, which must throw ApiError with `status` and a message containing `needle`.
template <class F>
void expect_api_error(F&& f, const std::string& needle, int status = 400) {
    try {
        f();
        ADD_FAILURE() << "no ApiError; expected one mentioning '" << needle << "'";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), status) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "message '" << e.what() << "' does not mention '" << needle << "'";
    }
}

DeployRequest from_json(const json& body) { return parse_deploy_json("fn", body.dump()); }

void expect_json_rejected(json body, const std::string& needle, int status = 400) {
    expect_api_error([&] { from_json(body); }, needle, status);
}

using Params = std::vector<std::pair<std::string, std::string>>;

void expect_query_rejected(const Params& params, const std::string& needle) {
    expect_api_error([&] { parse_deploy_query("fn", params, "PK-zip"); }, needle);
}

FunctionConfig valid_config() {
    FunctionConfig c;
    c.name = "fn";
    c.runtime = Runtime::python3;
    c.handler = "lambda_function.lambda_handler";
    return c;
}

}  // namespace

TEST(Runtime, RoundTripsNames) {
    EXPECT_EQ(to_string(Runtime::python3), "python3");
    EXPECT_EQ(to_string(Runtime::provided), "provided");
    EXPECT_EQ(to_string(Runtime::nodejs), "nodejs");
    EXPECT_EQ(runtime_family("python3"), Runtime::python3);
    EXPECT_EQ(runtime_family("nodejs"), Runtime::nodejs);
    EXPECT_EQ(runtime_family("provided"), Runtime::provided);
}

TEST(Runtime, KnowsLambdasIdentifiers) {
    for (const char* id : {"python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14"})
        EXPECT_EQ(runtime_family(id), Runtime::python3) << id;
    for (const char* id : {"provided.al2", "provided.al2023"}) EXPECT_EQ(runtime_family(id), Runtime::provided) << id;
    for (const char* id : {"nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x"})
        EXPECT_EQ(runtime_family(id), Runtime::nodejs) << id;
    EXPECT_EQ(requested_node_major("nodejs18.x"), 18);
    EXPECT_EQ(requested_node_major("nodejs24.x"), 24);
    EXPECT_FALSE(requested_node_major("nodejs"));
    EXPECT_FALSE(requested_node_major("python3.12"));
    EXPECT_EQ(requested_python_version("python3.12"), "3.12");
    EXPECT_FALSE(requested_python_version("python3"));
    EXPECT_FALSE(requested_python_version("provided.al2"));
    // Case-sensitive, as Lambda's are; unknown and retired ones are not run.
    for (const char* id : {"Provided", "PYTHON3.9", "python3.8", "python2.7", "java21", "nodejs16.x",
                           "nodejs14.x", "NodeJS20.x", "nodejs20", ""})
        EXPECT_FALSE(runtime_family(id)) << id;
    EXPECT_TRUE(is_deprecated_runtime("python2.7"));
    EXPECT_TRUE(is_deprecated_runtime("go1.x"));
    EXPECT_FALSE(is_deprecated_runtime("java21"));
    EXPECT_FALSE(is_deprecated_runtime("provided"));
    // Lambda retired plain `nodejs`: its API refuses it, while /v1 runs it on the host's Node.js.
    EXPECT_TRUE(is_deprecated_runtime("nodejs"));
    EXPECT_FALSE(is_deprecated_runtime("nodejs20.x"));
}

TEST(FunctionName, AcceptsOnlyLambdaStyleNames) {
    EXPECT_NO_THROW(validate_function_name("my-func_01"));
    EXPECT_NO_THROW(validate_function_name(std::string(64, 'a')));
    for (std::string bad : {std::string(), std::string(65, 'a'), std::string("a b"), std::string("a/b"),
                            std::string(".."), std::string("fn\n"), std::string("caf\xc3\xa9")})
        expect_api_error([&] { validate_function_name(bad); }, "function name");
}

TEST(DeployJson, AppliesDefaults) {
    const auto py = from_json({{"runtime", "python3"}});
    EXPECT_EQ(py.config.name, "fn");
    EXPECT_EQ(py.config.runtime, Runtime::python3);
    EXPECT_EQ(py.config.handler, "lambda_function.lambda_handler");
    EXPECT_EQ(py.config.memory_mb, 128);
    EXPECT_EQ(py.config.timeout_s, 3);
    EXPECT_EQ(py.config.keep_alive_s, 600);
    EXPECT_TRUE(py.config.env.empty());
    EXPECT_EQ(py.config.description, "");
    EXPECT_FALSE(py.code_zip);

    EXPECT_EQ(from_json({{"runtime", "provided"}}).config.handler, "bootstrap");
}

TEST(DeployJson, ReadsEveryField) {
    const auto req = from_json({{"runtime", "python3"},
                                {"handler", "pkg/app.main"},
                                {"memory_mb", 10240},
                                {"timeout_s", 900},
                                {"keep_alive_s", 1},
                                {"env", {{"STAGE", "prod"}, {"Db_Url", "x=y"}}},
                                {"description", "hello"},
                                {"code", {{"zip_base64", base64_encode("PK\x03\x04zip")}}}});
    const auto& c = req.config;
    EXPECT_EQ(c.handler, "pkg/app.main");
    EXPECT_EQ(c.memory_mb, 10240);
    EXPECT_EQ(c.timeout_s, 900);
    EXPECT_EQ(c.keep_alive_s, 1);
    EXPECT_EQ(c.env, (std::map<std::string, std::string>{{"STAGE", "prod"}, {"Db_Url", "x=y"}}));
    EXPECT_EQ(c.description, "hello");
    ASSERT_TRUE(req.code_zip);
    EXPECT_EQ(*req.code_zip, "PK\x03\x04zip");
}

TEST(DeployJson, RejectsNonObjectBodies) {
    for (const char* body : {"", "not json", "[1,2]", "\"python3\"", "{\"runtime\":"}) {
        try {
            parse_deploy_json("fn", body);
            ADD_FAILURE() << body;
        } catch (const ApiError& e) {
            EXPECT_EQ(e.status(), 400);
            EXPECT_EQ(e.type(), "InvalidRequestContentException") << body;
        }
    }
}

TEST(DeployJson, RejectsBadName) {
    expect_api_error([] { parse_deploy_json("bad name", R"({"runtime":"python3"})"); }, "function name");
}

TEST(DeployJson, RequiresAValidRuntime) {
    expect_json_rejected(json::object(), "runtime");
    expect_json_rejected({{"runtime", "node"}}, "runtime must be one of python3, python3.9,");
    expect_json_rejected({{"runtime", "java21"}}, "provided.al2023 (got 'java21')");
    expect_json_rejected({{"runtime", 3}}, "runtime");
}

TEST(DeployJson, RejectsIntegersOfTheWrongTypeOrRange) {
    const std::vector<std::pair<std::string, std::string>> fields = {
        {"memory_mb", "from 128 to 10240"}, {"timeout_s", "from 1 to 900"}, {"keep_alive_s", "from 1 to 86400"}};
    for (const auto& [field, range] : fields) {
        for (json bad : {json("big"), json(12.5), json(true), json(nullptr), json::array(), json(-1), json(0),
                         json(100000), json(std::uint64_t{1} << 63), json(std::int64_t{-1} << 40)}) {
            json body = {{"runtime", "python3"}, {field, bad}};
            expect_json_rejected(body, field + " must be an integer " + range);
        }
    }
    expect_json_rejected({{"runtime", "python3"}, {"memory_mb", 64}}, "memory_mb must be an integer from 128 to 10240 (got 64)");
    expect_json_rejected({{"runtime", "python3"}, {"memory_mb", "big"}}, "(got a string)");
}

TEST(DeployJson, RejectsMistypedStrings) {
    expect_json_rejected({{"runtime", "python3"}, {"handler", 5}}, "handler must be a string");
    expect_json_rejected({{"runtime", "python3"}, {"handler", ""}}, "handler");
    expect_json_rejected({{"runtime", "python3"}, {"description", json::array()}}, "description must be a string");
    expect_json_rejected({{"runtime", "python3"}, {"description", std::string(257, 'd')}}, "description");
    EXPECT_NO_THROW(from_json({{"runtime", "python3"}, {"description", std::string(256, 'd')}}));
}

TEST(DeployJson, RejectsBadEnv) {
    expect_json_rejected({{"runtime", "python3"}, {"env", "A=B"}}, "env must be an object");
    expect_json_rejected({{"runtime", "python3"}, {"env", {{"COUNT", 3}}}}, "env.COUNT must be a string");
    expect_json_rejected({{"runtime", "python3"}, {"env", {{"AWS_REGION", "x"}}}}, "AWS_REGION");
    expect_json_rejected({{"runtime", "python3"}, {"env", {{"1ABC", "x"}}}}, "env key '1ABC'");
}

TEST(DeployJson, RejectsBadCode) {
    expect_json_rejected({{"runtime", "python3"}, {"code", "UEsDBA=="}}, "code must be an object");
    expect_json_rejected({{"runtime", "python3"}, {"code", json::object()}}, "zip_base64");
    expect_json_rejected({{"runtime", "python3"}, {"code", {{"zip_base64", "UEsDBA=="}, {"s3", "x"}}}}, "code");
    expect_json_rejected({{"runtime", "python3"}, {"code", {{"zip_base64", 7}}}}, "code.zip_base64");
    expect_json_rejected({{"runtime", "python3"}, {"code", {{"zip_base64", "not base64!"}}}}, "code.zip_base64");
}

TEST(DeployJson, RejectsOversizedZip) {
    // Built as text: "AAAA" decodes to three zero bytes, so this is one quantum past the limit.
    const std::string body = R"({"runtime":"provided","code":{"zip_base64":")" +
                             std::string((limits::kMaxZipBytes / 3 + 1) * 4, 'A') + "\"}}";
    expect_api_error([&] { parse_deploy_json("fn", body); }, "limit", 413);
}

TEST(DeployJson, RejectsUnknownFields) {
    expect_json_rejected({{"runtime", "python3"}, {"memory", 256}}, "unknown field 'memory'");
}

TEST(DeployQuery, ReadsParametersAndZip) {
    const auto req = parse_deploy_query("fn",
                                        {{"runtime", "provided"},
                                         {"memory_mb", "256"},
                                         {"timeout_s", "30"},
                                         {"keep_alive_s", "86400"},
                                         {"description", "d"},
                                         {"env.STAGE", "prod"},
                                         {"env.EMPTY", ""}},
                                        "PKzip");
    const auto& c = req.config;
    EXPECT_EQ(c.runtime, Runtime::provided);
    EXPECT_EQ(c.handler, "bootstrap");
    EXPECT_EQ(c.memory_mb, 256);
    EXPECT_EQ(c.timeout_s, 30);
    EXPECT_EQ(c.keep_alive_s, 86400);
    EXPECT_EQ(c.description, "d");
    EXPECT_EQ(c.env, (std::map<std::string, std::string>{{"STAGE", "prod"}, {"EMPTY", ""}}));
    EXPECT_EQ(req.code_zip, "PKzip");

    const auto py = parse_deploy_query("fn", {{"runtime", "python3"}, {"handler", "app.run"}}, "PKzip");
    EXPECT_EQ(py.config.handler, "app.run");
    EXPECT_EQ(py.config.memory_mb, 128);
}

TEST(DeployQuery, ParsesIntegersStrictly) {
    for (const char* bad : {"", "+256", "-256", " 256", "256 ", "256x", "0x100", "2.5e2", "1e3",
                            "99999999999999999999999999", "127", "10241"})
        expect_query_rejected({{"runtime", "python3"}, {"memory_mb", bad}}, "memory_mb must be an integer");
    expect_query_rejected({{"runtime", "python3"}, {"timeout_s", "0"}}, "timeout_s");
    expect_query_rejected({{"runtime", "python3"}, {"keep_alive_s", "86401"}}, "keep_alive_s");
}

TEST(DeployQuery, RejectsBadParameters) {
    expect_query_rejected({}, "runtime");
    expect_query_rejected({{"runtime", "java"}}, "runtime");
    expect_query_rejected({{"runtime", "python3"}, {"color", "red"}}, "unknown parameter 'color'");
    expect_query_rejected({{"runtime", "python3"}, {"runtime", "provided"}}, "runtime");
    expect_query_rejected({{"runtime", "python3"}, {"env.", "x"}}, "env key");
    expect_query_rejected({{"runtime", "python3"}, {"env._HANDLER", "x"}}, "_HANDLER");
    expect_query_rejected({{"runtime", "python3"}, {"handler", "../x.y"}}, "handler");
    expect_api_error([] { parse_deploy_query("fn", {{"runtime", "python3"}}, ""); },
                     "the request body must be the function's zip");
    expect_api_error([] { parse_deploy_query("a.b", {{"runtime", "python3"}}, "PK"); }, "function name");
}

// Query values are bytes once percent-decoded, but settings are stored and described as JSON,
// whose strings are UTF-8: text that is not is refused, not stored to fail every later read.
TEST(DeployQuery, RefusesTextThatIsNotUtf8) {
    expect_query_rejected({{"runtime", "python3"}, {"description", "caf\xE9"}}, "description must be UTF-8");
    expect_query_rejected({{"runtime", "python3"}, {"env.GREETING", "\xFF"}}, "env.GREETING must be UTF-8");
    expect_query_rejected({{"runtime", "provided"}, {"handler", "run\xC3"}}, "UTF-8");
    // Well-formed UTF-8 is text like any other.
    const auto ok = parse_deploy_query("fn", {{"runtime", "python3"}, {"description", "caf\xC3\xA9"}}, "PK");
    EXPECT_EQ(ok.config.description, "caf\xC3\xA9");
}

TEST(ValidateConfig, RejectsOutOfRangeValues) {
    auto c = valid_config();
    EXPECT_NO_THROW(validate_config(c));
    c.memory_mb = 64;
    expect_api_error([&] { validate_config(c); }, "memory_mb must be an integer from 128 to 10240 (got 64)");
    c = valid_config();
    c.timeout_s = 901;
    expect_api_error([&] { validate_config(c); }, "timeout_s");
    c = valid_config();
    c.keep_alive_s = 0;
    expect_api_error([&] { validate_config(c); }, "keep_alive_s");
}

TEST(ValidateConfig, RejectsEveryReservedEnvKey) {
    for (const char* key :
         {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
          "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
          "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
          "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
          "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}) {
        auto c = valid_config();
        c.env[key] = "v";
        expect_api_error([&] { validate_config(c); }, key);
    }
    auto c = valid_config();
    c.env["AWS_PROFILE_NAME"] = "ok";  // only the listed names are reserved
    EXPECT_NO_THROW(validate_config(c));
}

TEST(ValidateConfig, ChecksEnvKeysAndValues) {
    for (const char* good : {"ab", "A1", "my_var", "PATH_2"}) {
        auto c = valid_config();
        c.env[good] = "v";
        EXPECT_NO_THROW(validate_config(c)) << good;
    }
    for (std::string bad : {std::string("A"), std::string("_A"), std::string("1A"), std::string("A-B"),
                            std::string("A B"), std::string("A.B"), std::string("A\0B", 3)}) {
        auto c = valid_config();
        c.env[bad] = "v";
        expect_api_error([&] { validate_config(c); }, "env key");
    }
    auto c = valid_config();
    c.env["KEY"] = std::string("a\0b", 3);
    expect_api_error([&] { validate_config(c); }, "env.KEY");
}

TEST(ValidateConfig, LimitsEnvToFourKilobytes) {
    auto c = valid_config();
    c.env["AA"] = std::string(limits::kMaxEnvBytes - 2, 'v');  // key + value == limit
    EXPECT_NO_THROW(validate_config(c));
    c.env["AA"].push_back('v');
    expect_api_error([&] { validate_config(c); }, "env");
    c = valid_config();
    c.env["AA"] = std::string(2000, 'v');
    c.env["BB"] = std::string(2000, 'v');
    c.env["CC"] = std::string(100, 'v');
    expect_api_error([&] { validate_config(c); }, "the limit is 4096");
}

TEST(ValidateConfig, ChecksPythonHandlerShape) {
    for (const char* good : {"lambda_function.lambda_handler", "app.main", "pkg/app.main", "pkg.sub.mod.fn",
                             "my-pkg/mod_1.handler", "a/b.c._private", "mod.F2"}) {
        auto c = valid_config();
        c.handler = good;
        EXPECT_NO_THROW(validate_config(c)) << good;
    }
    for (const char* bad : {"", "handler", ".fn", "mod.", "mod.1fn", "mod.fn-x", "/abs/mod.fn", "../mod.fn",
                            "a/../mod.fn", "a//b.fn", "a..b.fn", "mod.fn()", "mo d.fn", "mod/.fn"}) {
        auto c = valid_config();
        c.handler = bad;
        expect_api_error([&] { validate_config(c); }, "handler");
    }
    auto c = valid_config();
    c.handler = std::string(130, 'm') + ".fn";
    expect_api_error([&] { validate_config(c); }, "handler");
}

TEST(ValidateConfig, ChecksProvidedHandler) {
    auto c = valid_config();
    c.runtime = Runtime::provided;
    for (const char* good : {"bootstrap", "anything goes.here", "x"}) {
        c.handler = good;
        EXPECT_NO_THROW(validate_config(c)) << good;
    }
    for (std::string bad : {std::string(), std::string("a\nb"), std::string("tab\t"), std::string(129, 'h')}) {
        c.handler = bad;
        expect_api_error([&] { validate_config(c); }, "handler");
    }
}

TEST(ValidateConfig, ChecksNodeHandlerShape) {
    auto c = valid_config();
    c.runtime = Runtime::nodejs;
    c.runtime_id = "nodejs20.x";
    for (const char* good : {"index.handler", "src/app.api.v1.get", "lib/handler.mjs.fn", "a-b/c_d.$x", "i.h"}) {
        c.handler = good;
        EXPECT_NO_THROW(validate_config(c)) << good;
    }
    // What the runtime would refuse as Runtime.MalformedHandlerName, and Lambda's [^\s]+.
    for (const char* bad : {"", "index", ".handler", "src/.handler", "index.", "../index.handler",
                            "a/../index.handler", "index..handler", "in dex.handler", "index.han\tdler"}) {
        c.handler = bad;
        expect_api_error([&] { validate_config(c); }, "is invalid for runtime nodejs20.x");
    }
}

TEST(ValidateConfig, DefaultHandlersAreLambdas) {
    EXPECT_EQ(default_handler(Runtime::python3), "lambda_function.lambda_handler");
    EXPECT_EQ(default_handler(Runtime::nodejs), "index.handler");
    EXPECT_EQ(default_handler(Runtime::provided), "bootstrap");
}

class CodeForRuntime : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("funcd-cfg-" + random_hex(6));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& rel, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
        const auto p = dir_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << "x";
        fs::permissions(p, perms);
    }
    FunctionConfig config(Runtime r, const std::string& handler) {
        auto c = valid_config();
        c.runtime = r;
        c.handler = handler;
        return c;
    }

    fs::path dir_;
};

TEST_F(CodeForRuntime, ProvidedNeedsExecutableBootstrap) {
    const auto c = config(Runtime::provided, "bootstrap");
    const std::string msg = "runtime provided needs an executable file named 'bootstrap' at the root of the zip";
    expect_api_error([&] { validate_code_for_runtime(c, dir_); }, msg);
    write("bootstrap");
    expect_api_error([&] { validate_code_for_runtime(c, dir_); }, msg);
    fs::permissions(dir_ / "bootstrap", fs::perms::owner_exec, fs::perm_options::add);
    EXPECT_NO_THROW(validate_code_for_runtime(c, dir_));
}

TEST_F(CodeForRuntime, ProvidedRejectsDirectoryAndAcceptsSymlink) {
    const auto c = config(Runtime::provided, "bootstrap");
    fs::create_directory(dir_ / "bootstrap");
    expect_api_error([&] { validate_code_for_runtime(c, dir_); }, "bootstrap");
    fs::remove(dir_ / "bootstrap");
    write("bin/real", fs::perms::owner_all);
    fs::create_symlink("bin/real", dir_ / "bootstrap");
    EXPECT_NO_THROW(validate_code_for_runtime(c, dir_));
}

TEST_F(CodeForRuntime, PythonNeedsTheHandlerModule) {
    expect_api_error([&] { validate_code_for_runtime(config(Runtime::python3, "lambda_function.handler"), dir_); },
                     "handler 'lambda_function.handler': module file lambda_function.py not found in the zip");
    write("lambda_function.py");
    EXPECT_NO_THROW(validate_code_for_runtime(config(Runtime::python3, "lambda_function.handler"), dir_));

    expect_api_error([&] { validate_code_for_runtime(config(Runtime::python3, "a/b.c.fn"), dir_); },
                     "module file a/b/c.py not found in the zip");
    write("a/b/c.py");
    EXPECT_NO_THROW(validate_code_for_runtime(config(Runtime::python3, "a/b.c.fn"), dir_));

    write("pkg/__init__.py");
    EXPECT_NO_THROW(validate_code_for_runtime(config(Runtime::python3, "pkg.fn"), dir_));
    fs::create_directories(dir_ / "empty");
    expect_api_error([&] { validate_code_for_runtime(config(Runtime::python3, "empty.fn"), dir_); }, "empty.py");
}

TEST_F(CodeForRuntime, NodeModuleIsLeftToTheRuntime) {
    // It may be a package of node_modules or a layer's: the runtime resolves it, and a
    // missing one is Runtime.ImportModuleError at invoke.
    EXPECT_NO_THROW(validate_code_for_runtime(config(Runtime::nodejs, "index.handler"), dir_));
}

TEST(Describe, ReportsEveryField) {
    FunctionVersion v;
    v.config = valid_config();
    v.config.env = {{"STAGE", "prod"}};
    v.config.description = "desc";
    v.version = 7;
    v.code_sha256 = std::string(64, 'a');
    v.code_size = 1234;
    v.last_modified = SystemTime{std::chrono::milliseconds(1'795'000'000'123)};
    const json d = describe(v);
    EXPECT_EQ(d["name"], "fn");
    EXPECT_EQ(d["runtime"], "python3");
    EXPECT_EQ(d["handler"], "lambda_function.lambda_handler");
    EXPECT_EQ(d["memory_mb"], 128);
    EXPECT_EQ(d["timeout_s"], 3);
    EXPECT_EQ(d["env"], json({{"STAGE", "prod"}}));
    EXPECT_EQ(d["keep_alive_s"], 600);
    EXPECT_EQ(d["description"], "desc");
    EXPECT_EQ(d["version"], 7);
    EXPECT_EQ(d["code_sha256"], std::string(64, 'a'));
    EXPECT_EQ(d["code_size"], 1234);
    EXPECT_EQ(d["last_modified"], format_rfc3339(v.last_modified));
    EXPECT_EQ(d["ephemeral_storage_mb"], 512);
    EXPECT_EQ(d["network"], "none");
    EXPECT_EQ(d["keep_alive"], "fixed");
    EXPECT_TRUE(d["reserved_concurrency"].is_null());
    EXPECT_EQ(d["provisioned_concurrency"], 0);
    EXPECT_EQ(d["url_auth"], "token");
    EXPECT_EQ(d["cors"]["allow_origins"], json::array());
    EXPECT_EQ(d["architecture"], "x86_64");
    EXPECT_EQ(d["layers"], json::array());
    EXPECT_EQ(d["invoke_mode"], "BUFFERED");
    EXPECT_EQ(d["log_format"], "Text");
    EXPECT_TRUE(d["application_log_level"].is_null());
    EXPECT_TRUE(d["system_log_level"].is_null());
    EXPECT_EQ(d["preload"], json::array());
    EXPECT_EQ(d.size(), 26u);
}

TEST(DeployJson, ConcurrencyAndKeepAliveSettings) {
    auto r = parse_deploy_json(
        "fn", R"({"runtime": "python3", "reserved_concurrency": 5, "provisioned_concurrency": 2, "keep_alive": "adaptive"})");
    EXPECT_EQ(r.config.concurrency.reserved, 5);
    EXPECT_EQ(r.config.concurrency.provisioned, 2);
    EXPECT_EQ(r.config.keep_alive_mode, funcd::KeepAliveMode::adaptive);
    EXPECT_TRUE(r.concurrency_given);

    auto plain = parse_deploy_json("fn", R"({"runtime": "python3"})");
    EXPECT_FALSE(plain.concurrency_given) << "omitted: the function keeps what it had";
    EXPECT_FALSE(plain.config.concurrency.reserved);
    EXPECT_EQ(plain.config.keep_alive_mode, funcd::KeepAliveMode::fixed);

    auto unset = parse_deploy_json("fn", R"({"runtime": "python3", "reserved_concurrency": null})");
    EXPECT_TRUE(unset.concurrency_given);
    EXPECT_FALSE(unset.config.concurrency.reserved);

    expect_api_error([] { parse_deploy_json("fn", R"({"runtime": "python3", "keep_alive": "lru"})"); },
                         "keep_alive");
    expect_api_error([] { parse_deploy_json("fn", R"({"runtime": "python3", "reserved_concurrency": -1})"); },
                         "reserved_concurrency");
    expect_api_error(
        [] { parse_deploy_json("fn", R"({"runtime": "python3", "provisioned_concurrency": 1.5})"); },
        "provisioned_concurrency");
    expect_api_error(
        [] {
            parse_deploy_json("fn",
                              R"({"runtime": "python3", "reserved_concurrency": 1, "provisioned_concurrency": 2})");
        },
        "provisioned_concurrency");
}

TEST(DeployQuery, ConcurrencySettings) {
    auto r = parse_deploy_query(
        "fn", {{"runtime", "provided"}, {"reserved_concurrency", "3"}, {"provisioned_concurrency", "1"}}, "zip");
    EXPECT_EQ(r.config.concurrency.reserved, 3);
    EXPECT_EQ(r.config.concurrency.provisioned, 1);
    EXPECT_TRUE(r.concurrency_given);
    expect_api_error(
        [] { parse_deploy_query("fn", {{"runtime", "provided"}, {"reserved_concurrency", "+3"}}, "zip"); },
        "reserved_concurrency");
}

TEST(ConcurrencyJson, OmittedFieldsKeepTheirValues) {
    funcd::ConcurrencySettings current{4, 1};
    auto c = funcd::parse_concurrency_json(R"({"provisioned_concurrency": 2})", current);
    EXPECT_EQ(c.reserved, 4);
    EXPECT_EQ(c.provisioned, 2);
    c = funcd::parse_concurrency_json(R"({"reserved_concurrency": null})", current);
    EXPECT_FALSE(c.reserved);
    expect_api_error([&] { funcd::parse_concurrency_json(R"({"reserved": 1})", current); }, "reserved");
    EXPECT_THROW(funcd::parse_concurrency_json("[1]", current), funcd::ApiError);

    expect_api_error([] { funcd::validate_concurrency({std::nullopt, 11}, 10); }, "--max-concurrency 10");
    expect_api_error([] { funcd::validate_concurrency({11, 0}, 10); }, "--max-concurrency 10");
    EXPECT_NO_THROW(funcd::validate_concurrency({10, 10}, 10));
}

TEST(DeployJson, SandboxSettings) {
    auto r = parse_deploy_json("fn", R"({"runtime": "python3", "ephemeral_storage_mb": 1024, "network": "host"})");
    EXPECT_EQ(r.config.ephemeral_storage_mb, 1024);
    EXPECT_EQ(r.config.network, NetworkMode::host);
    auto defaults = parse_deploy_json("fn", R"({"runtime": "python3"})");
    EXPECT_EQ(defaults.config.ephemeral_storage_mb, 512);
    EXPECT_EQ(defaults.config.network, NetworkMode::none);
    for (const char* bad : {R"({"runtime": "python3", "ephemeral_storage_mb": 511})",
                            R"({"runtime": "python3", "ephemeral_storage_mb": 10241})",
                            R"({"runtime": "python3", "network": "bridge"})",
                            R"({"runtime": "python3", "network": 1})"}) {
        try {
            parse_deploy_json("fn", bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const ApiError& e) {
            EXPECT_EQ(e.status(), 400) << bad;
            const std::string m = e.what();
            EXPECT_TRUE(m.find("ephemeral_storage_mb") != std::string::npos || m.find("network") != std::string::npos)
                << m;
        }
    }
    auto q = parse_deploy_query("fn", {{"runtime", "provided"}, {"ephemeral_storage_mb", "2048"}, {"network", "none"}},
                                "zip");
    EXPECT_EQ(q.config.ephemeral_storage_mb, 2048);
}

namespace {

// The first 20 bytes of a little-endian ELF executable for `machine` (e_machine).
std::string elf_head(std::uint16_t machine) {
    std::string h(20, '\0');
    h[0] = 0x7f, h[1] = 'E', h[2] = 'L', h[3] = 'F';
    h[4] = 2;  // 64-bit
    h[5] = 1;  // little-endian
    h[18] = static_cast<char>(machine & 0xff);
    h[19] = static_cast<char>(machine >> 8);
    return h + std::string(64, '\0');
}

}  // namespace

TEST_F(CodeForRuntime, AnElfBootstrapMustBeForTheHostsArchitecture) {
    auto c = config(Runtime::provided, "bootstrap");
    c.architecture = std::string(host_architecture());
    const bool arm_host = host_architecture() == "arm64";
    const std::uint16_t other = arm_host ? 62 : 183, own = arm_host ? 183 : 62;  // EM_X86_64, EM_AARCH64
    const std::string other_name = arm_host ? "x86_64" : "arm64";
    std::ofstream(dir_ / "bootstrap", std::ios::binary) << elf_head(other);
    fs::permissions(dir_ / "bootstrap", fs::perms::owner_all);
    expect_api_error([&] { validate_code_for_runtime(c, dir_); },
                     "bootstrap is an ELF executable for " + other_name);
    // Lambda's own API checks the architecture too, even though it leaves the entry point alone.
    expect_api_error([&] { validate_code_for_runtime(c, dir_, {}, CodeCheck::architecture_only); }, other_name);
    std::ofstream(dir_ / "bootstrap", std::ios::binary | std::ios::trunc) << elf_head(own);
    EXPECT_NO_THROW(validate_code_for_runtime(c, dir_));
    // A script is no ELF: nothing to check.
    std::ofstream(dir_ / "bootstrap", std::ios::trunc) << "#!/bin/sh\n";
    EXPECT_NO_THROW(validate_code_for_runtime(c, dir_));
}

TEST_F(CodeForRuntime, ABootstrapMayComeFromTheLayers) {
    const auto c = config(Runtime::provided, "bootstrap");
    const fs::path opt = dir_ / "opt";
    fs::create_directories(opt);
    std::ofstream(opt / "bootstrap") << "#!/bin/sh\n";
    fs::permissions(opt / "bootstrap", fs::perms::owner_all);
    fs::create_directories(dir_ / "task");
    EXPECT_NO_THROW(validate_code_for_runtime(c, dir_ / "task", opt));
    expect_api_error([&] { validate_code_for_runtime(c, dir_ / "task"); }, "bootstrap");
    // Lambda's API accepts a zip without one: Runtime.InvalidEntrypoint when it is invoked.
    EXPECT_NO_THROW(validate_code_for_runtime(c, dir_ / "task", {}, CodeCheck::architecture_only));
}

TEST(DeployJson, PreloadNamesPythonModulesOfAPythonFunction) {
    const auto req = from_json({{"runtime", "python3"}, {"preload", {"numpy", "PIL.Image", "_x1.y_2"}}});
    EXPECT_EQ(req.config.preload, (std::vector<std::string>{"numpy", "PIL.Image", "_x1.y_2"}));
    const auto query = parse_deploy_query("fn", {{"runtime", "python3"}, {"preload", "numpy,PIL.Image"}}, "PK\x03\x04");
    EXPECT_EQ(query.config.preload, (std::vector<std::string>{"numpy", "PIL.Image"}));

    expect_json_rejected({{"runtime", "nodejs"}, {"preload", {"fs"}}}, "preload is for python3 functions");
    expect_json_rejected({{"runtime", "python3"}, {"preload", "numpy"}}, "preload must be an array");
    expect_json_rejected({{"runtime", "python3"}, {"preload", {1}}}, "preload[]");
    for (const char* bad : {"", "1numpy", "numpy.", ".numpy", "a..b", "os;rm", "a b", "../x", "x-y"})
        expect_json_rejected({{"runtime", "python3"}, {"preload", {bad}}}, "is not a Python module name");
    expect_json_rejected({{"runtime", "python3"}, {"preload", {"json", "json"}}}, "named twice");
    json many = json::array();
    for (int i = 0; i < 17; ++i) many.push_back("m" + std::to_string(i));
    expect_json_rejected({{"runtime", "python3"}, {"preload", many}}, "at most 16");
}
