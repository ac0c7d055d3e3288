// What the daemon keeps on disk is its own user's only: the data directory holds every
// function's environment (in the database), the keys, the usage journal and the logs.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return static_cast<mode_t>(-1);
    return st.st_mode & 07777;
}

const char* kEchoPy = "def handler(event, context):\n    print('secret-ish output')\n    return event\n";

TEST(DataDir, IsTheDaemonUsersOnly) {
    std::filesystem::path data;
    {
        Daemon d;
        d.keep_data_dir();
        data = d.data_dir();
        ASSERT_EQ(d.deploy("private", {{"runtime", "python3"}, {"handler", "app.handler"}, {"env", {{"TOKEN_X", "s3cr3t"}}}},
                           python_zip(kEchoPy))
                      .status,
                  201);
        ASSERT_EQ(d.invoke("private").status, 200);
    }
    EXPECT_EQ(mode_of(data), 0700u) << "DATA_DIR";
    // (The harness gives the API token through FUNCD_API_TOKEN, so there is no api-token
    // file; the WAL may have been checkpointed away at shutdown.)
    for (const char* file : {"funcd.db", "aws-credentials", "logs/private.log"})
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

}  // namespace
}  // namespace funcd::testing
