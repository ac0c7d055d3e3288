#pragma once
// A failed system call, as the daemon reports one: logged with its errno and context, then
// thrown to the caller's boundary.
#include <string>
#include <string_view>

namespace funcd {

// Logs "<component>: <what> failed: <errno text> (errno <err>)" and throws it as a
// std::system_error carrying `err`.
[[noreturn]] void throw_syscall_error(std::string_view component, int err, const std::string& what);

}  // namespace funcd
