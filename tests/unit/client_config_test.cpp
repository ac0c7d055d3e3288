// Where the CLI finds the daemon and its token, in order.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "funcd/cli/api_client.hpp"
#include "funcd/cli/cli_error.hpp"
#include "funcd/cli/client_config.hpp"

namespace funcd::cli {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-cli-config-XXXXXX").string();
        ASSERT_TRUE(::mkdtemp(tmpl.data()));
        root_ = tmpl;
        fs::create_directories(root_ / "work");
        env_["XDG_CONFIG_HOME"] = (root_ / "xdg").string();
    }
    void TearDown() override { fs::remove_all(root_); }

    ClientConfig discover(std::optional<std::string> endpoint_flag = {}, std::optional<std::string> token_flag = {}) {
        return discover_config({endpoint_flag, token_flag, getenv(), root_ / "work"});
    }
    GetEnv getenv() {
        return [this](const std::string& n) -> std::optional<std::string> {
            auto it = env_.find(n);
            return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
        };
    }
    void write_local_token(const std::string& token) {
        fs::create_directories(root_ / "work" / "data");
        std::ofstream(root_ / "work" / "data" / "api-token") << token << "\n";
    }
    fs::path config_path() const { return root_ / "xdg" / "funcd" / "config"; }

    fs::path root_;
    std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsWithNothingSet) {
    const ClientConfig c = discover();
    EXPECT_EQ(c.endpoint, "http://127.0.0.1:8080");
    EXPECT_EQ(c.endpoint_source, "default");
    EXPECT_EQ(c.token, "");
    EXPECT_EQ(c.token_source, "");
}

TEST_F(ConfigTest, TokenOrderFlagThenEnvThenLocalFileThenLogin) {
    write_config_file(config_path(), {"http://remote:9000", "from-login"});
    EXPECT_EQ(discover().token, "from-login");
    EXPECT_EQ(discover().token_source, config_path().string());

    write_local_token("from-data-dir");
    EXPECT_EQ(discover().token, "from-data-dir") << "./data/api-token comes before the login file";
    EXPECT_EQ(discover().token_source, "./data/api-token");

    env_["FUNCD_API_TOKEN"] = "from-env";
    EXPECT_EQ(discover().token, "from-env");
    EXPECT_EQ(discover().token_source, "FUNCD_API_TOKEN");

    EXPECT_EQ(discover({}, "from-flag").token, "from-flag");
    EXPECT_EQ(discover({}, "from-flag").token_source, "--token");
}

TEST_F(ConfigTest, EndpointOrderFlagThenEnvThenLogin) {
    write_config_file(config_path(), {"http://remote:9000", std::nullopt});
    EXPECT_EQ(discover().endpoint, "http://remote:9000");
    env_["FUNCD_ENDPOINT"] = "http://env:1";
    EXPECT_EQ(discover().endpoint, "http://env:1");
    EXPECT_EQ(discover().endpoint_source, "FUNCD_ENDPOINT");
    EXPECT_EQ(discover("http://flag:2").endpoint, "http://flag:2");
}

TEST_F(ConfigTest, ConfigFileIsPrivateAndRoundTrips) {
    write_config_file(config_path(), {"http://h:1", "secret"});
    struct stat st {};
    ASSERT_EQ(::stat(config_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
    const StoredConfig back = read_config_file(config_path());
    EXPECT_EQ(back.endpoint, "http://h:1");
    EXPECT_EQ(back.token, "secret");

    // Rewritten over a file others could read: the result is private again.
    ::chmod(config_path().c_str(), 0644);
    write_config_file(config_path(), {"http://h:2", "other"});
    ASSERT_EQ(::stat(config_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
    EXPECT_EQ(read_config_file(config_path()).token, "other");
}

TEST_F(ConfigTest, ConfigPathFallsBackToHome) {
    env_.erase("XDG_CONFIG_HOME");
    env_["HOME"] = "/home/someone";
    EXPECT_EQ(config_file_path(getenv()), fs::path("/home/someone/.config/funcd/config"));
    env_.erase("HOME");
    EXPECT_FALSE(config_file_path(getenv()));
}

TEST_F(ConfigTest, BrokenConfigFileIsNamed) {
    fs::create_directories(config_path().parent_path());
    std::ofstream(config_path()) << "endpoint=http://x\nnonsense\n";
    try {
        discover();
        FAIL();
    } catch (const CliError& e) {
        EXPECT_EQ(e.code(), ExitCode::usage);
        EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    }
}

TEST(Endpoint, Parses) {
    auto e = Endpoint::parse("http://127.0.0.1:8080/");
    EXPECT_EQ(e.host, "127.0.0.1");
    EXPECT_EQ(e.port, "8080");
    EXPECT_EQ(e.base_path, "");
    EXPECT_EQ(e.url, "http://127.0.0.1:8080");
    e = Endpoint::parse("localhost:9000");
    EXPECT_EQ(e.host, "localhost");
    EXPECT_EQ(e.url, "http://localhost:9000");
    e = Endpoint::parse("http://faas.example/funcd/");
    EXPECT_EQ(e.port, "80");
    EXPECT_EQ(e.base_path, "/funcd");
    e = Endpoint::parse("http://[::1]:8080");
    EXPECT_EQ(e.host, "::1");
    EXPECT_THROW(Endpoint::parse("https://h"), CliError);
    EXPECT_THROW(Endpoint::parse("http://"), CliError);
    EXPECT_THROW(Endpoint::parse("http://h/?x=1"), CliError);
}

}  // namespace
}  // namespace funcd::cli
