// DATA_DIR on a small filesystem that fills up: deploys are refused 507 with nothing of them
// stored, asynchronous events are refused or kept (never half-kept), functions already
// deployed go on answering, and everything works again once space is freed. Needs root (to
// mount a tmpfs); fails without it.
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A tmpfs of `megabytes`, unmounted (and its directory removed) when the test ends.
class SmallFilesystem {
public:
    explicit SmallFilesystem(int megabytes) {
        dir_ = fs::temp_directory_path() / ("funcd-full-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        const std::string options = "size=" + std::to_string(megabytes) + "m,mode=0700";
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) != 0)
            error_ = std::string("mount tmpfs: ") + std::strerror(errno);
    }
    ~SmallFilesystem() {
        if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    const fs::path& dir() const { return dir_; }
    const std::string& error() const { return error_; }

    // Writes a filler file until the filesystem refuses more.
    void fill() {
        std::ofstream out(dir_ / "filler", std::ios::binary);
        const std::string block(64 * 1024, 'f');
        while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
        }
    }
    void free_space() { fs::remove(dir_ / "filler"); }

private:
    fs::path dir_;
    std::string error_;
};

std::size_t entries_in(const fs::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++n;
    return n;
}

// A zip whose unpacked size is far larger than the space left, so unpacking is what fails.
std::string bulky_zip() {
    std::string big(4 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7919 % 26));
    return make_zip({{"app.py", {"def handler(event, context):\n    return 'bulky'\n", 0644}},
                     {"data.bin", {big, 0644}}});
}

TEST(StorageFull, DeploysAre507AndNothingIsHalfStoredAndAllRecovers) {
    ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs and needs root";
    SmallFilesystem small(64);
    ASSERT_EQ(small.error(), "");
    const fs::path data = small.dir() / "data";
    Daemon d({}, data);
    ASSERT_EQ(d.deploy("steady", python_settings(), python_zip("def handler(event, context):\n    return 'still here'\n")).status,
              201);
    ASSERT_EQ(d.invoke("steady").status, 200);
    const std::size_t code_entries = entries_in(data / "code");

    small.fill();
    const auto refused = d.deploy("bulky", python_settings(), bulky_zip());
    EXPECT_EQ(refused.status, 507) << refused.body;
    if (refused.status == 507) {
        EXPECT_EQ(refused.json()["error"]["type"], "InsufficientStorage") << refused.body;
    }
    EXPECT_EQ(d.api("GET", "/v1/functions/bulky").status, 404) << "nothing of the refused deploy is served";
    EXPECT_EQ(entries_in(data / "code"), code_entries) << "nothing of it is stored";

    // Functions already deployed keep answering, or say why not (503: their usage could not
    // be recorded), never hang.
    const auto r = d.invoke("steady");
    EXPECT_TRUE(r.status == 200 || r.status == 503) << r.status << " " << r.body;
    // An event is either accepted (and then delivered) or refused; never lost after a 202.
    auto queue = [&] {
        return http_request(d.port(), "POST", "/v1/functions/steady/invoke", "{}",
                            {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Event"}});
    };
    const auto e = queue();
    EXPECT_TRUE(e.status == 202 || e.status == 503 || e.status == 507) << e.status << " " << e.body;

    // Everything works again once space is freed, with no restart (invocations as soon as
    // the usage journal is found writable again, within a second or two).
    small.free_space();
    EXPECT_EQ(d.deploy("bulky", python_settings(), bulky_zip()).status, 201);
    EXPECT_TRUE(eventually([&] { return d.invoke("steady").status == 200; }, 10s));
    EXPECT_EQ(d.invoke("bulky").json(), "bulky");
    EXPECT_EQ(queue().status, 202);
    d.stop();
}

}  // namespace
}  // namespace funcd::testing
