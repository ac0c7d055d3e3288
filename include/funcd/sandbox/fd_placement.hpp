#pragma once
// Where the launchers keep the descriptors a new worker inherits. The child dup2()s its
// pipes onto 0, 1 and 2, which would silently replace a descriptor that happened to get one
// of those numbers: a daemon started with a closed stdin hands out 0 for the next one it opens.
#include "funcd/common/unique_fd.hpp"

namespace funcd {

// `fd` if its number is above the standard descriptors, else a close-on-exec duplicate
// numbered 3 or more (the original is closed). A failed fcntl is logged and thrown;
// `what` names the descriptor.
UniqueFd above_stdio(UniqueFd fd, const char* what);

}  // namespace funcd
