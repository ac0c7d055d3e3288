#include "funcd/common/syscall_error.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <system_error>

namespace funcd {

void throw_syscall_error(std::string_view component, int err, const std::string& what) {
    spdlog::error("{}: {} failed: {} (errno {})", component, what, std::strerror(err), err);
    throw std::system_error(err, std::generic_category(), what);
}

}  // namespace funcd
