#include "funcd/pool/node_launch.hpp"

#include <algorithm>
#include <string_view>

namespace funcd {
namespace {

// Lambda's Node.js bootstrap bounds the semi-space the same way: at least 1 MB (V8's
// smallest useful young generation) and at most 64 MB (V8's own default maximum on 64-bit
// hosts), which a function of 2 GB or more reaches.
constexpr int kMinSemiSpaceMb = 1;
constexpr int kMaxSemiSpaceMb = 64;
constexpr int kMemoryPerSemiSpaceMb = 32;
// Share of memory_mb the JavaScript heap may fill, in percent.
constexpr int kHeapPercent = 80;
// V8's young generation: two semi-spaces and the space objects are promoted through.
constexpr int kSemiSpacesInYoungGeneration = 3;

// True when NODE_OPTIONS names `flag` (V8 accepts '_' for '-' in a flag's name), alone or
// with a value ("--max-old-space-size=512", "--max-old-space-size 512").
bool options_name(std::string_view options, std::string_view flag) {
    std::size_t at = 0;
    while (at < options.size()) {
        while (at < options.size() && options[at] == ' ') ++at;
        std::size_t end = options.find(' ', at);
        if (end == std::string_view::npos) end = options.size();
        std::string word(options.substr(at, end - at));
        word = word.substr(0, word.find('='));
        std::replace(word.begin(), word.end(), '_', '-');
        if (word == flag) return true;
        at = end;
    }
    return false;
}

}  // namespace

std::vector<std::string> node_heap_flags(int memory_mb, const std::map<std::string, std::string>& function_env) {
    if (auto it = function_env.find("NODE_OPTIONS"); it != function_env.end() &&
        (options_name(it->second, "--max-old-space-size") || options_name(it->second, "--max-semi-space-size")))
        return {};
    const int semi = std::clamp(memory_mb / kMemoryPerSemiSpaceMb, kMinSemiSpaceMb, kMaxSemiSpaceMb);
    const int old_space = std::max(memory_mb * kHeapPercent / 100 - kSemiSpacesInYoungGeneration * semi, 1);
    return {"--max-old-space-size=" + std::to_string(old_space), "--max-semi-space-size=" + std::to_string(semi)};
}

std::optional<std::string> node_template_refusal(const std::map<std::string, std::string>& function_env) {
    for (const auto& [name, value] : function_env) {
        const std::string_view n(name);
        const bool node_start = n.starts_with("NODE_") && n != "NODE_PATH" && n != "NODE_ENV";
        const bool locale = n == "LANG" || n.starts_with("LC_");
        if (node_start || locale) return name + " is read by Node.js only as it starts";
    }
    return std::nullopt;
}

std::optional<std::string> node_path(const std::map<std::string, std::string>& function_env,
                                     std::optional<int> node_major, const std::string& opt_root,
                                     const std::string& task_root) {
    if (function_env.count("NODE_PATH")) return std::nullopt;
    std::string path;
    if (!opt_root.empty()) {
        if (node_major) path += opt_root + "/nodejs/node" + std::to_string(*node_major) + "/node_modules:";
        path += opt_root + "/nodejs/node_modules:";
    }
    return path + task_root;
}

}  // namespace funcd
