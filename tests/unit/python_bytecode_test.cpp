#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "funcd/daemon/python_bytecode.hpp"

using namespace funcd;
namespace fs = std::filesystem;

namespace {

constexpr const char* kPython = "/usr/bin/python3";

class PythonBytecodeTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is not installed";
        char tmpl[] = "/tmp/funcd-pyc-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        // A copy, so that the checkout's own __pycache__ is left alone.
        fs::create_directories(root_ / "python");
        for (const auto& entry : fs::directory_iterator(fs::path(FUNCD_DEFAULT_RUNTIME_DIR) / "python"))
            if (entry.path().extension() == ".py") fs::copy_file(entry.path(), root_ / "python" / entry.path().filename());
    }
    void TearDown() override {
        std::error_code ec;
        if (!root_.empty()) fs::remove_all(root_, ec);
    }

    // The cached files of `module`, whatever the interpreter's version tag.
    std::vector<fs::path> cached(const std::string& module) const {
        std::vector<fs::path> found;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(root_ / "python" / "__pycache__", ec)) {
            const std::string name = entry.path().filename().string();
            if (name.starts_with(module + ".") && name.ends_with(".pyc")) found.push_back(entry.path());
        }
        return found;
    }

    fs::path root_;
};

TEST_F(PythonBytecodeTest, CompilesEveryModuleReadableByOtherUsers) {
    // Workers run as other uids, whatever umask the daemon has.
    const mode_t old = ::umask(077);
    const bool ok = compile_python_runtime(kPython, root_);
    ::umask(old);
    ASSERT_TRUE(ok);
    for (const char* module : {"bootstrap", "funcd_runtime", "funcd_json"}) {
        auto files = cached(module);
        ASSERT_EQ(files.size(), 1u) << module;
        struct stat st {};
        ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0044, 0044u) << files[0];
    }
    struct stat dir {};
    ASSERT_EQ(::stat((root_ / "python" / "__pycache__").c_str(), &dir), 0);
    EXPECT_EQ(dir.st_mode & 0055, 0055u);
    // Up to date: a second run succeeds and leaves the files as they are.
    const auto before = fs::last_write_time(cached("funcd_runtime")[0]);
    EXPECT_TRUE(compile_python_runtime(kPython, root_));
    EXPECT_EQ(fs::last_write_time(cached("funcd_runtime")[0]), before);
}

TEST_F(PythonBytecodeTest, FailuresAreReportedNotThrown) {
    EXPECT_FALSE(compile_python_runtime("/nonexistent/python3", root_));
    EXPECT_FALSE(compile_python_runtime(kPython, root_ / "missing"));
    std::ofstream(root_ / "python" / "broken.py") << "def f(:\n";
    EXPECT_FALSE(compile_python_runtime(kPython, root_));
    // The other modules are compiled all the same.
    EXPECT_EQ(cached("funcd_runtime").size(), 1u);
}

TEST_F(PythonBytecodeTest, AStuckCompilerIsKilledAtTheTimeout) {
    const fs::path fake = root_ / "slow-python";
    std::ofstream(fake) << "#!/bin/sh\nexec sleep 30\n";
    fs::permissions(fake, fs::perms::owner_all);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(compile_python_runtime(fake.string(), root_, std::chrono::milliseconds(200)));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

}  // namespace
