// An installed funcd finds its runtimes and funcd-init relative to its own binary, so a
// package or `cmake --install` under any prefix works without the source checkout.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "funcd/common/ids.hpp"
#include "funcd/common/install_layout.hpp"
#include "funcd/sandbox/sandbox_init.hpp"

using namespace funcd;
namespace fs = std::filesystem;

namespace {

class InstallLayoutTest : public ::testing::Test {
protected:
    void SetUp() override {
        prefix_ = fs::temp_directory_path() / ("funcd-layout-" + random_hex(8)) / "usr";
        fs::create_directories(prefix_ / "bin");
        program_ = prefix_ / "bin" / "funcd";
        std::ofstream(program_) << "#!/bin/sh\n";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(prefix_.parent_path(), ec);
    }

    fs::path prefix_, program_;
};

TEST_F(InstallLayoutTest, FilesLiveInTheFhsPlacesOfThePrefix) {
    const InstallLayout layout = installed_layout(program_);
    EXPECT_EQ(layout.runtime_dir, prefix_ / "share/funcd/runtime");
    EXPECT_EQ(layout.sandbox_init, prefix_ / "libexec/funcd/funcd-init");
}

TEST_F(InstallLayoutTest, AnInstalledBinaryFindsItsRuntimesWithoutTheCheckout) {
    fs::create_directories(prefix_ / "share/funcd/runtime/python");
    std::ofstream(prefix_ / "share/funcd/runtime/python/bootstrap.py") << "\n";
    std::string looked;
    EXPECT_EQ(find_runtime_dir(program_, &looked), prefix_ / "share/funcd/runtime");
}

TEST_F(InstallLayoutTest, ABuildTreeBinaryFallsBackToTheCheckout) {
    // Nothing installed beside this "binary": the runtimes of the checkout it was built from.
    const fs::path found = find_runtime_dir(program_);
    EXPECT_EQ(found, fs::path(FUNCD_DEFAULT_RUNTIME_DIR));
    EXPECT_TRUE(fs::exists(found / "python/bootstrap.py"));
}

TEST_F(InstallLayoutTest, AnInstalledBinaryFindsFuncdInit) {
    const fs::path init = prefix_ / "libexec/funcd/funcd-init";
    fs::create_directories(init.parent_path());
    std::ofstream(init) << "#!/bin/sh\n";
    ::chmod(init.c_str(), 0755);
    std::string looked;
    EXPECT_EQ(find_sandbox_init({}, program_, &looked), init) << looked;
    // One given explicitly wins.
    EXPECT_EQ(find_sandbox_init(init, program_, &looked), init);
}

TEST_F(InstallLayoutTest, ABuildTreeBinaryFindsTheFuncdInitOfItsBuild) {
    std::string looked;
    const fs::path found = find_sandbox_init({}, program_, &looked);
    ASSERT_FALSE(found.empty()) << looked;
    EXPECT_EQ(found.filename(), "funcd-init");
    EXPECT_NE(found, prefix_ / "libexec/funcd/funcd-init");
}

TEST_F(InstallLayoutTest, FuncdInitNowhereNamesThePlacesTried) {
    std::string looked;
    EXPECT_TRUE(find_sandbox_init(prefix_ / "missing/funcd-init", program_, &looked).empty());
    EXPECT_NE(looked.find("missing/funcd-init"), std::string::npos) << looked;
}

}  // namespace
