#pragma once
// Where funcd finds the files it ships beside its binary. An installed funcd knows them
// relative to its own executable (e.g. /usr/bin/funcd -> /usr/share/funcd/runtime and
// /usr/libexec/funcd/funcd-init), so a package or `cmake --install` under any prefix (or
// DESTDIR, or a tree unpacked anywhere) works without the source checkout. The relative
// paths come from the install directories CMake was configured with (GNUInstallDirs). A
// binary run from its build tree has no such tree beside it and falls back to the
// checkout's runtime/ and the funcd-init this build made.
#include <filesystem>
#include <string>

namespace funcd {

struct InstallLayout {
    std::filesystem::path runtime_dir;   // python/ and nodejs/ runtimes
    std::filesystem::path sandbox_init;  // funcd-init
};

// The layout of an installation whose funcd binary is `program`.
InstallLayout installed_layout(const std::filesystem::path& program);

// The running executable (/proc/self/exe); empty when it cannot be read.
std::filesystem::path running_program();

// The runtime directory for `program`: the installed one when it exists, else the
// checkout's runtime/ of this build. Empty when neither exists; `looked` then lists the
// places tried.
std::filesystem::path find_runtime_dir(const std::filesystem::path& program, std::string* looked = nullptr);

}  // namespace funcd
