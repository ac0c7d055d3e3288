#include "funcd/common/install_layout.hpp"

#include <vector>

namespace funcd {
namespace fs = std::filesystem;

InstallLayout installed_layout(const fs::path& program) {
    const fs::path bin = program.parent_path();
    return {(bin / FUNCD_RUNTIME_DIR_FROM_BINDIR).lexically_normal(),
            (bin / FUNCD_SANDBOX_INIT_FROM_BINDIR).lexically_normal()};
}

fs::path running_program() {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::path() : self;
}

fs::path find_runtime_dir(const fs::path& program, std::string* looked) {
    std::vector<fs::path> places;
    if (!program.empty()) places.push_back(installed_layout(program).runtime_dir);
    places.emplace_back(FUNCD_BUILD_RUNTIME_DIR);
    std::string list;
    for (const fs::path& p : places) {
        std::error_code ec;
        if (fs::is_directory(p / "python", ec) || fs::is_directory(p / "nodejs", ec)) return p;
        list += (list.empty() ? "" : ", ") + p.string();
    }
    if (looked) *looked = list;
    return {};
}

}  // namespace funcd
