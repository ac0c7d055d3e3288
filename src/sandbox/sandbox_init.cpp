#include "funcd/sandbox/sandbox_init.hpp"

#include <unistd.h>

#include <system_error>
#include <vector>

#include "funcd/common/install_layout.hpp"

namespace funcd {

std::filesystem::path find_sandbox_init(const std::filesystem::path& configured, std::string* looked) {
    return find_sandbox_init(configured, running_program(), looked);
}

std::filesystem::path find_sandbox_init(const std::filesystem::path& configured, const std::filesystem::path& self,
                                        std::string* looked) {
    namespace fs = std::filesystem;
    std::vector<fs::path> places;
    if (!configured.empty()) {
        places.push_back(configured);
    } else {
        // Built, funcd-init sits beside the daemon's binary; installed, in the package's
        // directory of helper programs (install_layout.hpp).
        if (!self.empty()) {
            places.push_back(self.parent_path() / kSandboxInitName);
            places.push_back(installed_layout(self).sandbox_init);
        }
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
