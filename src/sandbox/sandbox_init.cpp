#include "funcd/sandbox/sandbox_init.hpp"

#include <unistd.h>

#include <system_error>
#include <vector>

namespace funcd {

std::filesystem::path find_sandbox_init(const std::filesystem::path& configured, std::string* looked) {
    namespace fs = std::filesystem;
    std::vector<fs::path> places;
    if (!configured.empty()) {
        places.push_back(configured);
    } else {
        // Installed or built, funcd-init sits beside the daemon's binary.
        std::error_code ec;
        const fs::path self = fs::read_symlink("/proc/self/exe", ec);
        if (!ec) places.push_back(self.parent_path() / kSandboxInitName);
#ifdef FUNCD_SANDBOX_INIT_BUILD_PATH
        // Programs of this build that live elsewhere (tests, benchmarks).
        places.emplace_back(FUNCD_SANDBOX_INIT_BUILD_PATH);
#endif
    }
    std::string list;
    for (const fs::path& p : places) {
        if (::access(p.c_str(), X_OK) == 0) return p;
        list += (list.empty() ? "" : ", ") + p.string();
    }
    if (looked) *looked = list;
    return {};
}

}  // namespace funcd
