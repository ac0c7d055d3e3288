// What the daemon keeps on disk is its own user's only: the data directory holds every
// function's environment (in the database), the keys, the usage journal and the logs.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return static_cast<mode_t>(-1);
    return st.st_mode & 07777;
}

const char* kSecretEchoPy = "def handler(event, context):\n    print('secret-ish output')\n    return event\n";

TEST(DataDir, IsTheDaemonUsersOnly) {
    std::filesystem::path data;
    {
        Daemon d;
        d.keep_data_dir();
        data = d.data_dir();
        ASSERT_EQ(d.deploy("private", {{"runtime", "python3"}, {"handler", "app.handler"}, {"env", {{"TOKEN_X", "s3cr3t"}}}},
                           python_zip(kSecretEchoPy))
                      .status,
                  201);
        ASSERT_EQ(d.invoke("private").status, 200);
    }
    EXPECT_EQ(mode_of(data), 0700u) << "DATA_DIR";
    // (The harness gives the API token through FUNCD_API_TOKEN, so there is no api-token
    // file; the WAL may have been checkpointed away at shutdown.)
    for (const char* file : {"funcd.db", "aws-credentials", "env.keys", "logs/private.log"})
        EXPECT_EQ(mode_of(data / file), 0600u) << file;
    EXPECT_EQ(mode_of(data / "usage.journal"), 0700u) << "the journal's directory of segments";
    if (std::filesystem::exists(data / "funcd.db-wal")) {
        EXPECT_EQ(mode_of(data / "funcd.db-wal"), 0600u);
    }

    // A data directory from before (world-readable database and logs) is narrowed at start.
    ::chmod(data.c_str(), 0755);
    ::chmod((data / "funcd.db").c_str(), 0644);
    ::chmod((data / "logs/private.log").c_str(), 0644);
    {
        Daemon again({}, data);
        ASSERT_EQ(again.invoke("private").status, 200);
    }
    EXPECT_EQ(mode_of(data), 0700u);
    EXPECT_EQ(mode_of(data / "funcd.db"), 0600u);
    EXPECT_EQ(mode_of(data / "logs/private.log"), 0600u);
    std::system(("chmod -R u+w '" + data.string() + "' 2>/dev/null").c_str());
    std::error_code ec;
    std::filesystem::remove_all(data, ec);
}

// A function's environment is sealed in the database (AES-256-GCM, key in DATA_DIR/env.keys)
// and never written to the daemon's log, even at debug level; the function still sees it.
TEST(DataDir, EnvironmentSecretsAreNeitherInTheDatabaseNorInTheLog) {
    const std::string secret = "pa55-" + std::to_string(::getpid()) + "-word";
    Daemon d({"--log-level", "debug"});
    const char* kPrintEnvPy = "import os\ndef handler(event, context):\n    return os.environ['DB_PASS']\n";
    ASSERT_EQ(d.deploy("sealed", {{"runtime", "python3"}, {"handler", "app.handler"}, {"env", {{"DB_PASS", secret}}}},
                       python_zip(kPrintEnvPy))
                  .status,
              201);
    const auto r = d.invoke("sealed");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.json(), secret);
    EXPECT_EQ(d.api("GET", "/v1/functions/sealed").json()["env"]["DB_PASS"], secret) << "the API shows it to its owner";
    for (const char* file : {"funcd.db", "funcd.db-wal"}) {
        if (!std::filesystem::exists(d.data_dir() / file)) continue;
        EXPECT_EQ(read_file(d.data_dir() / file).find(secret), std::string::npos) << file << " holds the secret";
    }
    EXPECT_EQ(d.log().find(secret), std::string::npos) << "the daemon's log holds the secret";
}

// What a start that cannot use its data says, and that it leaves the data as it was.
std::string start_failure(const std::filesystem::path& data) {
    try {
        Daemon d({}, data);
        d.keep_data_dir();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(it started)";
}

TEST(DataDir, ASecondDaemonOnTheSameDataIsRefused) {
    Daemon first;
    const std::string why = start_failure(first.data_dir());
    EXPECT_NE(why.find("is in use by another funcd (pid " + std::to_string(first.pid()) + ")"), std::string::npos)
        << why;
    EXPECT_EQ(first.api("GET", "/v1/functions").status, 200) << "the first one is untouched";
}

TEST(DataDir, ADamagedDatabaseStopsTheStartAndIsLeftAsItWas) {
    const auto data = std::filesystem::temp_directory_path() / ("funcd-damaged-" + std::to_string(::getpid()));
    std::filesystem::create_directories(data);
    std::string garbage;
    for (int i = 0; i < 512; ++i) garbage += "this is not an SQLite database; ";
    { std::ofstream(data / "funcd.db", std::ios::binary) << garbage; }
    const std::string why = start_failure(data);
    EXPECT_NE(why.find("cannot be used"), std::string::npos) << why;
    EXPECT_NE(why.find("restore it from a backup"), std::string::npos) << why;
    EXPECT_EQ(read_file(data / "funcd.db"), garbage) << "funcd changed a database it could not read";
    std::filesystem::remove_all(data);
}

TEST(DataDir, ADatabaseLockedByAnotherProcessStopsTheStartWithThatReason) {
    std::filesystem::path data;
    {
        Daemon d;
        d.keep_data_dir();
        data = d.data_dir();
    }
    // Another process holds the write lock for longer than the daemon waits (5 s).
    const std::string holder = "python3 -c \"import sqlite3,time; c=sqlite3.connect('" + (data / "funcd.db").string() +
                               "', isolation_level=None); c.execute('BEGIN EXCLUSIVE'); open('" +
                               (data / "held").string() + "','w').close(); time.sleep(30)\" & echo $! > '" +
                               (data / "holder.pid").string() + "'";
    ASSERT_EQ(std::system(holder.c_str()), 0);
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(data / "held"); }, std::chrono::seconds(10)));
    const std::string why = start_failure(data);
    std::system(("kill $(cat '" + (data / "holder.pid").string() + "')").c_str());
    EXPECT_NE(why.find("is locked by another process"), std::string::npos) << why;
    std::system(("chmod -R u+w '" + data.string() + "' 2>/dev/null").c_str());
    std::filesystem::remove_all(data);
}

}  // namespace
}  // namespace funcd::testing
