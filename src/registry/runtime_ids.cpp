#include "funcd/registry/runtime_ids.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace funcd {
namespace {

// Lambda's Python identifiers that funcd runs on the host's Python (python3.9 to 3.14,
// the ones Lambda supported in 2026), its Node.js identifiers (nodejs18.x to 24.x), run on
// the host's Node.js, then its custom-runtime identifiers. `python3` and `nodejs` are
// funcd's own: whatever version the host has.
const std::vector<std::string> kSupported = {
    "python3",    "python3.9",  "python3.10", "python3.11", "python3.12", "python3.13",
    "python3.14", "nodejs",     "nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x",
    "provided",   "provided.al2", "provided.al2023",
};

// Retired identifiers of botocore's Runtime enum: Lambda refuses them on create and update
// with its deprecation message. (`provided` is retired on Lambda too, but funcd runs it;
// `nodejs` is funcd's own identifier in /v1, and Lambda's API refuses it as Lambda does.)
constexpr std::array<std::string_view, 19> kDeprecated = {
    "nodejs",        "nodejs4.3",     "nodejs4.3-edge", "nodejs6.10",    "nodejs8.10", "nodejs10.x", "nodejs12.x",
    "nodejs14.x",    "java8",         "python2.7",      "python3.6",     "python3.7",  "dotnetcore1.0",
    "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1",  "go1.x",         "ruby2.5",    "ruby2.7",
};

}  // namespace

std::string_view to_string(Runtime r) {
    switch (r) {
        case Runtime::python3: return "python3";
        case Runtime::nodejs: return "nodejs";
        case Runtime::provided: return "provided";
    }
    return "unknown";
}

std::optional<Runtime> runtime_family(std::string_view id) {
    if (std::find(kSupported.begin(), kSupported.end(), id) == kSupported.end()) return std::nullopt;
    if (id.starts_with("python")) return Runtime::python3;
    if (id.starts_with("nodejs")) return Runtime::nodejs;
    return Runtime::provided;
}

std::optional<std::string> requested_python_version(std::string_view id) {
    constexpr std::string_view kPrefix = "python";
    if (!runtime_family(id) || !id.starts_with(kPrefix) || id == "python3") return std::nullopt;
    return std::string(id.substr(kPrefix.size()));
}

std::optional<int> requested_node_major(std::string_view id) {
    constexpr std::string_view kPrefix = "nodejs", kSuffix = ".x";
    if (runtime_family(id) != Runtime::nodejs || !id.ends_with(kSuffix) || id.size() <= kPrefix.size() + kSuffix.size())
        return std::nullopt;
    const std::string_view digits = id.substr(kPrefix.size(), id.size() - kPrefix.size() - kSuffix.size());
    int major = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), major);
    if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return major;
}

bool is_deprecated_runtime(std::string_view id) {
    return std::find(kDeprecated.begin(), kDeprecated.end(), id) != kDeprecated.end();
}

const std::vector<std::string>& supported_runtime_ids() { return kSupported; }

std::string supported_runtime_list() {
    std::string out;
    for (const auto& id : kSupported) out += (out.empty() ? "" : ", ") + id;
    return out;
}

std::string_view host_architecture() {
    static const std::string arch = [] {
        utsname u{};
        if (::uname(&u) != 0) return std::string("x86_64");
        const std::string_view machine = u.machine;
        return std::string(machine == "aarch64" || machine == "arm64" ? "arm64" : "x86_64");
    }();
    return arch;
}

}  // namespace funcd
